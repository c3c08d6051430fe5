"""Invertible layers shared by the flow families (RealNVP, Glow), each implemented once.

Every layer maps ``x -> (y, log|det dy/dx|)`` with the log-determinant per example in float32, and
has an exact ``inverse(y) -> x``. Layers work on images ``(B, C, H, W)`` and, where it makes sense,
on vectors ``(B, D)`` (2-D points): couplings (checkerboard / channel masks, affine-tanh as RealNVP,
affine-sigmoid or additive as Glow), ActNorm with data-dependent initialisation, the invertible 1x1
convolution (plain or LU), squeeze, the multi-scale split with an optional learned prior, the
preprocessing bijections (logit, shift) and uniform / variational dequantisation (Flow++).

:class:`MultiScaleFlow` chains them into a bijection from data to standard-normal noise ``eps``
(priors are absorbed as affine maps, so ``log p(x) = log N(eps; 0, I) + log|det|``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.functional import to_levels

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "ConvCouplingNet",
    "FlowStep",
    "InvConv1x1",
    "LogitTransform",
    "MLPCouplingNet",
    "MultiScaleFlow",
    "Shift",
    "Split",
    "Squeeze",
    "StandardNormalTop",
    "UniformDequantization",
    "VariationalDequantization",
    "checkerboard_mask",
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
def checkerboard_mask(height: int, width: int, parity: int, device: torch.device | None = None) -> Tensor:
    """``(1, 1, H, W)`` float mask, 1 where ``(i + j) % 2 == parity`` (the pixels kept fixed)."""
    i = torch.arange(height, device=device).view(-1, 1)
    j = torch.arange(width, device=device).view(1, -1)
    return ((i + j) % 2 == parity).float().view(1, 1, height, width)


class _ResBlock(nn.Module):
    def __init__(self, channels: int, dropout: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(), nn.Dropout(dropout), nn.Conv2d(channels, channels, 3, padding=1),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def _small_init(layer: nn.Module, std: float = 1e-3) -> nn.Module:
    """Near-zero output layer, so every coupling starts close to the identity (Glow's zero init; not
    exactly zero, so a learned scale factor on the output still gets a gradient on the first step)."""
    nn.init.normal_(layer.weight, std=std)
    nn.init.zeros_(layer.bias)
    return layer


class ConvCouplingNet(nn.Sequential):
    """The s,t network of image couplings: 3x3 conv, ``num_blocks`` residual blocks (ReLU, conv3x3,
    ReLU, dropout, conv3x3), ReLU, near-zero 3x3 output conv; ``num_blocks=0`` is Glow's network
    (3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 output conv). No normalisation layers, so training and
    evaluation compute the same function (FAMILIES.md §5)."""

    def __init__(self, in_channels: int, out_channels: int, hidden: int = 64, num_blocks: int = 1, dropout: float = 0.0):
        middle = [_ResBlock(hidden, dropout) for _ in range(num_blocks)] or [nn.ReLU(), nn.Conv2d(hidden, hidden, 1)]
        super().__init__(
            nn.Conv2d(in_channels, hidden, 3, padding=1),
            *middle,
            nn.ReLU(),
            _small_init(nn.Conv2d(hidden, out_channels, 3, padding=1)),
        )


class MLPCouplingNet(nn.Sequential):
    """The s,t network of vector couplings: ``num_layers`` hidden ReLU layers, near-zero output layer."""

    def __init__(self, in_features: int, out_features: int, hidden: int = 64, num_layers: int = 2):
        layers: list[nn.Module] = []
        for i in range(num_layers):
            layers += [nn.Linear(in_features if i == 0 else hidden, hidden), nn.ReLU()]
        super().__init__(*layers, _small_init(nn.Linear(hidden, out_features)))


class AffineCoupling(FlowStep):
    """Coupling layer (Dinh et al. 2017): a part ``x_a`` of the input passes unchanged and conditions an
    elementwise affine map of the rest, ``y_b = x_b * exp(log_s(x_a)) + t(x_a)``; ``log|det| = sum log_s``.

    * ``mask``: ``checkerboard`` (images; alternate pixels by ``parity``, the net sees the masked image
      and the mask) or ``channel`` (the first / second half of the channels by ``parity``; images or
      vectors).
    * ``scale``: ``tanh`` (RealNVP: ``log_s = g * tanh(h)``, ``g`` a learned per-channel factor),
      ``sigmoid`` (Glow's official code: ``s = sigmoid(h + 2)``) or ``additive`` (NICE / Glow's
      default: ``log_s = 0``).
    * ``context_channels``: extra conditioning input passed to ``forward(x, context)`` (the
      conditional flow of variational dequantisation); image couplings only.

    ``make_net(in_channels, out_channels)`` builds the s,t network (:class:`ConvCouplingNet`,
    :class:`MLPCouplingNet`). Log-scales and shifts are computed in float32 even under autocast.
    """

    def __init__(
        self,
        channels: int,
        make_net: NetFactory,
        mask: Literal["checkerboard", "channel"] = "channel",
        parity: int = 0,
        scale: Scale = "tanh",
        context_channels: int = 0,
    ) -> None:
        super().__init__()
        if mask == "channel" and channels < 2:
            raise ValueError(f"a channel coupling needs at least 2 channels, got {channels}; use a checkerboard mask")
        if scale not in ("tanh", "sigmoid", "additive"):
            raise ValueError(f"scale must be tanh, sigmoid or additive, got {scale!r}")
        self.mask, self.parity, self.scale = mask, parity % 2, scale
        if mask == "channel":
            first = channels // 2
            self.sizes = [first, channels - first]  # the [first, rest] split of the channels
            c_in, c_out = self.sizes[self.parity], self.sizes[1 - self.parity]
        else:
            c_in, c_out = channels + 1, channels  # masked image + the mask itself
        self.out_channels = c_out
        self.net = make_net(c_in + context_channels, c_out * (1 if scale == "additive" else 2))
        if scale == "tanh":
            self.scale_factor = nn.Parameter(torch.ones(c_out))

    def _log_scale_shift(self, h: Tensor) -> tuple[Tensor, Tensor]:
        h = h.float()
        if self.scale == "additive":
            return torch.zeros_like(h), h
        raw, shift = h.chunk(2, dim=1)
        if self.scale == "sigmoid":
            return F.logsigmoid(raw + 2.0), shift
        return _channel_view(self.scale_factor.float(), raw) * torch.tanh(raw), shift

    def _split(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(conditioning part, transformed part) of a channel coupling."""
        first, rest = x.split(self.sizes, dim=1)
        return (first, rest) if self.parity == 0 else (rest, first)

    def _join(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        return torch.cat([x_a, x_b] if self.parity == 0 else [x_b, x_a], dim=1)

    def _net(self, x_a: Tensor, context: Tensor | None) -> Tensor:
        return self.net(x_a if context is None else torch.cat([x_a, context.to(x_a.dtype)], dim=1))

    def _params(self, x: Tensor, context: Tensor | None) -> tuple[Tensor, Tensor, Tensor]:
        """Checkerboard: ``(keep mask, masked log_s, masked t)`` for the whole image."""
        keep = checkerboard_mask(x.shape[2], x.shape[3], self.parity, x.device)
        x_a = x * keep
        log_s, t = self._log_scale_shift(self._net(torch.cat([x_a, keep.expand(x.shape[0], 1, -1, -1)], 1), context))
        return keep, log_s * (1 - keep), t * (1 - keep)

    def forward(self, x: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        x = x.float()
        if self.mask == "checkerboard":
            _, log_s, t = self._params(x, context)
            return x * log_s.exp() + t, _per_example(log_s)
        x_a, x_b = self._split(x)
        log_s, t = self._log_scale_shift(self._net(x_a, context))
        return self._join(x_a, x_b * log_s.exp() + t), _per_example(log_s)

    def inverse(self, y: Tensor, context: Tensor | None = None) -> Tensor:
        y = y.float()
        if self.mask == "checkerboard":
            _, log_s, t = self._params(y, context)  # the kept pixels of y are those of x
            return (y - t) * (-log_s).exp()
        y_a, y_b = self._split(y)
        log_s, t = self._log_scale_shift(self._net(y_a, context))
        return self._join(y_a, (y_b - t) * (-log_s).exp())


# ---------------------------------------------------------------------------------------------- priors
class Split(nn.Module):
    """Multi-scale factoring out (Dinh et al. 2017, §3.6): half the channels ``z_2`` leave the flow.

    With ``learned_prior`` (Glow), ``z_2 ~ N(mu(z_1), sigma(z_1)^2)`` from a zero-initialised 3x3 conv of
    the kept half; otherwise ``N(0, I)``. The prior is absorbed as a bijection to standard-normal noise,
    ``eps = (z_2 - mu) / sigma`` with ``log|det| = -sum log sigma``, so the flow ends in ``N(0, I)``.
    """

    def __init__(self, channels: int, learned_prior: bool = False) -> None:
        super().__init__()
        self.keep = channels - channels // 2
        self.out = channels // 2
        self.prior = nn.Conv2d(self.keep, 2 * self.out, 3, padding=1) if learned_prior else None
        if self.prior is not None:
            nn.init.zeros_(self.prior.weight)
            nn.init.zeros_(self.prior.bias)

    def _mean_log_std(self, kept: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.prior(kept).float().chunk(2, dim=1)  # type: ignore[misc]
        return mean, log_std

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``x -> (kept half, eps of the factored-out half, logdet)``."""
        kept, z = x.float().split([self.keep, self.out], dim=1)
        if self.prior is None:
            return kept, z, x.new_zeros(x.shape[0], dtype=torch.float32)
        mean, log_std = self._mean_log_std(kept)
        return kept, (z - mean) * (-log_std).exp(), -_per_example(log_std)

    def inverse(self, kept: Tensor, eps: Tensor) -> Tensor:
        if self.prior is None:
            return torch.cat([kept, eps], dim=1)
        mean, log_std = self._mean_log_std(kept)
        return torch.cat([kept, mean + eps * log_std.exp()], dim=1)


class StandardNormalTop(FlowStep):
    """The prior of the last level: ``N(0, I)``, or with ``learned`` a Gaussian with a learned mean and
    log-std per position (Glow's ``learntop``), absorbed as ``eps = (z - mu) / sigma``."""

    def __init__(self, shape: Sequence[int], learned: bool = False) -> None:
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(*shape)) if learned else None
        self.log_std = nn.Parameter(torch.zeros(*shape)) if learned else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.mean is None:
            return x.float(), x.new_zeros(x.shape[0], dtype=torch.float32)
        eps = (x.float() - self.mean) * (-self.log_std).exp()
        return eps, (-self.log_std.sum()).expand(x.shape[0])

    def inverse(self, eps: Tensor) -> Tensor:
        if self.mean is None:
            return eps
        return self.mean + eps * self.log_std.exp()


# ---------------------------------------------------------------------------------------------- the whole flow
class MultiScaleFlow(nn.Module):
    """A bijection ``x -> eps`` (flattened, ``(B, D)``) made of ``levels``: each a list of
    :class:`FlowStep` s followed by a :class:`Split` (or ``None`` at the last level), then ``top``.

    ``log p(x) = log N(eps; 0, I) + sum of log|det|`` (:meth:`log_prob`). The factored-out noise of every
    level is concatenated in order, so ``eps`` is one tensor and :meth:`inverse` takes one tensor.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        levels: Sequence[Sequence[FlowStep]],
        splits: Sequence[Split | None],
        top: StandardNormalTop | None = None,
    ) -> None:
        super().__init__()
        if len(levels) != len(splits):
            raise ValueError("one split (or None) per level")
        self.input_shape = tuple(input_shape)
        self.levels = nn.ModuleList(nn.ModuleList(steps) for steps in levels)
        self.splits = nn.ModuleList(s if s is not None else nn.Identity() for s in splits)
        self.top = top if top is not None else StandardNormalTop(())
        self.latent_shapes = self._trace_shapes()

    @torch.no_grad()
    def _trace_shapes(self) -> list[tuple[int, ...]]:
        """Shapes of the factored-out pieces (last: the top), from one dry run in eval mode."""
        was_training = self.training
        self.eval()
        x, shapes = torch.zeros(1, *self.input_shape), []
        for steps, split in zip(self.levels, self.splits):
            for step in steps:
                x, _ = step(x)
            if isinstance(split, Split):
                x, eps, _ = split(x)
                shapes.append(tuple(eps.shape[1:]))
        shapes.append(tuple(x.shape[1:]))
        self.train(was_training)
        if isinstance(self.top, StandardNormalTop) and self.top.mean is not None and tuple(self.top.mean.shape) != shapes[-1]:
            raise ValueError(f"top prior of shape {tuple(self.top.mean.shape)} for a top of shape {shapes[-1]}")
        return shapes

    @property
    def num_dims(self) -> int:
        return math.prod(self.input_shape)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, *input_shape) -> (eps (B, D), log|det dx->eps| (B,))``."""
        logdet = x.new_zeros(x.shape[0], dtype=torch.float32)
        pieces = []
        for steps, split in zip(self.levels, self.splits):
            for step in steps:
                x, ld = step(x)
                logdet = logdet + ld
            if isinstance(split, Split):
                x, eps, ld = split(x)
                pieces.append(eps.flatten(1))
                logdet = logdet + ld
        eps, ld = self.top(x)
        pieces.append(eps.flatten(1))
        return torch.cat(pieces, dim=1), logdet + ld

    def inverse(self, eps: Tensor) -> Tensor:
        """``eps (B, D) -> x (B, *input_shape)``."""
        sizes = [math.prod(s) for s in self.latent_shapes]
        pieces = [p.reshape(-1, *s) for p, s in zip(eps.float().split(sizes, dim=1), self.latent_shapes)]
        x = self.top.inverse(pieces.pop())
        for steps, split in zip(reversed(self.levels), reversed(self.splits)):
            if isinstance(split, Split):
                x = split.inverse(x, pieces.pop())
            for step in reversed(steps):
                x = step.inverse(x)
        return x

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` (nats, per example) of continuous ``x``."""
        eps, logdet = self(x)
        return standard_normal_log_prob(eps) + logdet


# ---------------------------------------------------------------------------------------------- dequantisation
class UniformDequantization(nn.Module):
    """``y = (k + u) / L`` with ``u ~ U[0, 1)^D`` for images in [0, 1] on an ``L``-level grid (``k`` the
    level); ``log q(u|x) = 0``. ``log P(k) >= E_u[log p_Y(y)] - D log L`` (Theis et al. 2016)."""

    def __init__(self, num_levels: int) -> None:
        super().__init__()
        self.num_levels = num_levels

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (y in (0, 1), log q(u|x) per example)``."""
        k = to_levels(x, self.num_levels).float()
        y = (k + torch.rand_like(k)) / self.num_levels
        return y, y.new_zeros(y.shape[0])


class VariationalDequantization(nn.Module):
    """Flow++'s variational dequantisation (Ho et al. 2019, §3.1): ``u = sigmoid(f(eps; x))`` with
    ``eps ~ N(0, I)`` and ``f`` a conditional flow of checkerboard affine couplings whose s,t nets see
    features of ``x``; ``log q(u|x) = log N(eps) - log|det f| - sum log sigmoid'(.)``. Trained jointly,
    ``log P(k) >= E_q[log p_Y((k + u) / L) - log q(u|x)] - D log L``, tighter than uniform noise."""

    def __init__(
        self, image_shape: Sequence[int], num_levels: int, hidden: int = 32, num_couplings: int = 4, num_blocks: int = 1
    ) -> None:
        super().__init__()
        channels = int(image_shape[0])
        self.num_levels = num_levels
        self.context = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(), nn.Conv2d(hidden, hidden, 3, padding=1), nn.ReLU()
        )

        def make_net(c_in: int, c_out: int) -> nn.Module:
            return ConvCouplingNet(c_in, c_out, hidden, num_blocks)

        self.couplings = nn.ModuleList(
            AffineCoupling(channels, make_net, "checkerboard", i % 2, "tanh", context_channels=hidden)
            for i in range(num_couplings)
        )

    def noise_to_u(self, eps: Tensor, x: Tensor) -> tuple[Tensor, Tensor]:
        """The conditional bijection ``eps -> u`` in (0, 1) given images ``x``: ``(u, log|du/deps|)``."""
        k = to_levels(x, self.num_levels).float()
        context = self.context(k / (self.num_levels - 1) - 0.5)
        logdet = eps.new_zeros(eps.shape[0], dtype=torch.float32)
        h = eps.float()
        for coupling in self.couplings:
            h, ld = coupling(h, context)
            logdet = logdet + ld
        return torch.sigmoid(h), logdet + _per_example(F.logsigmoid(h) + F.logsigmoid(-h))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x -> (y = (k + u) / L, log q(u|x) per example)``."""
        eps = torch.randn(x.shape, device=x.device)
        u, logdet = self.noise_to_u(eps, x)
        k = to_levels(x, self.num_levels).float()
        return (k + u) / self.num_levels, standard_normal_log_prob(eps) - logdet
