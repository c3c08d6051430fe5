"""MAF, the masked autoregressive flow (Papamakarios, Pavlakou & Murray 2017).

Each step is a MADE-conditioned affine map ``x_d = u_d exp(alpha_d(x_<d)) + mu_d(x_<d)``; the density
``log p(x) = log N(u; 0, I) - sum_layers sum_d alpha_d`` takes one pass per step, sampling ``D`` passes.
Steps alternate the MADE's order (natural, reversed) and are followed by ActNorm (per dimension,
data-initialised) in place of the paper's batch norm, whose log-determinant uses batch statistics in
training and running ones in evaluation (FAMILIES.md §26). Images are dequantised (uniform or
variational), preprocessed by ``logit(a + (1 - 2a) y)`` with its Jacobian and flattened to ``D = C H W``
in raster order, as the paper does on MNIST; the bits/dim are then a dequantisation bound
(:class:`~genlight.modules.flow.NormalizingFlow`). On 2-D points the density is exact.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from genlight.modules.flow import NormalizingFlow
from genlight.nn.autoregressive_flows import Flatten, MaskedAffineAutoregressive
from genlight.nn.flows import ActNorm, FlowStep, LogitTransform, MultiScaleFlow, Shift
from genlight.ranges import Depth, Fraction, Levels, LogitAlpha, NonNegativeFloat, NonNegativeInt, PositiveFloat, Size
from genlight.registry import register_model


@register_model("maf")
class MAF(NormalizingFlow):
    """MAF on images (flattened) or on 2-D points.

    Args:
        image_shape: ``(C, H, W)`` or ``(d,)`` points.
        num_levels: pixel levels (linked from the datamodule; 0 for continuous points).
        depth: MADE steps (alternating orders).
        hidden: hidden units of each MADE layer.
        num_blocks: hidden layers per MADE (residual after the first).
        dropout: dropout on the MADEs' residual branches.
        actnorm: an ActNorm layer (per dimension) after every step.
        preprocessing: ``logit`` (with ``logit_alpha``) or ``shift`` (``y - 1/2``), images only.
        logit_alpha: ``a`` of ``logit(a + (1 - 2a) y)``.
        dequantization: ``uniform`` or ``variational`` (Flow++).
        dequant_hidden: width of the variational dequantiser's coupling networks.
        dequant_couplings: coupling layers of the variational dequantiser.
        optimizer, lr, weight_decay, warmup_steps, lr_schedule: see :class:`NormalizingFlow`.
    """

    #: the logit maps (0, 1) into the box ``|v| < logit(1 - a)``; what the base density puts outside is
    #: lost, 6% of it for the kit's randomly perturbed tiny MAF at ``a = 0.05`` (RealNVP's: 2.5%), 0.1% at
    #: ``a = 0.01`` (the MAF paper used 1e-6 on MNIST)
    smoke_kwargs: ClassVar[dict[str, Any]] = {"depth": 2, "hidden": 16, "num_blocks": 1, "logit_alpha": 0.01}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        depth: Depth = 5,
        hidden: Size = 256,
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
        weight_decay: NonNegativeFloat = 0.0,
        warmup_steps: NonNegativeInt = 100,
        lr_schedule: Literal["constant", "cosine"] = "constant",
    ) -> None:
        super().__init__(
            optimizer=optimizer, lr=lr, weight_decay=weight_decay, warmup_steps=warmup_steps, lr_schedule=lr_schedule
        )
        shape = self.setup_data(
            image_shape,
            num_levels,
            dequantization=dequantization,
            dequantization_kwargs={"hidden": dequant_hidden, "num_couplings": dequant_couplings},
        )
        steps: list[FlowStep] = []
        if self.is_images:
            steps += [LogitTransform(logit_alpha) if preprocessing == "logit" else Shift(-0.5), Flatten(shape)]
        dim = self.num_dims
        for i in range(depth):
            steps.append(MaskedAffineAutoregressive(dim, hidden, num_blocks, reverse=i % 2 == 1, dropout=dropout))
            if actnorm:
                steps.append(ActNorm(dim))
        self.flow = MultiScaleFlow(shape, [steps], [None])
