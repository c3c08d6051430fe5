"""Tune the adversarial autoencoder on the 8x8 digits: fixed epochs, one thread, one row per run.

    PYTHONPATH=. python benchmarks/tune_aae.py --epochs 60 --set latent_dim=8 --set lr_g=2e-4

Each row: the arguments, epochs, optimizer steps (3 per batch), train wall and process CPU seconds,
batches/s, ``val/loss`` (reconstruction NLL, nats/image) of the final weights, FID / KID vs the train
split of 1000 samples drawn with seed 0 (``benchmarks/fid_digits.py`` ``Scorer`` / ``draw``; digits CNN
extractor), and the prior-match statistic: the Gaussian-kernel MMD² (``gaussian_mmd``, median
bandwidth) between the codes (draws of q(z|x)) of all 1294 training images and 1294 prior draws (seed 0), at
initialisation and after training. Test data are never scored. Rows go to
``benchmarks/results/tune_aae.csv``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from benchmarks.fid_digits import Scorer, all_images, draw  # noqa: E402
from genlight import create_datamodule, create_model  # noqa: E402
from genlight.nn.latent_priors import gaussian_mmd  # noqa: E402

CSV = Path(__file__).resolve().parent / "results" / "tune_aae.csv"
FIELDS = ["args", "epochs", "steps", "wall_s", "cpu_s", "batches_per_s", "load1", "val_loss", "fid_train", "kid_train",
          "mmd_init", "mmd_trained", "note", "threads", "val_component_acc"]


@torch.no_grad()
def prior_match(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    torch.manual_seed(0)
    z = torch.cat([model.posterior_sample(chunk)[0] for chunk in images.split(500)])  # codes q(z|x) draws
    gen = torch.Generator().manual_seed(0)
    prior = model.prior.sample(len(z), labels if model.num_classes else None, generator=gen)
    return float(gaussian_mmd(z, prior))


def parse_value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--set", action="append", default=[], help="model argument key=value (JSON values)")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    torch.set_num_threads(1)
    kwargs = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    pl.seed_everything(0, verbose=False)
    dm = create_datamodule("digits", batch_size=args.batch_size, seed=0)
    dm.setup("fit")
    model = create_model("aae", image_shape=dm.image_shape, num_levels=dm.num_levels, num_classes=dm.num_classes, **kwargs)
    train = dm.reference_dataset("train")
    images = all_images(train)
    labels = torch.tensor([int(train[i][1]) for i in range(len(train))])
    mmd_init = prior_match(model, images, labels)
    model.train()
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, max_epochs=args.epochs, check_val_every_n_epoch=args.epochs, num_sanity_val_steps=0,
    )  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=dm)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    val = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    batches = trainer.global_step // 3
    scores = Scorer().score(draw(model, 1000)[0])
    row = {
        "args": json.dumps(kwargs, sort_keys=True),
        "epochs": args.epochs,
        "steps": trainer.global_step,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "batches_per_s": round(batches / wall, 2),
        "load1": round(os.getloadavg()[0], 1),
        "val_loss": round(val.get("val/loss", float("nan")), 3),
        "fid_train": round(scores["fid_train"], 3),
        "kid_train": round(scores["kid_train"], 5),
        "mmd_init": round(mmd_init, 5),
        "mmd_trained": round(prior_match(model, images, labels), 5),
        "note": args.note,
        "threads": torch.get_num_threads(),
    }
    if model.num_classes:  # supervised: how often a validation code is nearest its class's component
        x, y = (torch.cat(t) for t in zip(*dm.val_dataloader()))
        model.eval()
        with torch.no_grad():
            row["val_component_acc"] = round(float((model.prior.nearest_component(model.encode(x)) == y).float().mean()), 3)
    print(json.dumps(row))
    new = not CSV.is_file()
    with CSV.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(row)


if __name__ == "__main__":
    main()
