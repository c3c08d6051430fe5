"""Sampling speed of the PixelRNNs on digits (1x8x8, 17 levels) with their example configs.

    PYTHONPATH=. python benchmarks/pixelrnn_sampling.py --n 1000 --threads 1

Speed does not depend on the weights, so the models are untrained. Each draw is the whole batch at
once under ``inference_mode`` with the incremental samplers (one pixel column per sub-pixel step);
the naive scheme (one full forward pass per sub-pixel, ``C*H*W`` passes) is timed beside it, on
``min(n, 100)`` samples. Wall time depends on the machine's load; process CPU time is printed too.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from genlight import create_model

ROOT = Path(__file__).resolve().parent.parent


def naive_sample(model, n: int) -> torch.Tensor:
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for family in ("pixelrnn_row", "pixelrnn_diag"):
        config = yaml.safe_load((ROOT / "examples" / "digits" / f"{family}.yaml").read_text())
        model = create_model(family, **config["model"]["init_args"]).eval()
        torch.manual_seed(0)
        start, cpu = time.perf_counter(), time.process_time()
        samples = model.sample(args.n)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert samples.shape == (args.n, 1, 8, 8)
        m = min(args.n, 100)
        start = time.perf_counter()
        naive_sample(model, m)
        naive = (time.perf_counter() - start) * args.n / m
        print(
            f"{family}: {args.n / wall:.0f} samples/s (wall {wall:.2f}s, cpu {cpu:.2f}s), naive full-forward "
            f"scheme {args.n / naive:.0f} samples/s, threads={args.threads}, n={args.n}"
        )


if __name__ == "__main__":
    main()
