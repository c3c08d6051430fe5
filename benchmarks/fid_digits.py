"""Sample quality on the 8x8 digits: FID and KID (digits CNN extractor shipped with genlight) of 1000
samples against the train split and against the held-out test split, with the real-vs-real floor.

Train a family within a wall-clock budget and add its rows (DDPM: DDIM-50 and ancestral; EBM):

    PYTHONPATH=. python benchmarks/fid_digits.py train ddpm --budget 600 --threads 2
    PYTHONPATH=. python benchmarks/fid_digits.py train ebm --budget 600 --threads 2

Add a row for any trained checkpoint (one line; e.g. the VAE / CVAE rows of the other families):

    PYTHONPATH=. python benchmarks/fid_digits.py add vae runs/vae/version_0/checkpoints/best.ckpt --note "40 epochs"

Rows are kept in ``benchmarks/results/fid_digits.json`` (one entry per row name, replaced when re-run)
and rendered to ``benchmarks/results/fid_digits.md`` with the protocol. Protocol: digits datamodule
(seed 0 split: 1294 train / 144 val / 359 test), the checkpoint chosen on validation (the family's
``checkpoint_monitor()``, else the last one), EMA weights where the family trains with EMA, 1000
samples drawn with seed 0, KID with 100 subsets of 1000 (capped at the sample count).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("WANDB_MODE", "offline")

import lightning.pytorch as pl  # noqa: E402
import torch  # noqa: E402
from lightning.pytorch.callbacks import ModelCheckpoint  # noqa: E402

from genlight import create_datamodule, create_model, get_model_class, load_model  # noqa: E402
from genlight.callbacks.data import ordered_loader  # noqa: E402
from genlight.callbacks.ema import EMA  # noqa: E402
from genlight.cli import LINKED_ATTRIBUTES  # noqa: E402
from genlight.metrics import (  # noqa: E402
    FrechetDistance, KernelDistance, create_extractor, memorisation, nearest_neighbour_distances,
)  # fmt: skip
from genlight.metrics.functional import frechet_distance  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
JSON, MD = RESULTS / "fid_digits.json", RESULTS / "fid_digits.md"
NUM_SAMPLES = 1000

#: the tuned recipes (what `train <family>` runs); `--set key=value` overrides for tuning runs.
#: ddpm: FID 1.27 vs train after 2500 steps (DDIM-50, EMA), ~120 CPU ms per step on 1 thread; an 8x8-only
#: U-Net is cheaper per step but worse per CPU second (benchmarks/results/tune_ddpm.md). Train it on 1 thread.
RECIPES: dict[str, dict[str, Any]] = {
    "ddpm": {
        "model": {"channels": 32, "timesteps": 250, "schedule": "cosine", "lr": 2e-3, "warmup_steps": 100,
                  "bound_timesteps": 10},
        "ema": 0.999,
        "batch_size": 64,
        "val_every": 15,
        "rows": {"ddpm (DDIM-50, EMA)": {"steps": 50}, "ddpm (ancestral, all 250 steps, EMA)": {"sampler": "ancestral"}},
    },
    "ebm": {
        "model": {"channels": 32, "langevin_steps": 20},
        "ema": 0.0,
        "batch_size": 64,
        "val_every": 20,
        "rows": {"ebm (replay buffer + 20 Langevin steps)": {}},
    },
}


def all_images(dataset: Any) -> torch.Tensor:
    return torch.cat([batch[0] for batch in ordered_loader(dataset, 500)])


class Scorer:
    """FID / KID of image sets against the digits train and test splits (reference features once)."""

    def __init__(self) -> None:
        self.dm = create_datamodule("digits")
        self.dm.setup("fit")
        self.extractor = create_extractor("digits")
        self.reference = {s: self.features(all_images(self.dm.reference_dataset(s))) for s in ("train", "test")}
        self._train_loo: torch.Tensor | None = None

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.extractor(chunk)[0] for chunk in images.split(500)]).double()

    def score(self, images: torch.Tensor) -> dict[str, float]:
        feats, out = self.features(images), {}
        for split, ref in self.reference.items():
            stats = []
            for f in (feats, ref):
                m = FrechetDistance(f.shape[1])
                m.update(f)
                stats.append(m.statistics())
            out[f"fid_{split}"] = float(frechet_distance(*stats[0], *stats[1]))
            kid = KernelDistance(subsets=100, subset_size=min(1000, len(feats), len(ref)))
            kid.set_reference(ref)
            kid.update(feats)
            out[f"kid_{split}"] = float(kid.compute()[0])
        out["mem_q10"] = self.memorisation(feats)
        return out

    def memorisation(self, feats: torch.Tensor, q: float = 0.1) -> float:
        """:func:`genlight.metrics.memorisation` against the train features (share of samples nearer to a
        train image than the q-quantile of train-to-train leave-one-out distances; fresh data scores ~q)."""
        train = self.reference["train"]
        if self._train_loo is None:
            self._train_loo, _ = nearest_neighbour_distances(train, train, exclude_self=True)
        return memorisation(feats, train, q, train_distances=self._train_loo).fraction

    def floor(self) -> dict[str, float]:
        return self.score(all_images(self.dm.reference_dataset("test")))


def draw(model: torch.nn.Module, n: int, seed: int = 0, chunk: int = 500, **kwargs: Any) -> tuple[torch.Tensor, float]:
    """``n`` seeded samples (eval mode, no grad) and the seconds per 1000 images."""
    model.eval()
    torch.manual_seed(seed)
    start, out = time.perf_counter(), []
    with torch.no_grad():
        for i in range(0, n, chunk):
            out.append(model.sample(min(chunk, n - i), **kwargs))
    return torch.cat(out), (time.perf_counter() - start) * 1000 / n


def train(
    family: str, recipe: dict[str, Any], budget: float, seed: int, root: str, steps: int | None = None,
    keep: str | None = None,
) -> tuple[pl.LightningModule, dict]:
    """Fit on digits for ``budget`` seconds of wall clock (or ``steps`` optimizer steps); return the
    checkpoint chosen on validation."""
    pl.seed_everything(seed, verbose=False)
    dm = create_datamodule("digits", batch_size=recipe["batch_size"], seed=0)
    linked = {k: getattr(dm, k) for k in LINKED_ATTRIBUTES if k in inspect.signature(get_model_class(family)).parameters}
    model = create_model(family, **linked, **recipe["model"])  # what the CLI links from the datamodule
    monitor = model.checkpoint_monitor()
    ckpt = ModelCheckpoint(dirpath=root, monitor=monitor[0] if monitor else None, mode=monitor[1] if monitor else "min",
                           save_last=True, filename="best")  # fmt: skip
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        max_time=None if steps else {"seconds": budget}, max_steps=steps or -1, max_epochs=100000, check_val_every_n_epoch=recipe["val_every"],
        callbacks=[EMA(decay=recipe["ema"]), ckpt], default_root_dir=root, **model.smoke_trainer,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    final = str(Path(root) / "final.ckpt")
    trainer.save_checkpoint(final)  # EMA weights in state_dict
    chosen, score = final, None
    if monitor:  # the final weights are a candidate too: validate them (EMA swapped in) and keep the better
        score = float(trainer.validate(model, datamodule=dm, verbose=False)[0][monitor[0]])
        best = float(ckpt.best_model_score) if ckpt.best_model_score is not None else float("inf")
        better = score < best if monitor[1] == "min" else score > best
        chosen, score = (final, score) if better else (ckpt.best_model_path, best)
    info = {
        "train_seconds": round(seconds, 1),
        "steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "checkpoint": (f"{'final' if chosen == final else 'best periodic'} by {monitor[0]} ({score:.4f})" if monitor else "last"),
        "params": sum(p.numel() for p in model.parameters()),
    }
    if keep:
        Path(keep).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(chosen, keep)
    best = load_model(chosen)
    return best, info


def load_rows() -> dict[str, dict]:
    return json.loads(JSON.read_text()) if JSON.is_file() else {}


def save_rows(rows: dict[str, dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    JSON.write_text(json.dumps(rows, indent=1) + "\n")
    render(rows)


def commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True).strip()
    except Exception:  # noqa: BLE001
        return "?"


def render(rows: dict[str, dict]) -> None:
    floor = rows.get("_floor", {})
    lines = [
        "# Sample quality on digits (FID / KID, digits CNN extractor)",
        "",
        "Produced by `benchmarks/fid_digits.py` (see its docstring). Protocol: digits datamodule, seed-0 split "
        "(1294 train / 144 val / 359 test); every row is 1000 samples drawn with seed 0 from the checkpoint chosen on "
        "validation (the family's `checkpoint_monitor()`; `last` where the family has no validation figure), scored "
        "with the digits CNN extractor shipped with genlight (`genlight/assets/digits_cnn.pt`) against all train "
        "images and against all test images. KID: 100 subsets of 1000. Lower is better. Test data never selects "
        "anything. Timings are wall clock on the 2-core shared CPU machine (other jobs running), so they are "
        "indicative only.",
        "",
        f"Real-vs-real floor (all 359 test images vs train / vs test itself): FID vs train **{floor.get('fid_train', float('nan')):.3f}**, "
        f"KID vs train {floor.get('kid_train', float('nan')):.5f}; memorisation q=0.1 of the test images "
        f"{floor.get('mem_q10', float('nan')):.3f} (`genlight.metrics.memorisation`: share of samples nearer to a train "
        "image, in extractor features, than the 10% quantile of train-to-train leave-one-out distances; fresh data "
        "score about 0.1, copies 1; rows scored before this column show -).",
        "",
        "| model | FID train | FID test | KID train | KID test | mem q=0.1 | s / 1000 samples | train s (steps) | params | EMA | checkpoint | threads | commit | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        if name.startswith("_"):
            continue
        lines.append(
            f"| {name} | {r['fid_train']:.3f} | {r['fid_test']:.3f} | {r['kid_train']:.5f} | {r['kid_test']:.5f} | "
            f"{format(r['mem_q10'], '.3f') if 'mem_q10' in r else '-'} | "
            f"{r.get('sample_s_per_1000', float('nan')):.1f} | {r.get('train_seconds', '-')} ({r.get('steps', '-')}) | "
            f"{r.get('params', '-')} | {r.get('ema', '-')} | {r.get('checkpoint', '-')} | {r.get('threads', '-')} | "
            f"{r.get('commit', '-')} | {r.get('note', '')} |"
        )
    ddim = rows.get("ddpm (DDIM-50, EMA)")
    if ddim:
        met = "met" if ddim["fid_train"] <= 2.0 else "NOT met"
        lines += ["", f"Target (issue 11): DDPM, DDIM-50, EMA weights, FID <= 2.0 vs train (n = 1000) within a 10-minute "
                  f"budget on 2 cores: **{met}** ({ddim['fid_train']:.2f} after {ddim.get('steps', '?')} optimizer steps "
                  f"in {ddim.get('train_seconds', '?')} s). The budget is a matter of steps: the same recipe reaches 1.27 "
                  "after 2500 steps (benchmarks/results/tune_ddpm.md), which one thread of a quiet machine does in "
                  "about 5 minutes."]  # fmt: skip
    lines += [
        "",
        "Notes: the budget is wall-clock seconds of `Trainer.fit` (validation included) on the 2-core machine shared "
        "by ~6 engineers (load average about 20 during these runs), so the number of optimizer steps a budget buys "
        "varies several-fold from run to run; `steps` is what this run got. Runs use 1 intra-op thread: measured on "
        "this machine under that load, a small U-Net forward pass was 10-100x slower with 2 threads than with 1 "
        "(thread oversubscription), so 2 threads would have bought far fewer steps. The first DDPM run (commit 79a2dd2, "
        "762 steps) and the EBM run trained side by side at load ~20; the DDPM "
        "DDIM-50 row of commit d85a4f4 (4872 steps) ran alone at load 1.5-4.5 (`benchmarks/results/tune_ddpm.md`); "
        "both DDPM rows sample that checkpoint (the ancestral row re-scored at load 0.2-1). "
        "`checkpoint`: the periodic checkpoints (every 15 epochs) and the final weights are validated "
        "on the validation split (val/bpd_bound on 144 images, EMA weights) and the best is kept.",
        "",
        "Add a row for any checkpoint with one line: "
        "`PYTHONPATH=. python benchmarks/fid_digits.py add NAME path/to.ckpt --note '...'` "
        "(`--sample_kwargs '{\"steps\": 50}'` passes arguments to `sample`).",
    ]
    MD.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_train = sub.add_parser("train", help="train a family within a budget and add its rows")
    p_train.add_argument("family", choices=sorted(RECIPES))
    p_train.add_argument("--budget", type=float, default=600.0, help="training wall-clock seconds")
    p_train.add_argument("--threads", type=int, default=2)
    p_train.add_argument("--seed", type=int, default=0)
    p_train.add_argument("--steps", type=int, default=None, help="optimizer steps instead of a time budget (tuning)")
    p_train.add_argument("--set", nargs="*", default=[], help="model overrides key=value (tuning)")
    p_train.add_argument("--ema", type=float, default=None)
    p_train.add_argument("--batch_size", type=int, default=None)
    p_train.add_argument("--dry", action="store_true", help="print, do not write the results")
    p_train.add_argument("--rows", default=None, help="comma list of row names to evaluate (default all)")
    p_train.add_argument("--keep", default=None, help="copy the chosen checkpoint here (to score more rows with `add`)")
    p_add = sub.add_parser("add", help="add a row for a trained checkpoint")
    p_add.add_argument("name")
    p_add.add_argument("ckpt")
    p_add.add_argument("--threads", type=int, default=2)
    p_add.add_argument("--note", default="")
    p_add.add_argument("--sample_kwargs", default="{}", help="JSON keyword arguments of sample()")
    p_add.add_argument("--like", default=None, help="copy the training fields (time, steps, EMA, ...) of this row")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    code = commit()  # the code the run starts from

    scorer = Scorer()
    new = {"_floor": scorer.floor()}
    if args.cmd == "add":
        model = load_model(args.ckpt)
        images, per_1000 = draw(model, NUM_SAMPLES, **json.loads(args.sample_kwargs))
        base = {"checkpoint": args.ckpt, "note": args.note}
        if args.like:
            base = {k: v for k, v in load_rows()[args.like].items() if k not in ("fid_train", "fid_test", "kid_train", "kid_test", "sample_s_per_1000")}
            base["note"] = f"{base.get('note', '')}; {args.note}".strip("; ")
        row = {**base, **scorer.score(images), "sample_s_per_1000": per_1000, "threads": args.threads, "commit": code,
               "params": sum(p.numel() for p in model.parameters())}  # fmt: skip
        new[args.name] = row
        save_rows({**load_rows(), **new})  # re-read: another process may have added rows meanwhile
        print(json.dumps(row))
        return

    recipe = json.loads(json.dumps(RECIPES[args.family]))
    for item in args.set:
        key, value = item.split("=", 1)
        recipe["model"][key] = json.loads(value)
    if args.ema is not None:
        recipe["ema"] = args.ema
    if args.batch_size is not None:
        recipe["batch_size"] = args.batch_size
    with tempfile.TemporaryDirectory(prefix=f"fid_{args.family}_") as root:
        model, info = train(args.family, recipe, args.budget, args.seed, root, args.steps, args.keep)
    wanted = args.rows.split(",") if args.rows else list(recipe["rows"])
    for name, kwargs in recipe["rows"].items():
        if not any(w in name for w in wanted):
            continue
        images, per_1000 = draw(model, NUM_SAMPLES, **kwargs)
        row = {**scorer.score(images), "sample_s_per_1000": per_1000, **info, "ema": recipe["ema"] or "no",
               "threads": args.threads, "commit": code, "budget_s": args.budget,
               "note": f"batch {recipe['batch_size']}, {json.dumps(recipe['model'])}, "
                       + (f"{args.steps} steps" if args.steps else f"budget {args.budget:.0f} s")}  # fmt: skip
        print(name, json.dumps(row), flush=True)
        new[name] = row
    if not args.dry:
        save_rows({**load_rows(), **new})  # re-read: another process may have added rows meanwhile


if __name__ == "__main__":
    main()
