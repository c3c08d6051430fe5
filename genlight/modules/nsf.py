"""Neural spline flows (Durkan, Bekasov, Murray & Papamakarios 2019): monotonic rational-quadratic
splines (``K`` bins on ``[-B, B]``, identity outside) as the elementwise transform of coupling or
autoregressive layers, ``y_d = g(x_d; theta_d)``, ``log|det| = sum_d log g'(x_d)``.

* ``variant: coupling`` (RQ-NSF (C)): ``theta`` from the other half of the input. Images: RealNVP's
  multi-scale layout (per scale ``depth`` checkerboard couplings, squeeze, ``depth`` channel couplings,
  then half the channels leave; the last scale ``depth + 1`` checkerboard couplings), ActNorm after
  every coupling and, with ``invconv``, an LU 1x1 convolution before every channel coupling (Glow, as
  the paper's image flows); conv residual conditioners without normalisation. Points: alternating
  channel couplings with MLP conditioners.
* ``variant: autoregressive`` (RQ-NSF (AR)): ``theta_d`` from ``x_<d`` by a MADE, alternating orders,
  ActNorm between steps; images flattened in raster order. One pass for the density, ``D`` to sample.

Images are dequantised (uniform or variational) and preprocessed by ``logit(a + (1 - 2a) y)`` (or a
shift) with its Jacobian, so bits/dim are a dequantisation bound (:class:`~genlight.modules.flow.NormalizingFlow`);
on 2-D points the density is exact.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import nn

from genlight.modules.flow import NormalizingFlow
from genlight.nn.autoregressive_flows import Flatten, MaskedSplineAutoregressive
from genlight.nn.flows import (
    ActNorm,
    ConvCouplingNet,
    FlowStep,
    InvConv1x1,
    LogitTransform,
    MLPCouplingNet,
    MultiScaleFlow,
    Shift,
    multiscale_layout,
    vector_layout,
)
from genlight.nn.spline_coupling import SplineCoupling
from genlight.ranges import Depth, Fraction, Levels, LogitAlpha, NonNegativeFloat, NonNegativeInt, PositiveFloat, Size
from genlight.registry import register_model


@register_model("nsf")
class NSF(NormalizingFlow):
    """Rational-quadratic neural spline flow, coupling or autoregressive, on images or 2-D points.

    Args:
        image_shape: ``(C, H, W)`` (coupling: H, W multiples of ``2 ** (num_scales - 1)``) or ``(d,)`` points.
        num_levels: pixel levels (linked from the datamodule; 0 for continuous points).
        variant: ``coupling`` or ``autoregressive``.
        num_scales: scales of the multi-scale architecture (coupling, images).
        depth: couplings per mask type and scale (coupling, images), or layers in total (points, and
            the autoregressive variant).
        hidden: width of the conditioners.
        num_blocks: residual blocks per conv conditioner, or hidden layers per MLP / MADE.
        dropout: dropout inside the conditioners.
        num_bins: spline bins ``K``.
        tail_bound: ``B``: the spline acts on ``[-B, B]``, the identity outside.
        actnorm: an ActNorm layer after every spline layer.
        invconv: an LU 1x1 convolution before every channel coupling (coupling, images).
        preprocessing: ``logit`` (with ``logit_alpha``) or ``shift`` (``y - 1/2``), images only.
        logit_alpha: ``a`` of ``logit(a + (1 - 2a) y)``.
        dequantization: ``uniform`` or ``variational`` (Flow++).
        dequant_hidden: width of the variational dequantiser's coupling networks.
        dequant_couplings: coupling layers of the variational dequantiser.
        optimizer, lr, weight_decay, warmup_steps, lr_schedule: see :class:`NormalizingFlow`.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"depth": 1, "hidden": 8, "num_blocks": 1, "num_bins": 4}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        variant: Literal["coupling", "autoregressive"] = "coupling",
        num_scales: Depth = 2,
        depth: Depth = 3,
        hidden: Size = 64,
        num_blocks: Depth = 2,
        dropout: Fraction = 0.0,
        num_bins: Size = 8,
        tail_bound: PositiveFloat = 3.0,
        actnorm: bool = True,
        invconv: bool = False,
        preprocessing: Literal["logit", "shift"] = "logit",
        logit_alpha: LogitAlpha = 0.05,
        dequantization: Literal["uniform", "variational"] = "uniform",
        dequant_hidden: Size = 32,
        dequant_couplings: Depth = 4,
        optimizer: Literal["adam", "adamax"] = "adam",
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        warmup_steps: NonNegativeInt = 100,
        lr_schedule: Literal["constant", "cosine"] = "constant",
    ) -> None:
        super().__init__(
            optimizer=optimizer, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, lr_schedule=lr_schedule
        )
        if variant not in ("coupling", "autoregressive"):
            raise ValueError(f"variant must be 'coupling' or 'autoregressive', got {variant!r}")
        coupling = variant == "coupling"
        shape = self.setup_data(
            image_shape,
            num_levels,
            multiple_of=2 ** (num_scales - 1) if coupling and len(tuple(image_shape)) == 3 else 1,
            dequantization=dequantization,
            dequantization_kwargs={"hidden": dequant_hidden, "num_couplings": dequant_couplings},
        )
        if not coupling:
            self.flow = self._autoregressive_flow(shape)
        elif self.is_images:
            self.flow = self._image_flow(shape)
        else:
            self.flow = self._vector_flow(shape[0])

    def _preprocessing(self) -> FlowStep:
        hp = self.hparams
        return LogitTransform(hp.logit_alpha) if hp.preprocessing == "logit" else Shift(-0.5)

    def _coupling(self, channels: int, mask: Literal["checkerboard", "channel"], parity: int) -> list[FlowStep]:
        hp = self.hparams

        def make_net(c_in: int, c_out: int) -> nn.Module:
            if self.is_images:
                return ConvCouplingNet(c_in, c_out, hp.hidden, hp.num_blocks, hp.dropout)
            return MLPCouplingNet(c_in, c_out, hp.hidden, hp.num_blocks)

        steps: list[FlowStep] = (
            [InvConv1x1(channels, lu=True)] if hp.invconv and mask == "channel" and self.is_images else []
        )
        steps.append(SplineCoupling(channels, make_net, mask, parity, hp.num_bins, hp.tail_bound))
        return [*steps, ActNorm(channels)] if hp.actnorm else steps

    def _image_flow(self, shape: tuple[int, ...]) -> MultiScaleFlow:
        hp = self.hparams
        return multiscale_layout(shape, hp.num_scales, hp.depth, self._preprocessing(), self._coupling)

    def _vector_flow(self, dim: int) -> MultiScaleFlow:
        return vector_layout(dim, self.hparams.depth, self._coupling)

    def _autoregressive_flow(self, shape: tuple[int, ...]) -> MultiScaleFlow:
        hp = self.hparams
        steps: list[FlowStep] = [self._preprocessing(), Flatten(shape)] if self.is_images else []
        dim = self.num_dims
        for i in range(hp.depth):
            steps.append(
                MaskedSplineAutoregressive(
                    dim, hp.hidden, hp.num_blocks, i % 2 == 1, hp.num_bins, hp.tail_bound, dropout=hp.dropout
                )
            )
            if hp.actnorm:
                steps.append(ActNorm(dim))
        return MultiScaleFlow(shape, [steps], [None])
