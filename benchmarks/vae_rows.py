"""Likelihood-bound and FID rows of the VAE family on digits: VAE, beta_vae, cvae, VampPrior, MoG prior.

    python benchmarks/vae_rows.py                      # every row, then the table
    python benchmarks/vae_rows.py --rows vae cvae      # some rows (run them side by side)
    python benchmarks/vae_rows.py --rows vae --epochs 1 --out /tmp/vae_rows   # smoke run

Protocol, the same for every row: the digits datamodule (seeded split: 1294 train / 144 val / 359
test images of 1x8x8, 17 levels), batch 64, ``seed_everything(0)``, one CPU thread, a fixed number of
epochs (the budget, about 3 minutes at most), validation every epoch; the checkpoint with the best
``val/bpd_bound`` (the beta=1 ELBO, even for beta_vae) is the one evaluated, never chosen on test.
Test figures, in bits/dim (all upper bounds on -log2 p(x) / D): -ELBO (one z per image) and -IWAE with
k=100 (``log_prob(x, num_samples=100)``), seeded. cvae: with labels (a bound on -log p(x|y)) and
marginal (a bound on -log p(x), uniform class prior, importance weights pooled over the 10 classes). FID (VAE, CVAE):
:class:`genlight.callbacks.FIDCallback` with the digits extractor, 1000 seeded samples vs the train and
the test split. Each row is saved in ``results/vae_rows.json``; the table ``results/vae_rows.md`` is
rebuilt from it. The arguments were tuned on the validation bound (``results/tuning.md``).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import (
    RESULTS, bits_per_dim, commit, linked_arguments, num_params, quiet_trainer, read_json, write_json, write_lines,
)  # fmt: skip
from genlight import create_datamodule, create_model, get_model_class
from genlight.callbacks import FIDCallback

#: what `make bench` runs
COMMAND = "python benchmarks/vae_rows.py"
#: row name -> (registered family, model arguments, epochs). Tuned on validation (see results/tuning.md).
ROWS: dict[str, tuple[str, dict[str, Any], int]] = {
    "vae": ("vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3}, 60),
    "beta_vae": ("beta_vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3, "beta": 4.0}, 100),
    "cvae": ("cvae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3}, 100),
    "vae_vamp": ("vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3, "prior": "vamp", "prior_components": 50}, 100),
    "vae_mog": ("vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3, "prior": "mog", "prior_components": 10}, 100),
}
FID_ROWS = ("vae", "cvae")
IWAE_K = 100


@torch.no_grad()
def test_bounds(model: pl.LightningModule, loader: Any, labelled: bool) -> dict[str, float]:
    """Test bits/dim of -ELBO and -IWAE(k=100), seeded; for a labelled model also with labels."""
    torch.manual_seed(1234)
    sums: dict[str, float] = {}
    n = 0
    for x, y in loader:
        figures = {"elbo": model.log_prob(x, num_samples=1), f"iwae{IWAE_K}": model.log_prob(x, num_samples=IWAE_K)}
        if labelled:
            figures["elbo_y"] = model.log_prob(x, y, num_samples=1)
            figures[f"iwae{IWAE_K}_y"] = model.log_prob(x, y, num_samples=IWAE_K)
        for key, lp in figures.items():
            sums[key] = sums.get(key, 0.0) + float(bits_per_dim(lp, model.num_dims).sum())
        n += len(x)
    return {key: total / n for key, total in sums.items()}


def run_row(name: str, epochs: int | None) -> dict[str, Any]:
    """Train row ``name`` (for ``epochs``, default the row's) and score its checkpoint chosen on validation."""
    family, kwargs, default_epochs = ROWS[name]
    epochs = epochs or default_epochs
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    dm = create_datamodule("digits", batch_size=64)
    dm.setup("fit")
    model = create_model(family, **linked_arguments(get_model_class(family), dm), **kwargs)
    root = tempfile.mkdtemp(prefix=f"vae_rows_{name}_")
    monitor, mode = model.checkpoint_monitor()
    best = ModelCheckpoint(dirpath=root, monitor=monitor, mode=mode, save_top_k=1, filename="best")
    trainer = quiet_trainer(root, epochs=epochs, callbacks=[best])
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=dm)
    train_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    model = type(model).load_from_checkpoint(best.best_model_path).eval()
    row: dict[str, Any] = {
        "row": name, "family": family, "kwargs": kwargs, "epochs": epochs, "train_s": round(train_s, 1), "cpu_s": round(cpu_s, 1),
        "commit": commit(),
        "best_epoch": int(torch.load(best.best_model_path, weights_only=False)["epoch"]),
        "val_bpd_bound": float(best.best_model_score), "params": num_params(model),
    }  # fmt: skip
    row.update(test_bounds(model, dm.test_dataloader(), labelled=family == "cvae"))
    if name in FID_ROWS:
        trainer.validate(model, datamodule=dm, verbose=False)  # attaches the datamodule for the reference split
        for split in ("train", "test"):
            fid = FIDCallback(num_samples=1000, every_n_epochs=0, reference_split=split,
                              cache_dir=str(RESULTS.parent / ".fid_cache"))  # fmt: skip
            start = time.perf_counter()
            row[f"fid_{split}"] = fid.evaluate(trainer, model)["val/fid_digits"]
            row[f"fid_{split}_eval_s"] = round(time.perf_counter() - start, 2)  # sampling + features + FID
    return row


def _fmt(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.3f}" if key in row and row[key] is not None and math.isfinite(row[key]) else "-"


def commits(rows: dict[str, dict[str, Any]]) -> str:
    """``commit X`` when every row ran at one commit, else ``commits X (rows a, b), Y (row c)``."""
    by_commit: dict[str, list[str]] = {}
    for name, r in rows.items():
        by_commit.setdefault(r.get("commit", "?"), []).append(name)
    if len(by_commit) == 1:
        return f"commit {next(iter(by_commit))}"
    return "commits " + ", ".join(f"{c} ({'rows' if len(v) > 1 else 'row'} {', '.join(v)})" for c, v in by_commit.items())


def write_table(rows: dict[str, dict[str, Any]], path: Path) -> None:
    lines = [
        "# VAE family on digits: test bounds in bits/dim (lower is better) and FID",
        "",
        f"`{COMMAND}` at {commits(rows)} on {platform.machine()}, one CPU thread "
        f"per row (rows ran side by side on 2 cores shared with other jobs: CPU seconds are the comparable time, "
        f"wall seconds depend on the load), torch {torch.__version__}.",
        "Digits seeded split (1294 train / 144 val / 359 test, 1x8x8, 17 levels), batch 64, seed 0, Adam; the "
        "checkpoint with the best `val/bpd_bound` (beta=1 ELBO) is evaluated; test figures are bounds on "
        f"-log2 p(x)/D: -ELBO (1 sample) and -IWAE (k={IWAE_K}), seeded. cvae 'marginal' bounds -log p(x) with a "
        "uniform class prior (importance weights pooled over classes and draws); 'with labels' bounds -log p(x|y).",
        "FID: digits CNN extractor, 1000 seeded samples (FIDCallback) vs the train (1294) / test (359) split; "
        "real-vs-real floor train vs test 1.236 (benchmarks/results/fid_cost.md) at n = 359: FID falls as n grows, so "
        "these n = 1000 figures are not comparable with it (benchmarks/results/fid_digits.md scores its rows at n = 359 too).",
        "",
        f"| row | family and arguments | epochs (best) | train CPU s (wall s) | params | val bpd_bound | test -ELBO | test -IWAE{IWAE_K} | FID train | FID test |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ROWS:
        if name not in rows:
            continue
        r = rows[name]
        args = ", ".join(f"{k}={v}" for k, v in r["kwargs"].items())
        label = f"{r['family']} ({args})"
        common = f"{r['epochs']} ({r['best_epoch'] + 1}) | {r.get('cpu_s', float('nan')):.0f} ({r['train_s']:.0f}) | {r['params']:,} | {r['val_bpd_bound']:.3f}"
        fids = f"{_fmt(r, 'fid_train')} | {_fmt(r, 'fid_test')}"
        if r["family"] == "cvae":
            lines.append(f"| {name} marginal | {label} | {common} | {_fmt(r, 'elbo')} | {_fmt(r, f'iwae{IWAE_K}')} | {fids} |")
            lines.append(f"| {name} with labels | {label} | {common} | {_fmt(r, 'elbo_y')} | {_fmt(r, f'iwae{IWAE_K}_y')} | | |")
        else:
            lines.append(f"| {name} | {label} | {common} | {_fmt(r, 'elbo')} | {_fmt(r, f'iwae{IWAE_K}')} | {fids} |")
    write_lines(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--epochs", type=int, default=None, help="epochs per row (default: the row's)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of vae_rows.{json,md}")
    args = parser.parse_args()
    for name in args.rows:
        row = run_row(name, args.epochs)
        print(json.dumps(row))
        with (Path(tempfile.gettempdir()) / "genlight_vae_rows.lock").open("w") as lock:  # rows run side by side share the file
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows = {**read_json(args.out / "vae_rows.json"), name: row}
            write_json(args.out / "vae_rows.json", rows)
            write_table(rows, args.out / "vae_rows.md")


if __name__ == "__main__":
    main()
