"""Sampling one discrete value per row of conditional parameters (the autoregressive families' draw)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genlight.nn.likelihoods import PixelLikelihood
from genlight.nn.logistic_mixture import LogisticMixture, logistic_mixture_log_probs

__all__ = ["draw_levels"]


def draw_levels(params: Tensor, likelihood: PixelLikelihood | None = None) -> Tensor:
    """One draw per row of ``params`` ``(B, P)``: Bernoulli logits (``P = 1``), level logits (``P = L``)
    or, with a :class:`~genlight.nn.LogisticMixture`, its ``3M`` parameters; returns integer levels ``(B,)``."""
    params = params.float()
    if isinstance(likelihood, LogisticMixture):
        params = logistic_mixture_log_probs(params, likelihood.num_levels)
    elif params.shape[1] == 1:
        return torch.bernoulli(torch.sigmoid(params[:, 0])).long()
    return torch.multinomial(F.softmax(params, dim=1), 1).squeeze(1)
