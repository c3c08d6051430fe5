"""The trainings behind ``benchmarks/uses_digits.py``: one checkpoint per (family, variant), cached.

    PYTHONPATH=. python benchmarks/uses_train.py --budget 150 --threads 1 --jobs 2          # every missing one
    PYTHONPATH=. python benchmarks/uses_train.py one nade main --budget 150 --threads 1     # one, in this process

Variants (each ``examples/digits/<family>.yaml`` plus a wall-clock budget, ``--trainer.max_time``):

- ``main``: the digits train split (seed 0), every registered family whose example trains on ``digits``.
- ``background``: the same recipe on inputs with a fraction ``MU`` of pixels replaced by uniform random
  levels (fresh each epoch), at a shorter budget: the background model of the likelihood ratio
  (Ren et al. 2019, arXiv 1906.02845), with L2 weight decay ``1e-4`` where the family takes
  ``weight_decay``; chosen on perturbed validation data. Only for :data:`BACKGROUND_FAMILIES` (the cheapest density families).
- ``holdout``: train and val splits without class :data:`HELD_OUT_CLASS`, for the held-out-class outlier
  set. Only for :data:`HOLDOUT_FAMILIES` (a subset: it would double the budget).

The checkpoint is chosen on validation (``model.checkpoint_monitor()``: ``val/bpd``, ``val/bpd_bound`` or
``val/loss``); families without a validation figure (GANs, EBM) keep their final weights. The
recipe's own FID / reconstruction / traversal / sample-grid callbacks are dropped (they spend budget and
change nothing). Checkpoints land in ``runs/bench/uses/<family>/<variant>.ckpt`` with a ``.json`` beside
it; an existing pair is never retrained, so a rerun trains only what is missing (e.g. families
registered later).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
from torch.utils.data import Subset  # noqa: E402

from benchmarks.common import ROOT  # noqa: E402
from genlight import list_models, load_model  # noqa: E402
from genlight.evaluation import perturb  # noqa: E402

CACHE = ROOT / "runs" / "bench" / "uses"
VARIANTS = ("main", "background", "holdout")
#: the class left out of the ``holdout`` trainings (the held-out-class outlier set)
HELD_OUT_CLASS = 9
#: share of pixels the background model sees replaced by uniform random levels (Ren et al. use 0.1-0.3)
MU = 0.2
#: the families that get a background model (the cheapest density families)
BACKGROUND_FAMILIES = ("nade", "pixelcnn", "realnvp", "vae")
#: the families trained a second time without the held-out class
HOLDOUT_FAMILIES = ("nade", "pixelcnn", "glow", "vae", "ae", "dcgan", "ebm", "cnn_classifier")
#: L2 weight decay of the background model (Ren et al. 2019), for the families that take ``weight_decay``
BACKGROUND_WEIGHT_DECAY = 1e-4
#: the background budget, as a share of the main one
BACKGROUND_SHARE = 0.5
#: callbacks of the example recipes that spend budget without changing the weights
DROPPED_CALLBACKS = ("FIDCallback", "Reconstructions", "LatentInterpolation", "CodeTraversal", "TranslationGrid")


def config_of(family: str) -> Path:
    return ROOT / "examples" / "digits" / f"{family}.yaml"


def trains_on_digits(family: str) -> str | None:
    """``None`` when ``family``'s example trains on ``digits``, else why it has no row."""
    path = config_of(family)
    if not path.is_file():
        return f"no example config examples/digits/{family}.yaml"
    text = path.read_text()
    if "genlight.datamodules.digits.DigitsDataModule" not in text and "data: digits" not in text:
        data = [ln.strip() for ln in text.splitlines() if "datamodules" in ln or ln.strip().startswith("data:")]
        return f"its example trains on other data ({data[0] if data else '?'}), not the digits splits"
    return None


def wanted(variant: str) -> list[str]:
    """The registered families that get a ``variant`` checkpoint."""
    families = [f for f in list_models() if trains_on_digits(f) is None]
    if variant == "background":
        return [f for f in families if f in BACKGROUND_FAMILIES]
    if variant == "holdout":
        return [f for f in families if f in HOLDOUT_FAMILIES]
    return families


def checkpoint_path(family: str, variant: str, cache: Path = CACHE) -> Path:
    return cache / family / f"{variant}.ckpt"


def load(family: str, variant: str, cache: Path = CACHE) -> tuple[torch.nn.Module, dict] | None:
    """The cached model (eval mode, EMA weights where the recipe uses EMA) and its training record."""
    path = checkpoint_path(family, variant, cache)
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return None
    return load_model(path), json.loads(meta.read_text())


class Perturbed(torch.utils.data.Dataset):
    """``dataset`` with :func:`perturb` applied to every image read (a fresh draw each read)."""

    def __init__(self, dataset: torch.utils.data.Dataset, mu: float, num_levels: int) -> None:
        self.dataset, self.mu, self.num_levels = dataset, mu, num_levels

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple:
        x, *rest = self.dataset[index]
        return (perturb(x, self.mu, self.num_levels), *rest)


def without_class(dataset: torch.utils.data.Dataset, label: int) -> Subset:
    keep = [i for i in range(len(dataset)) if int(dataset[i][1]) != label]  # type: ignore[arg-type]
    return Subset(dataset, keep)


def train_one(family: str, variant: str, budget: float, cache: Path = CACHE) -> dict:
    """Train ``family``'s ``variant`` for ``budget`` seconds of wall clock; write the checkpoint and record."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from genlight.cli import GenlightCLI

    seconds = max(1, int(budget * (BACKGROUND_SHARE if variant == "background" else 1.0)))
    out = checkpoint_path(family, variant, cache)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "-c", str(config_of(family)),
            f"--trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
            "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp}", "--samples.every_n_epochs=0",
        ]  # fmt: skip
        cli = GenlightCLI(args=args, run=False)
        decay = float(cli.model.hparams.get("weight_decay", -1.0))
        if variant == "background" and 0.0 <= decay < BACKGROUND_WEIGHT_DECAY:  # Ren et al.'s L2, where the family takes it
            cli = GenlightCLI(args=[*args, f"--model.weight_decay={BACKGROUND_WEIGHT_DECAY}"], run=False)
        model, dm, trainer = cli.model, cli.datamodule, cli.trainer
        trainer.callbacks[:] = [c for c in trainer.callbacks if type(c).__name__ not in DROPPED_CALLBACKS]
        dm.setup("fit")
        if variant == "holdout":
            dm.train_set = without_class(dm.train_set, HELD_OUT_CLASS)
            dm.val_set = without_class(dm.val_set, HELD_OUT_CLASS)
            dm._plain_train_set = dm.train_set  # what reference grids read
        elif variant == "background":
            dm.train_set = Perturbed(dm.train_set, MU, dm.num_levels)
            dm.val_set = Perturbed(dm.val_set, MU, dm.num_levels)  # selected on perturbed validation data
        monitor = model.checkpoint_monitor()
        best = ModelCheckpoint(
            dirpath=Path(tmp) / "best", filename="best", save_top_k=1,
            monitor=monitor[0] if monitor else None, mode=monitor[1] if monitor else "min",
        )  # fmt: skip
        trainer.callbacks.append(best)
        start = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        train_s = time.perf_counter() - start
        path = best.best_model_path or best.last_model_path
        if not path:
            raise RuntimeError(f"{family}/{variant}: no checkpoint written in {seconds} s (no epoch completed)")
        epoch = torch.load(path, map_location="cpu", weights_only=False)["epoch"]
        shutil.copyfile(path, out)
    record = {
        "family": family,
        "variant": variant,
        "budget_s": seconds,
        "train_s": round(train_s, 1),
        "epochs": f"{epoch + 1} / {trainer.current_epoch}",
        "selection": f"best {monitor[0]} on validation ({float(best.best_model_score):.4f})" if monitor and best.best_model_score is not None else "final weights (no validation figure)",
        "train_images": len(dm.train_set),
        "weight_decay": float(model.hparams.get("weight_decay", 0.0)),
        "load_avg": os.getloadavg(),
        "threads": torch.get_num_threads(),
    }
    out.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return record


def missing(cache: Path = CACHE, only: set[str] | None = None, variants: tuple[str, ...] = VARIANTS) -> list[tuple[str, str]]:
    todo = []
    for variant in variants:
        for family in wanted(variant):
            if only and family not in only:
                continue
            if not checkpoint_path(family, variant, cache).with_suffix(".json").is_file():
                todo.append((family, variant))
    return todo


def train_missing(budget: float, threads: int, jobs: int, cache: Path = CACHE, only: set[str] | None = None,
                  variants: tuple[str, ...] = VARIANTS, log: Path | None = None) -> list[tuple[str, str]]:  # fmt: skip
    """Train every missing (family, variant), ``jobs`` child processes at a time; the pairs that failed."""
    todo = missing(cache, only, variants)
    running: list[tuple[tuple[str, str], subprocess.Popen]] = []
    failed = []
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}

    def reap(block: bool) -> None:
        while running and (block or len(running) >= jobs):
            for item in list(running):
                if item[1].poll() is not None:
                    running.remove(item)
                    if item[1].returncode != 0:
                        failed.append(item[0])
                    print(f"[uses_train] done {item[0]} rc={item[1].returncode}", flush=True)
            if running and (block or len(running) >= jobs):
                time.sleep(2)

    for pair in todo:
        reap(block=False)
        cmd = [sys.executable, __file__, "one", *pair, "--budget", str(budget), "--threads", str(threads), "--cache", str(cache)]
        print(f"[uses_train] start {pair}", flush=True)
        stream = open(log, "a") if log else None  # noqa: SIM115 (closed with the process)
        running.append((pair, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT if stream else None)))
    reap(block=True)
    return failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="*", help="empty: every missing checkpoint; `one FAMILY VARIANT`: one training here")
    parser.add_argument("--budget", type=float, default=150.0, help="wall-clock seconds per main training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--only", default="", help="comma-separated families")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.what[:1] == ["one"]:
        family, variant = args.what[1:3]
        torch.manual_seed(0)
        print(json.dumps(train_one(family, variant, args.budget, args.cache)), flush=True)
        return
    only = {s for s in args.only.split(",") if s}
    failed = train_missing(args.budget, args.threads, args.jobs, args.cache, only, tuple(args.variants.split(",")))
    print(f"[uses_train] failed: {failed}" if failed else "[uses_train] all trained", flush=True)


if __name__ == "__main__":
    main()
