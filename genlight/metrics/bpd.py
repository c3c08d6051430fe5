"""Bits per dimension over a data set: ``bpd = sum_x -log p(x) / (D_total ln 2)``; or, for continuous
data, the mean negative log-likelihood in nats per example."""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

from genlight.functional import bits_per_dim

__all__ = ["BitsPerDim"]


class BitsPerDim(Metric):
    """Accumulates negative log-likelihoods (nats) and dimension counts; DDP sums both.

    With ``per_dim=False`` it counts examples instead of dimensions and ``compute`` returns nats per
    example (the figure for continuous data, where bits/dim of a density has no fixed meaning).
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, per_dim: bool = True) -> None:
        super().__init__()
        self.per_dim = per_dim
        self.add_state("nll_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_dims", torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, log_prob: Tensor, dims_per_example: int = 1) -> None:
        """``log_prob``: ``(n,)`` log-probabilities in nats; ``dims_per_example``: ``D = C*H*W``."""
        self.nll_sum -= log_prob.detach().double().sum()
        self.num_dims += log_prob.numel() * (dims_per_example if self.per_dim else 1)

    def compute(self) -> Tensor:
        if not self.per_dim:
            return (self.nll_sum / self.num_dims).float()
        return bits_per_dim(-self.nll_sum, self.num_dims).float()
