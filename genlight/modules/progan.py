"""``progan``: progressive growing of GANs (Karras et al. 2018), from 4x4 up to the data's size.

Networks (:mod:`genlight.nn.progan`, layers :mod:`genlight.nn.progressive`): equalized learning rate,
pixel norm after every convolution of G, the minibatch standard deviation in D's last block, a
linear toRGB. Loss (their loss.py): WGAN-GP (λ = 10) plus the drift term ``eps_drift · E[D(x)²]`` on
the real images, one critic step per generator step, Adam(1e-3, β = (0, 0.99)).

Growth, in training steps (one step = one training batch: one D step and, every ``n_critic``-th
batch, one G step; ``trainer.global_step`` moves ``1 + 1/n_critic`` times per step): stage 0 (4x4)
for ``steps_per_stage`` steps, then for every doubling a fade-in of ``fade_steps`` steps and
``steps_per_stage`` steps at full weight (:func:`~genlight.nn.progan.growth_schedule`). During a fade the
real images are blended like the fakes (:func:`~genlight.nn.progan.real_at_stage`). The step count is
in the ``state_dict`` (``growth._extra_state``), so a checkpoint holds the stage and alpha and a resume
in the middle of a fade continues it exactly. Every stage's layers exist from the start and sit in the
optimizers; Adam skips parameters without a gradient, so the moments of a new block start at zero
when it first trains (the paper resets nothing else).

``sample(n)`` draws at the stage and alpha of the last training step (those of step 0 before any
training), clamps to [0, 1] and upsamples (nearest neighbour) to the data's size; once grown, at full
size. :meth:`growth` tells callbacks (``StageSamples``) where the schedule is.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from genlight._compat import attached_trainer, should_update_logs
from genlight.errors import ImageShapeError
from genlight.functional import check_image_shape
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.adversarial import AdversarialLoss, discriminator_loss, gradient_penalty
from genlight.nn.progan import (
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    StepCounter,
    growth_schedule,
    num_stages_for,
    real_at_stage,
    resize_to,
)
from genlight.ranges import Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Size
from genlight.registry import register_model

__all__ = ["ProGAN"]


@register_model("progan", tags=("adversarial", "sampler"))
class ProGAN(AdversarialModule):
    """Progressive GAN.

    Args:
        image_shape: ``(C, H, H)`` with ``H = 4 * 2^k`` (4, 8, 16, 32, 64, ...); from the datamodule.
        latent_dim: size of ``z ~ N(0, I)`` (pixel-normalised before the first layer).
        width: channels at 4x4, halved at every doubling of the size (at least 1).
        steps_per_stage: training steps of stage 0, and of every later stage after its fade-in.
        fade_steps: training steps of each fade-in (0: the new block replaces the old one at once).
        mbstd_group_size: examples per group of the minibatch standard deviation; a batch it does not
            divide uses the largest divisor of the batch size below it.
        eps_drift: weight of the drift term ``E[D(x)²]`` on real images (keeps the critic near 0).
        loss: ``wasserstein_gp`` (the paper) | ``non_saturating`` | ``hinge`` | ``lsgan`` | ``minimax``.
        n_critic: discriminator steps per generator step.
        gp_weight: gradient-penalty weight.
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator.
        betas: Adam's ``(beta1, beta2)`` of both, each in [0, 1).
    """

    # steps_per_stage 0: the very first step is already in the 4x4 -> 8x8 fade, so a one-step smoke fit
    # trains every layer; 8 steps of the resume test cross the fade (steps 0-4) into the 8x8 stage
    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "width": 8, "steps_per_stage": 0, "fade_steps": 5}
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images",)
    # torch.compile (genlight.callbacks.Compile): the generator only; the default WGAN-GP penalty differentiates
    # the discriminator twice, and AOT autograd (inductor, aot_eager) does not support double backward
    compile_modules: ClassVar[tuple[str, ...] | None] = ("generator",)

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        latent_dim: Size = 128,
        width: Size = 128,
        steps_per_stage: NonNegativeInt = 2000,
        fade_steps: NonNegativeInt = 2000,
        mbstd_group_size: PositiveInt = 4,
        eps_drift: NonNegativeFloat = 0.001,
        loss: AdversarialLoss = "wasserstein_gp",
        n_critic: PositiveInt = 1,
        gp_weight: NonNegativeFloat = 10.0,
        lr_g: PositiveFloat = 1e-3,
        lr_d: PositiveFloat = 1e-3,
        betas: tuple[Fraction, Fraction] = (0.0, 0.99),
    ) -> None:
        super().__init__(image_shape=image_shape, latent_dim=latent_dim, loss=loss, n_critic=n_critic, gp_weight=gp_weight, lr_g=lr_g, lr_d=lr_d, betas=betas)
        shape = check_image_shape(image_shape, type(self).__name__)
        try:
            if shape[1] != shape[2]:
                raise ValueError("square")
            self.num_stages = num_stages_for(shape[1])
        except ValueError:
            raise ImageShapeError(
                f"{type(self).__name__} needs square images of side 4 * 2^k (4, 8, 16, 32, 64, ...), got "
                f"{shape[1]}x{shape[2]}; resize the data (e.g. --data.image_size 32)"
            ) from None
        self.steps_per_stage, self.fade_steps = int(steps_per_stage), int(fade_steps)
        self.eps_drift = float(eps_drift)
        self.generator = ProgressiveGenerator(latent_dim, shape, width)
        self.discriminator = ProgressiveDiscriminator(shape, width, mbstd_group_size)
        self.growth_steps = StepCounter()  # training steps taken: the stage and alpha follow from it
        self._step_growth: tuple[int, float] | None = None  # (stage, alpha) of the training step under way

    # ------------------------------------------------------------------ growth
    def growth(self, step: int | None = None) -> tuple[int, float]:
        """``(stage, alpha)`` of the schedule at training step ``step``; ``None``: of the last step taken
        (where samples are drawn; step 0 before any training)."""
        if step is None:
            step = max(self.growth_steps.count - 1, 0)
        return growth_schedule(step, self.num_stages, self.steps_per_stage, self.fade_steps)

    @property
    def steps_taken(self) -> int:
        """Training steps taken so far (in the checkpoint)."""
        return self.growth_steps.count

    @property
    def resolution(self) -> int:
        """The side of the images the networks work at now (``4 * 2^stage``)."""
        return 4 * 2 ** self._current()[0]

    def _current(self) -> tuple[int, float]:
        return self._step_growth if self._step_growth is not None else self.growth()

    # ------------------------------------------------------------------ the adversarial hooks
    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """``G(z)`` at the current stage and alpha, ``(B, C, R, R)`` in about [-1, 1] (linear output)."""
        return self.generator(z, *self._current())

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Images in [0, 1] at the data's size: ``G(z)`` clamped, upsampled (nearest) from the current stage."""
        out = ((self.generate(z) + 1.0) / 2.0).clamp(0.0, 1.0)
        return resize_to(out, self.image_shape[1])

    def critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``D(x)`` at the current stage and alpha."""
        return self.discriminator(x, *self._current())

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation of images ``x`` in [0, 1]: the discriminator's ``(C_0, 4, 4)`` map before
        its last block, at the current stage and alpha, flattened to ``(B, 16 C_0)``. The last block's
        minibatch standard deviation is left out, so an image's features do not depend on its batch."""
        return self.discriminator.trunk(self.to_model_range(x), *self._current()).flatten(1)

    def to_model_range(self, x: Tensor) -> Tensor:
        """Data in [0, 1] to [-1, 1], at the current stage's size and blended as during a fade."""
        return real_at_stage(x * 2.0 - 1.0, *self._current())

    def discriminator_terms(self, real: Tensor, y: Tensor | None, fake: Tensor, fake_y: Tensor | None, z: Tensor) -> dict[str, Tensor]:
        """The adversarial loss, the gradient penalty and the drift term ``eps_drift · mean(D(x)²)``."""
        d_real = self.critic(real)
        terms = {"d_adv": discriminator_loss(self.adversarial_loss, d_real, self.critic(fake))}
        if self.gp_weight > 0:
            terms["gp"] = self.gp_weight * gradient_penalty(self.critic, real, fake)
        if self.eps_drift > 0:
            terms["drift"] = self.eps_drift * d_real.float().pow(2).mean()
        return terms

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """One adversarial step at the schedule's stage and alpha for this step, then count the step."""
        stage, alpha = self._step_growth = self.growth(self.growth_steps.count)
        try:
            super().training_step(batch, batch_idx)
        finally:
            self._step_growth = None
        self.growth_steps.count += 1
        trainer = attached_trainer(self)
        if trainer is not None and not trainer.barebones and should_update_logs(trainer):
            values = torch.tensor([stage, alpha])
            self.log_dict({"train/stage": values[0], "train/alpha": values[1]}, on_step=True, on_epoch=False, batch_size=1)
