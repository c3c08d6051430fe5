"""``wgan_gp``: Wasserstein GAN with gradient penalty (Gulrajani et al. 2017) on the DCGAN networks.

The critic maximises ``E[D(x)] - E[D(G(z))]`` subject to ``λ E[(‖∇D(x̂)‖ - 1)²]`` at random
interpolates ``x̂``; the paper's defaults: ``λ = 10``, five critic steps per generator step, Adam(1e-4,
β = (0, 0.9)), and no batch norm in the critic (the penalty is per example; layer norm instead).
"""

from __future__ import annotations

from typing import Any, ClassVar

from genlight.modules.dcgan import DCGAN
from genlight.nn.adversarial import AdversarialLoss
from genlight.nn.augment import DEFAULT_POLICY, Augmentation
from genlight.ranges import DepthOrZero, Fraction, NonNegativeFloat, OpenUnitInterval, PositiveFloat, PositiveInt, Size
from genlight.registry import register_model

__all__ = ["WGANGP"]


@register_model("wgan_gp", tags=("adversarial", "sampler"))
class WGANGP(DCGAN):
    """DCGAN networks trained as a WGAN-GP; the arguments are DCGAN's with the paper's defaults."""

    smoke_kwargs: ClassVar[dict[str, Any]] = {**DCGAN.smoke_kwargs, "n_critic": 1}  # a one-step smoke test trains G too
    # torch.compile (genlight.callbacks.Compile): the generator only; the gradient penalty differentiates the
    # critic twice, and AOT autograd (inductor, aot_eager) does not support double backward
    compile_modules: ClassVar[tuple[str, ...] | None] = ("generator",)

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        latent_dim: Size = 64,
        width: Size = 64,
        extra_layers: DepthOrZero = 0,
        d_norm: str = "layer",
        loss: AdversarialLoss = "wasserstein_gp",
        n_critic: PositiveInt = 5,
        gp_weight: NonNegativeFloat = 10.0,
        lr_g: PositiveFloat = 1e-4,
        lr_d: PositiveFloat = 1e-4,
        betas: tuple[Fraction, Fraction] = (0.0, 0.9),
        augment: Augmentation = "none",
        augment_policy: str = DEFAULT_POLICY,
        ada_target: OpenUnitInterval = 0.6,
        lecam_weight: NonNegativeFloat = 0.0,
        r1_gamma: NonNegativeFloat = 0.0,
        r1_every: PositiveInt = 1,
        accumulate: PositiveInt = 1,
    ) -> None:
        super().__init__(
            image_shape,
            latent_dim,
            width,
            extra_layers,
            d_norm,
            loss,
            n_critic,
            gp_weight,
            lr_g,
            lr_d,
            betas,
            augment,
            augment_policy,
            ada_target,
            lecam_weight,
            r1_gamma,
            r1_every,
            accumulate,
        )
