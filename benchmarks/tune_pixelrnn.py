"""Tuning runs for the PixelRNNs on digits (train 1294 / val 144 / test 359, split seed 0).

    PYTHONPATH=. python benchmarks/tune_pixelrnn.py pixelrnn_row '{"hidden_channels": 64}' --epochs 60 --ema 0.99

Trains with a time and epoch budget, keeps the checkpoint with the best ``val/bpd`` (EMA weights when
``--ema`` > 0), then reports its test bits/dim; test data never selects anything. One CSV line per run
is appended to ``benchmarks/results/tune_pixelrnn.csv``. ``--threads`` sets torch's intra-op threads;
``cpu_s`` is the process CPU time of the fit (wall time ``train_s`` depends on the machine's load).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from genlight import create_datamodule, create_model
from genlight.callbacks.ema import EMA


class _Progress(pl.Callback):
    """Prints ``epoch val/bpd seconds`` after every validation (the learning curve)."""

    def __init__(self) -> None:
        self.start = time.time()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            bpd = float(trainer.callback_metrics.get("val/bpd", float("nan")))
            cpu = time.process_time()
            print(f"epoch {trainer.current_epoch} val/bpd {bpd:.4f} {time.time() - self.start:.0f}s cpu {cpu:.0f}s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("family")
    parser.add_argument("model_kwargs", nargs="?", default="{}")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--minutes", type=float, default=6.0)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--ema", type=float, default=0.0)
    parser.add_argument("--clip", type=float, default=0.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="/tmp/tune_pixelrnn")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    pl.seed_everything(args.seed, verbose=False)
    kwargs = json.loads(args.model_kwargs)
    dm = create_datamodule("digits", batch_size=args.batch_size)
    model = create_model(args.family, **kwargs)
    ckpt = ModelCheckpoint(dirpath=f"{args.out}/{time.time_ns()}", monitor="val/bpd", mode="min", save_last=False)
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=args.epochs, max_time={"minutes": args.minutes}, logger=False,
        enable_progress_bar=False, enable_model_summary=False, callbacks=[EMA(decay=args.ema), ckpt, _Progress()],
        gradient_clip_val=args.clip or None,
    )  # fmt: skip
    start, cpu_start = time.time(), time.process_time()
    trainer.fit(model, datamodule=dm)
    train_s, cpu_s = time.time() - start, time.process_time() - cpu_start
    best_val = float(ckpt.best_model_score)
    test = trainer.test(model, datamodule=dm, ckpt_path="best", verbose=False)[0]["test/bpd"]
    best_epoch = int(Path(ckpt.best_model_path).stem.split("epoch=")[1].split("-")[0])
    params = sum(p.numel() for p in model.parameters())
    line = (
        f"{args.family},{json.dumps(kwargs).replace(',', ';')},bs={args.batch_size},ema={args.ema},clip={args.clip},"
        f"epochs_run={trainer.current_epoch},best_epoch={best_epoch},val_bpd={best_val:.4f},test_bpd={test:.4f},"
        f"train_s={train_s:.0f},cpu_s={cpu_s:.0f},threads={args.threads},params={params}"
    )
    print(line)
    results = Path(__file__).parent / "results" / "tune_pixelrnn.csv"
    with results.open("a") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    main()
