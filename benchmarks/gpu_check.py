"""One-command GPU check: every family in every precision, genlight's speed against a plain loop, torch.compile,
FID on the GPU against the CPU.

    python benchmarks/gpu_check.py                       # on a GPU (one H100: about 6-8 minutes)
    python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gpu.md   # the CPU path (tests)

No download: the bundled digits, small synthetic files, and random 3x32x32 / 3x64x64 images.

1. **Precisions.** Each family is built with its own smoke settings on its smoke data and fitted for
   ``--steps`` training batches (``--tiny``: one batch of each loop) under Lightning's ``32-true`` and
   ``bf16-mixed``, and on CUDA also ``16-mixed`` (Lightning's ``GradScaler``; the manual-optimisation
   families scale through ``manual_backward``). A row passes when every logged value is finite and the
   weights stay float32.
2. **Throughput.** VAE, DCGAN and DDPM (``--throughput-families``) at 3x32x32 and 3x64x64: images/s of
   ``Trainer.fit`` against a plain PyTorch loop over the same networks, losses and optimizers (no
   Lightning, no logging), each with ``torch.compile`` off and on (``genlight.callbacks.Compile``, the
   same in both; backend ``inductor`` on CUDA, ``eager`` in ``--tiny``, which checks the path, not the
   speed). ``--warmup`` steps (compilation included) are not timed, then ``--timed`` steps are, with
   the device synchronised at both ends; batch ``--batch``; ``32-true``.
3. **FID on the device = FID on the CPU.** The FID pipeline of ``FIDCallback`` (the bundled ``digits``
   extractor, ``FrechetDistance``) on the same generated samples and the same real images, once on the
   CPU and once on the device: the two values must agree to 1e-3 (relative).

Writes ``benchmarks/results/gpu.md`` (``--out``). Without CUDA and without ``--device cpu``, it writes
only that no GPU was available, with the command that produces the figures.

Time on one H100 (estimated, not measured: no GPU was lent where this was written): part 1 is 22
families x 3 precisions x ~2-3 s (Trainer start-up dominates 20 steps of smoke models) = ~3 min; part 2
is 6 inductor compilations (3 families x 2 sizes; the second runner of a pair hits inductor's graph
cache) of ~20-60 s = ~3-4 min plus 24 x 35 steps of small networks (seconds); part 3 seconds. A
``--budget`` (default 480 s) bounds it by design: a compiled throughput row that would start after
``budget - 90`` s is skipped and the table says so.
"""

from __future__ import annotations

import argparse
import inspect
import math
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, command, commit, write_lines
from genlight import create_model
from genlight.callbacks import Compile
from genlight.callbacks.compile import compile_networks
from genlight.datamodules.digits import DigitsDataModule
from genlight.metrics.extractors import create_extractor
from genlight.metrics.fid import FrechetDistance
from genlight.registry import MODELS
from genlight.testing.harness import cpu_trainer, smoke_setup

OUT = RESULTS / "gpu.md"


def precisions(device: str) -> list[str]:
    """``32-true`` and ``bf16-mixed`` everywhere; ``16-mixed`` (float16 autocast with a GradScaler) on
    CUDA only (Lightning's CPU ``16-mixed`` is bfloat16)."""
    return ["32-true", "bf16-mixed", *(["16-mixed"] if device == "cuda" else [])]


def check(family: str, precision: str, device: str, steps: int, tiny: bool, root: Path) -> dict[str, Any]:
    """Fit ``family`` for ``steps`` batches in ``precision``; the row of the results table."""
    pl.seed_everything(0, verbose=False)
    model, dm, trainer_kwargs = smoke_setup(family, root)
    limits = {"fast_dev_run": True} if tiny else {"max_steps": steps, "limit_val_batches": 1, "num_sanity_val_steps": 0}
    trainer = cpu_trainer(str(root), **{**trainer_kwargs, **limits, "accelerator": "gpu" if device == "cuda" else "cpu",
                                       "precision": precision})  # fmt: skip
    began = time.perf_counter()
    try:
        trainer.fit(model, datamodule=dm)
    except Exception as err:  # noqa: BLE001 - a failing family is a row of the table, not the end of the check
        return {"family": family, "precision": precision, "ok": False, "note": f"{type(err).__name__}: {err}"[:160]}
    seconds = time.perf_counter() - began
    values = {k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1}
    bad = sorted(k for k, v in values.items() if not math.isfinite(v))
    weights = all(p.dtype == torch.float32 for p in model.parameters())
    ok = bool(values) and not bad and weights
    note = "nothing logged" if not values else (f"not finite: {', '.join(bad)}" if bad else "")
    note = note or ("" if weights else "weights not float32")
    loss = next((values[k] for k in ("train/loss", "train/loss_epoch", "train/d_loss", "train/d_loss_epoch")
                 if k in values), None)  # fmt: skip
    return {"family": family, "precision": precision, "ok": ok, "steps": trainer.global_step, "seconds": seconds,
            "loss": loss, "note": note}  # fmt: skip


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| family | precision | finite | optimizer steps | train loss | seconds | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        loss = "-" if r.get("loss") is None else f"{r['loss']:.4g}"
        secs = "-" if r.get("seconds") is None else f"{r['seconds']:.2f}"
        lines.append(f"| `{r['family']}` | {r['precision']} | {'yes' if r['ok'] else 'NO'} | {r.get('steps', '-')} "
                     f"| {loss} | {secs} | {r['note']} |")  # fmt: skip
    return lines


# ---------------------------------------------------------------------------------------------- throughput
#: widths of the throughput models (``--tiny``: their smoke widths); ``image_shape`` and ``num_levels`` added
FULL = {"vae": {"latent_dim": 64, "hidden_channels": 64}, "dcgan": {"latent_dim": 100, "width": 64},
        "ddpm": {"channels": 64, "timesteps": 1000}}  # fmt: skip


def throughput_model(family: str, size: int, tiny: bool) -> pl.LightningModule:
    pl.seed_everything(0, verbose=False)
    cls = MODELS.get(family)
    widths = dict(cls.smoke_kwargs) if tiny else FULL.get(family, {})
    linked = {"image_shape": (3, size, size), "num_levels": 256, "num_classes": 0}
    params = inspect.signature(cls.__init__).parameters
    return create_model(family, **widths, **{k: v for k, v in linked.items() if k in params})


def synthetic_loader(size: int, batch: int, batches: int) -> DataLoader:
    """``batches`` batches of random 8-bit 3 x size x size images in [0, 1] (labels 0)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (batch * batches, 3, size, size), generator=g).float() / 255
    return DataLoader(TensorDataset(x, torch.zeros(len(x), dtype=torch.long)), batch_size=batch, shuffle=False)


def plain_step(model: pl.LightningModule) -> Callable[[torch.Tensor], None]:
    """One training step of ``model``'s networks, losses and optimizers in plain PyTorch (what its
    ``training_step`` does, without Lightning and without logging)."""
    opts = model.configure_optimizers()
    if isinstance(opts, dict):  # DDPM: AdamW + a per-step warm-up scheduler, gradients clipped by norm
        opt, sched = opts["optimizer"], opts["lr_scheduler"]["scheduler"]

        def ddpm(x: torch.Tensor) -> None:
            loss = model.diffusion_loss(x)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if model.hparams.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), model.hparams.grad_clip)
            opt.step()
            sched.step()

        return ddpm
    if isinstance(opts, (list, tuple)):  # GANs: D on real and detached fakes, then G through D
        opt_g, opt_d = opts

        def gan(x: torch.Tensor) -> None:
            real, n = model.to_model_range(x), len(x)
            z, fake_y = model.sample_latent(n), model.fake_labels(n)
            fake = model.generate(z, fake_y)
            d_loss = sum(model.discriminator_terms(real, None, fake.detach(), fake_y, z).values())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            g_loss = sum(model.generator_terms(fake, fake_y, z).values())
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

        return gan

    def vae(x: torch.Tensor) -> None:
        nll, kl = model.elbo_terms(x)
        loss = (nll + model.hparams.get("beta", 1.0) * kl).mean()
        opts.zero_grad(set_to_none=True)
        loss.backward()
        opts.step()

    return vae


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


class StepClock(pl.Callback):
    """Wall-clock time of the training batches after the first ``warmup`` (the device synchronised)."""

    def __init__(self, warmup: int, device: str) -> None:
        self.warmup, self.device, self.began, self.seconds = warmup, device, 0.0, 0.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        if batch_idx == self.warmup:
            _sync(self.device)
            self.began = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        _sync(self.device)
        self.seconds = time.perf_counter() - self.began


def images_per_second(family: str, size: int, runner: str, backend: str | None, args: argparse.Namespace,
                      root: Path) -> float:  # fmt: skip
    """Images/s of ``runner`` (``genlight``: ``Trainer.fit``; ``plain``: :func:`plain_step`) over
    ``args.timed`` steps after ``args.warmup``; ``backend``: torch.compile's, ``None`` = uncompiled."""
    model = throughput_model(family, size, args.tiny)
    loader = synthetic_loader(size, args.batch, args.warmup + args.timed)
    if runner == "genlight":
        clock = StepClock(args.warmup, args.device)
        callbacks: list[pl.Callback] = [clock, *([Compile(backend=backend)] if backend else [])]
        trainer = cpu_trainer(str(root), accelerator="gpu" if args.device == "cuda" else "cpu", max_epochs=1,
                              limit_val_batches=0, callbacks=callbacks)  # fmt: skip
        trainer.fit(model, train_dataloaders=loader)
        return args.timed * args.batch / clock.seconds
    model = model.to(args.device).train()
    if backend:
        compile_networks(model, backend, device=torch.device(args.device))
    step = plain_step(model)
    for i, (x, _) in enumerate(loader):
        if i == args.warmup:
            _sync(args.device)
            began = time.perf_counter()
        step(x.to(args.device, non_blocking=True))
    _sync(args.device)
    return args.timed * args.batch / (time.perf_counter() - began)


def throughput(args: argparse.Namespace, root: Path, started: float) -> list[dict[str, Any]]:
    """The rows of part 2: family, size, compile, images/s plain and genlight (or why not measured)."""
    backend = args.compile_backend or ("inductor" if args.device == "cuda" else "eager")
    rows = []
    for family in args.throughput_families:
        for size in (32, 64):
            for compiled in (None, backend):
                row: dict[str, Any] = {"family": family, "size": size, "compile": compiled or "off"}
                if compiled and time.perf_counter() - started > args.budget - 90:
                    rows.append({**row, "note": f"skipped: past the {args.budget} s budget"})
                    continue
                try:
                    for runner in ("plain", "genlight"):
                        row[runner] = images_per_second(family, size, runner, compiled, args, root / f"{family}{size}")
                    row["note"] = ""
                except Exception as err:  # noqa: BLE001 - a failure is a row of the table
                    row["note"] = f"{type(err).__name__}: {err}"[:160]
                rows.append(row)
    return rows


def throughput_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| family | image | torch.compile | plain loop img/s | genlight + Trainer img/s | genlight / plain | note |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        plain, ours = r.get("plain"), r.get("genlight")
        ratio = f"{ours / plain:.2f}" if plain and ours else "-"
        lines.append(f"| `{r['family']}` | 3x{r['size']}x{r['size']} | {r['compile']} | "
                     f"{'-' if plain is None else f'{plain:.4g}'} | {'-' if ours is None else f'{ours:.4g}'} | {ratio} "
                     f"| {r['note']} |")  # fmt: skip
    return lines


# ---------------------------------------------------------------------------------------------- FID
def fid_on(device: str, samples: torch.Tensor, real: torch.Tensor) -> float:
    """FID of ``samples`` against ``real`` with the ``digits`` extractor, everything on ``device``."""
    extractor = create_extractor("digits").to(device)
    reference = FrechetDistance(extractor.num_features).to(device)
    reference.update(extractor(real.to(device))[0])
    fid = FrechetDistance(extractor.num_features).to(device)
    fid.set_reference(*reference.statistics())
    fid.update(extractor(samples.to(device))[0])
    return float(fid.compute())


def fid_check(device: str, tiny: bool) -> dict[str, Any]:
    """Part 3: the FID of the same DCGAN samples and digits images on the CPU and on ``device``."""
    pl.seed_everything(0, verbose=False)
    model = create_model("dcgan", **MODELS.get("dcgan").smoke_kwargs, image_shape=(1, 8, 8)).eval()
    n = 100 if tiny else 1000
    with torch.no_grad():
        samples = model.sample(n)
    dm = DigitsDataModule(batch_size=n)
    dm.setup("fit")
    real = next(iter(dm.train_dataloader()))[0]
    cpu, other = fid_on("cpu", samples, real), fid_on(device, samples, real)
    gap = abs(cpu - other) / max(abs(cpu), 1e-12)
    return {"n": n, "cpu": cpu, "device": other, "gap": gap, "ok": gap <= 1e-3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="one batch of each loop per family and precision")
    parser.add_argument("--steps", type=int, default=20, help="training batches per family and precision")
    parser.add_argument("--families", nargs="*", default=None, help="registered names (default: all)")
    parser.add_argument("--throughput-families", nargs="*", default=["vae", "dcgan", "ddpm"])
    parser.add_argument("--batch", type=int, default=None, help="throughput batch (default 128; --tiny 4)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed throughput steps (default 5; --tiny 1)")
    parser.add_argument("--timed", type=int, default=None, help="timed throughput steps (default 30; --tiny 2)")
    parser.add_argument("--compile-backend", default=None, help="default: inductor on CUDA, eager on the CPU")
    parser.add_argument("--budget", type=float, default=480.0, help="seconds; later compiled rows are skipped")
    parser.add_argument("--note", default="", help="a line written under the title of the results file")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    args.batch = args.batch or (4 if args.tiny else 128)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.tiny else 5)
    args.timed = args.timed or (2 if args.tiny else 30)
    torch.set_num_threads(args.threads)  # more threads than free cores spin and slow a small CPU run down
    started = time.perf_counter()

    head = ["# GPU check: every family in every precision, speed against a plain loop, torch.compile, FID on the device",
            "", f"Command: `{command()}`  ", f"Commit: {commit(dirty=True)}"]  # fmt: skip
    head += [f"\n{args.note}"] if args.note else []
    if args.device == "cuda" and not torch.cuda.is_available():
        write_lines(args.out, [*head, "", "**No figures: no CUDA device was available where this ran.** On a machine "
                               "with a GPU, run `python benchmarks/gpu_check.py` (`make bench` does) to "
                               "fill this file. The CPU path of the same check (`--device cpu --tiny`) runs in the "
                               "test suite (`tests/test_gpu_check.py`)."])  # fmt: skip
        print(f"no CUDA device: wrote {args.out} without figures")
        return
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    families = args.families or MODELS.list()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in families:
            for precision in precisions(args.device):
                rows.append(check(family, precision, args.device, args.steps, args.tiny, Path(tmp) / family))
        speed = throughput(args, Path(tmp) / "throughput", started)
    fid = fid_check(args.device, args.tiny)
    budget = "one batch of each loop (--tiny)" if args.tiny else f"{args.steps} training batches"
    failed = [f"{r['family']} ({r['precision']})" for r in rows if not r["ok"]]
    failed += [f"throughput {r['family']} {r['size']} compile {r['compile']}" for r in speed
               if r["note"] and not r["note"].startswith("skipped")]  # fmt: skip
    failed += [] if fid["ok"] else ["FID device vs CPU"]
    seconds = time.perf_counter() - started
    widths = "each family's smoke_kwargs" if args.tiny else ", ".join(f"{k} {v}" for k, v in FULL.items())
    write_lines(args.out, [
        *head, f"Device: {device_name}; {seconds:.0f} s in all.", "",
        f"## 1. Every family in every precision\n\n{budget} per family and precision, smoke settings.", "",
        *table(rows), "",
        f"## 2. Images/s: genlight + Trainer against a plain PyTorch loop\n\nBatch {args.batch}, "
        f"{args.warmup} untimed steps then {args.timed} timed, 32-true, random 8-bit images; widths: {widths}.", "",
        *throughput_table(speed), "",
        f"## 3. FID on the device = FID on the CPU\n\n{fid['n']} DCGAN samples against {fid['n']} digits train "
        f"images, `digits` extractor: CPU {fid['cpu']:.6f}, {args.device} {fid['device']:.6f}, relative gap "
        f"{fid['gap']:.2e} ({'equal' if fid['ok'] else 'NOT equal'} to 1e-3).", "",
        f"Failed: {', '.join(failed) or 'none'}.",
    ])  # fmt: skip
    print(f"{len(failed)} failures; wrote {args.out} in {seconds:.0f} s")
    if failed:
        raise SystemExit(f"not finite or failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
