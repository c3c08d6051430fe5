"""Energy-based model trained by contrastive divergence with short-run Langevin dynamics and a replay
buffer (Du & Mordatch 2019; Nijkamp et al. 2019).

``p_θ(x) ∝ exp(-E_θ(x))``. Each step minimises ``E(x⁺) - E(x⁻) + α (E(x⁺)² + E(x⁻)²)`` with data ``x⁺``
and negatives ``x⁻`` from ``K`` steps of ``x ← clip(x - λ ∇_x E(x) + σ ξ)``, ``ξ ~ N(0, I)``, started
from the replay buffer (fresh uniform noise with probability ``reinit_prob``). As in the references,
``λ`` and ``σ`` are decoupled, so the chains are short-run samplers, not exact samples of ``p_θ``.
The buffer is a registered buffer: it is saved in checkpoints, restored by ``load_model`` and
resumed runs continue their chains. There is no ``log_prob``: the density is unnormalised.

Langevin needs gradients with respect to ``x``: :meth:`langevin` opens ``torch.inference_mode(False)``
and ``torch.enable_grad()`` itself and freezes the parameters meanwhile, so sampling works inside the
callbacks' ``evaluating()`` context and in scripts under ``no_grad``. ``validation_step`` needs no
gradients (it scores energies), so the default ``trainer.inference_mode: true`` works.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as sn

from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.ranges import (
    Buffer,
    ClosedUnitInterval,
    Fraction,
    NonNegativeFloat,
    PositiveFloat,
    Size,
    Steps,
    check_arguments,
)
from genlight.registry import register_model

__all__ = ["EBM", "ConvEnergy", "MLPEnergy"]


def _maybe_sn(layer: nn.Module, use: bool) -> nn.Module:
    return sn(layer) if use else layer


class ConvEnergy(nn.Module):
    """``E(x)``: 3x3 convs with SiLU (smooth, for Langevin), halving H and W until 4x4 or odd, then a
    linear map of the flattened features to a scalar. ``(B, C, H, W) -> (B,)``."""

    def __init__(self, image_shape: Sequence[int], channels: int = 64, spectral_norm: bool = False) -> None:
        super().__init__()
        c, h, w = image_shape
        layers: list[nn.Module] = [_maybe_sn(nn.Conv2d(c, channels, 3, padding=1), spectral_norm), nn.SiLU()]
        ch = channels
        while h % 2 == 0 and w % 2 == 0 and min(h, w) > 4:
            out = min(2 * ch, 8 * channels)
            layers += [_maybe_sn(nn.Conv2d(ch, ch, 3, padding=1), spectral_norm), nn.SiLU()]
            layers += [_maybe_sn(nn.Conv2d(ch, out, 3, stride=2, padding=1), spectral_norm), nn.SiLU()]
            ch, h, w = out, h // 2, w // 2
        layers += [_maybe_sn(nn.Conv2d(ch, ch, 3, padding=1), spectral_norm), nn.SiLU(), nn.Flatten()]
        layers.append(_maybe_sn(nn.Linear(ch * h * w, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


class MLPEnergy(nn.Module):
    """``E(x)`` on 2-D points: an MLP with SiLU activations, ``(B, D) -> (B,)``."""

    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3, spectral_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for _ in range(depth):
            layers += [_maybe_sn(nn.Linear(width, hidden), spectral_norm), nn.SiLU()]
            width = hidden
        layers.append(_maybe_sn(nn.Linear(width, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


@register_model("ebm")
class EBM(GenerativeModule):
    """Energy-based model: a CNN energy on images (an MLP on 2-D points), contrastive divergence with
    short-run Langevin chains persisted in a replay buffer.

    Args:
        image_shape: ``(C, H, W)`` images in [0, 1], or ``(2,)`` points (toy2d); linked from the
            datamodule by the CLI (the default is points: the family is not image-only).
        channels: width of the CNN energy (images).
        hidden: width of the MLP energy (points).
        spectral_norm: spectral normalisation of every layer of the energy (Miyato et al. 2018).
        langevin_steps: Langevin steps per training step (``K``).
        step_size: ``λ``, the gradient step of the chains.
        noise_std: ``σ``, the noise of the chains.
        buffer_size: replay-buffer size (0: every chain starts from noise).
        reinit_prob: probability that a chain restarts from uniform noise instead of the buffer.
        l2_coeff: ``α``, the weight of the energy-magnitude penalty.
        data_noise: std of Gaussian noise added to the data (short-run EBM practice; 0 = off).
        box: points live in ``[-box, box]²`` (noise init and clipping); images in [0, 1].
        sample_steps: Langevin steps of :meth:`sample` (``None``: ``langevin_steps``).
        sample_init: :meth:`sample` starts its chains from the replay ``buffer`` or from ``noise``.
        lr: Adam learning rate.
        beta1: Adam's ``beta1`` (0 as in the references), in [0, 1).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"channels": 8, "hidden": 16, "langevin_steps": 3, "buffer_size": 64}
    ema_target: ClassVar[str | None] = "energy"  # never average the replay buffer
    monitor: ClassVar[str | None] = ""  # energies are unnormalised: no validation figure selects checkpoints

    def __init__(
        self,
        image_shape: tuple[int, ...] = (2,),
        channels: Size = 64,
        hidden: Size = 128,
        spectral_norm: bool = False,
        langevin_steps: Steps = 60,
        step_size: PositiveFloat = 10.0,
        noise_std: NonNegativeFloat = 0.005,
        buffer_size: Buffer = 10000,
        reinit_prob: ClosedUnitInterval = 0.05,
        l2_coeff: NonNegativeFloat = 1.0,
        data_noise: NonNegativeFloat = 0.0,
        box: PositiveFloat = 4.0,
        sample_steps: Steps | None = None,
        sample_init: Literal["buffer", "noise"] = "buffer",
        lr: PositiveFloat = 1e-4,
        beta1: Fraction = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        shape = tuple(int(s) for s in image_shape)
        self.points = len(shape) == 1
        #: :class:`~genlight.types.EnergyModel`: the square 2-D points live in (``None`` for images)
        self.data_box: float | None = float(box) if self.points else None
        if self.points:
            (dim,) = check_image_shape(shape, type(self).__name__, ndim=1)
            self.energy: nn.Module = MLPEnergy(dim, hidden, spectral_norm=spectral_norm)
        else:
            shape = check_image_shape(shape, type(self).__name__)
            self.energy = ConvEnergy(shape, channels, spectral_norm)
        if not 0.0 <= reinit_prob <= 1.0:
            raise ValueError(f"reinit_prob must be in [0, 1], got {reinit_prob}")
        if sample_init == "buffer" and buffer_size < 1:
            raise ValueError("sample_init='buffer' needs buffer_size >= 1; set sample_init: noise or a buffer size")
        if langevin_steps < 1:
            raise ValueError(f"langevin_steps must be >= 1, got {langevin_steps}")
        self.shape = shape
        self.register_buffer("replay", self.noise(buffer_size, device=torch.device("cpu")))  # (N, *shape)

    # ------------------------------------------------------------------ sampling
    @property
    def bounds(self) -> tuple[float, float]:
        return (-self.hparams.box, self.hparams.box) if self.points else (0.0, 1.0)

    def noise(self, n: int, device: torch.device | None = None) -> Tensor:
        """Uniform noise over the data box: ``[0, 1]`` images or ``[-box, box]`` points."""
        lo, hi = self.bounds
        return lo + (hi - lo) * torch.rand(n, *self.shape, device=device or self.device)

    def langevin(self, x: Tensor, steps: int) -> Tensor:
        """``steps`` of ``x ← clip(x - λ ∇E(x) + σ ξ)`` with the energy's parameters frozen; returns a
        detached tensor. Opens ``inference_mode(False)`` and ``enable_grad()`` itself."""
        lo, hi = self.bounds
        frozen = [p for p in self.energy.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            with torch.inference_mode(False), torch.enable_grad():
                x = x.detach().clone().float()
                for _ in range(steps):
                    x.requires_grad_(True)
                    (grad,) = torch.autograd.grad(self.energy(x).float().sum(), x)
                    x = x.detach() - self.hparams.step_size * grad.float()
                    x = (x + self.hparams.noise_std * torch.randn_like(x)).clamp(lo, hi)
        finally:
            for p in frozen:
                p.requires_grad_(True)
        return x.detach()

    def sample(self, n: int, *, y: Tensor | None = None, steps: int | None = None, init: str | None = None) -> Tensor:
        """``n`` samples: chains started from random replay-buffer entries (or uniform noise, ``init``)
        run for ``steps`` Langevin steps (default ``sample_steps``). Images in [0, 1] / points."""
        if y is not None:
            raise ValueError("EBM is unconditional; it takes no labels y")
        init = init or self.hparams.sample_init
        if steps is None:
            steps = self.hparams.sample_steps or self.hparams.langevin_steps
        if init == "buffer" and len(self.replay):
            start = self.replay[torch.randint(len(self.replay), (n,), device=self.replay.device)].to(self.device)
        else:
            start = self.noise(n)
        return self.langevin(start, steps) if steps > 0 else start

    # ------------------------------------------------------------------ training
    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the energy network's penultimate activations (the input of its final
        linear map), ``(B, F)``."""
        return self.energy.net[:-1](x).float()

    def forward(self, x: Tensor) -> Tensor:
        """Energies ``E(x)``, ``(B,)``, float32."""
        return self.energy(x).float()

    def negatives(self, n: int) -> Tensor:
        """Langevin negatives from the replay buffer (fresh noise with probability ``reinit_prob``);
        the chains' end points are written back into the buffer."""
        size = len(self.replay)
        if size == 0:
            return self.langevin(self.noise(n), self.hparams.langevin_steps)
        idx = torch.randint(size, (n,), device=self.replay.device)
        start = self.replay[idx].to(self.device)
        fresh = torch.rand(n, device=self.device) < self.hparams.reinit_prob
        start = torch.where(fresh.view(-1, *([1] * len(self.shape))), self.noise(n), start)
        x = self.langevin(start, self.hparams.langevin_steps)
        with torch.no_grad():
            self.replay[idx] = x.to(self.replay.device, self.replay.dtype)
        return x

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x_pos = batch[0].float()
        if self.hparams.data_noise > 0:
            x_pos = x_pos + self.hparams.data_noise * torch.randn_like(x_pos)
        x_neg = self.negatives(len(x_pos))
        energies = self(torch.cat([x_pos, x_neg]))
        e_pos, e_neg = energies.chunk(2)
        cd = e_pos.mean() - e_neg.mean()
        loss = cd + self.hparams.l2_coeff * (e_pos.pow(2).mean() + e_neg.pow(2).mean())
        self.log_train(loss=loss, cd=cd, batch_size=len(x_pos))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_energies("val", batch[0].float())

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """The energies of :meth:`validation_step` on the test split (``test/energy_gap``, ...) and, as for
        every sampler, short-run samples against the test images (``test/fid``, ``test/kid``, ...)."""
        self.log_energies("test", batch[0].float())
        super().test_step(batch, batch_idx)

    def log_energies(self, stage: str, x: Tensor) -> None:
        """``{stage}/energy_data``, ``energy_noise``, ``energy_buffer`` and ``energy_gap`` (noise - data)."""
        e_data, e_noise = self(x).mean(), self(self.noise(len(x))).mean()
        e_buffer = self(self.replay[: len(x)].to(self.device)).mean() if len(self.replay) else e_noise
        self.log_dict(
            {
                f"{stage}/energy_data": e_data,
                f"{stage}/energy_noise": e_noise,
                f"{stage}/energy_buffer": e_buffer,
                f"{stage}/energy_gap": e_noise - e_data,
            },
            sync_dist=True,
            batch_size=len(x),
        )

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.energy.parameters(), lr=self.hparams.lr, betas=(self.hparams.beta1, 0.999))
