"""Small spaces where a family's probabilities can be checked exactly: every image of ``1x2x2`` with 3
levels (81 images), a family built there with perturbed weights, and the chi-square test that compares a
sampler's frequencies with ``exp(log_prob)``."""

from __future__ import annotations

import inspect
import itertools
import math
from typing import Any

import torch
from torch import Tensor

from genlight.errors import IncompatibleDataError
from genlight.testing.harness import Family, family_class

__all__ = ["NotApplicable", "TINY_LEVELS", "TINY_SHAPE", "all_images", "chi_square", "image_index", "tiny_model"]

TINY_SHAPE = (1, 2, 2)
TINY_LEVELS = 3


class NotApplicable(Exception):
    """A check that does not apply to a family (its reason is the message): reported as "n/a", never a pass."""


def all_images(
    shape: tuple[int, ...] = TINY_SHAPE, levels: int = TINY_LEVELS, dtype: torch.dtype | None = None
) -> Tensor:
    """``(L^D, *shape)``: every image of ``shape`` with ``levels`` levels in [0, 1], in the order of
    :func:`image_index` (the first sub-pixel, in ``(C, H, W)`` order, varies slowest)."""
    grid = torch.tensor(
        list(itertools.product(range(levels), repeat=math.prod(shape))), dtype=dtype or torch.get_default_dtype()
    )
    return (grid / (levels - 1)).view(-1, *shape)


def image_index(x: Tensor, levels: int) -> Tensor:
    """``(B,)``: the row of each image of ``x`` in :func:`all_images`."""
    digits = torch.round(x.flatten(1).double() * (levels - 1)).long()  # (B, D)
    weights = levels ** torch.arange(digits.shape[1] - 1, -1, -1)
    return (digits * weights).sum(1)


def tiny_model(
    family: Family,
    image_shape: tuple[int, ...] = TINY_SHAPE,
    num_levels: int | None = TINY_LEVELS,
    *,
    seed: int = 0,
    noise: float = 0.3,
) -> Any:
    """The family built from its ``smoke_kwargs`` on ``image_shape`` (with ``num_levels`` levels, and 2
    classes where it takes ``num_classes``), every weight perturbed by ``N(0, noise^2)`` so that nothing
    is trivially uniform, in eval mode. A family that takes no ``num_levels`` (when one is
    asked for), or refuses the shape in one line (``ValueError``), raises :class:`NotApplicable`."""
    cls: Any = family_class(family)
    params = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {**cls.smoke_kwargs, "image_shape": image_shape}
    if num_levels is not None:
        if "num_levels" not in params:
            raise NotApplicable(
                f"takes no num_levels: not a model of discrete images of {_space(image_shape, num_levels)}"
            )
        kwargs["num_levels"] = num_levels
    if "num_classes" in params:
        kwargs["num_classes"] = 2
    torch.manual_seed(seed)
    try:
        model = cls(**kwargs)
    except (IncompatibleDataError, ValueError) as error:
        raise NotApplicable(f"refuses {_space(image_shape, num_levels)}: {error}") from error
    with torch.no_grad():
        for p in model.parameters():
            p.add_(noise * torch.randn_like(p))
    return model.eval()


def _space(shape: tuple[int, ...], levels: int | None) -> str:
    size = "x".join(map(str, shape))
    return f"{size} images with {levels} levels" if levels else f"{size} inputs"


def chi_square(counts: Tensor, probs: Tensor, min_expected: float = 5.0) -> tuple[float, int, float]:
    """Pearson's chi-square of observed ``counts`` against ``n * probs`` (``n = counts.sum()``), cells
    with an expected count under ``min_expected`` pooled (smallest first) into one cell, and the mass
    ``probs`` leave out (``1 - probs.sum()``, if positive) as a cell of its own. Returns ``(statistic,
    degrees of freedom, p-value)``; the p-value is ``P(chi2_dof >= statistic)``."""
    n = float(counts.sum())
    expected, observed = (n * probs.double()), counts.double()
    order = torch.argsort(expected)
    expected, observed = expected[order], observed[order]
    cut = int((expected < min_expected).sum())  # the cells under min_expected, pooled ...
    while 0 < cut < len(expected) and float(expected[:cut].sum()) < min_expected:
        cut += 1  # ... with the next smallest until the pool reaches min_expected
    cells_e = [float(expected[:cut].sum())] if cut else []
    cells_o = [float(observed[:cut].sum())] if cut else []
    cells_e += expected[cut:].tolist()
    cells_o += observed[cut:].tolist()
    missing = n - sum(cells_e)
    if missing > min_expected:
        cells_e.append(missing)
        cells_o.append(0.0)
    e, o = torch.tensor(cells_e, dtype=torch.float64), torch.tensor(cells_o, dtype=torch.float64)
    stat = float(((o - e) ** 2 / e.clamp_min(1e-12)).sum())
    dof = max(1, len(cells_e) - 1)
    p = float(
        torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64), torch.tensor(stat / 2, dtype=torch.float64))
    )
    return stat, dof, p
