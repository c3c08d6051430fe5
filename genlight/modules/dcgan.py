"""``dcgan``: deep convolutional GAN (Radford et al. 2016), sized from ``image_shape`` (8x8 to 64x64).

The classic recipe: strided (transposed) convolutions, batch norm in both nets (none on D's first
layer), ReLU in G and LeakyReLU(0.2) in D, ``tanh`` output, weights ``N(0, 0.02)``, Adam(2e-4, β1 0.5),
the non-saturating loss on logits, and an EMA of the generator for samples and FID. Networks:
:mod:`genlight.nn.dcgan`; one step: :mod:`genlight.modules.adversarial`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from genlight.functional import check_image_shape
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.adversarial import AdversarialLoss, dcgan_init_
from genlight.nn.augment import DEFAULT_POLICY, Augmentation
from genlight.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from genlight.ranges import DepthOrZero, Fraction, NonNegativeFloat, OpenUnitInterval, PositiveFloat, PositiveInt, Size
from genlight.registry import register_model

__all__ = ["DCGAN"]


@register_model("dcgan", tags=("adversarial", "sampler"))
class DCGAN(AdversarialModule):
    """DCGAN.

    Args:
        image_shape: ``(C, H, W)``, H and W a multiple of 4 (8, 16, 28, 32, 64, ...); from the datamodule.
        latent_dim: size of ``z ~ N(0, I)``.
        width: channels at full resolution; doubled at every halving (``8 * width`` at 4x4 for 32x32).
        extra_layers: stride-1 3x3 blocks added at every resolution in both nets.
        d_norm: discriminator normalisation: ``batch`` | ``spectral`` | ``layer`` | ``none``.
        loss: ``non_saturating`` | ``minimax`` | ``hinge`` | ``lsgan`` | ``wasserstein_gp``.
        n_critic: discriminator steps per generator step.
        gp_weight: gradient-penalty weight (> 0 adds the penalty to any loss).
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator.
        betas: Adam's ``(beta1, beta2)`` of both, each in [0, 1).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "width": 4}
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images",)

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        latent_dim: Size = 64,
        width: Size = 64,
        extra_layers: DepthOrZero = 0,
        d_norm: str = "batch",
        loss: AdversarialLoss = "non_saturating",
        n_critic: PositiveInt = 1,
        gp_weight: NonNegativeFloat = 0.0,
        lr_g: PositiveFloat = 2e-4,
        lr_d: PositiveFloat = 2e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        augment: Augmentation = "none",
        augment_policy: str = DEFAULT_POLICY,
        ada_target: OpenUnitInterval = 0.6,
        lecam_weight: NonNegativeFloat = 0.0,
        r1_gamma: NonNegativeFloat = 0.0,
        r1_every: PositiveInt = 1,
        accumulate: PositiveInt = 1,
    ) -> None:
        super().__init__(
            image_shape=image_shape,
            latent_dim=latent_dim,
            loss=loss,
            n_critic=n_critic,
            gp_weight=gp_weight,
            lr_g=lr_g,
            lr_d=lr_d,
            betas=betas,
            augment=augment,
            augment_policy=augment_policy,
            ada_target=ada_target,
            lecam_weight=lecam_weight,
            r1_gamma=r1_gamma,
            r1_every=r1_every,
            accumulate=accumulate,
        )
        shape = check_image_shape(image_shape, type(self).__name__, multiple_of=4, min_size=8)
        self.generator = dcgan_init_(DCGANGenerator(latent_dim, shape, width, extra_layers=extra_layers))
        self.discriminator = dcgan_init_(
            DCGANDiscriminator(shape, width, norm=d_norm, extra_layers=extra_layers, head_bias=loss != "wasserstein_gp")
        )
