"""Glow (Kingma & Dhariwal 2018): steps of ActNorm (data-dependent init), invertible 1x1 convolution
(plain with a float64 determinant, or LU) and a coupling, in a multi-scale architecture.

Images: per level, squeeze, ``depth`` steps, then half the channels are factored out (not after the
last level), with a learned conditional prior ``N(mu(z_1), sigma(z_1))`` from a zero-initialised conv
(``learned_prior``) and a learned top prior. The coupling is affine with Glow's ``sigmoid(h + 2)``
scale or additive (the official default); the s,t networks are conv nets without normalisation.
Data are dequantised (uniform or variational, Flow++) and shifted to [-1/2, 1/2] (or logit), every
Jacobian included, so the bits/dim are the paper's figure (a bound, see
:class:`~genlight.modules.flow.NormalizingFlow`). 2-D points: steps of ActNorm, an invertible
2x2 linear map and a coupling with an MLP; the density is exact.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import nn

from genlight.modules.flow import NormalizingFlow
from genlight.nn.flows import (
    ActNorm,
    AffineCoupling,
    ConvCouplingNet,
    FlowStep,
    InvConv1x1,
    LogitTransform,
    MLPCouplingNet,
    MultiScaleFlow,
    Shift,
    Split,
    Squeeze,
    StandardNormalTop,
)
from genlight.ranges import Depth, Fraction, Levels, LogitAlpha, NonNegativeFloat, NonNegativeInt, PositiveFloat, Size
from genlight.registry import register_model


@register_model("glow")
class Glow(NormalizingFlow):
    """Glow on images (multi-scale) or on 2-D points.

    Args:
        image_shape: ``(C, H, W)`` (H, W multiples of ``2 ** num_scales``) or ``(d,)`` points.
        num_levels: pixel levels (linked from the datamodule; 0 for continuous points).
        num_scales: levels of the multi-scale architecture (images; Glow's ``L``).
        depth: flow steps per level (Glow's ``K``; the number of steps on points).
        hidden: width of the coupling networks.
        num_blocks: residual blocks per coupling network (images) / hidden layers (points).
        dropout: dropout inside the residual blocks.
        coupling: ``affine`` (``sigmoid(h + 2)`` scale) or ``additive``.
        lu: LU-decomposed 1x1 convolutions.
        learned_prior: learned conditional priors at the splits and a learned top prior.
        preprocessing: ``shift`` (``y - 1/2``, Glow) or ``logit`` (with ``logit_alpha``).
        logit_alpha: ``a`` of ``logit(a + (1 - 2a) y)`` (with ``preprocessing: logit``), in (0, 0.5).
        dequantization: ``uniform`` or ``variational`` (Flow++).
        dequant_hidden: width of the variational dequantiser's coupling networks.
        dequant_couplings: coupling layers of the variational dequantiser.
        optimizer, lr, weight_decay, warmup_steps, lr_schedule: see :class:`NormalizingFlow`.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"num_scales": 2, "depth": 1, "hidden": 8, "num_blocks": 1}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        num_scales: Depth = 2,
        depth: Depth = 4,
        hidden: Size = 64,
        num_blocks: Depth = 1,
        dropout: Fraction = 0.0,
        coupling: Literal["affine", "additive"] = "affine",
        lu: bool = True,
        learned_prior: bool = True,
        preprocessing: Literal["shift", "logit"] = "shift",
        logit_alpha: LogitAlpha = 0.05,
        dequantization: Literal["uniform", "variational"] = "uniform",
        dequant_hidden: Size = 32,
        dequant_couplings: Depth = 4,
        optimizer: Literal["adam", "adamax"] = "adamax",
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        warmup_steps: NonNegativeInt = 100,
        lr_schedule: Literal["constant", "cosine"] = "constant",
    ) -> None:
        super().__init__(
            optimizer=optimizer, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, lr_schedule=lr_schedule
        )
        if num_scales < 1 or depth < 1:
            raise ValueError(f"num_scales and depth must be >= 1, got {num_scales}, {depth}")
        if coupling not in ("affine", "additive"):
            raise ValueError(f"coupling must be 'affine' or 'additive', got {coupling!r}")
        shape = self.setup_data(
            image_shape,
            num_levels,
            multiple_of=2**num_scales,
            dequantization=dequantization,
            dequantization_kwargs={"hidden": dequant_hidden, "num_couplings": dequant_couplings},
        )
        self.flow = self._image_flow(shape) if self.is_images else self._vector_flow(shape[0])

    def _step(self, channels: int, parity: int) -> list[FlowStep]:
        """ActNorm -> invertible 1x1 conv -> coupling (Glow's step of flow)."""
        hp = self.hparams

        def make_net(c_in: int, c_out: int) -> nn.Module:
            if self.is_images:
                return ConvCouplingNet(c_in, c_out, hp.hidden, hp.num_blocks, hp.dropout)
            return MLPCouplingNet(c_in, c_out, hp.hidden, hp.num_blocks)

        scale = "sigmoid" if hp.coupling == "affine" else "additive"
        return [
            ActNorm(channels),
            InvConv1x1(channels, lu=hp.lu),
            AffineCoupling(channels, make_net, "channel", parity, scale),  # type: ignore[arg-type]
        ]

    def _image_flow(self, shape: tuple[int, ...]) -> MultiScaleFlow:
        hp = self.hparams
        c, h, w = shape
        pre: FlowStep = Shift(-0.5) if hp.preprocessing == "shift" else LogitTransform(hp.logit_alpha)
        levels: list[list[FlowStep]] = []
        splits: list[Split | None] = []
        for level in range(hp.num_scales):
            steps: list[FlowStep] = ([pre] if level == 0 else []) + [Squeeze()]
            c, h, w = 4 * c, h // 2, w // 2
            for _ in range(hp.depth):
                steps += self._step(c, 0)
            last = level == hp.num_scales - 1
            splits.append(None if last else Split(c, learned_prior=hp.learned_prior))
            if not last:
                c -= c // 2
            levels.append(steps)
        return MultiScaleFlow(shape, levels, splits, StandardNormalTop((c, h, w), learned=hp.learned_prior))

    def _vector_flow(self, dim: int) -> MultiScaleFlow:
        steps: list[FlowStep] = []
        for i in range(self.hparams.depth):
            steps += self._step(dim, i)
        return MultiScaleFlow((dim,), [steps], [None])
