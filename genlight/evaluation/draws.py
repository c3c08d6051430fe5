"""Seeded Monte Carlo draws: a score that is a random estimate (a VAE's importance-sampled bound, a
diffusion model's one-sample bound) is computed ``R`` times from a fixed seed, averaged, and reported
with its Monte Carlo standard error ``sd / sqrt(R)`` (the spread between draws, not between data sets),
so that the same command gives the same table."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import Tensor

__all__ = ["DEFAULT_DRAWS", "mc_standard_error", "seeded", "varying"]

#: draws of a random score when the caller does not say (``genlight score --draws``)
DEFAULT_DRAWS = 3


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Torch's CPU (and CUDA) generators set to ``seed`` inside, restored after: the caller's random
    stream is left as it was."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def varying(fn: Callable[[], dict[str, Tensor]], seed: int) -> set[str]:
    """The keys of ``fn()``'s result whose values differ between two calls from different seeds: the
    scores that are Monte Carlo estimates."""
    with seeded(seed):
        first = fn()
    with seeded(seed + 1):
        second = fn()
    return {k for k, v in first.items() if k in second and not torch.equal(v, second[k])}


def mc_standard_error(values: Sequence[float]) -> float:
    """``sd(values) / sqrt(R)`` (sample sd, ``R - 1`` in the denominator) of ``R >= 2`` draws; 0.0 for one."""
    r = len(values)
    if r < 2:
        return 0.0
    mean = sum(values) / r
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (r - 1) / r)
