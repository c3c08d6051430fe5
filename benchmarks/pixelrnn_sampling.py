"""Sampling speed of the PixelRNNs on digits (1x8x8, 17 levels) with their example configs.

    python benchmarks/pixelrnn_sampling.py --n 1000 --threads 1
    python benchmarks/pixelrnn_sampling.py --n 5 --out /tmp/pixelrnn_sampling.md   # smoke run

Speed does not depend on the weights, so the models are untrained. Each draw is the whole batch at
once under ``inference_mode`` with the incremental samplers (one pixel column per sub-pixel step);
the naive scheme (one full forward pass per sub-pixel, ``C*H*W`` passes) is timed beside it, on
``min(n, 100)`` samples. Wall time depends on the machine's load; process CPU time is reported too.
Writes ``benchmarks/results/pixelrnn_sampling.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, ROOT, command, write_lines
from genlight import create_model

OUT = RESULTS / "pixelrnn_sampling.md"
FAMILIES = ("pixelrnn_row", "pixelrnn_diag")


def naive_sample(model: torch.nn.Module, n: int) -> torch.Tensor:
    """One full forward pass per sub-pixel (what the incremental samplers avoid)."""
    c, h, w = model.shape
    levels = model.hparams.num_levels
    x = torch.zeros(n, c, h, w)
    with torch.inference_mode():
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    logits = model(x).view(n, c, levels, h, w)[:, ch, :, i, j]
                    x[:, ch, i, j] = torch.multinomial(logits.softmax(-1), 1)[:, 0].float() / (levels - 1)
    return x


def measure(family: str, n: int) -> str:
    """The table row of ``family``: incremental samples/s (wall), CPU s per 1000, naive samples/s."""
    args = yaml.safe_load((ROOT / "examples" / "digits" / f"{family}.yaml").read_text())["model"]["init_args"]
    model = create_model(family, **args).eval()
    torch.manual_seed(0)
    start, cpu = time.perf_counter(), time.process_time()
    samples = model.sample(n)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    assert samples.shape == (n, 1, 8, 8)
    m = min(n, 100)
    start = time.perf_counter()
    naive_sample(model, m)
    naive = (time.perf_counter() - start) * n / m
    label = f"{family} (h{args['hidden_channels']}, {args['num_layers']} layers)"
    return f"| {label} | {n / wall:.0f} | {cpu * 1000 / n:.2f} | {n / naive:.0f} sample/s |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for family in FAMILIES:
        rows.append(measure(family, args.n))
        print(rows[-1], flush=True)
    write_lines(args.out, [
        "# PixelRNN sampling speed on digits (example configs, untrained weights)",
        "",
        f"`{command()}`: {args.n} samples drawn in one batch under `inference_mode`, "
        f"torch.set_num_threads({args.threads}); the naive scheme timed on {min(args.n, 100)} samples and scaled.",
        "",
        "| family | samples/s (wall, loaded machine) | CPU s per 1000 samples | naive scheme (a full forward per sub-pixel) |",
        "|---|---|---|---|",
        *rows,
        "",
        "The samplers run one pixel column per sub-pixel step: the Row LSTM carries (h, c) row by row, and the Diagonal "
        "BiLSTM runs its mirrored direction once per finished row.",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
