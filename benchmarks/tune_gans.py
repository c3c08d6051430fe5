"""Tuning runs of the adversarial families (``gan``, ``dcgan``, ``wgan_gp``) on the 8x8 digits.

One run trains one configuration for a fixed number of epochs on 1 thread (the machine is shared, so
a fixed amount of work is comparable across runs and wall clock is not) and scores the EMA generator
(eval mode, 1000 samples drawn with seed 0) with the digits-CNN FID against the train split and the
test split at the epochs given by ``--eval``. Only FID vs train is ever used to choose; FID vs test
is reported, never selected on. Training seconds exclude the scoring; steps/s converts a result to
the 5-minute budget of the issue.

    PYTHONPATH=. python benchmarks/tune_gans.py dcgan --name base --epochs 60 --eval 20,40,60 \
        --set width=64 latent_dim=64 --ema 0.999 --batch_size 64

Each scored point is appended to ``benchmarks/results/tune_gans.jsonl``; ``--render`` rewrites
``benchmarks/results/tune_gans.md`` from it. ``--bn_train`` also scores samples drawn with the
generator's batch norm in train mode (batch statistics), to see what eval-mode running stats cost.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from benchmarks.fid_digits import NUM_SAMPLES, Scorer, commit  # noqa: E402
from genlight import create_datamodule, create_model  # noqa: E402
from genlight.callbacks.base import evaluating  # noqa: E402
from genlight.callbacks.ema import EMA  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
JSONL, MD = RESULTS / "tune_gans.jsonl", RESULTS / "tune_gans.md"


class Probe(pl.Callback):
    """Scores the (EMA) generator at the end of the chosen epochs; keeps the scoring time out of the
    training time."""

    def __init__(self, scorer: Scorer, epochs: set[int], row: dict[str, Any], bn_train: bool) -> None:
        self.scorer, self.epochs, self.row, self.bn_train = scorer, epochs, row, bn_train
        self.eval_seconds, self.start = 0.0, 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if epoch not in self.epochs:
            return
        t0 = time.perf_counter()
        seconds = t0 - self.start - self.eval_seconds
        emas = [c for c in trainer.callbacks if isinstance(c, EMA)]
        for ema in emas + [None]:  # every averaged generator, then the live one
            with evaluating(pl_module, seed=0), (ema.averaged(pl_module) if ema is not None else nullcontext()):
                if ema is None and emas and emas[0].active:
                    emas[0].swap(pl_module)  # evaluating() swapped the first average in: undo it for the live weights
                try:
                    images = torch.cat([pl_module.sample(500) for _ in range(NUM_SAMPLES // 500)])
                    frozen = copy.deepcopy(pl_module) if self.bn_train and ema is emas[0] else None
                finally:
                    if ema is None and emas and emas[0].active:
                        emas[0].swap(pl_module)
            scores = self.scorer.score(images)
            if frozen is not None:  # batch statistics instead of running statistics (a copy: train mode updates them)
                frozen.generator.train()
                with torch.random.fork_rng(), torch.no_grad():  # leave the training run's RNG stream alone
                    torch.manual_seed(0)
                    images = torch.cat([frozen.sample(500) for _ in range(NUM_SAMPLES // 500)])
                scores.update({f"bn_train_{k}": v for k, v in self.scorer.score(images).items() if k.startswith("fid")})
            point = {**self.row, "ema": ema.decay if ema is not None else "live", "epoch": epoch, "steps": trainer.global_step,
                     "train_s": round(seconds, 1), "steps_per_s": round(trainer.global_step / max(seconds, 1e-9), 2),
                     **{k: round(v, 4) for k, v in scores.items()}, "load": round(os.getloadavg()[0], 1)}  # fmt: skip
            print(json.dumps(point), flush=True)
            RESULTS.mkdir(parents=True, exist_ok=True)
            with JSONL.open("a") as f:
                f.write(json.dumps(point) + "\n")
        self.eval_seconds += time.perf_counter() - t0


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    model_kwargs = {}
    for item in args.set:
        key, value = item.split("=", 1)
        model_kwargs[key] = json.loads(value)
    pl.seed_everything(args.seed, verbose=False)
    dm = create_datamodule("digits", batch_size=args.batch_size, seed=0)
    model = create_model(args.family, image_shape=dm.image_shape, **model_kwargs)
    row = {"name": args.name, "family": args.family, "model": model_kwargs, "batch_size": args.batch_size, "ema": args.ema,
           "ema_warmup": not args.no_warmup, "seed": args.seed, "threads": args.threads, "commit": commit(),
           "params_g": sum(p.numel() for p in model.generator.parameters())}  # fmt: skip
    evals = {int(e) for e in args.eval.split(",")} if args.eval else {args.epochs}
    probe = Probe(Scorer(), evals, row, args.bn_train)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, max_epochs=args.epochs, limit_val_batches=0, num_sanity_val_steps=0,
        callbacks=[*(EMA(decay=float(d), warmup=not args.no_warmup) for d in str(args.ema).split(",")), probe],
    )  # fmt: skip
    trainer.fit(model, datamodule=dm)


def render() -> None:
    points = [json.loads(line) for line in JSONL.read_text().splitlines() if line.strip()] if JSONL.is_file() else []
    lines = [
        "# Tuning the adversarial families on digits",
        "",
        "Produced by `benchmarks/tune_gans.py` (see its docstring). Protocol: digits datamodule (seed-0 split, 1294 "
        "train images), a fixed number of epochs per run on **1 thread** (`torch.set_num_threads(1)`, "
        "`OMP_NUM_THREADS=1`), seed 0; at the listed epochs the EMA generator (eval mode) draws 1000 samples with "
        "seed 0, scored with the digits CNN extractor: FID vs all train images (used to choose) and vs all test "
        "images (reported only, never used to choose). Real floor (test vs train): FID 1.24. `steps` are optimizer "
        "steps (G and D steps both count); `train s` is the wall clock of `fit` without the scoring, on the shared "
        "2-core machine (`load` = 1-minute load average at scoring time), so `steps/s` is indicative. "
        "`bn-train FID` (where measured): the same samples drawn with the generator's batch norm on batch "
        "statistics instead of running statistics.",
        "",
        "| run | family | model args | batch | EMA | epoch | steps | train s | steps/s | FID train | FID test | bn-train FID train | load | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        bn = p.get("bn_train_fid_train")
        lines.append(
            f"| {p['name']} | {p['family']} | `{json.dumps(p['model'])}` | {p['batch_size']} | {p['ema']} | {p['epoch']} | "
            f"{p['steps']} | {p['train_s']} | {p['steps_per_s']} | {p['fid_train']:.3f} | {p['fid_test']:.3f} | "
            f"{'-' if bn is None else f'{bn:.3f}'} | {p['load']} | {p['commit']} |"
        )
    notes = RESULTS / "tune_gans_notes.md"
    if notes.is_file():
        lines += ["", notes.read_text().rstrip()]
    MD.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("family", nargs="?", choices=["gan", "dcgan", "wgan_gp"])
    parser.add_argument("--name", default="run")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--eval", default="", help="comma list of epochs to score at (default: the last)")
    parser.add_argument("--set", nargs="*", default=[], help="model arguments key=json_value")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--ema", default="0.999", help="EMA decay(s), comma list: each is scored (first one = the EMA callback in use)")
    parser.add_argument("--no_warmup", action="store_true", help="EMA without warm-up (the decay from the first step)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bn_train", action="store_true", help="also score batch-statistics sampling")
    parser.add_argument("--render", action="store_true", help="only rewrite the Markdown table")
    args = parser.parse_args()
    if args.family:
        run(args)
    render()


if __name__ == "__main__":
    main()
