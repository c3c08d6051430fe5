"""DDPM's variational bound on the digits test split, in bits/dim (an upper bound on the exact NLL).

    python benchmarks/ddpm_bound_digits.py CKPT [--terms 250] [--threads 1]
    python benchmarks/ddpm_bound_digits.py CKPT --terms 2 --out /tmp/bound.md   # smoke run

Evaluates ``L_T + Σ_{t=2..T} L_{t-1} + L_0`` (Ho et al. eq. 5, discretised Gaussian decoder over the
17 levels) of every test image, with all ``T - 1`` KL terms (``--terms >= T - 1``) or that many
strata of timesteps (an unbiased estimate; see ``genlight/modules/ddpm.py``), one draw of ``x_t`` per
term, seed 0, and appends the result to ``benchmarks/results/ddpm_bound_digits.md``. The checkpoint
is the one ``fid_digits.py train ddpm --keep`` kept (chosen on validation, EMA weights); ``make bench``
runs ``COMMAND`` after that.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS
from genlight import create_datamodule, load_model
from genlight.callbacks.data import ordered_loader

OUT = RESULTS / "ddpm_bound_digits.md"
#: what `make bench` runs (the checkpoint: `fid_digits.py train ddpm --keep runs/bench/ddpm_fid.ckpt`)
COMMAND = "python benchmarks/ddpm_bound_digits.py runs/bench/ddpm_fid.ckpt --note 'fid_digits timed DDPM, all terms'"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("ckpt")
    parser.add_argument("--terms", type=int, default=10**9, help="strata of KL terms (default: all T - 1)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--note", default="")
    parser.add_argument("--out", type=Path, default=OUT, help="the table to append the row to")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.ckpt).eval()
    dm = create_datamodule("digits")
    dm.setup("test")
    generator = torch.Generator().manual_seed(0)
    start, totals, parts = time.perf_counter(), [], {"prior": 0.0, "kl": 0.0, "decoder": 0.0}
    with torch.no_grad():
        for x, _ in ordered_loader(dm.test_set, 512):
            terms = model.bound_terms(x, num_terms=args.terms, generator=generator)
            totals.append(terms["total"])
            for k in parts:
                parts[k] += float(terms[k].sum())
    total = torch.cat(totals)
    n, dims = len(total), model.num_dims
    bpd = float(total.mean()) / (dims * math.log(2))
    se = float(total.std()) / math.sqrt(n) / (dims * math.log(2))
    T = model.hparams.timesteps
    terms = "all" if args.terms >= T - 1 else f"{args.terms} strata of"
    line = (
        f"| {Path(args.ckpt).name} | {bpd:.4f} ± {se:.4f} | {parts['prior'] / n / (dims * math.log(2)):.4f} | "
        f"{parts['kl'] / n / (dims * math.log(2)):.4f} | {parts['decoder'] / n / (dims * math.log(2)):.4f} | "
        f"{terms} {T - 1} KL terms | {n} | {time.perf_counter() - start:.0f} | {args.note} |"
    )
    if not args.out.is_file():
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(
            "# DDPM variational bound on the digits test split (bits/dim, upper bound on the NLL)\n\n"
            f"Command (`make bench`): `{COMMAND}`.\n\n"
            "Produced by `benchmarks/ddpm_bound_digits.py` (see its docstring): every test image, seed 0, "
            "one draw of x_t per term; ± is the standard error over images. Uniform over 17 levels is "
            f"log2(17) = {math.log2(17):.3f} bits/dim.\n\n"
            "| checkpoint | bound (bpd) | L_T | Σ KL | L_0 (decoder) | terms | test images | seconds | note |\n"
            "|---|---|---|---|---|---|---|---|---|\n"
        )
    with args.out.open("a") as f:
        f.write(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
