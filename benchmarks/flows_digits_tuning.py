"""Tuning runs for the flow families on digits: one configuration per call, a fixed wall-clock budget.

Protocol: digits datamodule (seeded split: 1294 train / 144 val / 359 test, seed 0), one CPU thread
(``torch.set_num_threads(1)``, so several runs share the 2 cores), training for ``--max-minutes``;
the checkpoint with the best ``val/bpd_bound`` is chosen (never the test split), and its test bits/dim
(a dequantisation bound, one noise draw per image; ``--test-draws`` averages several) is reported.
Each run appends one line to ``benchmarks/results/flows_digits_tuning.md``.

    PYTHONPATH=. python benchmarks/flows_digits_tuning.py --model glow --kwargs '{"depth": 8}' --max-minutes 4
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from genlight import create_datamodule, create_model, load_model
from genlight.callbacks.ema import EMA


class PrintValidation(pl.Callback):
    """One line per epoch: epoch, seconds since the start, validation bits/dim."""

    def __init__(self) -> None:
        self.start = time.time()
        self.curve: list[float] = []

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        value = trainer.callback_metrics.get("val/bpd_bound")
        if value is not None:
            self.curve.append(float(value))
            print(f"epoch {trainer.current_epoch} {time.time() - self.start:.0f}s val {float(value):.4f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--kwargs", default="{}")
    parser.add_argument("--max-minutes", type=float, default=4.0)
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--ema", type=float, default=None, help="EMA decay (default: the family's)")
    parser.add_argument("--clip", type=float, default=None, help="gradient-norm clip")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--test-draws", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="")
    parser.add_argument("--out", default="benchmarks/results/flows_digits_tuning.md")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    pl.seed_everything(args.seed)
    dm = create_datamodule("digits", batch_size=args.batch_size)
    kwargs = json.loads(args.kwargs)
    model = create_model(args.model, image_shape=dm.image_shape, num_levels=dm.num_levels, **kwargs)
    params = sum(p.numel() for p in model.parameters())
    root = Path("runs/tuning") / f"{args.model}-{int(time.time())}"
    ckpt = ModelCheckpoint(dirpath=root, monitor="val/bpd_bound", mode="min", save_last=False)
    printer = PrintValidation()
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        max_epochs=args.max_epochs, max_time={"minutes": args.max_minutes}, gradient_clip_val=args.clip,
        callbacks=[ckpt, EMA(decay=args.ema), printer], default_root_dir=str(root), num_sanity_val_steps=0,
    )  # fmt: skip
    start = time.time()
    trainer.fit(model, datamodule=dm)
    seconds = time.time() - start
    best = load_model(ckpt.best_model_path)
    dm.setup("test")
    best.eval()
    torch.manual_seed(123)
    with torch.no_grad():
        total = 0.0
        for _ in range(args.test_draws):
            for x, _ in dm.test_dataloader():
                total += -best.log_prob(x).double().sum().item()
        n = len(dm.test_set) * args.test_draws
    test_bpd = total / (n * best.num_dims * math.log(2))
    best_val = float(ckpt.best_model_score)
    epoch = int(torch.load(ckpt.best_model_path, weights_only=False)["epoch"])
    curve = " ".join(f"{v:.3f}" for v in printer.curve)
    line = (
        f"| {args.model} | `{json.dumps(kwargs)}` bs={args.batch_size} ema={args.ema} clip={args.clip} {args.tag} "
        f"| {params} | {trainer.current_epoch} ep / {seconds:.0f}s | {epoch} | {best_val:.4f} | {test_bpd:.4f} | {curve} |"
    )
    print(line)
    with open(args.out, "a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
