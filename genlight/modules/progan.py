"""``progan``: progressive growing of GANs (Karras et al. 2018), from 4x4 up to the data's size.

Networks (below; layers :mod:`genlight.nn.progressive`): equalized learning rate,
pixel norm after every convolution of G, the minibatch standard deviation in D's last block, a
linear toRGB. Loss (their loss.py): WGAN-GP (λ = 10) plus the drift term ``eps_drift · E[D(x)²]`` on
the real images, one critic step per generator step, Adam(1e-3, β = (0, 0.99)).

Growth, in training steps (one step = one training batch: one D step and, every ``n_critic``-th
batch, one G step; ``trainer.global_step`` moves ``1 + 1/n_critic`` times per step): stage 0 (4x4)
for ``steps_per_stage`` steps, then for every doubling a fade-in of ``fade_steps`` steps and
``steps_per_stage`` steps at full weight (:func:`~genlight.modules.progan.growth_schedule`); with
``accumulate: k`` a step is a window of ``k`` batches (one D optimizer step). During a fade the
real images are blended like the fakes (:func:`~genlight.modules.progan.real_at_stage`). The step count is
in the ``state_dict`` (``growth._extra_state``), so a checkpoint holds the stage and alpha and a resume
in the middle of a fade continues it exactly. Every stage's layers exist from the start and sit in the
optimizers; Adam skips parameters without a gradient, so the moments of a new block start at zero
when it first trains (the paper resets nothing else).

``sample(n)`` draws at the stage and alpha of the last training step (those of step 0 before any
training), clamps to [0, 1] and upsamples (nearest neighbour) to the data's size; once grown, at full
size. :meth:`growth` tells callbacks (``StageSamples``) where the schedule is.

The networks (``G_paper`` / ``D_paper`` of their networks.py) and the growth schedule (their
``TrainingSchedule``), for square images of side ``4 * 2^k``:

Stage ``s`` works at ``R_s = 4 * 2^s`` pixels. Every network holds all stages from the start; a stage
uses blocks ``0 .. s`` and its own toRGB / fromRGB. While stage ``s`` fades in (``0 < alpha < 1``):

* ``G``: ``lerp(upsample(toRGB_{s-1}(h_{s-1})), toRGB_s(block_s(h_{s-1})), alpha)``;
* ``D``: ``lerp(fromRGB_{s-1}(avgpool(x)), block_s(fromRGB_s(x)), alpha)``, then blocks ``s-1 .. 0``;
* real images: :func:`real_at_stage`, ``lerp(upsample(avgpool(x_s)), x_s, alpha)`` with ``x_s`` the data
  average-pooled to ``R_s`` (their train.py ``process_reals``), so D sees reals blended as the fakes are.

Upsampling is nearest-neighbour, downsampling 2x2 average pooling, as in the paper.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight._compat import attached_trainer, should_update_logs
from genlight.errors import ImageShapeError
from genlight.functional import check_image_shape
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.adversarial import AdversarialLoss, discriminator_loss, gradient_penalty
from genlight.nn.augment import DEFAULT_POLICY, Augmentation
from genlight.nn.progressive import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from genlight.ranges import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    Size,
)
from genlight.registry import register_model

__all__ = [
    "ProGAN",
    "ProgressiveDiscriminator",
    "ProgressiveGenerator",
    "StepCounter",
    "growth_schedule",
    "num_stages_for",
    "real_at_stage",
    "resize_to",
    "stage_widths",
]


# ------------------------------------------------------------------ networks and growth schedule (see the module docstring)


def num_stages_for(size: int) -> int:
    """Stages from 4x4 to ``size`` x ``size`` (``size = 4 * 2^k`` -> ``k + 1``); ``ValueError`` otherwise."""
    k = math.log2(size / 4) if size >= 4 else -1.0
    if k < 0 or k != int(k):
        raise ValueError(f"progressive growing needs a side 4 * 2^k (4, 8, 16, 32, 64, ...), got {size}")
    return int(k) + 1


def stage_widths(width: int, num_stages: int) -> list[int]:
    """Channels at each stage: ``width`` at 4x4, halved at every doubling of the size (at least 1)."""
    return [max(1, width >> s) for s in range(num_stages)]


def growth_schedule(step: int, num_stages: int, steps_per_stage: int, fade_steps: int) -> tuple[int, float]:
    """``(stage, alpha)`` for training step ``step`` (0-based): stage 0 trains for ``steps_per_stage``
    steps; every later stage first fades in over ``fade_steps`` steps, then trains for
    ``steps_per_stage`` steps at ``alpha = 1``; the last stage continues for ever.

    At the ``t``-th step of a fade (``t = 0 .. fade_steps - 1``), ``alpha = (t + 1) / (fade_steps + 1)``:
    strictly between 0 and 1, so every fade step trains both the old path and the new block (a step at
    ``alpha = 0`` would be one more step of the old stage, one at 1 a step of the new one).
    """
    if step < steps_per_stage or num_stages == 1:
        return 0, 1.0
    step -= steps_per_stage
    period = fade_steps + steps_per_stage
    stage = 1 + (step // period if period else num_stages)
    if stage >= num_stages:
        return num_stages - 1, 1.0
    t = step - (stage - 1) * period
    return stage, ((t + 1) / (fade_steps + 1) if t < fade_steps else 1.0)


def resize_to(x: Tensor, size: int) -> Tensor:
    """``(B, C, H, H) -> (B, C, size, size)``: average pooling down, nearest-neighbour up."""
    h = x.shape[-1]
    if size < h:
        return F.avg_pool2d(x, h // size)
    if size > h:
        return F.interpolate(x, scale_factor=size // h, mode="nearest")
    return x


def real_at_stage(x: Tensor, stage: int, alpha: float) -> Tensor:
    """The real images ``(B, C, H, H)`` as D sees them at ``(stage, alpha)``: pooled to ``R = 4 * 2^stage``,
    and during a fade blended with their half-resolution version upsampled back,
    ``lerp(up(pool(x_R)), x_R, alpha)``."""
    x = resize_to(x, 4 * 2**stage)
    if stage > 0 and alpha < 1.0:
        low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
        x = torch.lerp(low, x, alpha)
    return x


def _lrelu(x: Tensor) -> Tensor:
    return F.leaky_relu(x, 0.2)


class _GeneratorBlock(nn.Module):
    """Stage 0: ``z`` -> dense to 4x4 (gain sqrt(2)/4, as G_paper) -> conv 3x3; later stages: upsample x2,
    two 3x3 convolutions; leaky ReLU then pixel norm after every layer."""

    def __init__(self, c_in: int, c_out: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.norm = PixelNorm()
        if first:
            self.dense = EqualizedLinear(c_in, c_out * 16, gain=math.sqrt(2.0) / 4)
            self.convs = nn.ModuleList([EqualizedConv2d(c_out, c_out, 3)])
        else:
            self.convs = nn.ModuleList([EqualizedConv2d(c_in, c_out, 3), EqualizedConv2d(c_out, c_out, 3)])

    def forward(self, h: Tensor) -> Tensor:
        if self.first:  # (B, latent) -> (B, C, 4, 4)
            h = self.norm(_lrelu(self.dense(h).view(h.shape[0], -1, 4, 4)))
        else:  # (B, C_in, R/2, R/2) -> (B, C_in, R, R)
            h = F.interpolate(h, scale_factor=2, mode="nearest")
        for conv in self.convs:
            h = self.norm(_lrelu(conv(h)))
        return h


class ProgressiveGenerator(nn.Module):
    """``G(z, stage, alpha)``: ``(B, latent_dim)`` -> ``(B, C, R, R)``, ``R = 4 * 2^stage``, linear output
    (the data range is [-1, 1]; samples are clamped). The latent is pixel-normalised first, as in the paper."""

    def __init__(self, latent_dim: int, image_shape: Sequence[int], width: int) -> None:
        super().__init__()
        c, h = int(image_shape[0]), int(image_shape[1])
        self.num_stages = num_stages_for(h)
        widths = stage_widths(width, self.num_stages)
        self.latent_norm = PixelNorm()
        self.blocks = nn.ModuleList(
            [_GeneratorBlock(latent_dim, widths[0], True)]
            + [_GeneratorBlock(widths[s - 1], widths[s], False) for s in range(1, self.num_stages)]
        )
        self.to_rgb = nn.ModuleList([EqualizedConv2d(w, c, 1, gain=1.0) for w in widths])

    def forward(self, z: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        h = self.blocks[0](self.latent_norm(z))
        prev = h
        for s in range(1, stage + 1):
            prev, h = h, self.blocks[s](h)
        out = self.to_rgb[stage](h)
        if stage > 0 and alpha < 1.0:
            old = F.interpolate(self.to_rgb[stage - 1](prev), scale_factor=2, mode="nearest")
            out = torch.lerp(old, out, alpha)
        return out


class _DiscriminatorBlock(nn.Module):
    """Stage ``s >= 1``: two 3x3 convolutions (``C_s -> C_s -> C_{s-1}``) and 2x2 average pooling; stage 0:
    minibatch standard deviation, a 3x3 convolution, a dense layer and the 1-output dense layer (gain 1)."""

    def __init__(self, c_in: int, c_out: int, first: bool, group_size: int) -> None:
        super().__init__()
        self.first = first
        if first:
            self.mbstd = MinibatchStdDev(group_size)
            self.conv = EqualizedConv2d(c_in + 1, c_in, 3)
            self.dense = EqualizedLinear(c_in * 16, c_in)
            self.out = EqualizedLinear(c_in, 1, gain=1.0)
        else:
            self.convs = nn.ModuleList([EqualizedConv2d(c_in, c_in, 3), EqualizedConv2d(c_in, c_out, 3)])

    def forward(self, h: Tensor) -> Tensor:
        if self.first:  # (B, C, 4, 4) -> (B,)
            h = _lrelu(self.conv(self.mbstd(h)))
            return self.out(_lrelu(self.dense(h.flatten(1)))).squeeze(1)
        for conv in self.convs:  # (B, C_s, R, R) -> (B, C_{s-1}, R/2, R/2)
            h = _lrelu(conv(h))
        return F.avg_pool2d(h, 2)


class ProgressiveDiscriminator(nn.Module):
    """``D(x, stage, alpha)``: ``(B, C, R, R)``, ``R = 4 * 2^stage`` -> ``(B,)`` critic values; the minibatch
    standard deviation (groups of ``group_size``) in the last block."""

    def __init__(self, image_shape: Sequence[int], width: int, group_size: int = 4) -> None:
        super().__init__()
        c, h = int(image_shape[0]), int(image_shape[1])
        self.num_stages = num_stages_for(h)
        widths = stage_widths(width, self.num_stages)
        self.from_rgb = nn.ModuleList([EqualizedConv2d(c, w, 1) for w in widths])
        self.blocks = nn.ModuleList(
            [_DiscriminatorBlock(widths[0], widths[0], True, group_size)]
            + [_DiscriminatorBlock(widths[s], widths[s - 1], False, group_size) for s in range(1, self.num_stages)]
        )

    def forward(self, x: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        return self.blocks[0](self.trunk(x, stage, alpha))

    def trunk(self, x: Tensor, stage: int, alpha: float = 1.0) -> Tensor:
        """Every block but the last: ``(B, C, R, R)`` -> the ``(B, C_0, 4, 4)`` map the last block reads."""
        h = _lrelu(self.from_rgb[stage](x))
        if stage > 0:
            h = self.blocks[stage](h)
            if alpha < 1.0:
                old = _lrelu(self.from_rgb[stage - 1](F.avg_pool2d(x, 2)))
                h = torch.lerp(old, h, alpha)
            for s in range(stage - 1, 0, -1):
                h = self.blocks[s](h)
        return h


class StepCounter(nn.Module):
    """The number of training steps taken, kept in the ``state_dict`` (as extra state: a CPU tensor) so
    that checkpoints hold it and a resume continues the growth schedule exactly, and held as a Python
    int so that reading it never waits for a device."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def get_extra_state(self) -> Tensor:
        return torch.tensor(self.count, dtype=torch.long)

    def set_extra_state(self, state: Tensor) -> None:
        self.count = int(state)


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
        shape = check_image_shape(image_shape, type(self).__name__)
        try:
            if shape[1] != shape[2]:
                raise ValueError("square")
            self.num_stages = num_stages_for(shape[1])
        except ValueError:
            raise ImageShapeError(
                f"{type(self).__name__} needs square images of side 4 * 2^k (4, 8, 16, 32, 64, ...), got "
                f"{shape[1]}x{shape[2]}; resize or pad the data (e.g. --data.image_size 32; mnist5k: --data.pad 2)"
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

    def discriminator_terms(
        self, real: Tensor, y: Tensor | None, fake: Tensor, fake_y: Tensor | None, z: Tensor
    ) -> dict[str, Tensor]:
        """The adversarial loss, the gradient penalty and the drift term ``eps_drift · mean(D(x)²)``."""
        real, fake = self.augment_images(real), self.augment_images(fake)
        d_real, d_fake = self.critic(real), self.critic(fake)
        terms = {"d_adv": discriminator_loss(self.adversarial_loss, d_real, d_fake)}
        if self.gp_weight > 0:
            terms["gp"] = self.gp_weight * gradient_penalty(self.critic, real, fake)
        if self.eps_drift > 0:
            terms["drift"] = self.eps_drift * d_real.float().pow(2).mean()
        terms.update(self.regularizer_terms(real, d_real, d_fake, self.critic))
        return terms

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """One adversarial step at the schedule's stage and alpha for this step, then count the step."""
        stage, alpha = self._step_growth = self.growth(self.growth_steps.count)
        ends = self.accumulation.ends  # the schedule counts optimizer steps (windows of ``accumulate`` batches)
        try:
            super().training_step(batch, batch_idx)
        finally:
            self._step_growth = None
        if ends:
            self.growth_steps.count += 1
        trainer = attached_trainer(self)
        if trainer is not None and not trainer.barebones and should_update_logs(trainer):
            values = torch.tensor([stage, alpha])
            self.log_dict(
                {"train/stage": values[0], "train/alpha": values[1]}, on_step=True, on_epoch=False, batch_size=1
            )
