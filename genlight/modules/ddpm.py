"""Denoising diffusion probabilistic model (Ho et al. 2020) with DDIM sampling (Song et al. 2021) and
DPM-Solver++(2M) (Lu et al. 2022, :mod:`genlight.nn.diffusion_solvers`).

Forward process ``q(x_t | x_0) = N(√ᾱ_t x_0, (1 - ᾱ_t) I)`` over images mapped to [-1, 1]; a U-Net
predicts the noise ``ε`` and trains on ``E_{t, ε} |ε - ε_θ(√ᾱ_t x_0 + √(1-ᾱ_t) ε, t)|²`` (the
"simple" loss). Timesteps are 0-indexed here: index ``t`` is the paper's ``t + 1``, so ``x`` at
index 0 is the paper's ``x_1`` and ``ᾱ_{-1} = 1``.

The variational bound (Ho et al. eq. 5) in nats, per image::

    L = KL(q(x_T|x_0) || N(0, I))                      prior term L_T
      + Σ_{t=2..T} KL(q(x_{t-1}|x_t, x_0) || p_θ(x_{t-1}|x_t))     Σ L_{t-1}
      - log p_θ(x_0 | x_1)                              discretised Gaussian decoder L_0 (eq. 13)

is an upper bound on ``-log P(x_0)`` of the discrete image. Validation evaluates it on the first
``bound_examples`` validation images with the T-1 KL terms estimated by stratified sampling: the
indices 2..T are cut into at most ``bound_timesteps`` contiguous strata with quadratically growing
edges ``2 + (T-1)(i/k)²`` (rounded, duplicates merged: the first strata, where the KL terms are
largest, are single timesteps computed exactly), one t is drawn uniformly in each and its KL, at one
draw of ``x_t ~ q(x_t | x_0)``, is weighted by the stratum's size. That is an unbiased estimate of
the sum, so the logged ``val/bpd_bound`` is a true bound in expectation; with
``bound_timesteps >= T - 1`` every term is computed. ``L_T`` and ``L_0`` are always computed.

Each image's draws come from a generator seeded by the image itself, so every epoch uses the same
draws and the figure does not depend on the batch size or on the number of processes: under DDP each
of ``W`` processes evaluates ``ceil(bound_examples / W)`` of its images, which are the first
``bound_examples`` of the split when the distributed sampler deals them out in order and ``W``
divides ``bound_examples``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genlight._compat import attached_trainer
from genlight.errors import ConfigError, IncompatibleDataError
from genlight.functional import check_image_shape, to_levels
from genlight.module import GenerativeModule
from genlight.nn.diffusion import beta_schedule, ddim_timesteps, discretized_gaussian_log_prob, normal_kl
from genlight.nn.diffusion_solvers import SPACINGS, dpm_solver_pp_2m, interp_log_alpha, solver_times
from genlight.nn.schedules import warmup_then_schedule
from genlight.nn.unet import UNet
from genlight.ranges import (
    ClassCount,
    ClosedUnitInterval,
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

__all__ = ["DDPM"]

#: the samplers of :meth:`DDPM.sample`
SAMPLERS = ("ddim", "ancestral", "dpm_solver")


def image_seed(levels: Tensor) -> int:
    """A seed from an image's integer levels (blake2b of their bytes): the same image, the same seed."""
    data = levels.detach().to("cpu", torch.int64).contiguous().numpy().tobytes()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little") & (2**63 - 1)


def check_sampling(sampler: str, steps: int | None, spacing: str, timesteps: int) -> None:
    """One line naming a bad ``sampler``, ``steps`` or ``spacing`` argument of :meth:`DDPM.sample`, before any draw."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose {', '.join(SAMPLERS)}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= timesteps):
        raise ValueError(
            f"steps must be an integer in [1, {timesteps}] (the model's timesteps), got {steps!r}; e.g. steps=20"
        )
    if spacing not in SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; choose {' or '.join(SPACINGS)}")


@register_model("ddpm")
class DDPM(GenerativeModule):
    """DDPM with ε-prediction, a U-Net sized from ``image_shape``, ancestral, DDIM and DPM-Solver++ sampling,
    optional class conditioning with classifier-free guidance (Ho & Salimans 2022).

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: discrete levels per pixel (the decoder ``p(x_0|x_1)`` of the bound and the grid
            samples are rounded to).
        num_classes: classes of the data (linked); used only with ``conditional``.
        conditional: condition on class labels (``sample(n, y=...)``).
        guidance: classifier-free guidance weight ``w``: ``ε = (1 + w) ε(x, y) - w ε(x, ∅)``.
        label_dropout: probability that a training label is replaced by the "no label" token.
        timesteps: ``T``.
        schedule: ``linear`` (Ho et al., scaled by 1000/T) or ``cosine`` (Nichol & Dhariwal).
        variance: reverse-process variance: ``small`` (posterior ``β̃_t``) or ``large`` (``β_t``).
        channels: U-Net channels at full resolution.
        channel_mults: channel multiplier of each U-Net resolution (``None``: sized from ``image_shape``).
        num_res_blocks: residual blocks per U-Net resolution.
        attention_levels: U-Net resolutions (0 = full) with self-attention (``None``: sized from ``image_shape``).
        dropout: dropout in the residual blocks.
        sampler: default of :meth:`sample`: ``ddim``, ``ancestral`` (all T steps) or ``dpm_solver``
            (DPM-Solver++(2M), deterministic).
        sample_steps: default steps (model calls) of DDIM and DPM-Solver++, at most ``timesteps``
            (``None``: ``min(50, timesteps)``).
        eta: default DDIM ``η`` (0 deterministic, 1 DDPM-like noise); DPM-Solver++ has none.
        spacing: DPM-Solver++'s time steps: ``logsnr`` (uniform in log-SNR) or ``time`` (DDIM's grid).
        clip_x0: clip the predicted ``x_0`` to [-1, 1] while sampling (DDIM re-derives ``ε`` from it).
        bound_examples: validation images the bound is computed on (the first ones; DDP processes share them out).
        bound_timesteps: strata of KL terms per bound evaluation (see the module docstring).
        lr: AdamW learning rate.
        warmup_steps: linear warm-up of the learning rate, in optimizer steps.
        lr_schedule: after the warm-up, a ``constant`` or ``cosine``-decayed learning rate.
        weight_decay: AdamW's decoupled weight decay.
        grad_clip: gradient-norm clipping (0 = off).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {
        "channels": 8,
        "timesteps": 10,
        "sample_steps": 5,
        "bound_timesteps": 3,
        "bound_examples": 32,
    }
    ema_decay: ClassVar[float] = 0.999
    conditional_with: ClassVar[str | None] = "--model.conditional true"
    log_prob_is_exact = False

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 256,
        num_classes: ClassCount = 0,
        conditional: bool = False,
        guidance: NonNegativeFloat = 0.0,
        label_dropout: Fraction = 0.1,
        timesteps: Steps = 1000,
        schedule: Literal["linear", "cosine"] = "linear",
        variance: Literal["small", "large"] = "small",
        channels: Size = 32,
        channel_mults: tuple[Depth, ...] | None = None,
        num_res_blocks: Depth = 1,
        attention_levels: tuple[DepthOrZero, ...] | None = None,
        dropout: Fraction = 0.0,
        sampler: Literal["ddim", "ancestral", "dpm_solver"] = "ddim",
        sample_steps: Steps | None = None,
        eta: ClosedUnitInterval = 0.0,
        spacing: Literal["logsnr", "time"] = "logsnr",
        clip_x0: bool = True,
        bound_examples: PositiveInt = 144,
        bound_timesteps: Steps = 50,
        lr: PositiveFloat = 1e-3,
        warmup_steps: NonNegativeInt = 100,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        weight_decay: NonNegativeFloat = 0.0,
        grad_clip: NonNegativeFloat = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        shape = check_image_shape(image_shape, type(self).__name__, multiple_of=4, min_size=8)
        if conditional and num_classes < 2:
            raise IncompatibleDataError(
                f"conditional DDPM needs labelled data (num_classes >= 2), got num_classes={num_classes}; "
                "pick a labelled datamodule (digits, mnist, cifar10) or set conditional: false"
            )
        if sample_steps is not None and sample_steps > timesteps:
            raise ConfigError(
                f"DDPM: sample_steps must be at most timesteps ({timesteps}), got {sample_steps}; lower "
                f"--model.sample_steps or raise --model.timesteps"
            )
        if sampler == "dpm_solver" and eta > 0:
            raise ConfigError(
                f"DDPM: eta={eta} adds noise to DDIM only; DPM-Solver++ is deterministic: drop --model.eta or "
                "pick --model.sampler ddim"
            )
        #: the default number of DDIM / DPM-Solver++ steps of :meth:`sample`
        self.sample_steps = min(50, timesteps) if sample_steps is None else int(sample_steps)
        if conditional:  # a class-conditional instance (a ConditionalSampler); another has no num_classes
            self.num_classes = num_classes
        self.net = UNet(
            shape, channels, channel_mults, num_res_blocks, attention_levels, dropout, num_classes=class_count(self)
        )
        self._register_schedule(beta_schedule(schedule, timesteps), variance)
        self.example_input_array = (torch.zeros(2, *shape), torch.zeros(2, dtype=torch.long))

    def _register_schedule(self, betas: Tensor, variance: str) -> None:
        """Every constant of the forward and reverse processes, computed in float64, kept as float32 buffers."""
        alphas_cumprod = torch.cumprod(1.0 - betas, 0)
        prev = torch.cat([torch.ones(1, dtype=torch.float64), alphas_cumprod[:-1]])  # ᾱ_{t-1}, with ᾱ_{-1} = 1
        post_var = betas * (1.0 - prev) / (1.0 - alphas_cumprod)  # β̃_t (0 at t = 0)
        post_logvar = torch.log(torch.cat([post_var[1:2], post_var[1:]]))  # clipped: β̃ at t=0 is 0
        model_logvar = post_logvar if variance == "small" else torch.log(torch.cat([post_var[1:2], betas[1:]]))
        buffers = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": prev,
            "sqrt_alphas_cumprod": alphas_cumprod.sqrt(),
            "sqrt_one_minus_alphas_cumprod": (1.0 - alphas_cumprod).sqrt(),
            "posterior_logvar": post_logvar,
            "posterior_coef_x0": betas * prev.sqrt() / (1.0 - alphas_cumprod),
            "posterior_coef_xt": (1.0 - prev) * (1.0 - betas).sqrt() / (1.0 - alphas_cumprod),
            "model_logvar": model_logvar,
        }
        for name, value in buffers.items():  # rebuilt from hparams, not saved
            self.register_buffer(name, value.float(), persistent=False)

    @property
    def timesteps(self) -> int:  # T, the length of the forward process
        return self.hparams.timesteps

    # ------------------------------------------------------------------ the processes
    @staticmethod
    def _at(buffer: Tensor, t: Tensor, like: Tensor) -> Tensor:
        """``buffer[t]`` shaped ``(B, 1, 1, 1)`` for broadcasting against ``like``, in ``like``'s dtype."""
        return buffer[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))

    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """``x_t = √ᾱ_t x_0 + √(1-ᾱ_t) ε``, a draw of ``q(x_t | x_0)``."""
        return (
            self._at(self.sqrt_alphas_cumprod, t, x0) * x0 + self._at(self.sqrt_one_minus_alphas_cumprod, t, x0) * noise
        )

    def q_posterior(self, x0: Tensor, xt: Tensor, t: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``q(x_{t-1} | x_t, x_0)`` (Ho et al. eq. 6-7)."""
        mean = self._at(self.posterior_coef_x0, t, xt) * x0 + self._at(self.posterior_coef_xt, t, xt) * xt
        return mean, self._at(self.posterior_logvar, t, xt)

    def predict_eps(self, xt: Tensor, t: Tensor, y: Tensor | None = None, guidance: float = 0.0) -> Tensor:
        """``ε_θ(x_t, t[, y])`` in float32; with labels and ``guidance = w > 0`` the classifier-free
        combination ``(1 + w) ε(x_t, y) - w ε(x_t, ∅)`` (one batched call)."""
        if y is None or guidance == 0.0:
            return self.net(xt, t, y).float()
        null = torch.full_like(y, class_count(self))
        eps_c, eps_u = self.net(torch.cat([xt, xt]), torch.cat([t, t]), torch.cat([y, null])).float().chunk(2)
        return (1.0 + guidance) * eps_c - guidance * eps_u

    def predict_x0(self, xt: Tensor, t: Tensor, eps: Tensor) -> Tensor:
        """``x̂_0 = (x_t - √(1-ᾱ_t) ε) / √ᾱ_t``."""
        return (xt - self._at(self.sqrt_one_minus_alphas_cumprod, t, xt) * eps) / self._at(
            self.sqrt_alphas_cumprod, t, xt
        )

    def p_mean_logvar(
        self, xt: Tensor, t: Tensor, y: Tensor | None = None, clip: bool = False, guidance: float = 0.0
    ) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of ``p_θ(x_{t-1} | x_t)``: the posterior mean at ``x̂_0`` and the fixed variance."""
        x0 = self.predict_x0(xt, t, self.predict_eps(xt, t, y, guidance))
        if clip:
            x0 = x0.clamp(-1.0, 1.0)
        mean, _ = self.q_posterior(x0, xt, t)
        return mean, self._at(self.model_logvar, t, xt)

    # ------------------------------------------------------------------ sampling
    @torch.no_grad()
    def generate(
        self,
        noise: Tensor,
        *,
        y: Tensor | None = None,
        sampler: str = "ddim",
        steps: int | None = None,
        eta: float = 0.0,
        guidance: float = 0.0,
        clip: bool = True,
        spacing: str = "logsnr",
    ) -> Tensor:
        """Run the reverse process from ``x_T = noise`` and return ``x_0`` in model space ([-1, 1] when
        clipped), not rounded. ``ancestral``: ``x_{t-1} ~ p_θ(x_{t-1}|x_t)`` for every t, the mean at
        the last step. ``ddim``: Song et al. eq. 12 on :func:`~genlight.nn.diffusion.ddim_timesteps` (``steps`` of them),
        ``σ_t = η √((1-ᾱ_prev)/(1-ᾱ_t)) √(1-ᾱ_t/ᾱ_prev)``, ``ᾱ_prev = 1`` after the last step.
        ``dpm_solver``: DPM-Solver++(2M) (:func:`~genlight.nn.diffusion_solvers.dpm_solver_pp_2m`) on
        ``steps`` times spaced by ``spacing`` (``logsnr`` or ``time``), data prediction from the (guided)
        ``ε``, clipped to [-1, 1] with ``clip``; ``eta`` is unused."""
        x = noise.float()
        n = len(x)
        if sampler == "dpm_solver":
            return self.solve_ode(x, steps or self.sample_steps, spacing, y=y, guidance=guidance, clip=clip)
        if sampler == "ancestral":
            for i in reversed(range(self.timesteps)):
                t = torch.full((n,), i, device=x.device, dtype=torch.long)
                mean, logvar = self.p_mean_logvar(x, t, y, clip=clip, guidance=guidance)
                x = mean + torch.exp(0.5 * logvar) * torch.randn_like(x) if i > 0 else mean
            return x
        if sampler != "ddim":
            raise ValueError(f"unknown sampler {sampler!r}; choose ddim, ancestral or dpm_solver")
        seq = ddim_timesteps(self.timesteps, steps or self.sample_steps).tolist()
        for i, step in enumerate(seq):
            prev_step = seq[i + 1] if i + 1 < len(seq) else -1
            t = torch.full((n,), step, device=x.device, dtype=torch.long)
            a_t = self.alphas_cumprod[step].double()
            a_prev = self.alphas_cumprod[prev_step].double() if prev_step >= 0 else torch.ones((), dtype=torch.float64)
            eps = self.predict_eps(x, t, y, guidance)
            x0 = self.predict_x0(x, t, eps)
            if clip:
                x0 = x0.clamp(-1.0, 1.0)
                eps = (x - a_t.sqrt().float() * x0) / (1.0 - a_t).sqrt().float()
            sigma = eta * ((1 - a_prev) / (1 - a_t)).sqrt() * (1 - a_t / a_prev).sqrt()
            direction = (1 - a_prev - sigma**2).clamp(min=0).sqrt()
            x = a_prev.sqrt().float() * x0 + direction.float() * eps
            if eta > 0 and prev_step >= 0:
                x = x + sigma.float() * torch.randn_like(x)
        return x

    def solve_ode(
        self, x: Tensor, steps: int, spacing: str, y: Tensor | None = None, guidance: float = 0.0, clip: bool = True
    ) -> Tensor:
        """DPM-Solver++(2M) from ``x_T = x``: ``steps`` model calls at real timesteps, ``log α`` interpolated
        between the integer ones (:mod:`genlight.nn.diffusion_solvers`); the data prediction
        ``x̂_0 = (x_t - σ_t ε̃) / α_t`` of the guided ``ε̃`` (:meth:`predict_eps`), clipped with ``clip``."""
        log_alphas = 0.5 * self.alphas_cumprod.detach().double().cpu().log()  # (T,) log α at the integer steps
        times = solver_times(log_alphas, steps, spacing)  # (steps,) descending, real-valued

        def denoise(xt: Tensor, t: float) -> Tensor:
            log_alpha = interp_log_alpha(torch.tensor([t]), log_alphas)
            alpha, sigma = log_alpha.exp().item(), (-torch.expm1(2.0 * log_alpha)).sqrt().item()
            eps = self.predict_eps(xt, torch.full((len(xt),), t, device=xt.device), y, guidance)
            x0 = (xt - sigma * eps) / alpha
            return x0.clamp(-1.0, 1.0) if clip else x0

        return dpm_solver_pp_2m(x, denoise, times, log_alphas)

    def to_images(self, x: Tensor) -> Tensor:
        """Model space [-1, 1] -> images in [0, 1] on the data's level grid (the decoder's mode)."""
        levels = self.hparams.num_levels
        return to_levels((x.float() + 1.0) / 2.0, levels).float() / (levels - 1)

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        y: Tensor | None = None,
        steps: int | None = None,
        eta: float | None = None,
        sampler: str | None = None,
        guidance: float | None = None,
        spacing: str | None = None,
    ) -> Tensor:
        """``n`` images in [0, 1]: DDIM with ``steps`` steps and noise ``eta`` (defaults from the
        hyper-parameters), ``sampler="ancestral"`` (all T steps) or ``sampler="dpm_solver"``
        (DPM-Solver++(2M), ``steps`` model calls spaced by ``spacing``: ``logsnr`` or ``time``). ``y``:
        labels of a conditional model (``None``: unconditional draws through the "no label" token)."""
        sampler = sampler or self.hparams.sampler
        spacing = spacing or self.hparams.spacing
        check_sampling(sampler, steps, spacing, self.timesteps)
        if y is not None and class_count(self) == 0:
            raise ValueError("this DDPM is unconditional; train it with conditional: true to pass labels y")
        if y is not None:
            y = y.to(self.device).long()
        noise = torch.randn(n, *self.hparams.image_shape, device=self.device)
        x = self.generate(
            noise,
            y=y,
            sampler=sampler,
            steps=steps,
            eta=self.hparams.eta if eta is None else eta,
            guidance=self.hparams.guidance if guidance is None else guidance,
            clip=self.hparams.clip_x0,
            spacing=spacing,
        )
        return self.to_images(x)

    # ------------------------------------------------------------------ the bound
    def bound_terms(
        self,
        x: Tensor,
        num_terms: int | None = None,
        generator: torch.Generator | Sequence[torch.Generator] | None = None,
        y: Tensor | None = None,
    ) -> dict[str, Tensor]:
        """Per-example terms of the negative variational bound, in nats (float64): ``prior`` (L_T),
        ``kl`` (the estimate of Σ_{t=2..T} L_{t-1}, see the module docstring; ``num_terms`` strata,
        default ``bound_timesteps``), ``decoder`` (L_0) and their sum ``total``. Unconditional
        (the "no label" token for a conditional model) unless labels ``y`` are given: then the bound on
        ``log p(x | y)`` of a conditional model. ``generator``: one for the batch (the strata's
        timesteps shared by its images), or one per image (each image's draws its own)."""
        if y is not None and not class_count(self):
            raise ValueError("labels y need a conditional ddpm (--model.conditional true); this one is unconditional")
        x0 = x.float() * 2.0 - 1.0
        n, T = len(x0), self.timesteps
        k = self.hparams.bound_timesteps if num_terms is None else num_terms
        each = isinstance(generator, Sequence)

        def randn() -> Tensor:
            if each:
                return torch.stack([torch.randn(x0.shape[1:], generator=g) for g in generator]).to(x0.device)  # type: ignore[union-attr]
            return torch.randn(x0.shape, generator=generator, device="cpu").to(x0.device)  # type: ignore[arg-type]

        def dims(t: Tensor) -> Tensor:
            return t.flatten(1).sum(1)

        last = torch.full((n,), T - 1, device=x0.device, dtype=torch.long)
        mean_T = self._at(self.sqrt_alphas_cumprod, last, x0).double() * x0.double()
        logvar_T = torch.log1p(-self._at(self.alphas_cumprod, last, x0).double()).expand_as(mean_T)
        prior = dims(normal_kl(mean_T, logvar_T, torch.zeros_like(mean_T), torch.zeros_like(mean_T)))

        kl = torch.zeros(n, dtype=torch.float64, device=x0.device)
        if T > 1:
            if k >= T - 1:
                picks = torch.arange(1, T)[:, None].expand(-1, n)  # (T-1, n)
                weights = [1.0] * (T - 1)
            else:
                # quadratic spacing: the first strata (small t, where the KL terms are largest) hold single
                # timesteps, so they are computed exactly; later strata grow
                grid = 1 + (T - 1) * torch.linspace(0, 1, k + 1, dtype=torch.float64) ** 2
                edges = sorted(set(grid.round().long().tolist()))
                strata = len(edges) - 1
                if each:  # (strata, n): a timestep per stratum and image
                    u = torch.stack([torch.rand(strata, generator=g, dtype=torch.float64) for g in generator], 1)  # type: ignore[union-attr]
                else:
                    u = torch.rand(strata, generator=generator, dtype=torch.float64)[:, None].expand(-1, n)  # type: ignore[arg-type]
                lo, size = (
                    torch.tensor(edges[:-1])[:, None],
                    torch.tensor(edges[1:])[:, None] - torch.tensor(edges[:-1])[:, None],
                )
                picks = lo + torch.minimum((u * size).long(), size - 1)  # (strata, n)
                weights = [float(hi - lo) for lo, hi in zip(edges[:-1], edges[1:])]
            for step, weight in zip(picks, weights):
                t = step.to(x0.device)
                xt = self.q_sample(x0, t, randn())
                q_mean, q_logvar = self.q_posterior(x0.double(), xt.double(), t)
                p_mean, p_logvar = self.p_mean_logvar(xt, t, y)
                kl = kl + weight * dims(normal_kl(q_mean, q_logvar.double(), p_mean.double(), p_logvar.double()))

        t0 = torch.zeros(n, device=x0.device, dtype=torch.long)
        x1 = self.q_sample(x0, t0, randn())
        mean, logvar = self.p_mean_logvar(x1, t0, y)
        log_px = discretized_gaussian_log_prob(
            x0.double(), mean.double(), 0.5 * logvar.double(), self.hparams.num_levels
        )
        decoder = -dims(log_px)
        return {"prior": prior, "kl": kl, "decoder": decoder, "total": prior + kl + decoder}

    def log_prob(self, x: Tensor, num_terms: int | None = None, y: Tensor | None = None) -> Tensor:
        """The variational lower bound on ``log P(x)`` in nats (an unbiased one-sample estimate of it,
        with ``num_terms`` strata of timesteps; ``num_terms >= T - 1`` computes every term); with
        labels ``y`` (a conditional model) the bound on ``log P(x | y)``."""
        self.check_log_prob_input(x)
        return -self.bound_terms(x, num_terms, y=y)["total"].float()

    @torch.no_grad()
    def features(self, x: Tensor, t: int | None = None) -> Tensor:
        """A frozen representation: the U-Net's middle feature map (after its middle blocks) at a small
        timestep ``t`` (default ``T // 20``), averaged over positions, ``(B, ch)``. The input is the mean
        of ``q(x_t | x_0)``, ``sqrt(ᾱ_t) x_0`` (no noise drawn: deterministic, independent of the batch);
        a conditional model reads the null label (label-free)."""
        t = max(0, self.timesteps // 20) if t is None else int(t)
        x0 = x * 2.0 - 1.0
        steps = torch.full((len(x),), t, device=x.device, dtype=torch.long)
        xt = self.alphas_cumprod[t].sqrt().to(x0.dtype) * x0
        h = self.net.down_path(xt, steps, None)[0]  # (B, ch, h, w)
        return h.mean(dim=(2, 3))  # (B, ch)

    # ------------------------------------------------------------------ training
    def forward(self, xt: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        return self.net(xt, t, y)

    def diffusion_loss(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Ho et al.'s simple loss: ``|ε - ε_θ(x_t, t)|²`` averaged, ``t`` uniform over ``0..T-1``."""
        x0 = x * 2.0 - 1.0
        t = torch.randint(0, self.timesteps, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        if class_count(self) and y is not None and self.training and self.hparams.label_dropout > 0:
            drop = torch.rand(len(y), device=y.device) < self.hparams.label_dropout
            y = torch.where(drop, torch.full_like(y, class_count(self)), y)
        eps = self.net(self.q_sample(x0, t, noise), t, y if class_count(self) else None)
        return F.mse_loss(eps.float(), noise)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self.diffusion_loss(batch[0], batch[1].long() if class_count(self) else None)
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def on_validation_epoch_start(self) -> None:
        self._bound_seen = 0

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch[0], batch[1].long()
        self.log(f"{stage}/loss", self.diffusion_loss(x, y if class_count(self) else None), sync_dist=True)
        if not hasattr(self, "_bound_seen"):
            self.on_validation_epoch_start()
        trainer = attached_trainer(self)
        processes = trainer.world_size if trainer is not None else 1
        room = math.ceil(self.hparams.bound_examples / processes) - self._bound_seen  # this process's share
        if room > 0:
            x = x[:room]
            self._bound_seen += len(x)
            # each image's timesteps and noise from a generator seeded by the image: the same every epoch,
            # whichever process and batch it is in
            levels = to_levels(x, int(self.hparams.num_levels or 256)).cpu()  # one copy, not one per image
            generators = [torch.Generator().manual_seed(image_seed(img)) for img in levels]
            self.log_density(stage, -self.bound_terms(x, generator=generators)["total"].float())

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

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
