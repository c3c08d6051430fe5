"""Flow matching (Lipman et al. 2023) with rectified flow's straight path (Liu et al. 2023) as ``sigma_min = 0``.

Time runs from noise at ``t = 0`` to data at ``t = 1``. With ``x_0 ~ N(0, I)`` and ``x_1`` a data point
(images dequantised and mapped to [-1, 1]), the conditional path and its velocity are (Lipman et al. eq. 20-23)::

    x_t = (1 - (1 - σ_min) t) x_0 + t x_1,        u_t = x_1 - (1 - σ_min) x_0,

and the network ``v_θ(x_t, t)`` (the DDPM U-Net on images, an MLP on 2-D points) is trained on
``E_{t, x_0, x_1} |v_θ(x_t, t) - u_t|²``, ``t ~ U[0, 1]``. ``σ_min = 0`` is Liu et al.'s straight line
``x_t = (1 - t) x_0 + t x_1`` (1-rectified flow; the reflow step, retraining on the model's own pairs,
is not implemented). Samples solve ``dx/dt = v_θ(x, t)`` from ``t = 0`` to 1 with Euler, midpoint or
Heun steps (:func:`genlight.nn.ode.solve`).

Likelihood: the instantaneous change of variables (Chen et al. 2018),
``log p_1(x_1) = log N(x_0; 0, I) - ∫_0^1 tr(∂v_θ/∂x)(x_t, t) dt``, solved backwards from ``x_1``
with the same fixed-step solver; the trace exactly on 2-D points, by Hutchinson's estimator on images
(one Rademacher or Gaussian ``ε`` per example, held along the path, FFJORD). Images of ``L`` levels
``k`` are dequantised as the flows here do, ``y = (k + u) / L``, ``u ~ U[0, 1)^D``, ``x_1 = 2y - 1``::

    log P(k) ≈ log p_1(2y - 1) + D log 2 - D log L.

This is an ESTIMATE, not a bound and not exact: the ODE is solved with finite steps (its error is not
signed), the Hutchinson trace is unbiased but noisy, and the dequantisation average is a bound only
in expectation. It is labelled so (``log_prob_is_estimate``: ``val/bpd_estimate``, ``val/nll_estimate``
on points), with the variance of one draw logged beside it (``val/bpd_estimate_var`` in (bits/dim)²,
over ``likelihood_draws`` draws of ``u`` and ``ε`` per example).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.errors import ConfigError, IncompatibleDataError
from genlight.functional import check_image_shape, to_levels
from genlight.module import GenerativeModule
from genlight.nn.mlp import mlp_layers
from genlight.nn.ode import divergence, solve
from genlight.nn.schedules import warmup_then_schedule
from genlight.nn.unet import UNet, timestep_embedding
from genlight.ranges import (
    ClassCount,
    Depth,
    DepthOrZero,
    Fraction,
    Levels,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Size,
    Steps,
    check_arguments,
)
from genlight.registry import register_model
from genlight.types import class_count

__all__ = ["FlowMatching", "PointVelocity"]

#: ``t`` in [0, 1] is scaled to [0, 1000] before the sinusoidal embedding (the U-Net's timestep scale)
TIME_SCALE = 1000.0
Sampler = Literal["euler", "midpoint", "heun"]


class PointVelocity(nn.Module):
    """``v(x, t[, y])`` on points ``(B, d) -> (B, d)``: a SiLU MLP on ``[x, emb(t)]``, labels embedded
    and added to the first hidden layer (label ``num_classes`` = "no label")."""

    def __init__(self, dim: int, hidden: int, depth: int, num_classes: int = 0) -> None:
        super().__init__()
        self.time_dim = 32
        self.inp = nn.Linear(dim + self.time_dim, hidden)
        self.label_emb = nn.Embedding(num_classes + 1, hidden) if num_classes > 0 else None
        self.body = nn.Sequential(nn.SiLU(), *mlp_layers([hidden] * depth + [dim], nn.SiLU()))

    def hidden(self, x: Tensor, t: Tensor) -> Tensor:
        """The first hidden layer without labels, ``SiLU(W [x, emb(t)])``, ``(B, hidden)``."""
        return F.silu(self.inp(torch.cat([x, timestep_embedding(t, self.time_dim)], dim=1)))

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        h = self.inp(torch.cat([x, timestep_embedding(t, self.time_dim)], dim=1))  # (B, hidden)
        if self.label_emb is not None:
            if y is None:
                y = torch.full((len(x),), self.label_emb.num_embeddings - 1, device=x.device, dtype=torch.long)
            h = h + self.label_emb(y)
        return self.body(h)  # (B, d)


@register_model("flow_matching")
class FlowMatching(GenerativeModule):
    """Conditional flow matching: a velocity field trained by regression on straight conditional paths,
    sampled by an ODE solver; optional class conditioning with classifier-free guidance.

    Args:
        image_shape: ``(C, H, W)`` images or ``(d,)`` points; linked from the datamodule by the CLI.
        num_levels: levels per pixel (dequantisation; 0 = continuous points).
        num_classes: classes of the data (linked); used only with ``conditional``.
        conditional: condition on class labels (``sample(n, y=...)``).
        guidance: classifier-free guidance weight ``w``: ``v = (1 + w) v(x, y) - w v(x, ∅)``.
        label_dropout: probability that a training label is replaced by the "no label" token.
        sigma_min: ``σ_min`` of the path (0 = rectified flow's straight line; Lipman et al. use 1e-4 ... 1e-2).
        sampler: default solver of :meth:`sample` and :meth:`log_prob`: ``euler``, ``midpoint`` or ``heun``.
        sample_steps: default solver steps of :meth:`sample` (network evaluations: 1 per Euler step, 2 otherwise).
        likelihood_steps: solver steps of :meth:`log_prob`.
        trace: ``exact`` (one backward pass per dimension), ``hutchinson``, or ``auto``: exact on
            points, Hutchinson on images.
        hutchinson_noise: ``rademacher`` or ``gaussian`` probe vectors.
        likelihood_examples: validation examples the likelihood is estimated on (the first ones).
        likelihood_draws: draws of the estimate per example (dequantisation and probes) in validation;
            with 2 or more their variance is logged.
        channels: U-Net channels at full resolution (images).
        channel_mults: channel multiplier of each U-Net resolution (``None``: sized from ``image_shape``).
        num_res_blocks: residual blocks per U-Net resolution.
        attention_levels: U-Net resolutions (0 = full) with self-attention (``None``: sized from ``image_shape``).
        dropout: dropout in the residual blocks.
        hidden: MLP width (points).
        depth: MLP hidden layers (points).
        lr: AdamW learning rate.
        warmup_steps: linear warm-up of the learning rate, in optimizer steps.
        lr_schedule: after the warm-up, a ``constant`` or ``cosine``-decayed learning rate.
        weight_decay: AdamW's decoupled weight decay.
        grad_clip: gradient-norm clipping (0 = off).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {
        "channels": 8,
        "sample_steps": 3,
        "likelihood_steps": 2,
        "likelihood_examples": 16,
        "hidden": 16,
    }
    ema_decay: ClassVar[float] = 0.999
    conditional_with: ClassVar[str | None] = "--model.conditional true"
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images", "points")
    log_prob_is_exact = False
    #: ``log_prob`` is an estimate (ODE solve, Hutchinson trace), neither exact nor a bound
    log_prob_is_estimate: ClassVar[bool] = True

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 256,
        num_classes: ClassCount = 0,
        conditional: bool = False,
        guidance: NonNegativeFloat = 0.0,
        label_dropout: Fraction = 0.1,
        sigma_min: Fraction = 0.0,
        sampler: Sampler = "heun",
        sample_steps: Steps = 20,
        likelihood_steps: Steps = 20,
        trace: Literal["auto", "exact", "hutchinson"] = "auto",
        hutchinson_noise: Literal["rademacher", "gaussian"] = "rademacher",
        likelihood_examples: PositiveInt = 144,
        likelihood_draws: Depth = 2,
        channels: Size = 32,
        channel_mults: tuple[Depth, ...] | None = None,
        num_res_blocks: Depth = 1,
        attention_levels: tuple[DepthOrZero, ...] | None = None,
        dropout: Fraction = 0.0,
        hidden: Size = 128,
        depth: Depth = 3,
        lr: PositiveFloat = 1e-3,
        warmup_steps: NonNegativeInt = 100,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        weight_decay: NonNegativeFloat = 0.0,
        grad_clip: NonNegativeFloat = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        name = type(self).__name__
        self.is_images = len(tuple(image_shape)) == 3
        if self.is_images:
            shape = check_image_shape(image_shape, name, multiple_of=4, min_size=8)
            if num_levels < 2:
                raise IncompatibleDataError(
                    f"{name} on images needs the number of pixel levels (num_levels >= 2) to dequantise, got "
                    f"num_levels={num_levels}; use an image datamodule, which links it"
                )
        else:
            shape = check_image_shape(image_shape, name, ndim=1)
            if num_levels:
                raise IncompatibleDataError(
                    f"{name} on vectors needs continuous points (num_levels=0), got num_levels={num_levels}; "
                    "use toy2d or an image datamodule"
                )
        if conditional and num_classes < 2:
            raise IncompatibleDataError(
                f"conditional {name} needs labelled data (num_classes >= 2), got num_classes={num_classes}; "
                "pick a labelled datamodule (digits, mnist5k, cifar10) or set conditional: false"
            )
        if trace == "exact" and self.is_images and math.prod(shape) > 256:
            raise ConfigError(
                f"{name}: trace 'exact' needs one backward pass per dimension ({math.prod(shape)} here); "
                "use --model.trace hutchinson (or auto) on images this large"
            )
        if conditional:  # a class-conditional instance (a ConditionalSampler); another has no num_classes
            self.num_classes = num_classes
        if self.is_images:
            self.net: nn.Module = UNet(
                shape, channels, channel_mults, num_res_blocks, attention_levels, dropout, num_classes=class_count(self)
            )
        else:
            self.net = PointVelocity(shape[0], hidden, depth, class_count(self))
        self.num_levels = int(num_levels)
        self.example_input_array = (torch.zeros(2, *shape), torch.zeros(2))

    # ------------------------------------------------------------------ the field
    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """``v_θ(x, t[, y])``, ``t`` in [0, 1] of shape ``(B,)``, float32, the shape of ``x``."""
        return self.net(x, t * TIME_SCALE, y).float()

    def velocity(self, x: Tensor, t: float | Tensor, y: Tensor | None = None, guidance: float = 0.0) -> Tensor:
        """The field the solvers follow: ``v_θ(x, t)``, or with labels and ``guidance = w > 0`` the
        classifier-free combination ``(1 + w) v(x, t, y) - w v(x, t, ∅)`` (one batched call)."""
        t = torch.as_tensor(t, dtype=torch.float32, device=x.device).expand(len(x))
        if y is None or guidance == 0.0:
            return self(x, t, y)
        null = torch.full_like(y, class_count(self))
        v_c, v_u = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
        return (1.0 + guidance) * v_c - guidance * v_u

    def path(self, x0: Tensor, x1: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """``(x_t, u_t)`` of the conditional path (module docstring), ``t`` ``(B,)``."""
        s = self.hparams.sigma_min
        tt = t.view(-1, *([1] * (x0.dim() - 1)))  # (B, 1, ...)
        return (1.0 - (1.0 - s) * tt) * x0 + tt * x1, x1 - (1.0 - s) * x0

    # ------------------------------------------------------------------ data space
    def to_model_space(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Images in [0, 1] on ``L`` levels -> dequantised ``2 (k + u) / L - 1`` in [-1, 1]; points as they are."""
        if not self.is_images:
            return x.float()
        k = to_levels(x, self.num_levels).float()
        u = (
            torch.rand(k.shape, generator=generator, device="cpu").to(k.device)
            if generator is not None
            else torch.rand_like(k)
        )
        return 2.0 * (k + u) / self.num_levels - 1.0

    def to_data(self, x: Tensor) -> Tensor:
        """Model space -> images in [0, 1] on the level grid (the dequantisation cell ``x`` falls in); points."""
        if not self.is_images:
            return x
        k = torch.floor((x.float() + 1.0) / 2.0 * self.num_levels).clamp_(0, self.num_levels - 1)
        return k / (self.num_levels - 1)

    # ------------------------------------------------------------------ sampling
    def _check_labels(self, y: Tensor | None) -> Tensor | None:
        if y is not None and class_count(self) == 0:
            raise ValueError(
                "this flow_matching model is unconditional; train it with conditional: true to pass labels y"
            )
        return None if y is None else y.to(self.device).long()

    @torch.no_grad()
    def generate(
        self, noise: Tensor, *, y: Tensor | None = None, sampler: str = "heun", steps: int = 20, guidance: float = 0.0
    ) -> Tensor:
        """Solve ``dx/dt = v(x, t)`` from ``x_0 = noise`` at ``t = 0`` to ``t = 1`` in ``steps`` steps of
        ``sampler``; ``x_1`` in model space, not rounded."""
        x, _ = solve(lambda x, t, _: (self.velocity(x, t, y, guidance), None), noise.float(), 0.0, 1.0, steps, sampler)
        return x

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        y: Tensor | None = None,
        sampler: Sampler | None = None,
        steps: int | None = None,
        guidance: float | None = None,
    ) -> Tensor:
        """``n`` images in [0, 1] on the level grid (or ``(n, d)`` points): ``steps`` steps of ``sampler``
        (defaults from the hyper-parameters) from ``N(0, I)``. ``y``: labels of a conditional model
        (``None``: unconditional draws through the "no label" token)."""
        y = self._check_labels(y)
        noise = torch.randn(n, *self.hparams.image_shape, device=self.device)
        x = self.generate(
            noise,
            y=y,
            sampler=sampler or self.hparams.sampler,
            steps=int(steps or self.hparams.sample_steps),
            guidance=self.hparams.guidance if guidance is None else float(guidance),
        )
        return self.to_data(x)

    # ------------------------------------------------------------------ likelihood (an estimate)
    @property
    def trace_method(self) -> Literal["exact", "hutchinson"]:
        """How :meth:`log_prob` takes the divergence: ``trace``, with ``auto`` exact on points only."""
        trace = self.hparams.trace
        return ("hutchinson" if self.is_images else "exact") if trace == "auto" else trace

    def log_prob(
        self,
        x: Tensor,
        *,
        y: Tensor | None = None,
        steps: int | None = None,
        sampler: Sampler | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """One draw of the ESTIMATE of ``log P(x)`` in nats per example (module docstring): the ODE
        solved backwards from ``t = 1`` in ``steps`` (default ``likelihood_steps``) steps of ``sampler``,
        one dequantisation ``u`` and one probe ``ε`` per image (from ``generator`` when given). With
        labels ``y`` (a conditional model), of ``log P(x | y)``. Differentiable where gradients are on
        (through the trace by double backward: costly); score under ``torch.no_grad()``."""
        self.check_log_prob_input(x)
        y = self._check_labels(y)
        x1 = self.to_model_space(x, generator)
        method = self.trace_method
        noise = None
        if method == "hutchinson":
            noise = (
                torch.randn(x1.shape, generator=generator, device="cpu").to(x1.device)
                if generator is not None
                else torch.randn_like(x1)
            )
            if self.hparams.hutchinson_noise == "rademacher":
                noise = torch.sign(noise) + (noise == 0).float()  # ±1

        def f(z: Tensor, t: float, accumulate: bool) -> tuple[Tensor, Tensor | None]:
            if not accumulate:
                return self.velocity(z, t, y), None
            return divergence(lambda w: self.velocity(w, t, y), z, method, noise)

        steps = int(steps or self.hparams.likelihood_steps)
        x0, integral = solve(f, x1, 1.0, 0.0, steps, sampler or self.hparams.sampler, accumulate=True)
        d = x0[0].numel()
        log_p0 = -0.5 * x0.double().flatten(1).pow(2).sum(1) - 0.5 * d * math.log(2 * math.pi)
        log_p = log_p0 + integral  # type: ignore[operator]  # ∫_1^0 div dt = -∫_0^1 div dt
        if self.is_images:
            log_p = log_p + d * (math.log(2.0) - math.log(self.num_levels))
        return log_p.float()

    def log_prob_draws(self, x: Tensor, draws: int, *, seed: int | None = None, **kwargs: Any) -> Tensor:
        """``(draws, n)``: independent draws of :meth:`log_prob` (``seed``: reproducible draws)."""
        generator = torch.Generator().manual_seed(seed) if seed is not None else None
        return torch.stack([self.log_prob(x, generator=generator, **kwargs) for _ in range(draws)])

    @torch.no_grad()
    def features(self, x: Tensor, t: float = 0.95) -> Tensor:
        """A frozen representation: on images the U-Net's middle feature map at time ``t`` (near the data)
        for the input ``t x_1`` (the path's mean from ``x_0 = 0``; ``x_1`` at the centre of each
        dequantisation cell: deterministic), averaged over positions, ``(B, ch)``; on points the MLP's
        first hidden layer, ``(B, hidden)``. A conditional model reads the null label (label-free)."""
        k = to_levels(x, self.num_levels).float() if self.is_images else None
        x1 = 2.0 * (k + 0.5) / self.num_levels - 1.0 if k is not None else x.float()
        steps = torch.full((len(x),), t * TIME_SCALE, device=x.device)
        if self.is_images:
            h = self.net.down_path(t * x1, steps, None)[0]  # (B, ch, h, w)
            return h.mean(dim=(2, 3))  # (B, ch)
        return self.net.hidden(t * x1, steps)  # (B, hidden)

    # ------------------------------------------------------------------ training
    def matching_loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``|v_θ(x_t, t) - u_t|²`` averaged, ``t ~ U[0, 1]``, ``x_0 ~ N(0, I)``, ``x_1`` the (dequantised) data."""
        x1 = self.to_model_space(x)
        x0 = torch.randn_like(x1)
        t = torch.rand(len(x1), device=x1.device)
        if class_count(self) and y is not None and self.training and self.hparams.label_dropout > 0:
            drop = torch.rand(len(y), device=y.device) < self.hparams.label_dropout
            y = torch.where(drop, torch.full_like(y, class_count(self)), y)
        xt, target = self.path(x0, x1, t)
        return F.mse_loss(self(xt, t, y if class_count(self) else None), target)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self.matching_loss(batch[0], batch[1].long() if class_count(self) else None)
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._scored = 0

    def _evaluate(self, batch: tuple[Tensor, Tensor], batch_idx: int, stage: str) -> None:
        x = batch[0]
        y = batch[1].long() if class_count(self) else None
        self.log(f"{stage}/loss", self.matching_loss(x, y), sync_dist=True, batch_size=len(x))
        room = self.hparams.likelihood_examples - getattr(self, "_scored", 0)
        if room <= 0:
            return
        x = x[:room]
        self._scored = getattr(self, "_scored", 0) + len(x)
        draws = self.log_prob_draws(x, self.hparams.likelihood_draws, seed=batch_idx)  # same draws every epoch
        self.log_density(stage, draws.mean(0))
        if len(draws) > 1:  # the variance of one draw of the estimate, in the logged figure's units squared
            scale = self.num_dims * math.log(2.0) if self.is_images else 1.0
            var = (draws.double() / scale).var(0).mean()
            self.log(f"{stage}/{self.density_label}_var", var.float(), sync_dist=True, batch_size=len(x))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._scored = 0

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        opt = torch.optim.AdamW(self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay)
        return {
            "optimizer": opt,
            "lr_scheduler": warmup_then_schedule(
                opt, hp.warmup_steps, hp.lr_schedule, lambda: self.trainer.estimated_stepping_batches
            ),
        }

    def configure_gradient_clipping(
        self,
        optimizer: torch.optim.Optimizer,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str | None = None,
    ) -> None:
        """The Trainer's ``gradient_clip_val`` if set, else this family's ``grad_clip`` (norm)."""
        val = gradient_clip_val if gradient_clip_val else self.hparams.grad_clip
        if val:
            self.clip_gradients(
                optimizer, gradient_clip_val=val, gradient_clip_algorithm=gradient_clip_algorithm or "norm"
            )
