"""Likelihood-bound and FID rows of the VAE family on digits: VAE, beta_vae, cvae, VampPrior, MoG prior.

    PYTHONPATH=. python benchmarks/vae_rows.py                      # every row, then the table
    PYTHONPATH=. python benchmarks/vae_rows.py --rows vae cvae      # some rows (run them side by side)
    PYTHONPATH=. python benchmarks/vae_rows.py --rows vae --set lr=0.003 --tune   # validation only

Protocol, the same for every row: the digits datamodule (seeded split: 1294 train / 144 val / 359
test images of 1x8x8, 17 levels), batch 64, ``seed_everything(0)``, one CPU thread, a fixed number of
epochs (the budget, about 3 minutes at most), validation every epoch; the checkpoint with the best
``val/bpd_bound`` (the beta=1 ELBO, even for beta_vae) is the one evaluated, never chosen on test.
Test figures, in bits/dim (all upper bounds on -log2 p(x) / D): -ELBO (one z per image) and -IWAE with
k=100 (``log_prob(x, num_samples=100)``), seeded. cvae: with labels (a bound on -log p(x|y)) and
marginal (a bound on -log p(x), uniform class prior, logsumexp over the 10 classes). FID (VAE, CVAE):
:class:`genlight.callbacks.FIDCallback` with the digits extractor, 1000 seeded samples vs the train and
the test split. ``--tune`` runs only the validation part and appends to ``results/vae_tuning.md``.
Each row is saved in ``results/vae_rows.json``; the table ``results/vae_rows.md`` is rebuilt from it.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from genlight import create_datamodule, create_model
from genlight.functional import bits_per_dim
from genlight.callbacks import FIDCallback

RESULTS = Path(__file__).resolve().parent / "results"
JSON, TABLE, TUNING = RESULTS / "vae_rows.json", RESULTS / "vae_rows.md", RESULTS / "vae_tuning.md"

#: row name -> (registered family, model arguments, epochs). Tuned on validation (see vae_tuning.md).
ROWS: dict[str, tuple[str, dict[str, Any], int]] = {
    "vae": ("vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3}, 60),
    "beta_vae": ("beta_vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3, "beta": 4.0}, 100),
    "cvae": ("cvae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3}, 100),
    "vae_vamp": ("vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3, "prior": "vamp", "prior_components": 50}, 100),
    "vae_mog": ("vae", {"latent_dim": 16, "hidden_channels": 16, "lr": 3e-3, "prior": "mog", "prior_components": 10}, 100),
}
FID_ROWS = ("vae", "cvae")
IWAE_K = 100


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


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


def run_row(name: str, overrides: dict[str, Any], epochs: int | None, tune: bool) -> dict[str, Any]:
    family, kwargs, default_epochs = ROWS[name]
    kwargs = {**kwargs, **overrides}
    epochs = epochs or default_epochs
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    dm = create_datamodule("digits", batch_size=64)
    dm.setup("fit")
    linked = {"image_shape": dm.image_shape, "num_levels": dm.num_levels}
    if family == "cvae":
        linked["num_classes"] = dm.num_classes
    model = create_model(family, **linked, **kwargs)
    root = tempfile.mkdtemp(prefix=f"vae_rows_{name}_")
    monitor, mode = model.checkpoint_monitor()
    best = ModelCheckpoint(dirpath=root, monitor=monitor, mode=mode, save_top_k=1, filename="best")
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[best], default_root_dir=root,
    )  # fmt: skip
    start, cpu_start = time.perf_counter(), time.process_time()
    trainer.fit(model, datamodule=dm)
    train_s, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    model = type(model).load_from_checkpoint(best.best_model_path).eval()
    row: dict[str, Any] = {
        "row": name, "family": family, "kwargs": kwargs, "epochs": epochs, "train_s": round(train_s, 1), "cpu_s": round(cpu_s, 1),
        "best_epoch": int(torch.load(best.best_model_path, weights_only=False)["epoch"]),
        "val_bpd_bound": float(best.best_model_score), "params": sum(p.numel() for p in model.parameters()),
    }  # fmt: skip
    if tune:
        return row
    row.update(test_bounds(model, dm.test_dataloader(), labelled=family == "cvae"))
    if name in FID_ROWS:
        trainer.validate(model, datamodule=dm, verbose=False)  # attaches the datamodule for the reference split
        for split in ("train", "test"):
            fid = FIDCallback(num_samples=1000, every_n_epochs=0, reference_split=split, cache_dir=str(RESULTS.parent / ".fid_cache"))
            start = time.perf_counter()
            row[f"fid_{split}"] = fid.evaluate(trainer, model)["val/fid_digits"]
            row[f"fid_{split}_eval_s"] = round(time.perf_counter() - start, 2)  # sampling + features + FID
    return row


def _fmt(row: dict[str, Any], key: str) -> str:
    return f"{row[key]:.3f}" if key in row and row[key] is not None and math.isfinite(row[key]) else "-"


def write_table(rows: dict[str, dict[str, Any]]) -> str:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [
        "# VAE family on digits: test bounds in bits/dim (lower is better) and FID",
        "",
        f"`PYTHONPATH=. python benchmarks/vae_rows.py` at commit {commit or '?'} on {platform.machine()}, one CPU thread "
        f"per row (rows ran side by side on 2 cores shared with other jobs: CPU seconds are the comparable time, "
        f"wall seconds depend on the load), torch {torch.__version__}.",
        "Digits seeded split (1294 train / 144 val / 359 test, 1x8x8, 17 levels), batch 64, seed 0, Adam; the "
        "checkpoint with the best `val/bpd_bound` (beta=1 ELBO) is evaluated; test figures are bounds on "
        f"-log2 p(x)/D: -ELBO (1 sample) and -IWAE (k={IWAE_K}), seeded. cvae 'marginal' bounds -log p(x) with a "
        "uniform class prior (logsumexp over classes - log 10, still a bound); 'with labels' bounds -log p(x|y).",
        "FID: digits CNN extractor, 1000 seeded samples (FIDCallback) vs the train (1294) / test (359) split; "
        "real-vs-real floor train vs test 1.236 (benchmarks/results/fid_cost.md).",
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
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override model arguments")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--tune", action="store_true", help="validation only; append to results/vae_tuning.md")
    args = parser.parse_args()
    overrides = {k: _parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    for name in args.rows:
        row = run_row(name, overrides, args.epochs, args.tune)
        print(json.dumps(row))
        if args.tune:
            if not TUNING.exists():
                TUNING.write_text(
                    "# VAE rows: tuning on validation (digits, seed 0, batch 64, one thread per run)\n\n"
                    "| row | arguments | epochs | best epoch | train CPU s (wall s) | best val bpd_bound |\n|---|---|---|---|---|---|\n"
                )
            with TUNING.open("a") as f:
                f.write(
                    f"| {name} | {json.dumps(row['kwargs'])} | {row['epochs']} | {row['best_epoch'] + 1} | "
                    f"{row['cpu_s']:.0f} ({row['train_s']:.0f}) | {row['val_bpd_bound']:.4f} |\n"
                )
            continue
        with (Path(tempfile.gettempdir()) / "genlight_vae_rows.lock").open("w") as lock:  # rows run side by side share the file
            fcntl.flock(lock, fcntl.LOCK_EX)
            rows = json.loads(JSON.read_text()) if JSON.exists() else {}
            rows[name] = row
            JSON.write_text(json.dumps(rows, indent=1) + "\n")
            TABLE.write_text(write_table(rows))


if __name__ == "__main__":
    main()
