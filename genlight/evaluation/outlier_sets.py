"""More outlier sets made from inlier images, beside a datamodule's own (``inverted``, ``uniform_noise``,
``constant``, ``blurred``, ``pixel_shuffled``, ``held_out_class``), so that a score is chosen over many
kinds of outliers (:mod:`genlight.evaluation.recommend`). Every set has the inliers' shape and level
grid; the random ones are drawn from a generator seeded by ``seed``:

- transformations: ``rotated`` (90 degrees), ``flipped_vertical``, ``flipped_horizontal``, ``shifted``
  (a quarter of the side right and down, zeros in), ``shrunk`` (half size, centred on zeros),
  ``low_contrast`` (``x / 2``), ``thickened`` (3x3 grey dilation);
- mixtures of two inliers: ``mixed_mean`` (``(a + b) / 2``) and ``mixed_max`` (``max(a, b)``);
- noise at several levels: ``noise_0.05`` ... ``noise_0.4`` (Gaussian of that standard deviation added,
  clamped, snapped) and ``salt_pepper`` (10% of the values set to 0 or 1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["MORE_SETS", "NOISE_LEVELS", "more_outlier_sets"]

#: standard deviations of the Gaussian noise sets
NOISE_LEVELS = (0.05, 0.1, 0.2, 0.4)
#: the sets of :func:`more_outlier_sets`, in report order
MORE_SETS = (
    "rotated", "flipped_vertical", "flipped_horizontal", "shifted", "shrunk", "low_contrast", "thickened",
    "mixed_mean", "mixed_max", *(f"noise_{s}" for s in NOISE_LEVELS), "salt_pepper",
)  # fmt: skip


def _snap(x: Tensor, num_levels: int) -> Tensor:
    return (x.clamp(0, 1) * (num_levels - 1)).round() / (num_levels - 1)


def _shift(x: Tensor, k: int) -> Tensor:
    """``x`` moved ``k`` pixels right and down, zeros coming in."""
    return F.pad(x, (k, 0, k, 0))[..., : x.shape[-2], : x.shape[-1]]


def _shrink(x: Tensor) -> Tensor:
    """``x`` at half size (2x2 means) centred on a zero canvas of the same size."""
    h, w = x.shape[-2:]
    small = F.avg_pool2d(x, 2)  # (N, C, H/2, W/2)
    top, left = (h - small.shape[-2]) // 2, (w - small.shape[-1]) // 2
    return F.pad(small, (left, w - small.shape[-1] - left, top, h - small.shape[-2] - top))


def more_outlier_sets(x: Tensor, num_levels: int, seed: int = 0) -> dict[str, Tensor]:
    """``{name: (N, C, H, W)}``: every set of :data:`MORE_SETS` made from inliers ``x`` ``(N, C, H, W)``
    in [0, 1] on a grid of ``num_levels`` levels."""
    if x.dim() != 4:
        raise ValueError(f"more_outlier_sets needs images (N, C, H, W), got shape {tuple(x.shape)}")
    g = torch.Generator().manual_seed(seed)
    other = x[torch.randperm(len(x), generator=g)]
    sets = {
        "rotated": torch.rot90(x, 1, dims=(-2, -1)) if x.shape[-1] == x.shape[-2] else x.flip(-2, -1),
        "flipped_vertical": x.flip(-2),
        "flipped_horizontal": x.flip(-1),
        "shifted": _shift(x, max(1, x.shape[-1] // 4)),
        "shrunk": _shrink(x),
        "low_contrast": x / 2,
        "thickened": F.max_pool2d(x, 3, stride=1, padding=1),
        "mixed_mean": (x + other) / 2,
        "mixed_max": torch.maximum(x, other),
    }
    for s in NOISE_LEVELS:
        sets[f"noise_{s}"] = x + s * torch.randn(x.shape, generator=g)
    flip = torch.rand(x.shape, generator=g) < 0.1
    sets["salt_pepper"] = torch.where(flip, (torch.rand(x.shape, generator=g) < 0.5).float(), x)
    return {name: _snap(v.float(), num_levels).contiguous() for name, v in sets.items()}
