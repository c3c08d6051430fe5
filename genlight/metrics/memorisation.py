"""Memorisation figure: how often a sample lies nearer to a training image than training images lie to
each other (in a feature space, e.g. the digits extractor's).

For each sample ``s``: ``d(s) = min_t ||f(s) - f(t)||`` over the train images ``t``. For each train image
``t_i``: the leave-one-out distance ``r_i = min_{j != i} ||f(t_i) - f(t_j)||``. The threshold ``tau`` is
the ``q``-quantile of the ``r_i``, and the figure is ``P(d(s) <= tau)``, the fraction of samples that
are at least as near to some train image as the ``q`` nearest-knit train images are to theirs.

What it reads: a generator that copies train images scores 1.0 (``d = 0``); one that draws fresh
images from the data distribution scores about ``q`` (a fresh point's nearest-neighbour distance to
``n`` train points has nearly the distribution of a train point's to the other ``n - 1``), which the
same figure for held-out real images (the test split) measures: the floor. Values well above the
floor mean samples crowd around train images. ``q = 0.1`` (the default) targets near-copies: a small
quantile is the regime where copying changes the figure most, relative to the floor, while the median
(``q = 0.5``) moves also for samples that are merely typical (mode-seeking). The nearest-neighbour test
follows the spirit of the train-set nearest-neighbour checks of the GAN literature (e.g. the
"nearest neighbours" figures of Brock et al. 2019) and of the data-copying test of Meehan et al. 2020,
reduced to one number with a stated floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["MemorisationResult", "memorisation", "nearest_neighbour_distances"]


@torch.no_grad()
def nearest_neighbour_distances(
    queries: Tensor, reference: Tensor, *, exclude_self: bool = False, chunk: int = 1024
) -> tuple[Tensor, Tensor]:
    """Euclidean distance from each row of ``queries`` ``(m, d)`` to its nearest row of ``reference``
    ``(n, d)`` and that row's index (float64). ``exclude_self``: ``queries`` is ``reference`` and
    each row's own entry is left out (leave-one-out; needs ``n >= 2``)."""
    if queries.dim() != 2 or reference.dim() != 2 or queries.shape[1] != reference.shape[1]:
        raise ValueError(
            f"expected (m, d) and (n, d) features, got {tuple(queries.shape)} and {tuple(reference.shape)}"
        )
    if exclude_self and (queries.shape[0] != reference.shape[0] or reference.shape[0] < 2):
        raise ValueError("exclude_self needs queries == reference with at least 2 rows")
    q, ref = queries.double(), reference.double()
    dists, index = [], []
    for start in range(0, len(q), chunk):
        d = torch.cdist(q[start : start + chunk], ref)
        if exclude_self:
            rows = torch.arange(start, min(start + chunk, len(q)), device=d.device)
            d[rows - start, rows] = float("inf")
        value, idx = d.min(dim=1)
        dists.append(value)
        index.append(idx)
    return torch.cat(dists), torch.cat(index)


@dataclass
class MemorisationResult:
    """``fraction``: share of samples with ``d(s) <= threshold``; ``quantile``: ``q`` (about what fresh
    draws of the data distribution score); ``threshold``: ``tau``; ``sample_distances`` ``d(s)`` and
    ``nearest`` (index of the nearest train image); ``train_distances`` the leave-one-out ``r_i``."""

    fraction: float
    quantile: float
    threshold: float
    sample_distances: Tensor
    nearest: Tensor
    train_distances: Tensor

    @property
    def ratio(self) -> float:
        """``fraction / quantile``: 1 for fresh draws, ``1 / q`` for copies."""
        return self.fraction / self.quantile


@torch.no_grad()
def memorisation(
    sample_features: Tensor, train_features: Tensor, quantile: float = 0.1, *, train_distances: Tensor | None = None
) -> MemorisationResult:
    """The memorisation figure of ``sample_features`` ``(m, d)`` against ``train_features`` ``(n, d)``
    (see the module docstring). Pass the train set's leave-one-out distances as ``train_distances``
    to reuse them across calls (:func:`nearest_neighbour_distances` with ``exclude_self=True``)."""
    if not 0.0 < quantile < 1.0:
        raise ValueError(
            f"quantile must be in (0, 1) (0.1: the 10th percentile of train-to-train distances), got {quantile}"
        )
    if train_distances is None:
        train_distances, _ = nearest_neighbour_distances(train_features, train_features, exclude_self=True)
    threshold = torch.quantile(train_distances.double(), quantile)
    d, nearest = nearest_neighbour_distances(sample_features, train_features)
    return MemorisationResult(
        fraction=float((d <= threshold).double().mean()),
        quantile=quantile,
        threshold=float(threshold),
        sample_distances=d,
        nearest=nearest,
        train_distances=train_distances,
    )
