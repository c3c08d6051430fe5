"""Two feature sets compared in one metric: FID, KID, precision/recall and density/coverage of generated (``fake``)
against real features, both gathered over the same evaluation (what ``genlight test`` reports).

FID (Heusel et al. 2017) uses float64 sufficient statistics ``sum f``, ``sum f f^T``, ``n`` of each set
(``dist_reduce_fx="sum"``); KID (Binkowski et al. 2018) and improved precision/recall (Kynkaanniemi et
al. 2019) and density/coverage (Naeem et al. 2020) use the feature vectors themselves (list states, ``dist_reduce_fx="cat"``, ordered by their
global sample index after the gather), so under DDP every rank computes the numbers one process gets.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from genlight.metrics.functional import (
    density_coverage,
    feature_statistics,
    frechet_distance,
    kernel_distance,
    precision_recall,
)

__all__ = ["SampleQuality"]


class SampleQuality(Metric):
    """FID, KID (mean, std), precision/recall and density/coverage of ``fake`` against ``real`` features.

    Args:
        num_features: feature size ``d``.
        kid_subsets: KID subsets of ``kid_subset_size`` vectors of each set, or half the smaller set
            when it has no more than ``kid_subset_size`` (subsets of a whole set would all be equal).
        kid_subset_size: KID subset size, at most.
        pr_k: ``k`` of the k-NN balls of precision/recall (left out when a set has ``<= k`` vectors).
        max_pr: precision/recall and density/coverage use the first ``max_pr`` vectors of each set (by
            sample index): their ``n x n`` distance matrices grow quadratically.
        dc_k: ``k`` of the real k-NN balls of density/coverage (left out when there are ``<= k`` reals).

    ``update(features, indices, real=...)``: ``indices`` are global sample indices (the order after a
    DDP gather). ``compute()`` returns ``{"fid", "kid", "kid_std", "precision", "recall", "density",
    "coverage", "num_real", "num_fake"}`` as float tensors (keys for which a set is too small are left out).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(
        self,
        num_features: int,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        pr_k: int = 3,
        max_pr: int = 5000,
        dc_k: int = 5,
    ) -> None:
        super().__init__()
        self.num_features = d = int(num_features)
        self.kid_subsets, self.kid_subset_size, self.pr_k, self.max_pr = kid_subsets, kid_subset_size, pr_k, max_pr
        self.dc_k = dc_k
        for side in ("real", "fake"):
            self.add_state(f"{side}_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{side}_count", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
            self.add_state(f"{side}_features", [], dist_reduce_fx="cat")
            self.add_state(f"{side}_indices", [], dist_reduce_fx="cat")

    def update(self, features: Tensor, indices: Tensor, real: bool) -> None:
        side = "real" if real else "fake"
        f = features.detach().double().flatten(1)
        if f.shape[1] != self.num_features:
            raise ValueError(f"SampleQuality expects {self.num_features}-d features, got {f.shape[1]}")
        setattr(self, f"{side}_sum", getattr(self, f"{side}_sum") + f.sum(0))
        setattr(self, f"{side}_outer", getattr(self, f"{side}_outer") + f.T @ f)
        setattr(self, f"{side}_count", getattr(self, f"{side}_count") + f.shape[0])
        getattr(self, f"{side}_features").append(f)
        getattr(self, f"{side}_indices").append(indices.long().to(f.device))

    def _ordered(self, side: str) -> Tensor:
        features, indices = getattr(self, f"{side}_features"), getattr(self, f"{side}_indices")
        if isinstance(features, list) and not features:
            return torch.zeros(0, self.num_features, dtype=torch.float64)
        features, indices = dim_zero_cat(features).cpu(), dim_zero_cat(indices).cpu()
        return features[indices.argsort(stable=True)]

    def compute(self) -> dict[str, Tensor]:
        n_real, n_fake = int(self.real_count), int(self.fake_count)
        out: dict[str, Tensor] = {"num_real": torch.tensor(float(n_real)), "num_fake": torch.tensor(float(n_fake))}
        if min(n_real, n_fake) < 2:
            return out
        mu_r, sigma_r = feature_statistics(self.real_sum, self.real_outer, n_real)
        mu_f, sigma_f = feature_statistics(self.fake_sum, self.fake_outer, n_fake)
        out["fid"] = frechet_distance(mu_r, sigma_r, mu_f, sigma_f).float()
        real, fake = self._ordered("real"), self._ordered("fake")
        smaller = min(len(real), len(fake))
        size = min(self.kid_subset_size, smaller if smaller < 4 or self.kid_subset_size < smaller else smaller // 2)
        kid, kid_std = kernel_distance(real, fake, self.kid_subsets, size)
        out["kid"], out["kid_std"] = kid.float(), kid_std.float()
        real, fake = real[: self.max_pr], fake[: self.max_pr]
        if min(len(real), len(fake)) > self.pr_k:
            precision, recall = precision_recall(real, fake, self.pr_k)
            out["precision"], out["recall"] = precision.float(), recall.float()
        if len(real) > self.dc_k and len(fake) > 0:
            density, coverage = density_coverage(real, fake, self.dc_k)
            out["density"], out["coverage"] = density.float(), coverage.float()
        return out
