"""Intra-class FID (Miyato & Koyama 2018): the FID of each class's samples against that class's real
images, and its mean over the classes, for class-conditional samplers.

``intra-FID = 1/C sum_c FID(real | y = c, fake | y = c)``. The states are float64 sufficient statistics
per class, ``sum f`` ``(C, d)``, ``sum f f^T`` ``(C, d, d)`` and counts ``(C,)``, summed across DDP
processes, so every rank computes the numbers one process gets.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric

from genlight.metrics.functional import feature_statistics, frechet_distance

__all__ = ["IntraClassFID"]


class IntraClassFID(Metric):
    """Per-class FID of ``fake`` against ``real`` features and its mean.

    Args:
        num_classes: ``C``; labels are in ``[0, C)``.
        num_features: feature size ``d`` (the state holds ``C`` ``d x d`` float64 matrices).

    ``update(features, labels, real=...)`` adds a batch to one side; :meth:`set_reference` gives the
    real side as sufficient statistics instead (a cached reference pass). ``compute()`` returns
    ``{"mean": (), "per_class": (C,)}``; a class with fewer than 2 vectors on a side is NaN in
    ``per_class`` and left out of the mean (NaN when no class has a value).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, num_classes: int, num_features: int) -> None:
        super().__init__()
        self.num_classes, self.num_features = c, d = int(num_classes), int(num_features)
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(c, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(c, d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.zeros(c, dtype=torch.long), dist_reduce_fx="sum")
        self.reference: tuple[Tensor, Tensor, Tensor] | None = None

    def set_reference(self, total: Tensor, outer: Tensor, count: Tensor) -> None:
        """Real per-class statistics ``sum f`` ``(C, d)``, ``sum f f^T`` ``(C, d, d)``, counts ``(C,)``
        (the same on every rank; not summed across processes)."""
        self.reference = (total.double().cpu(), outer.double().cpu(), count.long().cpu())

    def update(self, features: Tensor, labels: Tensor, real: bool) -> None:
        side = "real" if real else "fake"
        f = features.detach().double().flatten(1)  # (n, d)
        y = labels.long().to(f.device)
        if f.shape[1] != self.num_features:
            raise ValueError(f"IntraClassFID expects {self.num_features}-d features, got {f.shape[1]}")
        if len(y) != len(f) or (len(y) and (int(y.min()) < 0 or int(y.max()) >= self.num_classes)):
            raise ValueError(f"IntraClassFID needs one label in [0, {self.num_classes}) per feature vector")
        one_hot = torch.nn.functional.one_hot(y, self.num_classes).double()  # (n, C)
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + one_hot.T @ f)
        outer = torch.einsum("nc,ni,nj->cij", one_hot, f, f)  # (C, d, d)
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + outer)
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + one_hot.sum(0).long())

    def compute(self) -> dict[str, Tensor]:
        real = self.reference or (self.real_sum.cpu(), self.real_outer.cpu(), self.real_count.cpu())
        fake = (self.fake_sum.cpu(), self.fake_outer.cpu(), self.fake_count.cpu())
        per_class = torch.full((self.num_classes,), math.nan, dtype=torch.float64)
        for c in range(self.num_classes):
            if min(int(real[2][c]), int(fake[2][c])) < 2:
                continue
            mu_r, sigma_r = feature_statistics(real[0][c], real[1][c], real[2][c])
            mu_f, sigma_f = feature_statistics(fake[0][c], fake[1][c], fake[2][c])
            per_class[c] = frechet_distance(mu_r, sigma_r, mu_f, sigma_f)
        scored = per_class[~per_class.isnan()]
        mean = scored.mean() if len(scored) else torch.tensor(math.nan, dtype=torch.float64)
        return {"mean": mean.float(), "per_class": per_class.float()}
