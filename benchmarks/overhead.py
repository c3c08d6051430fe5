"""Per-step overhead of genlight + Lightning vs a hand-written loop: the VAE on the bundled digits.

    python benchmarks/overhead.py --rounds 15 --epochs 3 --threads 1 --profile
    python benchmarks/overhead.py --rounds 1 --epochs 1 --out /tmp/overhead.md   # smoke run

Both sides train the same network (``create_model("vae")``, the digits config of
``examples/digits/vae.yaml``: latent 16, 32 channels, lr 2e-3, batch 64) from the same initial
weights on the same pre-built batches: the digits train split is materialised once as a list of
``(x, y)`` tensors and both sides iterate one ``DataLoader(batches, batch_size=None)`` over it, so
data loading is identical. The plain loop is ``loss = (nll + beta kl).mean()``, ``loss.backward()``,
``opt.step()``, ``opt.zero_grad(set_to_none=True)`` with Adam; the Lightning side is
``Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)`` fitting the genlight
VAE (its own ``training_step``, logging included). A third side, the floor, is the same VAE
under the same Trainer with a ``training_step`` that logs nothing: what Lightning costs by itself.
Rounds alternate plain, genlight, floor, plain, ... in one process after one warm-up round each
(timings on a shared machine drift; alternating keeps the drift out of the ratios). Lightning is timed from ``on_train_start`` to ``on_train_end`` (the
steady loop) and as the whole ``fit()`` call (with its set-up). ``--profile`` adds a cProfile of
one Lightning round. Writes ``benchmarks/results/overhead.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import lightning
import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, command, write_lines
from genlight import create_datamodule, create_model, get_model_class

OUT = RESULTS / "overhead.md"
VAE = get_model_class("vae")
CONFIG = {"latent_dim": 16, "hidden_channels": 32, "lr": 2e-3}  # examples/digits/vae.yaml
BATCH_SIZE = 64


def make_batches(seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The digits train split as a fixed list of ``(x, y)`` batches of 64 (one shuffled pass, last partial batch dropped)."""
    dm = create_datamodule("digits", batch_size=BATCH_SIZE)
    dm.setup("fit")
    loader = DataLoader(dm.train_set, batch_size=BATCH_SIZE, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))  # fmt: skip
    return [(x.clone(), y.clone()) for x, y in loader]


def make_loader(batches: list) -> DataLoader:
    return DataLoader(batches, batch_size=None, shuffle=False)


def plain_round(
    model: torch.nn.Module, loader: DataLoader, epochs: int, profiler: cProfile.Profile | None = None
) -> tuple[float, float]:
    """``(wall, CPU)`` seconds for ``epochs`` passes of a hand-written loop over the same network and batches."""
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=model.hparams.lr)
    beta = model.hparams.beta
    if profiler is not None:
        profiler.enable()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(epochs):
        for x, _y in loader:
            nll, kl = model.elbo_terms(x)
            loss = (nll + beta * kl).mean()
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
    return wall, cpu


class UnloggedVAE(VAE):
    """The genlight VAE with a ``training_step`` that logs nothing: what the Trainer costs by itself."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        nll, kl = self.elbo_terms(batch[0])
        return (nll + self.hparams.beta * kl).mean()


class PerStepLoggingVAE(VAE):
    """The VAE's ``training_step`` as it was before :meth:`~genlight.module.GenerativeModule.log_train`
    (branch start of issue 7): three ``self.log(..., on_epoch=True)`` scalars every step."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        nll, kl = self.elbo_terms(batch[0])
        loss = (nll + self.hparams.beta * kl).mean()
        self.log("train/loss", loss, prog_bar=True, on_epoch=True)
        self.log_dict({"train/recon": nll.mean(), "train/kl": kl.mean()}, on_epoch=True)
        return loss


class LoopTimer(pl.Callback):
    """Times (and optionally profiles) the steady training loop: ``on_train_start`` to ``on_train_end``."""

    def __init__(self, profiler: cProfile.Profile | None = None) -> None:
        self.profiler = profiler

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.profiler is not None:
            self.profiler.enable()
        self.start, self.cpu = time.perf_counter(), time.process_time()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds, self.cpu = time.perf_counter() - self.start, time.process_time() - self.cpu
        if self.profiler is not None:
            self.profiler.disable()


def lightning_round(
    model: pl.LightningModule, loader: DataLoader, epochs: int, log_every_n_steps: int,
    profiler: cProfile.Profile | None = None,
) -> tuple[float, float, float]:
    """``(loop wall, loop CPU, fit() wall)`` seconds for ``epochs`` epochs under a bare Trainer."""
    timer = LoopTimer(profiler)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, max_epochs=epochs, callbacks=[timer],
        log_every_n_steps=log_every_n_steps,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    fit = time.perf_counter() - start
    return timer.seconds, timer.cpu, fit


def profile_round(model: pl.LightningModule, loader: DataLoader, epochs: int, log_every_n_steps: int, steps: int) -> str:
    """cProfile of one Lightning round's loop: cumulative seconds per step of the functions that matter."""
    profiler = cProfile.Profile(time.process_time)  # CPU time: other jobs on a shared machine stay out
    lightning_round(model, loader, epochs, log_every_n_steps, profiler)
    stats = pstats.Stats(profiler)
    rows = []
    for (filename, line, name), (_cc, ncalls, _tt, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append((cumtime, ncalls, filename, line, name))
    # what we report: the step as a whole, the user's code, the optimiser, Lightning's logging and hooks
    wanted = {
        ("fit_loop.py", "run"): "FitLoop.run (the whole loop)",
        ("training_epoch_loop.py", "advance"): "epoch loop: one step (advance)",
        ("automatic.py", "run"): "automatic optimisation: _run_optimization",
        ("automatic.py", "_training_step"): "  training_step call (strategy + hooks)",
        ("vae.py", "training_step"): "    VAE.training_step (genlight)",
        ("vae.py", "elbo_terms"): "      VAE.elbo_terms (the network, both sides)",
        ("module.py", "log_train"): "      GenerativeModule.log_train (genlight logging)",
        ("module.py", "log"): "      LightningModule.log",
        ("module.py", "log_dict"): "      LightningModule.log_dict",
        ("automatic.py", "backward_fn"): "  backward (closure)",
        ("_tensor.py", "backward"): "    Tensor.backward (both sides)",
        ("adam.py", "step"): "  Adam.step (both sides)",
        ("automatic.py", "_make_zero_grad_fn"): "  zero_grad wrapper",
        ("call.py", "_call_callback_hooks"): "  Lightning: callback hooks",
        ("call.py", "_call_lightning_module_hook"): "  Lightning: module hooks (incl. optimizer_step, so the closure)",
        ("logger_connector.py", "on_batch_end"): "  Lightning: logger connector on_batch_end (metrics dict)",
        ("logger_connector.py", "update_train_step_metrics"): "  Lightning: update_train_step_metrics",
        ("fetchers.py", "__next__"): "  data fetcher __next__ (DataLoader, both sides)",
        ("progress.py", "increment_ready"): "  Lightning: progress tracking (increment_ready)",
    }
    out = ["| function | calls | cumulative s | ms / step |", "|---|---|---|---|"]
    for (file_end, func), label in wanted.items():
        hits = [r for r in rows if r[2].endswith(file_end) and r[4] == func]
        if not hits:
            continue
        cum, calls = sum(r[0] for r in hits), sum(r[1] for r in hits)
        out.append(f"| {label} | {calls} | {cum:.3f} | {1000 * cum / steps:.3f} |")
    buf = io.StringIO()
    pstats.Stats(profiler, stream=buf).sort_stats("tottime").print_stats(25)
    return "\n".join(out) + "\n\nTop 25 by own time (cProfile):\n\n```\n" + _trim(buf.getvalue()) + "\n```"


def _owner(filename: str, func: str) -> str:
    if "lightning/pytorch" in filename:
        return "lightning.pytorch"
    if "lightning_utilities" in filename or "lightning/fabric" in filename:
        return "lightning_utilities, lightning.fabric"
    if "torchmetrics" in filename:
        return "torchmetrics"
    if "genlight" in filename or "benchmarks" in filename:
        return "genlight (and this script)"
    if "torch/" in filename:
        return "torch, Python code"
    if filename == "~":
        return "C functions (torch ops, builtins)"
    return "standard library"


def owner_profile(sides: dict[str, Callable[..., object]], epochs: int, steps: int) -> str:
    """cProfile of one round of each side: own time per step by package, and Python calls per step.

    cProfile inflates Python-heavy code (every call is timed), so compare the sides' columns with
    each other, not with the timings above; call counts are exact."""
    totals: dict[str, dict[str, float]] = {}
    calls: dict[str, int] = {}
    for name, run in sides.items():
        profiler = cProfile.Profile(time.process_time)  # CPU time: other jobs on a shared machine stay out
        run(epochs, profiler)  # the training loop only, as timed above
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        by_owner: dict[str, float] = {}
        for (filename, _line, func), (_cc, ncalls, tottime, _cum, _callers) in stats.items():
            key = _owner(filename, func)
            by_owner[key] = by_owner.get(key, 0.0) + tottime
        totals[name] = by_owner
        calls[name] = sum(v[1] for v in stats.values())
    owners = sorted({k for v in totals.values() for k in v}, key=lambda k: -max(t.get(k, 0.0) for t in totals.values()))
    head = "| own time, ms / step | " + " | ".join(sides) + " |"
    out = [head, "|---" * (len(sides) + 1) + "|"]
    for owner in owners:
        out.append(f"| {owner} | " + " | ".join(f"{1000 * totals[n].get(owner, 0.0) / steps:.3f}" for n in sides) + " |")
    out.append("| **all** | " + " | ".join(f"{1000 * sum(totals[n].values()) / steps:.3f}" for n in sides) + " |")
    out.append("| Python function calls / step | " + " | ".join(f"{calls[n] / steps:.0f}" for n in sides) + " |")
    return "\n".join(out)


def _trim(text: str) -> str:
    lines = [ln.replace(str(Path(torch.__file__).parents[1]) + "/", "") for ln in text.splitlines()]
    start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
    return "\n".join(ln.rstrip() for ln in lines[start:] if ln.strip())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per side (after one warm-up each)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per round")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    parser.add_argument("--log_every_n_steps", type=int, default=50, help="the Trainer's (50 is its default)")
    parser.add_argument("--profile", action="store_true", help="append a cProfile of one Lightning round")
    parser.add_argument("--no_old", action="store_true", help="leave out the per-step self.log side")
    parser.add_argument("--label", default="", help="a note written under the title (e.g. which code)")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    pl.seed_everything(0, verbose=False)
    batches = make_batches()
    loader = make_loader(batches)
    plain_model = create_model("vae", **CONFIG)
    lit_model = create_model("vae", **CONFIG)
    models = [lit_model, UnloggedVAE(**CONFIG), *([] if args.no_old else [PerStepLoggingVAE(**CONFIG)])]
    for model in models:
        model.load_state_dict(plain_model.state_dict())  # same network, same initial weights
    steps_per_round = args.epochs * len(batches)
    images_per_round = steps_per_round * BATCH_SIZE

    def lightning_side(model: pl.LightningModule) -> Callable[..., tuple[float, float]]:
        return lambda epochs, prof=None: lightning_round(model, loader, epochs, args.log_every_n_steps, prof)[:2]

    names = ["genlight + Trainer", "Trainer floor (training_step logs nothing)",
             "Trainer, per-step self.log (the pattern before log_train)"]  # fmt: skip
    sides: dict[str, Callable[..., tuple[float, float]]] = {
        "plain loop": lambda epochs, prof=None: plain_round(plain_model, loader, epochs, prof),
        **{name: lightning_side(model) for name, model in zip(names, models)},
    }
    for run in sides.values():
        run(1)  # warm-up
    wall: dict[str, list[float]] = {k: [] for k in sides}
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, run in sides.items():  # alternating: plain, genlight, floor, old, plain, ...
            w, c = run(args.epochs)
            wall[name].append(w)
            cpu[name].append(c)

    med = statistics.median
    ips = {k: [images_per_round / s for s in v] for k, v in wall.items()}
    cips = {k: [images_per_round / s for s in v] for k, v in cpu.items()}
    plain = "plain loop"

    def fmt(values: list[float]) -> str:
        return ", ".join(f"{v:.0f}" for v in values)

    def pairs(a: str, b: str, table: dict[str, list[float]]) -> list[float]:
        return [x / y for x, y in zip(table[a], table[b])]

    rows = []
    for name in sides:
        ms_w, ms_c = 1000 * med(wall[name]) / steps_per_round, 1000 * med(cpu[name]) / steps_per_round
        rows.append(
            f"| {name} | {med(ips[name]):.0f} | {ms_w:.2f} | {med(cips[name]):.0f} | {ms_c:.2f} | "
            f"{med(ips[name]) / med(ips[plain]):.3f} | {med(cips[name]) / med(cips[plain]):.3f} | "
            f"{med(pairs(name, plain, cips)):.3f} | {fmt(ips[name])} |"
        )
    ms_c = {k: 1000 * med(v) / steps_per_round for k, v in cpu.items()}
    ms_w = {k: 1000 * med(v) / steps_per_round for k, v in wall.items()}
    g, f = "genlight + Trainer", "Trainer floor (training_step logs nothing)"
    lines = [
        "# Per-step overhead: genlight VAE under a bare Trainer vs a hand-written loop",
        "",
        *([args.label, ""] if args.label else []),
        f"`{command()}` on {platform.machine()} ({platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, shared with other jobs), torch.set_num_threads({args.threads}), "
        f"torch {torch.__version__}, lightning {lightning.__version__}, Python {platform.python_version()}.",
        f"VAE {CONFIG} on the digits train split: {len(batches)} batches of {BATCH_SIZE} per epoch, "
        f"{args.epochs} epochs ({steps_per_round} steps, {images_per_round} images) per round; "
        f"{args.rounds} timed rounds per side, the sides alternating in one process, after one warm-up round each; "
        f"Trainer log_every_n_steps={args.log_every_n_steps}. Images/s by wall clock and by CPU time "
        "(time.process_time: on a shared machine the wall clock also counts other jobs' time slices). "
        "Ratios are to the plain loop: of the medians, and the median of the per-round CPU ratios.",
        "",
        "| side | images/s wall | ms/step wall | images/s CPU | ms/step CPU | ratio wall | ratio CPU | "
        "per-round CPU ratio | rounds (wall images/s) |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"**genlight + Trainer / plain loop: {med(ips[g]) / med(ips[plain]):.3f}x wall, "
        f"{med(cips[g]) / med(cips[plain]):.3f}x CPU** (per-round CPU ratios: {', '.join(f'{r:.2f}' for r in pairs(g, plain, cips))}). "
        f"Overhead per step: {ms_w[g] - ms_w[plain]:.2f} ms wall, {ms_c[g] - ms_c[plain]:.2f} ms CPU, of which "
        f"Lightning itself (the floor, no logging) {ms_w[f] - ms_w[plain]:.2f} ms wall, {ms_c[f] - ms_c[plain]:.2f} ms CPU, "
        f"and genlight's logging {ms_w[g] - ms_w[f]:.2f} ms wall, {ms_c[g] - ms_c[f]:.2f} ms CPU "
        f"(genlight / floor: {med(cips[g]) / med(cips[f]):.3f}x CPU, per round {med(pairs(g, f, cips)):.3f}x).",
    ]
    if args.profile:
        lines += [
            "", f"## Who owns the time: cProfile of one round of each side ({steps_per_round} steps)", "",
            owner_profile(sides, args.epochs, steps_per_round), "",
            "cProfile (timer: CPU time) times every Python call, so Python-heavy code looks slower than it runs; "
            "compare the columns with each other; the call counts are exact. Everything the Trainer adds over the plain loop is in the "
            "lightning.pytorch / lightning_utilities rows (and the extra standard-library and torch-Python calls "
            "they make: contextlib, inspect, LightningModule attribute sets); genlight's own rows are the same in "
            "all Lightning columns up to its log_train.",
            "", f"## cProfile of one genlight + Trainer round ({steps_per_round} steps)", "",
            profile_round(lit_model, loader, args.epochs, args.log_every_n_steps, steps_per_round),
        ]  # fmt: skip
    write_lines(Path(args.out), lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
