"""``gan``: the original GAN (Goodfellow et al. 2014) with MLP generator and discriminator, for 2-D
points (toy2d) and small images.

``min_G max_D E_x[log D(x)] + E_z[log(1 - D(G(z)))]``; by default G maximises ``log D(G(z))`` instead
(the non-saturating loss, strong gradients early in training). Any loss of
:data:`~genlight.nn.adversarial.ADVERSARIAL_LOSSES` can be chosen. See
:mod:`genlight.modules.adversarial` for what one step is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

from torch import Tensor, nn

from genlight.functional import check_image_shape
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.adversarial import AdversarialLoss
from genlight.nn.augment import DEFAULT_POLICY, Augmentation
from genlight.nn.mlp import MLPDiscriminator, mlp_layers
from genlight.ranges import Depth, Fraction, NonNegativeFloat, OpenUnitInterval, PositiveFloat, PositiveInt, Size
from genlight.registry import register_model

__all__ = ["GAN", "MLPDiscriminator", "MLPGenerator"]


class MLPGenerator(nn.Module):
    """``z -> x``: ReLU MLP; ``tanh`` output reshaped to ``shape`` for images, linear for points."""

    def __init__(self, latent_dim: int, shape: Sequence[int], hidden: int, layers: int) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.images = len(self.shape) == 3
        self.net = nn.Sequential(*mlp_layers([latent_dim, *[hidden] * layers, math.prod(self.shape)], nn.ReLU()))

    def forward(self, z: Tensor) -> Tensor:
        out = self.net(z).view(-1, *self.shape)  # (B, latent_dim) -> (B, *shape)
        return out.tanh() if self.images else out


@register_model("gan", tags=("adversarial", "sampler"))
class GAN(AdversarialModule):
    """MLP GAN.

    Args:
        image_shape: ``(2,)`` points or ``(C, H, W)`` images in [0, 1]; linked from the datamodule.
        latent_dim: size of ``z ~ N(0, I)``.
        hidden: width of the hidden layers of both MLPs.
        layers: number of hidden layers of both MLPs.
        loss: ``non_saturating`` | ``minimax`` | ``hinge`` | ``lsgan`` | ``wasserstein_gp``.
        n_critic: discriminator steps per generator step.
        gp_weight: weight of the gradient penalty (used with any loss when > 0; 10 for ``wasserstein_gp``).
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator.
        betas: Adam's ``(beta1, beta2)`` of both, each in [0, 1).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "hidden": 16, "layers": 1}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (2,),
        latent_dim: Size = 8,
        hidden: Size = 128,
        layers: Depth = 3,
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
        ndim = len(tuple(image_shape))
        shape = check_image_shape(image_shape, type(self).__name__, ndim=ndim if ndim in (1, 3) else 3)
        self.generator = MLPGenerator(latent_dim, shape, hidden, layers)
        self.discriminator = MLPDiscriminator(shape, hidden, layers)
