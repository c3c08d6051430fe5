"""``cgan``: class-conditional GAN with conditional batch norm in the generator and a spectrally
normalised projection discriminator (Miyato & Koyama 2018, "cGANs with Projection Discriminator";
Miyato et al. 2018, "Spectral Normalization for GANs").

* Generator: the DCGAN generator of :mod:`genlight.nn.dcgan` with conditional batch norm in every
  block, ``(1 + γ_y) BN(h) + β_y`` (γ, β class embeddings initialised at zero: plain BN at init).
* Discriminator: the DCGAN discriminator with spectral norm on every layer (no other normalisation)
  and the projection term of Miyato & Koyama (2018, eq. 3), ``D(x, y) = ψ(φ(x)) + ⟨embed(y), Σ_hw φ(x)⟩``,
  features sum-pooled as in the official code.
* Loss: hinge (Lim & Ye 2017), the SNGAN / projection recipe; fake labels are drawn from the uniform
  class prior (:meth:`~genlight.modules.adversarial.AdversarialModule.fake_labels`).

Samples use the EMA of the generator in eval mode, i.e. the (averaged) running batch-norm statistics.
One training step is described in :mod:`genlight.modules.adversarial`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.adversarial import AdversarialLoss, dcgan_init_
from genlight.nn.augment import DEFAULT_POLICY, Augmentation
from genlight.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from genlight.ranges import (
    ClassCount,
    DepthOrZero,
    Fraction,
    NonNegativeFloat,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    Size,
)
from genlight.registry import register_model

__all__ = ["CGAN"]


@register_model("cgan", tags=("adversarial", "sampler", "conditional"))
class CGAN(AdversarialModule):
    """Conditional GAN: ``sample(n, y=labels)`` draws images of the given classes.

    Args:
        image_shape: ``(C, H, W)``, H and W a multiple of 4 (8, 16, 28, 32, 64, ...); from the datamodule.
        num_classes: number of classes (> 0), linked from the datamodule by the CLI (labelled data only).
        latent_dim: size of ``z ~ N(0, I)``.
        width: channels at full resolution; doubled at every halving.
        extra_layers: stride-1 3x3 blocks added at every resolution in both nets.
        loss: ``hinge`` (default) | ``non_saturating`` | ``minimax`` | ``lsgan`` | ``wasserstein_gp``.
        n_critic: discriminator steps per generator step.
        gp_weight: gradient-penalty weight (> 0 adds the penalty to any loss; off for SN).
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator.
        betas: Adam's ``(beta1, beta2)`` of both, each in [0, 1).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "width": 4}
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images",)
    needs_labels: ClassVar[bool] = True
    # torch.compile (genlight.callbacks.Compile): the generator only; the spectrally normalised discriminator
    # compiles but trains differently under AOT autograd (inductor, aot_eager): weights 2e-4 apart after 3 steps
    compile_modules: ClassVar[tuple[str, ...] | None] = ("generator",)

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        num_classes: ClassCount = 10,
        latent_dim: Size = 64,
        width: Size = 64,
        extra_layers: DepthOrZero = 0,
        loss: AdversarialLoss = "hinge",
        n_critic: PositiveInt = 1,
        gp_weight: NonNegativeFloat = 0.0,
        lr_g: PositiveFloat = 2e-4,
        lr_d: PositiveFloat = 2e-4,
        betas: tuple[Fraction, Fraction] = (0.0, 0.9),
        augment: Augmentation = "none",
        augment_policy: str = DEFAULT_POLICY,
        ada_target: OpenUnitInterval = 0.6,
        lecam_weight: NonNegativeFloat = 0.0,
        r1_gamma: NonNegativeFloat = 0.0,
        r1_every: PositiveInt = 1,
        accumulate: PositiveInt = 1,
    ) -> None:
        shape = check_image_shape(image_shape, type(self).__name__, multiple_of=4, min_size=8)
        if int(num_classes) < 1:
            raise IncompatibleDataError(
                f"cgan needs labelled data (num_classes > 0), got num_classes={num_classes}; pick a labelled "
                "datamodule (digits, mnist, cifar10, ...) or set --model.num_classes, or use the unconditional "
                "dcgan for unlabelled data"
            )
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
        self.num_classes = int(num_classes)
        self.generator = dcgan_init_(
            DCGANGenerator(latent_dim, shape, width, num_classes=self.num_classes, extra_layers=extra_layers)
        )
        self.discriminator = dcgan_init_(
            DCGANDiscriminator(
                shape,
                width,
                norm="spectral",
                num_classes=self.num_classes,
                extra_layers=extra_layers,
                head_bias=loss != "wasserstein_gp",
            )
        )

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.check_num_classes("use the unconditional dcgan")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """``val/d_real``: the discriminator's mean output on held-out real images with their labels, a
        diagnostic of D overfitting (compare ``train``'s real outputs; Karras et al. 2020, ADA's r_v)."""
        x, y = batch[0], batch[1].long()
        self.log("val/d_real", self.critic(self.to_model_range(x), y).float().mean(), sync_dist=True)

    def labels(self, y: Tensor | int, n: int) -> Tensor:
        """``y`` as ``(n,)`` class ids on this device (an int or a 0-d tensor is repeated)."""
        y = torch.as_tensor(y, device=self.device).long()
        y = y.expand(n) if y.dim() == 0 else y.view(-1)
        if len(y) != n or (n and (y.min() < 0 or y.max() >= self.num_classes)):
            raise ValueError(f"labels y must be {n} class ids in [0, {self.num_classes}), got {y.tolist()}")
        return y

    def decode(self, z: Tensor, y: Tensor | int | None = None) -> Tensor:
        """Images in [0, 1] from latent codes and labels ``y`` (``None``: drawn from the uniform class
        prior, as in :meth:`sample`; latent walks pass a label per row)."""
        y = self.fake_labels(len(z)) if y is None else self.labels(y, len(z))
        return super().decode(z, y)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | int | None = None) -> Tensor:
        """``n`` images in [0, 1] of classes ``y`` (an int, ``(n,)`` ids, or ``None``: drawn from the
        uniform class prior)."""
        y = self.fake_labels(n) if y is None else self.labels(y, n)
        return self.decode(self.sample_latent(n), y)
