"""Observation models over discrete pixel levels, shared by the VAE, NADE, PixelCNN, ...

Each maps a decoder's raw output ``params`` of shape ``(B, C * params_per_channel, *spatial)`` to an
exact log-probability of integer levels ``0..L-1`` (in nats, summed over dimensions), so a
negative ELBO or an autoregressive NLL is a true code length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genlight.functional import to_levels
from genlight.nn.logistic import LOG_SCALE_RANGE, log_sigmoid_difference, logistic_mixture_log_probs

__all__ = ["Bernoulli", "Categorical", "DiscretizedLogistic", "PixelLikelihood", "make_likelihood"]


def _sum_dims(t: Tensor) -> Tensor:
    return t.flatten(1).sum(1)


class PixelLikelihood:
    """A distribution over ``num_levels`` discrete values per dimension."""

    params_per_channel: int = 1

    def __init__(self, num_levels: int) -> None:
        if num_levels < 2:
            raise ValueError(f"num_levels must be >= 2, got {num_levels}")
        self.num_levels = num_levels

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """``log p(x | params)`` per example, ``x`` in [0, 1] on the level grid."""
        raise NotImplementedError

    def sample(self, params: Tensor) -> Tensor:
        """A draw, in [0, 1] on the level grid."""
        raise NotImplementedError

    def mean(self, params: Tensor) -> Tensor:
        """The expected image in [0, 1] (for reconstructions and grids)."""
        raise NotImplementedError

    def split(self, params: Tensor) -> Tensor:
        """``(B, C*P, *S)`` -> ``(B, C, P, *S)``, in float32 (float64 kept)."""
        b, cp, *spatial = params.shape
        params = params if params.dtype == torch.float64 else params.float()
        return params.view(b, cp // self.params_per_channel, self.params_per_channel, *spatial)


class Bernoulli(PixelLikelihood):
    """``p(x=1) = sigmoid(logit)`` for binary images (2 levels)."""

    def __init__(self, num_levels: int = 2) -> None:
        if num_levels != 2:
            raise ValueError(f"the Bernoulli likelihood is for binary data (num_levels=2), got {num_levels}")
        super().__init__(num_levels)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        target = to_levels(x, 2).to(params.dtype)
        return -_sum_dims(F.binary_cross_entropy_with_logits(params.float(), target.float(), reduction="none"))

    def sample(self, params: Tensor) -> Tensor:
        return torch.bernoulli(torch.sigmoid(params.float()))

    def mean(self, params: Tensor) -> Tensor:
        return torch.sigmoid(params.float())


class Categorical(PixelLikelihood):
    """A softmax over all ``L`` levels of each dimension (the PixelCNN / PixelRNN output)."""

    def __init__(self, num_levels: int) -> None:
        super().__init__(num_levels)
        self.params_per_channel = num_levels

    def log_probs(self, params: Tensor) -> Tensor:
        """Per-level log-probabilities, ``(B, C, L, *S)``."""
        return F.log_softmax(self.split(params), dim=2)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        levels = to_levels(x, self.num_levels).unsqueeze(2)
        return _sum_dims(self.log_probs(params).gather(2, levels).squeeze(2))

    def sample(self, params: Tensor) -> Tensor:
        logits = self.split(params).movedim(2, -1)
        k = torch.distributions.Categorical(logits=logits).sample()
        return k.float() / (self.num_levels - 1)

    def mean(self, params: Tensor) -> Tensor:
        probs = self.log_probs(params).exp()
        grid = torch.linspace(0, 1, self.num_levels, device=params.device, dtype=probs.dtype)
        return torch.einsum("bcl...,l->bc...", probs, grid)


class DiscretizedLogistic(PixelLikelihood):
    """A logistic density integrated over each level's bin, the outer bins open to +-infinity.

    Salimans et al. 2017 (PixelCNN++), one component: ``P(k) = sigma((c_k + h - mu)/s) -
    sigma((c_k - h - mu)/s)`` with bin centres ``c_k = k/(L-1)`` and half width ``h = 1/(2(L-1))``;
    ``P(0) = sigma((h - mu)/s)`` and ``P(L-1) = 1 - sigma((1 - h - mu)/s)``, so the ``L``
    probabilities sum to one for every ``mu``. The log-scale is clamped to
    :data:`~genlight.nn.logistic.LOG_SCALE_RANGE`.
    """

    params_per_channel = 2

    def _loc_scale(self, params: Tensor) -> tuple[Tensor, Tensor]:
        p = self.split(params)
        return p[:, :, 0], p[:, :, 1].clamp(*LOG_SCALE_RANGE)

    def log_probs(self, params: Tensor) -> Tensor:
        """Per-level log-probabilities, ``(B, C, L, *S)``."""
        mu, log_s = self._loc_scale(params)  # (B, C, *S)
        stacked = torch.stack([torch.zeros_like(mu), mu, log_s], dim=-1)  # one component: (B, C, *S, 3)
        return logistic_mixture_log_probs(stacked, self.num_levels).movedim(-1, 2)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        mu, log_s = self._loc_scale(params)
        k = to_levels(x, self.num_levels)
        centre = k.to(mu.dtype) / (self.num_levels - 1)
        half = 0.5 / (self.num_levels - 1)
        inv_s = torch.exp(-log_s)
        plus, minus = inv_s * (centre + half - mu), inv_s * (centre - half - mu)
        log_mid = log_sigmoid_difference(minus, plus, 2 * half * inv_s)
        out = torch.where(
            k == 0, F.logsigmoid(plus), torch.where(k == self.num_levels - 1, F.logsigmoid(-minus), log_mid)
        )
        return _sum_dims(out)

    def sample(self, params: Tensor) -> Tensor:
        mu, log_s = self._loc_scale(params)
        u = torch.rand_like(mu).clamp(1e-5, 1 - 1e-5)
        x = mu + torch.exp(log_s) * (torch.log(u) - torch.log1p(-u))
        return to_levels(x.clamp(0, 1), self.num_levels).float() / (self.num_levels - 1)

    def mean(self, params: Tensor) -> Tensor:
        """The expected image ``sum_k P(k) k/(L-1)`` (not the location ``mu``, which the open outer
        bins and the clamp to [0, 1] make differ from it)."""
        probs = self.log_probs(params).exp()  # (B, C, L, *S)
        grid = torch.linspace(0, 1, self.num_levels, device=params.device, dtype=probs.dtype)
        return torch.einsum("bcl...,l->bc...", probs, grid)


_LIKELIHOODS = {"bernoulli": Bernoulli, "categorical": Categorical, "logistic": DiscretizedLogistic}


def make_likelihood(name: str, num_levels: int) -> PixelLikelihood:
    """``"auto"`` picks Bernoulli for 2 levels, categorical up to 64 levels, else discretised logistic."""
    if name == "auto":
        name = "bernoulli" if num_levels == 2 else "categorical" if num_levels <= 64 else "logistic"
    if name not in _LIKELIHOODS:
        raise ValueError(f"unknown likelihood {name!r}; choose one of: auto, {', '.join(_LIKELIHOODS)}")
    return _LIKELIHOODS[name](num_levels)
