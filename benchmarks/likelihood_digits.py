"""Test bits/dim of the likelihood families on the bundled 8x8 digits, beside two classical baselines.

    python benchmarks/likelihood_digits.py --budget_minutes 5 --threads 1 --keep runs/bench/likelihood
    python benchmarks/likelihood_digits.py --only nade,vae --budget_minutes 2
    python benchmarks/likelihood_digits.py --only vae --budget_minutes 0.05 --out /tmp/l.md   # smoke run

Each row trains one family with its example config (``examples/digits/<family>.yaml``) plus the row's
overrides, under a wall-clock budget (``trainer.max_time``) on top of the config's own ``max_epochs``
and early stopping. The checkpoint with the best validation figure (``model.checkpoint_monitor()``:
``val/bpd``, or ``val/bpd_bound`` for bounds) is chosen, its (EMA) weights loaded, and the test split
scored once: ``log_prob`` for exact families, the bound for bound families (and IWAE for VAEs; every
one of DDPM's T-1 KL terms, as ``benchmarks/ddpm_bound_digits.py``; a CVAE both label-free, a bound
on ``-log p(x)`` under a uniform class prior, and given the labels, a bound on ``-log p(x|y)``). Beside
them, on the same split: an independent per-pixel categorical (Laplace smoothing tuned on validation)
and a mixture of K product-categoricals fitted by EM (K and smoothing tuned on validation).
Results go to ``benchmarks/results/likelihood_digits.md`` (with ``--only``, rows not rerun are kept from
the old file, and so is its text above the table, with one line added naming the rows rerun, the commit,
the options and the load).

To add a row: one ``Row(...)`` line in ``ROWS``; rows are identified by their ``key`` (``--only``, the
table's ``key`` column), which defaults to the family, so one family can have several rows.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no OpenMP spin-waiting on a shared machine (set before torch loads)
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import ESTIMATE_DRAWS, RESULTS, ROOT, commit, density_kind, num_params, to_levels  # noqa: E402
from genlight import create_datamodule, list_models, load_model  # noqa: E402
from genlight.cli import GenlightCLI  # noqa: E402

OUT = RESULTS / "likelihood_digits.md"
#: what `make bench` runs (the kept VAE / CVAE checkpoints are fid_digits.py's `add` rows)
COMMAND = "python benchmarks/likelihood_digits.py --budget_minutes 5 --threads 1 --keep runs/bench/likelihood"


@dataclass
class Row:
    """One trained family: ``overrides`` are extra CLI arguments; ``iwae`` > 0 also scores a bound
    family with ``log_prob(x, num_samples=iwae)``; ``log_prob_kwargs`` go to every ``log_prob`` call;
    ``labelled`` also scores ``log_prob(x, y)`` (a conditional family's bound on ``-log p(x|y)``);
    ``key`` names the row (default: the family)."""

    label: str
    family: str
    config: str
    overrides: list[str] = field(default_factory=list)
    iwae: int = 0
    key: str = ""
    log_prob_kwargs: dict = field(default_factory=dict)
    labelled: bool = False
    #: a two-stage family: the config of stage one, fitted first under the same budget and validation
    #: selection; its chosen checkpoint goes to this row's run as ``--model.vqvae_ckpt``
    stage_one: str = ""

    def __post_init__(self) -> None:
        self.key = self.key or self.family


NO_EXTRA_CALLBACKS = ["--trainer.callbacks=[]"]  # FID/reconstruction callbacks cost budget and change nothing here
ROWS = [
    Row("NADE (order-agnostic ensemble)", "nade", "examples/digits/nade.yaml"),
    Row("PixelCNN", "pixelcnn", "examples/digits/pixelcnn.yaml"),
    Row("Gated PixelCNN", "gated_pixelcnn", "examples/digits/gated_pixelcnn.yaml"),
    Row("PixelRNN (Row LSTM)", "pixelrnn_row", "examples/digits/pixelrnn_row.yaml"),
    Row("PixelRNN (Diagonal BiLSTM)", "pixelrnn_diag", "examples/digits/pixelrnn_diag.yaml"),
    Row("RealNVP", "realnvp", "examples/digits/realnvp.yaml"),
    Row("Glow", "glow", "examples/digits/glow.yaml"),
    Row("MAF", "maf", "examples/digits/maf.yaml"),
    Row("NSF (rational-quadratic spline couplings)", "nsf", "examples/digits/nsf.yaml"),
    Row("NSF, autoregressive (MADE; nsf.yaml with MAF's widths)", "nsf", "examples/digits/nsf.yaml",
        ["--model.variant=autoregressive", "--model.depth=5", "--model.hidden=256", "--model.num_blocks=2",
         "--model.lr=0.001", "--model.weight_decay=0.0"], key="nsf_ar"),  # fmt: skip
    Row("VAE (ELBO; IWAE k=100)", "vae", "examples/digits/vae.yaml", NO_EXTRA_CALLBACKS, iwae=100),
    Row("beta-VAE β=4 (β=1 ELBO; IWAE k=100)", "beta_vae", "examples/digits/beta_vae.yaml", NO_EXTRA_CALLBACKS, iwae=100),
    Row("CVAE: bounds on -log p(x) (uniform class prior) and on -log p(x|y) (ELBO; IWAE k=100)", "cvae", "examples/digits/cvae.yaml",
        NO_EXTRA_CALLBACKS, iwae=100, labelled=True),  # fmt: skip
    Row("VAE + VampPrior, 50 pseudo-inputs (`vae`; ELBO; IWAE k=100)", "vae", "examples/digits/vae_vamp.yaml",
        NO_EXTRA_CALLBACKS, iwae=100, key="vae_vamp"),  # fmt: skip
    Row("VAE + mixture-of-Gaussians prior, 10 components (`vae`, vae_vamp.yaml with prior=mog; ELBO; IWAE k=100)", "vae",
        "examples/digits/vae_vamp.yaml", [*NO_EXTRA_CALLBACKS, "--model.prior=mog", "--model.prior_components=10"],
        iwae=100, key="vae_mog"),  # fmt: skip
    Row("DDPM (variational bound, all T-1 KL terms)", "ddpm", "examples/digits/ddpm.yaml", NO_EXTRA_CALLBACKS,
        log_prob_kwargs={"num_terms": 10**9}),  # fmt: skip
    Row(f"Flow matching (ODE likelihood, 8 Heun steps, Hutchinson trace: an ESTIMATE, mean of {ESTIMATE_DRAWS} draws "
        "per image)", "flow_matching", "examples/digits/flow_matching.yaml", NO_EXTRA_CALLBACKS),  # fmt: skip
    Row("VQ-VAE + Gated PixelCNN prior (`vqvae`: vqvae.yaml, then vqvae_prior.yaml on its codes, each under the "
        "budget; bound -log p(x|z*) - log p(z*))", "vqvae", "examples/digits/vqvae_prior.yaml", NO_EXTRA_CALLBACKS,
        key="vqvae_prior", stage_one="examples/digits/vqvae.yaml"),  # fmt: skip
]


# ---------------------------------------------------------------------------- baselines
def levels_of(dataset, num_levels: int) -> torch.Tensor:
    """``(N, D)`` integer levels of a split."""
    x = torch.stack([dataset[i][0] for i in range(len(dataset))])
    return to_levels(x, num_levels).flatten(1)


def per_pixel_categorical(train: torch.Tensor, val: torch.Tensor, test: torch.Tensor, levels: int) -> dict:
    """Independent categorical per pixel, ``p_d(k) = (n_dk + a) / (N + L a)``, ``a`` tuned on validation."""

    def fit(alpha: float) -> torch.Tensor:
        counts = torch.nn.functional.one_hot(train, levels).sum(0).double()  # (D, L)
        return ((counts + alpha) / (counts.sum(1, keepdim=True) + levels * alpha)).log()

    def score(logp: torch.Tensor, data: torch.Tensor) -> float:
        return -logp.gather(1, data.T).sum(0).mean().item()  # nats per image

    alphas = [0.01, 0.03, 0.1, 0.3, 1.0, 3.0]
    best = min(alphas, key=lambda a: score(fit(a), val))
    logp = fit(best)
    return {"val": score(logp, val), "test": score(logp, test), "choice": f"a={best}", "params": logp.numel()}


def em_mixture(train: torch.Tensor, levels: int, k: int, alpha: float, iters: int = 150, seed: int = 0) -> tuple:
    """EM for ``p(x) = sum_k pi_k prod_d Cat(x_d; theta_kd)``, M-step smoothed with ``alpha`` pseudo-counts."""
    g = torch.Generator().manual_seed(seed)
    n, d = train.shape
    onehot = torch.nn.functional.one_hot(train, levels).double().view(n, d * levels)  # (N, D*L)
    resp = torch.rand(n, k, generator=g, dtype=torch.double)
    resp /= resp.sum(1, keepdim=True)
    prev = -math.inf
    for _ in range(iters):
        log_pi = (resp.sum(0) / n).log()
        counts = (resp.T @ onehot).view(k, d, levels)
        log_theta = ((counts + alpha) / (counts.sum(2, keepdim=True) + levels * alpha)).log()  # (K, D, L)
        joint = log_pi + onehot @ log_theta.view(k, -1).T  # (N, K)
        ll = torch.logsumexp(joint, 1).mean().item()
        resp = torch.softmax(joint, 1)
        if ll - prev < 1e-6:
            break
        prev = ll
    return log_pi, log_theta


def mixture_log_prob(model: tuple, data: torch.Tensor, levels: int) -> torch.Tensor:
    log_pi, log_theta = model
    onehot = torch.nn.functional.one_hot(data, levels).double().flatten(1)
    return torch.logsumexp(log_pi + onehot @ log_theta.flatten(1).T, 1)


def mixture_baseline(train: torch.Tensor, val: torch.Tensor, test: torch.Tensor, levels: int) -> dict:
    """Mixture of product-categoricals; ``K`` and the smoothing chosen on validation (best of 2 EM seeds on train)."""
    best = None
    for k in (5, 10, 20, 40, 80):
        for alpha in (0.1, 0.5):
            fits = [em_mixture(train, levels, k, alpha, seed=s) for s in range(2)]
            model = max(fits, key=lambda m: mixture_log_prob(m, train, levels).mean().item())
            v = -mixture_log_prob(model, val, levels).mean().item()
            if best is None or v < best[0]:
                best = (v, k, alpha, model)
    v, k, alpha, model = best
    t = -mixture_log_prob(model, test, levels).mean().item()
    params = model[0].numel() - 1 + model[1].shape[0] * model[1].shape[1] * (levels - 1)
    return {"val": v, "test": t, "choice": f"K={k}, a={alpha}", "params": params}


# ---------------------------------------------------------------------------- trained families
def train_family(row: Row, budget_minutes: float, root: Path, keep: Path | None = None) -> dict:
    """Fit ``row`` with its config under the budget; score the checkpoint chosen on validation on the
    test split. ``keep``: copy the chosen checkpoint to ``keep / f"{row.key}.ckpt"`` (e.g. for
    ``fid_digits.py add``)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    if row.family not in list_models():
        return {"status": "not registered"}
    if not (ROOT / row.config).is_file():
        return {"status": f"no config {row.config}"}
    seconds = int(budget_minutes * 60)
    overrides, first = list(row.overrides), None
    if row.stage_one:
        first = fit_stage_one(row.stage_one, seconds, root / "stage_one")
        overrides.append(f"--model.vqvae_ckpt={first['path']}")
    args = [
        "-c", str(ROOT / row.config), *overrides,
        f"--trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
        "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}", "--samples.every_n_epochs=0",
    ]  # fmt: skip
    cli = GenlightCLI(args=args, run=False)
    model, dm, trainer = cli.model, cli.datamodule, cli.trainer
    monitor, mode = model.checkpoint_monitor()
    best_ckpt = ModelCheckpoint(dirpath=root / "best", monitor=monitor, mode=mode, save_top_k=1, filename="best")
    trainer.callbacks.append(best_ckpt)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    train_seconds = time.perf_counter() - start + (first["train_s"] if first else 0.0)
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(best_ckpt.best_model_path, keep / f"{row.key}.ckpt")
    best = load_model(best_ckpt.best_model_path)  # the EMA weights when the recipe uses EMA
    best_epoch = torch.load(best_ckpt.best_model_path, map_location="cpu", weights_only=False)["epoch"]
    dm.setup("test")
    result = {
        "status": "ok",
        "kind": density_kind(best),
        "val_bpd": float(best_ckpt.best_model_score),
        "epochs": f"{best_epoch + 1} / {trainer.current_epoch}",
        "train_s": train_seconds,
        "params": num_params(best),
    }
    torch.manual_seed(0)
    start = time.perf_counter()
    sums: dict[str, float] = {}
    n = 0
    draws: list[torch.Tensor] = []  # an estimate row's (ESTIMATE_DRAWS, batch) draws
    with torch.no_grad():
        for x, y in dm.test_dataloader():
            if result["kind"] == "estimate":
                draws.append(torch.stack([best.log_prob(x, **row.log_prob_kwargs) for _ in range(ESTIMATE_DRAWS)]).double())
            figures = {"test_bpd": draws[-1].mean(0) if draws else best.log_prob(x, **row.log_prob_kwargs)}
            if row.iwae:
                figures["test_iwae_bpd"] = best.log_prob(x, num_samples=row.iwae, **row.log_prob_kwargs)
            if row.labelled:
                figures["test_bpd_y"] = best.log_prob(x, y, **row.log_prob_kwargs)
                if row.iwae:
                    figures["test_iwae_bpd_y"] = best.log_prob(x, y, num_samples=row.iwae, **row.log_prob_kwargs)
            for name, lp in figures.items():
                sums[name] = sums.get(name, 0.0) + lp.double().sum().item()
            n += len(x)
    dims = best.num_dims * math.log(2.0)
    result.update({name: -total / n / dims for name, total in sums.items()})
    if draws:  # the variance of one draw, per image, averaged: (bits/dim)^2
        result["test_draw_var_bpd2"] = torch.cat(draws, 1).var(0).mean().item() / dims**2
    result["test_s"] = time.perf_counter() - start
    if first is not None:  # stage one alone, scored the same way (its own prior)
        stage_one, lp_sum = load_model(first["path"]), 0.0
        with torch.no_grad():
            lp_sum = sum(stage_one.log_prob(x).double().sum().item() for x, _ in dm.test_dataloader())
        result["test_stage_one_bpd"] = -lp_sum / n / dims
    torch.manual_seed(0)
    start = time.perf_counter()
    samples = best.sample(1000)
    result["samples_per_s"] = 1000 / (time.perf_counter() - start)
    assert samples.shape[0] == 1000 and torch.isfinite(samples).all()
    return result


def fit_stage_one(config: str, seconds: int, root: Path) -> dict:
    """Fit a two-stage row's stage one (``config``, no extra callbacks) under ``seconds``; the checkpoint
    chosen on validation (``path``) and the training seconds (``train_s``)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    args = [
        "-c", str(ROOT / config), *NO_EXTRA_CALLBACKS,
        f"--trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
        "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}", "--samples.every_n_epochs=0",
    ]  # fmt: skip
    cli = GenlightCLI(args=args, run=False)
    monitor, mode = cli.model.checkpoint_monitor()
    best = ModelCheckpoint(dirpath=root / "best", monitor=monitor, mode=mode, save_top_k=1, filename="best")
    cli.trainer.callbacks.append(best)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return {"path": best.best_model_path, "train_s": time.perf_counter() - start}


# ---------------------------------------------------------------------------- report
def fmt_row(label: str, key: str, r: dict) -> str:
    if r.get("status") != "ok":
        return f"| {label} | `{key}` | {r.get('status')} | | | | | | |"
    test = f"{r['test_bpd']:.3f}"
    if "test_draw_var_bpd2" in r:
        test = f"≈{test} (estimate; variance of one draw {r['test_draw_var_bpd2']:.2g} (bits/dim)²)"
    if "test_iwae_bpd" in r:
        test += f" (IWAE k=100: **{r['test_iwae_bpd']:.3f}**)"
    if "test_stage_one_bpd" in r:
        test += f" (stage one alone, uniform prior: {r['test_stage_one_bpd']:.3f})"
    if "test_bpd_y" in r:
        test = f"-log p(x): {test}; given labels, -log p(x|y): {r['test_bpd_y']:.3f}"
        if "test_iwae_bpd_y" in r:
            test += f" (IWAE k=100: **{r['test_iwae_bpd_y']:.3f}**)"
    return (
        f"| {label} | `{key}` | {r['kind']} | {test} | {r['val_bpd']:.3f} | {r['epochs']} | "
        f"{r['train_s']:.0f} | {r['params']:,} | {r['samples_per_s']:.0f} |"
    )


def kept_preamble(old: list[str], only: set[str], args: argparse.Namespace, start: tuple[str, str, float]) -> list[str]:
    """The old file's text above the table, with a line recording this partial rerun (rows, commit, time,
    options, load) after the list of earlier runs above its ``Command`` line; empty when there is no old table to keep.
    ``start``: the commit, UTC time and load average when the run started."""
    if not any(line.startswith("| model |") for line in old):
        return []
    preamble = old[: next(i for i, line in enumerate(old) if line.startswith("| model |"))]
    code, when, load = start
    note = (
        f"- re-run of {', '.join(f'`{k}`' for k in sorted(only))} at commit {code} (started {when} UTC; `--only "
        f"{args.only} --budget_minutes {args.budget_minutes:g} --threads {args.threads}`): {args.budget_minutes:g}-minute "
        f"budget, torch.set_num_threads({args.threads}), load average {load:.1f} at the start and "
        f"{os.getloadavg()[0]:.1f} at the end; the other rows are kept from the runs above."
    )
    end = next((i for i, line in enumerate(preamble) if line.startswith("Command (")), len(preamble))
    runs = [i for i, line in enumerate(preamble[:end]) if line.startswith("- ")]  # the list of earlier runs
    at = runs[-1] + 1 if runs else end
    return [*preamble[:at], note, *preamble[at:]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget_minutes", type=float, default=5.0, help="wall-clock training budget per family")
    parser.add_argument("--only", default="", help="comma-separated row keys (and/or 'baselines') to rerun")
    parser.add_argument("--keep", type=Path, default=None, help="copy each chosen checkpoint to KEEP/<key>.ckpt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--jobs", type=int, default=1, help="rows trained side by side, each in its own process")
    args = parser.parse_args()
    os.environ.setdefault("WANDB_MODE", "offline")
    torch.set_num_threads(args.threads)
    start = (commit(dirty=True), f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M}", os.getloadavg()[0])
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    dm = create_datamodule("digits", seed=0)
    dm.setup("fit")
    levels = dm.num_levels
    train, val, test = (levels_of(getattr(dm, f"{s}_set"), levels) for s in ("train", "val", "test"))
    dims = train.shape[1] * math.log(2.0)

    old = args.out.read_text().splitlines() if args.out.exists() else []
    lines: dict[str, str] = {}
    for line in old:  # keep rows that are not rerun
        m = re.match(r"\| .*? \| `([a-z0-9_]+)` \|", line)
        if m:
            lines[m.group(1)] = line
    if not only or "baselines" in only:
        for name, fn in (("per_pixel", per_pixel_categorical), ("mixture", mixture_baseline)):
            start = time.perf_counter()
            r = fn(train, val, test, levels)
            label = "Independent per-pixel categorical" if name == "per_pixel" else "Mixture of product-categoricals (EM)"
            lines[name] = (
                f"| {label} ({r['choice']}, chosen on val) | `{name}` | exact | {r['test'] / dims:.3f} | "
                f"{r['val'] / dims:.3f} | - | {time.perf_counter() - start:.0f} | {r['params']:,} | - |"
            )
            print(lines[name], flush=True)
    todo = [row for row in ROWS if not only or row.key in only]
    if args.jobs > 1 and len(todo) > 1:  # one child process per row, `jobs` at a time; rows merged here
        with tempfile.TemporaryDirectory() as tmp:
            outs = {row.key: Path(tmp) / f"{row.key}.md" for row in todo}
            running: list[subprocess.Popen] = []
            for row in todo:
                while len([p for p in running if p.poll() is None]) >= args.jobs:
                    time.sleep(2)
                cmd = [sys.executable, __file__, "--only", row.key, "--out", str(outs[row.key]),
                       "--threads", str(args.threads), "--budget_minutes", str(args.budget_minutes),
                       *(["--keep", str(args.keep)] if args.keep else [])]  # fmt: skip
                path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
                running.append(subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": path}))
            for p in running:
                p.wait()
            for key, out in outs.items():
                child = [ln for ln in (out.read_text().splitlines() if out.exists() else []) if f"| `{key}` |" in ln]
                lines[key] = child[0] if child else f"| {key} | `{key}` | failed (no result) | | | | | | |"
        todo = []
    for row in todo:
        with tempfile.TemporaryDirectory() as tmp:
            torch.set_num_threads(args.threads)
            try:
                r = train_family(row, args.budget_minutes, Path(tmp), keep=args.keep)
            except Exception as err:  # a broken family must not hide the others' figures
                r = {"status": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"}
        lines[row.key] = fmt_row(row.label, row.key, r)
        print(lines[row.key], flush=True)

    order = ["per_pixel", "mixture", *(r.key for r in ROWS)]
    order += [k for k in lines if k not in order]
    table = [
        "| model | key | kind | test bits/dim | val bits/dim (selected) | epochs | train s | params | samples/s |",
        "|---|---|---|---|---|---|---|---|---|",
        *(lines[k] for k in order if k in lines),
    ]
    notes = [line for line in old if line.startswith("> ")]
    preamble = kept_preamble(old, only, args, start) if only else []
    header = preamble or [
        "# Likelihood on digits (8x8, 17 levels): test bits/dim",
        "",
        "Generated by `benchmarks/likelihood_digits.py`"
        f" at commit {commit(dirty=True)} on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        "",
        f"Command (`make bench`): `{COMMAND}`.",
        "",
        "Protocol:",
        f"- data: `digits` (sklearn 8x8, levels 0..16), seeded split seed=0: {len(train)} train / {len(val)} val / "
        f"{len(test)} test images; bits/dim = -log2 p(x) / 64, no dequantisation offset (discrete models).",
        f"- training budget: at most {args.budget_minutes:g} min wall clock per family (`trainer.max_time`), on top of "
        "each example config's own max_epochs / early stopping; the checkpoint with the best validation "
        "figure (`val/bpd`, bounds `val/bpd_bound`) is scored on test once; EMA weights where the recipe uses EMA.",
        f"- rows trained {args.jobs} at a time (separate processes)." if args.jobs > 1 else "- rows trained one at a time.",
        f"- machine: {platform.machine()} {platform.processor() or ''}, {os.cpu_count()} cores shared with other "
        f"jobs, torch.set_num_threads({args.threads}); torch {torch.__version__}, Python {platform.python_version()}.",
        "- samples/s: 1000 samples drawn in one batch under inference_mode, same threads.",
        "- baselines: fitted on train, smoothing (and K) chosen on validation, test scored once.",
        "- `epochs`: best epoch (1-based) / epochs run.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + table + ([""] + notes if notes else [])) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
