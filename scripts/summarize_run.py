"""Print what a run left behind: validation metrics per epoch, sample grids, checkpoints, W&B folder.

    python scripts/summarize_run.py runs/vae            # the newest version_N under it
    python scripts/summarize_run.py runs/vae/version_3
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def newest_version(path: Path) -> Path:
    if (path / "metrics.csv").exists():
        return path
    versions = sorted(path.glob("version_*"), key=lambda p: int(p.name.split("_")[-1]))
    if not versions:
        raise SystemExit(f"no runs under {path}; train first, e.g. `make demo`")
    return versions[-1]


def validation_rows(metrics_csv: Path) -> list[dict[str, str]]:
    with open(metrics_csv) as f:
        return [row for row in csv.DictReader(f) if any(k.startswith("val/") and row[k] for k in row)]


def main(argv: list[str]) -> int:
    run = newest_version(Path(argv[0] if argv else "runs/vae"))
    rows = validation_rows(run / "metrics.csv")
    keys = [k for k in rows[0] if k.startswith("val/")] if rows else []
    print(f"run: {run}")
    print("epoch " + " ".join(f"{k:>16}" for k in keys))
    for row in rows:
        print(f"{row['epoch']:>5} " + " ".join(f"{float(row[k]):16.4f}" if row[k] else " " * 16 for k in keys))
    if len(rows) > 1:
        for key in keys:
            values = [float(row[key]) for row in rows if row[key]]  # e.g. FID is logged every few epochs
            if len(values) < 2:
                continue
            first, last = values[0], values[-1]
            print(f"{key}: {first:.4f} -> {last:.4f} ({'fell' if last < first else 'rose'})")
    newest: dict[str, Path] = {}  # the last grid of each kind (samples, reconstructions, ...)
    for png in sorted((run / "images").glob("*.png")):
        newest[png.name.split("_epoch")[0]] = png
    print("image grids (newest of each kind):", *map(str, newest.values()), sep="\n  ")
    print("checkpoints:", *sorted(str(p) for p in (run / "checkpoints").glob("*.ckpt")), sep="\n  ")
    wandb_runs = sorted(run.parent.parent.glob("wandb/offline-run-*"))
    if wandb_runs:
        print(f"W&B offline run: {wandb_runs[-1]}  (upload with `wandb sync {wandb_runs[-1]}`)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
