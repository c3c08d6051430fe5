"""The invertible steps of the flow families (RealNVP, Glow): each maps ``x -> (y, log|det dy/dx|)``
(log-determinant per example, float32) and has an exact ``inverse(y) -> x``; images ``(B, C, H, W)`` and,
where it makes sense, vectors ``(B, D)``. Preprocessing bijections (logit, shift), squeeze, ActNorm with
data-dependent initialisation (Kingma & Dhariwal 2018) and the invertible 1x1 convolution (plain or LU)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ActNorm",
    "FlowStep",
    "InvConv1x1",
    "LogitTransform",
    "NetFactory",
    "Scale",
    "Shift",
    "Squeeze",
    "standard_normal_log_prob",
]

Scale = Literal["tanh", "sigmoid", "additive"]
NetFactory = Callable[[int, int], nn.Module]


def standard_normal_log_prob(z: Tensor) -> Tensor:
    """``log N(z; 0, I)`` per example, summed over all but the batch dimension (float32)."""
    z = z.float().flatten(1)
    return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1)


def _per_example(t: Tensor) -> Tensor:
    return t.float().flatten(1).sum(1)


def _spatial(x: Tensor) -> int:
    """Number of positions a per-channel parameter is shared over (H*W for images, 1 for vectors)."""
    return x[0, 0].numel()


def _channel_view(p: Tensor, x: Tensor) -> Tensor:
    """A ``(C,)`` parameter shaped to broadcast over ``x`` (``(1, C, 1, 1)`` or ``(1, C)``)."""
    return p.view(1, -1, *([1] * (x.dim() - 2)))


class FlowStep(nn.Module):
    """An invertible layer: ``forward(x) -> (y, logdet)``, ``inverse(y) -> x``."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def inverse(self, y: Tensor) -> Tensor:  # pragma: no cover - interface
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- preprocessing
class LogitTransform(FlowStep):
    """RealNVP's preprocessing (Dinh et al. 2017, §4.1): ``s = a + (1 - 2a) y``, ``v = logit(s)``
    for ``y`` in (0, 1). ``log|dv/dy| = sum log(1 - 2a) + softplus(v) + softplus(-v)``."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0.0 < alpha < 0.5:
            raise ValueError(f"logit alpha must be in (0, 0.5) (0 sends y = 0 to -inf), got {alpha}")
        self.alpha = alpha

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        s = self.alpha + (1 - 2 * self.alpha) * y.float()
        v = torch.log(s) - torch.log1p(-s)
        logdet = _per_example(F.softplus(v) + F.softplus(-v)) + y[0].numel() * math.log(1 - 2 * self.alpha)
        return v, logdet

    def inverse(self, v: Tensor) -> Tensor:
        return (torch.sigmoid(v.float()) - self.alpha) / (1 - 2 * self.alpha)


class Shift(FlowStep):
    """Glow's preprocessing: ``v = y + offset`` (``y - 0.5`` centres (0, 1) data); volume-preserving."""

    def __init__(self, offset: float = -0.5) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return y.float() + self.offset, y.new_zeros(y.shape[0], dtype=torch.float32)

    def inverse(self, v: Tensor) -> Tensor:
        return v - self.offset


# ---------------------------------------------------------------------------------------------- reshaping
class Squeeze(FlowStep):
    """``(B, C, H, W) -> (B, 4C, H/2, W/2)``: each 2x2 block becomes 4 channels (Dinh et al. 2017)."""

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        b, c, h, w = x.shape
        y = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(b, 4 * c, h // 2, w // 2)
        return y, x.new_zeros(b, dtype=torch.float32)

    def inverse(self, y: Tensor) -> Tensor:
        b, c4, h, w = y.shape
        c = c4 // 4
        return y.view(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


# ---------------------------------------------------------------------------------------------- normalisation
class ActNorm(FlowStep):
    """Per-channel affine ``y = (x + b) * exp(log_s)`` (Kingma & Dhariwal 2018, §3.1);
    ``log|det| = H W sum(log_s)``.

    Data-dependent initialisation: the first forward in training mode sets ``b, log_s`` so the
    outputs of that batch have zero mean and unit variance per channel (statistics all-reduced across
    processes under DDP, so every rank starts identical). The ``initialized`` flag is a buffer: it is
    saved in checkpoints and a resumed or loaded model is never re-initialised.
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.eps = eps
        self.register_buffer("initialized", torch.tensor(False))

    @torch.no_grad()
    def initialize(self, x: Tensor) -> None:
        """Set ``b = -mean``, ``log_s = -log std`` per channel from the batch ``x``."""
        x = x.detach().float().transpose(0, 1).flatten(1)  # (C, N)
        stats = torch.stack([x.sum(1), x.pow(2).sum(1), torch.full_like(x[:, 0], x.shape[1])])  # (3, C)
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(stats)
        mean = stats[0] / stats[2]
        var = (stats[1] / stats[2] - mean.pow(2)).clamp_min(0.0)
        self.bias.copy_(-mean)
        self.log_scale.copy_(-torch.log(var.sqrt() + self.eps))
        self.initialized.fill_(True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.training and not bool(self.initialized):
            self.initialize(x)
        log_s = self.log_scale.float()
        y = (x.float() + _channel_view(self.bias.float(), x)) * _channel_view(log_s.exp(), x)
        return y, (log_s.sum() * _spatial(x)).expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        return y.float() * _channel_view((-self.log_scale.float()).exp(), y) - _channel_view(self.bias.float(), y)


# ---------------------------------------------------------------------------------------------- 1x1 convolution
class InvConv1x1(FlowStep):
    """Invertible 1x1 convolution ``y = W x`` over channels (Kingma & Dhariwal 2018, §3.2);
    ``log|det| = H W log|det W|`` (in float64). On vectors it is an invertible linear map.

    ``lu=True`` keeps ``W = P L (U + diag(sign * exp(log_s)))`` with ``P`` fixed, ``L`` unit lower
    triangular, ``U`` strictly upper: ``log|det W| = sum(log_s)`` in O(C). Initialised from a random
    rotation (or ``weight``). Runs in float32 even under autocast; the inverse is taken in float64.
    """

    def __init__(self, channels: int, lu: bool = False, weight: Tensor | None = None) -> None:
        super().__init__()
        if weight is None:
            weight = torch.linalg.qr(torch.randn(channels, channels))[0]
        weight = weight.detach().float()
        self.lu = lu
        if not lu:
            self.weight = nn.Parameter(weight.clone())
            return
        p, lower, upper = torch.linalg.lu(weight.double())
        s = torch.diagonal(upper)
        self.register_buffer("perm", p.float())
        self.register_buffer("sign_s", torch.sign(s).float())
        self.register_buffer("lower_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(lower.float())
        self.upper = nn.Parameter(torch.triu(upper, 1).float())
        self.log_s = nn.Parameter(torch.log(s.abs()).float())

    def matrix(self) -> Tensor:
        """The ``(C, C)`` weight, float32."""
        if not self.lu:
            return self.weight.float()
        eye = torch.eye(self.lower.shape[0], device=self.lower.device)
        lower = self.lower * self.lower_mask + eye
        upper = self.upper * self.lower_mask.T + torch.diag(self.sign_s * self.log_s.exp())
        return self.perm @ lower @ upper

    def log_abs_det(self) -> Tensor:
        """``log|det W|`` as a float32 scalar (float64 ``slogdet`` for the plain weight)."""
        if self.lu:
            return self.log_s.float().sum()
        return torch.linalg.slogdet(self.weight.double())[1].float()

    @staticmethod
    def _mix(x: Tensor, w: Tensor) -> Tensor:
        return F.linear(x, w) if x.dim() == 2 else torch.einsum("ij,bjhw->bihw", w, x)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        with torch.autocast(x.device.type, enabled=False):
            y = self._mix(x.float(), self.matrix())
            return y, (self.log_abs_det() * _spatial(x)).expand(x.shape[0])

    def inverse(self, y: Tensor) -> Tensor:
        with torch.autocast(y.device.type, enabled=False):
            w_inv = torch.linalg.inv(self.matrix().double()).float()
            return self._mix(y.float(), w_inv)


# ---------------------------------------------------------------------------------------------- couplings
