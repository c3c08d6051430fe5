"""What the generator/discriminator families share (``gan``, ``dcgan``, ``wgan_gp``, ``cgan``, ``infogan``):
manual optimisation of a generator ``G`` and a discriminator ``D`` in the style of Lightning's GAN example.

One ``training_step`` = one batch:

1. one discriminator step on the real batch and a detached fake batch, with the family's loss
   (:func:`~genlight.nn.adversarial.discriminator_loss`) plus ``gp_weight`` times the gradient penalty
   when ``gp_weight > 0``;
2. a generator step on the same fakes, every ``n_critic``-th batch (``(batch_idx + 1) % n_critic == 0``),
   so each critic step sees a fresh real batch, as in Gulrajani et al.'s ``CRITIC_ITERS`` loop.

``trainer.global_step`` counts optimizer steps: it moves ``1 + 1/n_critic`` times per batch (twice with
``n_critic = 1``); budget runs with ``max_epochs`` or ``max_time``. The generator is averaged by the
shared :class:`~genlight.callbacks.EMA` (``ema_target = "generator"``); samples, grids and FID use it.

Subclasses build ``self.generator`` (``G(z[, y]) -> [-1, 1]``) and ``self.discriminator``
(``D(x[, y]) -> (B,)`` logits) in ``__init__`` and may extend :meth:`discriminator_terms` /
:meth:`generator_terms` (each returns named loss terms; their sum is minimised), :meth:`sample_latent`
and :meth:`generator_parameters` / :meth:`discriminator_parameters` (InfoGAN's Q head).

Under DDP a generator-only backward leaves the discriminator without gradients (and the other way
round), so ``ddp_find_unused_parameters = True`` (see :class:`~genlight.module.GenerativeModule`); the
discriminator runs once per ``training_step`` forward of the DDP wrapper, so buffer synchronisation (batch-norm statistics, spectral-norm vectors) happens once per step. Under
``16-mixed`` ``manual_backward`` scales the loss and the optimizer step unscales it; the gradient
penalty runs in fp32 (``autograd.grad`` bypasses the scaler).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import Tensor, nn

from genlight.module import GenerativeModule
from genlight.nn.adversarial import AdversarialLoss, check_loss, discriminator_loss, generator_loss, gradient_penalty
from genlight.ranges import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Size, check_arguments
from genlight.types import class_count

__all__ = ["AdversarialModule"]


class AdversarialModule(GenerativeModule):
    """Base of the G/D families; see the module docstring.

    Args:
        image_shape: ``(C, H, W)`` images or ``(d,)`` points; from the datamodule.
        latent_dim: size of ``z ~ N(0, I)`` (1 to 4096).
        loss: ``non_saturating`` | ``minimax`` | ``hinge`` | ``lsgan`` | ``wasserstein_gp``.
        n_critic: discriminator steps per generator step (>= 1).
        gp_weight: gradient-penalty weight (>= 0; > 0 adds the penalty to any loss).
        lr_g: Adam learning rate of the generator (> 0).
        lr_d: Adam learning rate of the discriminator (> 0).
        betas: Adam's ``(beta1, beta2)`` of both, each in [0, 1).

    The base saves the hyper-parameters of the whole ``__init__`` chain (Lightning's
    ``save_hyperparameters`` reads every ``__init__`` that led here) and checks every numeric argument
    of the chain against the range its type declares (:func:`genlight.ranges.check_arguments`), so a
    family or a user's subclass passes its arguments to ``super().__init__`` and calls neither
    ``save_hyperparameters`` nor ``check_arguments`` itself. A subclass may declare only some of the
    parent's arguments: the parent's defaults fill the rest. Read them from the attributes the base
    sets (``self.latent_dim``, ``self.lr_g``, ...), not from ``self.hparams``.
    """

    ema_decay: ClassVar[float] = 0.999
    ema_target: ClassVar[str | None] = "generator"
    monitor: ClassVar[str | None] = ""  # no validation figure of its own; FID callbacks may be monitored
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images", "points")
    ddp_find_unused_parameters: ClassVar[bool] = True

    generator: nn.Module
    discriminator: nn.Module

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        latent_dim: Size = 64,
        loss: AdversarialLoss = "non_saturating",
        n_critic: PositiveInt = 1,
        gp_weight: NonNegativeFloat = 0.0,
        lr_g: PositiveFloat = 2e-4,
        lr_d: PositiveFloat = 2e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.automatic_optimization = False
        check_loss(loss)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim, self.adversarial_loss, self.n_critic = int(latent_dim), loss, int(n_critic)
        self.gp_weight, self.lr_g, self.lr_d = float(gp_weight), float(lr_g), float(lr_d)
        self.betas = (float(betas[0]), float(betas[1]))

    # ------------------------------------------------------------------ sampling
    def sample_latent(self, n: int) -> Tensor:
        """``z ~ N(0, I)``, ``(n, latent_dim)``."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """``G(z[, y])`` in the generator's range [-1, 1]."""
        return self.generator(z, y) if class_count(self) else self.generator(z)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Images in [0, 1] from latent codes (points are returned as they are)."""
        out = self.generate(z, y)
        return (out + 1.0) / 2.0 if len(self.image_shape) == 3 else out

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        if class_count(self) and y is None:
            y = torch.randint(class_count(self), (n,), device=self.device)
        return self.decode(self.sample_latent(n), y.to(self.device) if y is not None else None)

    # ------------------------------------------------------------------ losses
    def to_model_range(self, x: Tensor) -> Tensor:
        """Data in [0, 1] to the generator's range [-1, 1] (2-D points are used as they are)."""
        return x * 2.0 - 1.0 if x.dim() == 4 else x

    def critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``D(x[, y])``, one logit per example."""
        return self.discriminator(x, y) if class_count(self) else self.discriminator(x)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the discriminator's penultimate features (the input of its final linear
        map) of images ``x`` in [0, 1], flattened, ``(B, F)``. Label-free: a class-conditional (projection)
        discriminator's label term comes after them."""
        if not callable(getattr(self.discriminator, "features", None)):
            raise NotImplementedError(
                f"{type(self).__name__}'s discriminator has no features(x): give it one to use features"
            )
        return self.discriminator.features(self.to_model_range(x)).flatten(1)

    @torch.no_grad()
    def discriminator_score(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``(B,)`` outlier score of data ``x`` in [0, 1]: minus the discriminator's realness logit
        ``-D(x)`` (higher = less like the training data). A conditional critic is scored at the most
        real-looking class, ``-max_y D(x, y)``, unless labels ``y`` are given."""
        real = self.to_model_range(x)
        if not class_count(self):
            return -self.critic(real).flatten()
        if y is not None:
            return -self.critic(real, y).flatten()
        labels = [torch.full((len(x),), k, dtype=torch.long, device=x.device) for k in range(class_count(self))]
        return -torch.stack([self.critic(real, k).flatten() for k in labels], 1).amax(1)

    def fake_labels(self, n: int) -> Tensor | None:
        """Labels for generated examples: drawn from the uniform class prior (``None`` if unconditional)."""
        return torch.randint(class_count(self), (n,), device=self.device) if class_count(self) else None

    def discriminator_terms(
        self, real: Tensor, y: Tensor | None, fake: Tensor, fake_y: Tensor | None, z: Tensor
    ) -> dict[str, Tensor]:
        """Named terms of the discriminator's loss (``fake`` is detached)."""
        terms = {"d_adv": discriminator_loss(self.adversarial_loss, self.critic(real, y), self.critic(fake, fake_y))}
        if self.gp_weight > 0:
            args = (y,) if class_count(self) else ()
            terms["gp"] = self.gp_weight * gradient_penalty(self.critic, real, fake, *args)
        return terms

    def generator_terms(self, fake: Tensor, fake_y: Tensor | None, z: Tensor) -> dict[str, Tensor]:
        """Named terms of the generator's loss."""
        return {"g_adv": generator_loss(self.adversarial_loss, self.critic(fake, fake_y))}

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Nothing to score: a GAN has no validation figure of its own. Defined so that Lightning runs the
        validation loop, at whose end FID callbacks and sample grids evaluate (without it Lightning skips
        the loop and they never fire); the loop reads the small validation split only."""

    # ------------------------------------------------------------------ optimisation
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        x = batch[0]
        real = self.to_model_range(x)
        y = batch[1] if class_count(self) else None
        n = real.shape[0]
        z = self.sample_latent(n)
        fake_y = self.fake_labels(n)
        fake = self.generate(z, fake_y)  # one G forward serves both steps
        d_terms = self.discriminator_terms(real, y, fake.detach(), fake_y, z)
        d_loss = sum(d_terms.values())
        self.manual_step(opt_d, d_loss)
        logs: dict[str, Tensor] = {"d_loss": d_loss, **d_terms}
        if (batch_idx + 1) % self.n_critic == 0:  # built with D frozen: no gradient reaches D
            g_terms = self.manual_step(opt_g, lambda: self.generator_terms(fake, fake_y, z))
            logs.update({"g_loss": sum(g_terms.values()), **g_terms})
        self.log_train(**logs, batch_size=n, prog_bar=("d_loss", "g_loss"))

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return self.generator.parameters()

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return self.discriminator.parameters()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """``[Adam(G), Adam(D)]`` with ``lr_g``, ``lr_d`` and ``betas`` (the generator first)."""
        return [
            torch.optim.Adam(self.generator_parameters(), lr=self.lr_g, betas=self.betas),
            torch.optim.Adam(self.discriminator_parameters(), lr=self.lr_d, betas=self.betas),
        ]
