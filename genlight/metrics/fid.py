"""Frechet distance (FID, Heusel et al. 2017) from float64 sufficient statistics.

``FID = ||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^{1/2})``. The metric keeps ``sum f``,
``sum f f^T`` and ``n`` of the generated features (``dist_reduce_fx="sum"``, so DDP ranks add up to
the same numbers as one process) and compares them with reference statistics ``(mu, sigma)`` that
are computed once (see :class:`genlight.callbacks.FIDCallback`) and set with :meth:`set_reference`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from genlight.metrics.functional import feature_statistics, frechet_distance, sqrtm_psd

__all__ = ["FrechetDistance"]


class FrechetDistance(Metric):
    """FID of the features passed to ``update`` against the reference ``(mu, sigma)``.

    Args:
        num_features: feature size ``d`` (the covariance state is ``d x d`` float64).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False
    ref_mu: Tensor
    ref_sigma: Tensor

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features
        d = num_features
        self.add_state("features_sum", torch.zeros(d, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("features_outer", torch.zeros(d, d, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_samples", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        self.register_buffer("ref_mu", torch.zeros(d, dtype=torch.float64), persistent=False)
        self.register_buffer("ref_sigma", torch.zeros(d, d, dtype=torch.float64), persistent=False)
        self.has_reference = False
        self.ref_sqrt: Tensor | None = None

    def set_reference(self, mu: Tensor, sigma: Tensor, sqrt_sigma: Tensor | None = None) -> Tensor:
        """Reference (real-data) mean and covariance; returns ``sigma^{1/2}`` (pass it back next time
        to skip its ``eigh``)."""
        self.ref_mu = mu.to(self.ref_mu)
        self.ref_sigma = sigma.to(self.ref_sigma)
        self.ref_sqrt = sqrtm_psd(sigma) if sqrt_sigma is None else sqrt_sigma.double()
        self.has_reference = True
        return self.ref_sqrt

    def update(self, features: Tensor) -> None:
        f = features.detach().double().flatten(1)
        self.features_sum += f.sum(0)
        self.features_outer += f.T @ f
        self.num_samples += f.shape[0]

    def statistics(self) -> tuple[Tensor, Tensor]:
        """``(mu, sigma)`` of this process's features (no sync; use for single-process reference passes)."""
        return feature_statistics(self.features_sum, self.features_outer, self.num_samples)

    def compute(self) -> Tensor:
        if not self.has_reference:
            raise RuntimeError("FrechetDistance has no reference statistics; call set_reference(mu, sigma) first")
        mu, sigma = self.statistics()  # synced across processes inside compute()
        return frechet_distance(self.ref_mu, self.ref_sigma, mu, sigma, sqrt_sigma1=self.ref_sqrt).float()
