"""Tuning runs of ``cgan`` on the 8x8 digits: a fixed number of epochs per configuration, one thread.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/tune_cgan.py base sn_adam05 ...   # named configs
    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/tune_cgan.py --list

Each run: digits datamodule (seed-0 split, batch 64), ``seed_everything(0)``, the family's EMA of the
generator (decay 0.999 with warm-up), ``max_epochs`` epochs on one CPU thread. Scored on the EMA
generator in eval mode (running batch-norm statistics): 1000 samples with class-balanced labels
``arange(1000) % 10`` (seed 0), FID / KID against all train images (digits CNN extractor,
:class:`benchmarks.fid_digits.Scorer`), and the class accuracy of the samples by the digits classifier
bundled with that extractor (its logits; chance 10%). Also FID every ``--eval_every`` epochs during the
run (on the EMA weights, same protocol) to see the curve. The test split is not used.

Rows are appended to ``benchmarks/results/tune_cgan.jsonl``; ``--render`` rewrites
``benchmarks/results/tune_cgan.md`` from them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402

from benchmarks.fid_digits import Scorer, all_images  # noqa: E402
from genlight import create_datamodule, create_model  # noqa: E402
from genlight.callbacks.ema import EMA, find_ema  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
JSONL, MD = RESULTS / "tune_cgan.jsonl", RESULTS / "tune_cgan.md"

BASE: dict[str, Any] = {"latent_dim": 64, "width": 64, "loss": "hinge", "n_critic": 1, "lr_g": 2e-4, "lr_d": 2e-4,
                        "betas": (0.0, 0.9)}  # fmt: skip
#: name -> (model overrides, epochs, batch size)
CONFIGS: dict[str, tuple[dict[str, Any], int, int]] = {
    "base": ({}, 40, 64),
    "b05": ({"betas": (0.5, 0.999)}, 40, 64),
    "ncrit2": ({"n_critic": 2}, 40, 64),
    "lr1e3": ({"lr_g": 1e-3, "lr_d": 1e-3}, 40, 64),
    "lr5e4": ({"lr_g": 5e-4, "lr_d": 5e-4}, 40, 64),
    "ttur": ({"lr_g": 1e-4, "lr_d": 4e-4}, 40, 64),
    "ns": ({"loss": "non_saturating"}, 40, 64),
    "w32": ({"width": 32}, 40, 64),
    "w128": ({"width": 128}, 40, 64),
    "extra1": ({"extra_layers": 1}, 40, 64),
    "bs32": ({}, 40, 32),
    "lr2e3": ({"lr_g": 2e-3, "lr_d": 2e-3}, 40, 64),
    "lr1e3_b05": ({"lr_g": 1e-3, "lr_d": 1e-3, "betas": (0.5, 0.999)}, 40, 64),
    "lr1e3_nc2": ({"lr_g": 1e-3, "lr_d": 1e-3, "n_critic": 2}, 40, 64),
    "lr1e3_w32": ({"lr_g": 1e-3, "lr_d": 1e-3, "width": 32}, 40, 64),
    "lr1e3_ns": ({"lr_g": 1e-3, "lr_d": 1e-3, "loss": "non_saturating"}, 40, 64),
    "lr2e3_e25": ({"lr_g": 2e-3, "lr_d": 2e-3}, 25, 64),
    "lr2e3_nc2": ({"lr_g": 2e-3, "lr_d": 2e-3, "n_critic": 2}, 40, 64),
    "lr4e3": ({"lr_g": 4e-3, "lr_d": 4e-3}, 40, 64),
    "lr2e3_w32": ({"lr_g": 2e-3, "lr_d": 2e-3, "width": 32}, 40, 64),
    "lr2e3_w32_e80": ({"lr_g": 2e-3, "lr_d": 2e-3, "width": 32}, 80, 64),
    "lr4e3_w32_e80": ({"lr_g": 4e-3, "lr_d": 4e-3, "width": 32}, 80, 64),
}


class Curve(pl.Callback):
    """FID vs train (EMA weights) every ``every`` epochs."""

    def __init__(self, scorer: Scorer, every: int) -> None:
        self.scorer, self.every, self.points, self.seconds = scorer, every, [], 0.0

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        if self.every and epoch % self.every == 0 and epoch < trainer.max_epochs:
            ema, start = find_ema(pl_module), time.perf_counter()
            state = torch.random.get_rng_state()
            with ema.averaged(pl_module):
                s = evaluate(pl_module, self.scorer)
            torch.random.set_rng_state(state)
            pl_module.train()
            self.points.append((epoch, round(s["fid_train"], 3), round(s["accuracy"], 3)))
            self.seconds += time.perf_counter() - start


def evaluate(model: pl.LightningModule, scorer: Scorer, n: int = 1000) -> dict[str, float]:
    """FID/KID vs train and class accuracy of ``n`` class-balanced samples (seed 0, eval mode)."""
    model.eval()
    torch.manual_seed(0)
    y = torch.arange(n) % model.num_classes
    with torch.no_grad():
        images = model.sample(n, y=y)
        logits = torch.cat([scorer.extractor(c)[1] for c in images.split(500)])
    out = scorer.score(images)
    out["accuracy"] = float((logits.argmax(1) == y).float().mean())
    out["nn_ratio"] = nearest_neighbour_ratio(images, scorer)
    return {k: v for k, v in out.items() if not k.endswith("_test")}


def nearest_neighbour_ratio(images: torch.Tensor, scorer: Scorer) -> float:
    """A memorisation check: median pixel-space L2 distance from each sample to its nearest train image,
    divided by the same median for the (held-out) validation images. About 1 for a model that generalises
    like fresh data; well below 1 when samples copy training images."""
    train = all_images(scorer.dm.reference_dataset("train")).flatten(1)
    val = all_images(scorer.dm.reference_dataset("val")).flatten(1)
    nearest = lambda a: torch.cdist(a.flatten(1).double(), train.double()).min(1).values.median()  # noqa: E731
    return float(nearest(images) / nearest(val))


def run(name: str, scorer: Scorer, eval_every: int, epochs: int | None, seed: int = 0) -> dict[str, Any]:
    overrides, default_epochs, batch_size = CONFIGS[name]
    epochs = epochs or default_epochs
    pl.seed_everything(seed, verbose=False)
    dm = create_datamodule("digits", batch_size=batch_size, seed=0)  # the split is always seed 0
    dm.setup("fit")
    model = create_model("cgan", image_shape=dm.image_shape, num_classes=dm.num_classes, **{**BASE, **overrides})
    curve = Curve(scorer, eval_every)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        enable_checkpointing=False, max_epochs=epochs, num_sanity_val_steps=0, limit_val_batches=0,
        callbacks=[EMA(), curve],
    )  # fmt: skip
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start - curve.seconds  # training only, not the curve's evaluations
    with find_ema(model).averaged(model):
        scores = evaluate(model, scorer)
    batches = epochs * len(dm.train_dataloader())
    return {
        "name": name, "seed": seed, "config": {**BASE, **overrides, "batch_size": batch_size}, "epochs": epochs,
        "batches": batches, "optimizer_steps": trainer.global_step, "train_s": round(seconds, 1),
        "batches_per_s": round(batches / seconds, 2), "load_avg_1min": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        **{k: round(v, 4) for k, v in scores.items()}, "curve": curve.points, "threads": torch.get_num_threads(),
    }  # fmt: skip


def render() -> None:
    rows = [json.loads(line) for line in JSONL.read_text().splitlines() if line.strip()]
    lines = [
        "# cgan tuning on digits",
        "",
        "Produced by `benchmarks/tune_cgan.py` (protocol in its docstring): fixed epochs, batch 64 unless stated, "
        "1 CPU thread (`OMP_NUM_THREADS=1`, `torch.set_num_threads(1)`) on the shared 2-core machine, seed 0. "
        "Scores on the EMA generator (decay 0.999, warm-up) in eval mode: 1000 samples with labels `arange(1000) % 10`, "
        "FID / KID vs all 1294 train images with the digits CNN extractor, accuracy = the bundled digits "
        "classifier's argmax equals the requested label (chance 0.10). Real test-vs-train FID floor: 1.24. "
        "A batch is one D step (+ one G step every `n_critic` batches). `load` is the 1-min load average "
        "before / after the run. Curve: (epoch, FID train, accuracy) during the run. "
        "NN ratio (memorisation check, later runs only): median L2 distance from a sample to its nearest train image "
        "over the same median for the 144 validation images (about 1: no copying; well below 1: copies).",
        "",
        "| run | changes vs base | epochs | batches/s | train s | FID train | KID train | accuracy | NN ratio | load | curve |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        changes = {k: v for k, v in r["config"].items() if k in BASE and BASE[k] != (tuple(v) if isinstance(v, list) else v)}
        if r["config"].get("batch_size", 64) != 64:
            changes["batch_size"] = r["config"]["batch_size"]
        curve = ", ".join(f"{e}: {f:.2f}/{a:.2f}" for e, f, a in r["curve"])
        seed = f" (seed {r['seed']})" if r.get("seed", 0) else ""
        lines.append(
            f"| {r['name']}{seed} | {json.dumps(changes) if changes else '-'} | {r['epochs']} | {r['batches_per_s']} | "
            f"{r['train_s']} | {r['fid_train']:.3f} | {r['kid_train']:.5f} | {r['accuracy']:.3f} | {r.get('nn_ratio', '-')} | "
            f"{r['load_avg_1min'][0]} / {r['load_avg_1min'][1]} | {curve} |"
        )
    base = ", ".join(f"{k}={v}" for k, v in BASE.items())
    lines += ["", f"Base: `{base}`, batch 64.", ""]
    notes = RESULTS / "tune_cgan_notes.md"
    if notes.is_file():
        lines += [notes.read_text()]
    MD.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("configs", nargs="*")
    parser.add_argument("--epochs", type=int, default=None, help="override the configs' epochs")
    parser.add_argument("--eval_every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="training seed (the data split is always seed 0)")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--render", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, (overrides, epochs, bs) in CONFIGS.items():
            print(name, overrides, epochs, bs)
        return
    torch.set_num_threads(1)
    if args.configs:
        scorer = Scorer()
        RESULTS.mkdir(parents=True, exist_ok=True)
        for name in args.configs:
            row = run(name, scorer, args.eval_every, args.epochs, args.seed)
            print(json.dumps(row), flush=True)
            with JSONL.open("a") as f:
                f.write(json.dumps(row) + "\n")
    if args.render or args.configs:
        render()


if __name__ == "__main__":
    main()
