"""One-command precision check: every registered family fits N steps in each precision, losses finite.

    PYTHONPATH=. python benchmarks/gpu_check.py                       # on a GPU: 32-true, bf16-mixed, 16-mixed
    PYTHONPATH=. python benchmarks/gpu_check.py --device cpu --tiny --out /tmp/gpu.md   # the CPU path (tests)

Each family is built with its own smoke settings on its smoke data (the bundled digits, or small
synthetic files written to a temporary folder: no download) and fitted for ``--steps`` training
batches (``--tiny``: one batch of each loop) under Lightning's ``32-true`` and ``bf16-mixed``, and on
CUDA also ``16-mixed`` (Lightning's ``GradScaler``; the manual-optimisation families scale through
``manual_backward``). A row passes when every logged value is finite and the weights stay float32.
Writes ``benchmarks/results/gpu.md`` (``--out``). Without CUDA and without ``--device cpu``, it writes
only that no GPU was available, with the command that produces the figures.

Not here yet (see docs/scaling.md): images/s of genlight + Trainer against a plain PyTorch loop,
``torch.compile``, FID on GPU against CPU.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

from benchmarks.common import RESULTS, command, commit, write_lines
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="one batch of each loop per family and precision")
    parser.add_argument("--steps", type=int, default=20, help="training batches per family and precision")
    parser.add_argument("--families", nargs="*", default=None, help="registered names (default: all)")
    parser.add_argument("--note", default="", help="a line written under the title of the results file")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)  # more threads than free cores spin and slow a small CPU run down

    head = ["# GPU check: every family in every precision", "", f"Command: `{command()}`  ", f"Commit: {commit(dirty=True)}"]
    head += [f"\n{args.note}"] if args.note else []
    if args.device == "cuda" and not torch.cuda.is_available():
        write_lines(args.out, [*head, "", "**No figures: no CUDA device was available where this ran.** On a machine "
                               "with a GPU, run `PYTHONPATH=. python benchmarks/gpu_check.py` (`make bench` does) to "
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
    budget = "one batch of each loop (--tiny)" if args.tiny else f"{args.steps} training batches"
    failed = [f"{r['family']} ({r['precision']})" for r in rows if not r["ok"]]
    write_lines(args.out, [*head, f"Device: {device_name}; {budget} per family and precision, smoke settings.", "",
                           *table(rows), "", f"Failed: {', '.join(failed) or 'none'}."])  # fmt: skip
    print(f"{len(rows) - len(failed)}/{len(rows)} passed; wrote {args.out}")
    if failed:
        raise SystemExit(f"not finite or failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
