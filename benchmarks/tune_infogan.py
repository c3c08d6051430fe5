"""Tune InfoGAN on the 8x8 digits: fixed epochs, 1 thread, EMA of G; report FID/KID of 1000 samples vs
train (the digits CNN extractor, ``benchmarks/fid_digits.py``'s Scorer), Q's accuracy on fresh samples
and how well the categorical code matches digit class (the digits classifier's predictions).

    PYTHONPATH=. python benchmarks/tune_infogan.py --epochs 40 --set lr_g=1e-3 --name default

Each run appends one JSON line to ``benchmarks/results/tune_infogan.jsonl``. Nothing is selected on the
test split (the FID vs test is printed only as a reference; the choices use FID vs train).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from benchmarks.fid_digits import Scorer, draw  # noqa: E402
from genlight import create_datamodule, create_model  # noqa: E402
from genlight.callbacks.base import evaluating  # noqa: E402
from genlight.callbacks.ema import EMA  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "tune_infogan.jsonl"


def code_purity(model, classifier, per_value: int = 200, seed: int = 0) -> dict[str, float]:
    """Draw ``per_value`` samples for each value of the first categorical code; classify them. Returns the
    purity (share of samples in their code value's majority class), the one-to-one matched accuracy
    (Hungarian matching of code values to classes) and Q's accuracy on fresh samples."""
    from scipy.optimize import linear_sum_assignment

    k = model.categories[0]
    with evaluating(model, seed=seed):
        z = model.sample_latent(k * per_value)
        _, cats, cont = model.split_latent(z)
        cats[0] = torch.arange(k).repeat_interleave(per_value)
        z = model.make_latent(z[:, : model.noise_dim], cats, cont)
        images = model.decode(z)
        pred = classifier(images)[1].argmax(1)
        q_cats, _ = model.infer_codes(images)
    counts = torch.zeros(k, 10)
    counts.index_put_((cats[0], pred), torch.ones(len(pred)), accumulate=True)
    rows, cols = linear_sum_assignment(-counts.numpy())
    return {
        "purity": float(counts.max(1).values.sum() / counts.sum()),
        "matched_acc": float(counts[rows, cols].sum() / counts.sum()),
        "q_acc": float((q_cats[0] == cats[0]).float().mean()),
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=40)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="run")
    p.add_argument("--set", nargs="*", default=[], help="model arguments key=value (JSON values)")
    p.add_argument("--save", default=None, help="save the final checkpoint here")
    args = p.parse_args()
    torch.set_num_threads(1)
    overrides = {}
    for item in args.set:
        key, value = item.split("=", 1)
        try:
            overrides[key] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key] = value
    pl.seed_everything(args.seed, verbose=False)
    dm = create_datamodule("digits", batch_size=args.batch_size, seed=0)
    model = create_model("infogan", image_shape=dm.image_shape, **overrides)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, max_epochs=args.epochs, limit_val_batches=0, callbacks=[EMA(decay=args.ema)],
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    if args.save:
        trainer.save_checkpoint(args.save)
    scorer = Scorer()
    with evaluating(model):  # EMA weights swapped in
        images, ms_per_1000 = draw(model, 1000)
        scores = scorer.score(images)
        codes = code_purity(model, scorer.extractor)
    row = {
        "name": args.name, "overrides": overrides, "epochs": args.epochs, "batch_size": args.batch_size, "ema": args.ema,
        "seed": args.seed, "optimizer_steps": trainer.global_step, "batches": trainer.global_step // 2,
        "train_s": round(seconds, 1), "batches_per_s": round(trainer.global_step / 2 / seconds, 2),
        "load_avg": os.getloadavg()[0], **{k: round(v, 4) for k, v in scores.items()},
        **{k: round(v, 3) for k, v in codes.items()},
    }  # fmt: skip
    print(json.dumps(row))
    with OUT.open("a") as f:
        f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
