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
from torch import Tensor, nn

from genlight.nn.coupling import AffineCoupling, ConvCouplingNet, MLPCouplingNet, checkerboard_mask
from genlight.nn.dequantization import UniformDequantization, VariationalDequantization
from genlight.nn.flow_steps import (
    ActNorm,
    FlowStep,
    InvConv1x1,
    LogitTransform,
    Shift,
    Squeeze,
    _per_example,
    standard_normal_log_prob,
)

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
    "multiscale_layout",
    "vector_layout",
    "standard_normal_log_prob",
]


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
            nn.init.zeros_(self.prior.bias)  # type: ignore[arg-type]

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
        if self.mean is None or self.log_std is None:
            return x.float(), x.new_zeros(x.shape[0], dtype=torch.float32)
        eps = (x.float() - self.mean) * (-self.log_std).exp()
        return eps, (-self.log_std.sum()).expand(x.shape[0])

    def inverse(self, eps: Tensor) -> Tensor:
        if self.mean is None or self.log_std is None:
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
            for step in steps:  # type: ignore[attr-defined]
                x, _ = step(x)
            if isinstance(split, Split):
                x, eps, _ = split(x)
                shapes.append(tuple(eps.shape[1:]))
        shapes.append(tuple(x.shape[1:]))
        self.train(was_training)
        if (
            isinstance(self.top, StandardNormalTop)
            and self.top.mean is not None
            and tuple(self.top.mean.shape) != shapes[-1]
        ):
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
            for step in steps:  # type: ignore[attr-defined]
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


#: ``coupling(channels, mask, index)``: the steps of one coupling (with its ActNorm / 1x1 conv) of a family
Coupling = Callable[[int, Literal["checkerboard", "channel"], int], list[FlowStep]]


def multiscale_layout(
    shape: tuple[int, ...], num_scales: int, depth: int, pre: FlowStep, coupling: Coupling
) -> MultiScaleFlow:
    """RealNVP's multi-scale architecture (Dinh et al. 2017, sec. 3.6) with a family's ``coupling``: at each
    scale ``depth`` checkerboard couplings, a squeeze, ``depth`` channel couplings and a split of half the
    channels; the last scale ``depth + 1`` checkerboard couplings and no split. ``pre`` (logit or shift) first."""
    c = shape[0]
    levels: list[list[FlowStep]] = []
    splits: list[Split | None] = []
    for scale in range(num_scales):
        steps: list[FlowStep] = [pre] if scale == 0 else []
        last = scale == num_scales - 1
        for i in range(depth + (1 if last else 0)):
            steps += coupling(c, "checkerboard", i)
        if not last:
            steps.append(Squeeze())
            c *= 4  # (C, H, W) -> (4C, H/2, W/2)
            for i in range(depth):
                steps += coupling(c, "channel", i)
            splits.append(Split(c))
            c -= c // 2
        else:
            splits.append(None)
        levels.append(steps)
    return MultiScaleFlow(shape, levels, splits)


def vector_layout(dim: int, depth: int, coupling: Coupling) -> MultiScaleFlow:
    """``max(2, depth)`` channel couplings on ``(dim,)`` points, one level."""
    steps: list[FlowStep] = []
    for i in range(max(2, depth)):
        steps += coupling(dim, "channel", i)
    return MultiScaleFlow((dim,), [steps], [None])
