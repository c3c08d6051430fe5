"""Validation-only tuning runs for the digits likelihood recipes (never looks at test data).

    PYTHONPATH=. python benchmarks/tune_digits.py nade examples/digits/nade.yaml --minutes 3 --model.init_args.dropout=0.2

Prints one line: the family, the overrides, best validation bits/dim, its epoch, time. Single thread
by default, so several runs can share the machine.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks.likelihood_digits import Row, train_family


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("family")
    parser.add_argument("config")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    args, overrides = parser.parse_known_args()  # the rest: CLI overrides, e.g. --model.init_args.lr=0.002
    args.overrides = [o for o in overrides if o != "--"]
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        r = train_family(Row(args.family, args.family, args.config, args.overrides), args.minutes, Path(tmp), test=False)
    print(
        f"TUNE {args.family} {' '.join(args.overrides) or '(config)'} | val {r.get('val_bpd', float('nan')):.4f} "
        f"| epochs {r.get('epochs')} | {r.get('train_s', 0):.0f}s | params {r.get('params')} | threads {args.threads}",
        flush=True,
    )


if __name__ == "__main__":
    main()
