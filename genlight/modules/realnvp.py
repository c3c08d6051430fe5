"""RealNVP (Dinh, Sohl-Dickstein & Bengio 2017): affine coupling layers with checkerboard and channel
masks, squeeze and multi-scale factoring out.

Images: per scale, ``num_couplings`` checkerboard couplings, squeeze, ``num_couplings`` channel
couplings, then half the channels leave the flow; the last scale has ``num_couplings + 1``
checkerboard couplings. ``log_s = g * tanh(h)`` with a learned per-channel ``g``. The s,t networks
are residual conv nets **without** normalisation layers (the paper's batch norm makes training and
evaluation differ: FAMILIES.md §5); the flow's own batch norm is replaced by ActNorm after every
coupling (``actnorm=True``, data-initialised). Data are dequantised (uniform or variational), mapped
by ``logit(a + (1 - 2a) y)`` with its Jacobian, so the bits/dim are the paper's figure (a bound, see
:class:`~genlight.modules.flow.NormalizingFlow`). 2-D points: alternating channel couplings
with MLP s,t networks; the density is exact.
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
    LogitTransform,
    MLPCouplingNet,
    MultiScaleFlow,
    Shift,
    multiscale_layout,
    vector_layout,
)
from genlight.ranges import Depth, Fraction, Levels, LogitAlpha, NonNegativeFloat, NonNegativeInt, PositiveFloat, Size
from genlight.registry import register_model


@register_model("realnvp")
class RealNVP(NormalizingFlow):
    """RealNVP on images (multi-scale) or on 2-D points (a stack of couplings).

    Args:
        image_shape: ``(C, H, W)`` (H, W multiples of ``2 ** (num_scales - 1)``) or ``(d,)`` points.
        num_levels: pixel levels (linked from the datamodule; 0 for continuous points).
        num_scales: scales of the multi-scale architecture (images).
        num_couplings: couplings per mask type and scale (images) or in total (points).
        hidden: width of the s,t networks.
        num_blocks: residual blocks per s,t network (images) / hidden layers (points).
        dropout: dropout inside the residual blocks.
        actnorm: an ActNorm layer after every coupling.
        preprocessing: ``logit`` (RealNVP, with ``logit_alpha``) or ``shift`` (``y - 1/2``).
        logit_alpha: ``a`` of ``logit(a + (1 - 2a) y)``.
        dequantization: ``uniform`` or ``variational`` (Flow++).
        dequant_hidden: width of the variational dequantiser's coupling networks.
        dequant_couplings: coupling layers of the variational dequantiser.
        optimizer, lr, weight_decay, warmup_steps, lr_schedule: see :class:`NormalizingFlow`.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"num_couplings": 1, "hidden": 8, "num_blocks": 1}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        num_scales: Depth = 2,
        num_couplings: Depth = 3,
        hidden: Size = 64,
        num_blocks: Depth = 2,
        dropout: Fraction = 0.0,
        actnorm: bool = True,
        preprocessing: Literal["logit", "shift"] = "logit",
        logit_alpha: LogitAlpha = 0.05,
        dequantization: Literal["uniform", "variational"] = "uniform",
        dequant_hidden: Size = 32,
        dequant_couplings: Depth = 4,
        optimizer: Literal["adam", "adamax"] = "adam",
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 5e-5,
        warmup_steps: NonNegativeInt = 100,
        lr_schedule: Literal["constant", "cosine"] = "constant",
    ) -> None:
        super().__init__(
            optimizer=optimizer, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, lr_schedule=lr_schedule
        )
        if num_scales < 1 or num_couplings < 1:
            raise ValueError(f"num_scales and num_couplings must be >= 1, got {num_scales}, {num_couplings}")
        shape = self.setup_data(
            image_shape,
            num_levels,
            multiple_of=2 ** (num_scales - 1),
            dequantization=dequantization,
            dequantization_kwargs={"hidden": dequant_hidden, "num_couplings": dequant_couplings},
        )
        if self.is_images:
            self.flow = self._image_flow(shape)
        else:
            self.flow = self._vector_flow(shape[0])

    def _coupling(self, channels: int, mask: Literal["checkerboard", "channel"], parity: int) -> list[FlowStep]:
        hp = self.hparams

        def make_net(c_in: int, c_out: int) -> nn.Module:
            if self.is_images:
                return ConvCouplingNet(c_in, c_out, hp.hidden, hp.num_blocks, hp.dropout)
            return MLPCouplingNet(c_in, c_out, hp.hidden, hp.num_blocks)

        steps: list[FlowStep] = [AffineCoupling(channels, make_net, mask, parity, "tanh")]
        return [*steps, ActNorm(channels)] if hp.actnorm else steps

    def _image_flow(self, shape: tuple[int, ...]) -> MultiScaleFlow:
        hp = self.hparams
        return multiscale_layout(
            shape,
            hp.num_scales,
            hp.num_couplings,
            LogitTransform(hp.logit_alpha) if hp.preprocessing == "logit" else Shift(-0.5),
            self._coupling,
        )

    def _vector_flow(self, dim: int) -> MultiScaleFlow:
        return vector_layout(dim, self.hparams.num_couplings, self._coupling)
