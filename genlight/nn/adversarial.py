"""Pieces every adversarial family shares: GAN losses on logits, the WGAN-GP gradient penalty,
DCGAN initialisation, conditional batch norm and CycleGAN's pool of past fakes.

Losses take the discriminator's raw outputs (logits / critic values), never probabilities: sigmoid +
``BCELoss`` is unsafe under fp16 autocast, ``softplus`` on logits is exact and stable
(``log σ(l) = -softplus(-l)``, ``log(1 - σ(l)) = -softplus(l)``).
"""

from __future__ import annotations

import random
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "ADVERSARIAL_LOSSES",
    "AdversarialLoss",
    "ConditionalBatchNorm2d",
    "ImagePool",
    "dcgan_init_",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
]

AdversarialLoss = Literal["non_saturating", "minimax", "hinge", "lsgan", "wasserstein_gp"]
ADVERSARIAL_LOSSES: tuple[str, ...] = ("non_saturating", "minimax", "hinge", "lsgan", "wasserstein_gp")


def check_loss(loss: str) -> str:
    """Return ``loss`` if it is a known adversarial loss, else a ``ValueError`` listing them."""
    if loss not in ADVERSARIAL_LOSSES:
        raise ValueError(f"unknown adversarial loss {loss!r}; choose one of {', '.join(ADVERSARIAL_LOSSES)}")
    return loss


def discriminator_loss(loss: str, real: Tensor, fake: Tensor) -> Tensor:
    """The discriminator's (critic's) loss, a mean over the batch, from its outputs on real and fake data.

    * ``non_saturating`` / ``minimax`` (Goodfellow et al. 2014): ``-log D(x) - log(1 - D(G(z)))``
      = ``softplus(-l_real) + softplus(l_fake)``;
    * ``hinge`` (Lim & Ye 2017; Miyato et al. 2018): ``relu(1 - l_real) + relu(1 + l_fake)``;
    * ``lsgan`` (Mao et al. 2017): ``½ (l_real - 1)² + ½ l_fake²``;
    * ``wasserstein_gp`` (Gulrajani et al. 2017): ``l_fake - l_real`` (add :func:`gradient_penalty`).
    """
    real, fake = real.float(), fake.float()
    if loss in ("non_saturating", "minimax"):
        return F.softplus(-real).mean() + F.softplus(fake).mean()
    if loss == "hinge":
        return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()
    if loss == "lsgan":
        return 0.5 * ((real - 1.0) ** 2).mean() + 0.5 * (fake**2).mean()
    if loss == "wasserstein_gp":
        return fake.mean() - real.mean()
    raise ValueError(check_loss(loss))


def generator_loss(loss: str, fake: Tensor) -> Tensor:
    """The generator's loss from the discriminator's outputs on its samples, a mean over the batch.

    * ``non_saturating``: ``-log D(G(z))`` = ``softplus(-l)``, strong gradients while D wins early;
    * ``minimax``: ``log(1 - D(G(z)))`` = ``-softplus(l)``, the game's value (saturates early);
    * ``hinge`` and ``wasserstein_gp``: ``-l``; ``lsgan``: ``½ (l - 1)²``.
    """
    fake = fake.float()
    if loss == "non_saturating":
        return F.softplus(-fake).mean()
    if loss == "minimax":
        return -F.softplus(fake).mean()
    if loss in ("hinge", "wasserstein_gp"):
        return -fake.mean()
    if loss == "lsgan":
        return 0.5 * ((fake - 1.0) ** 2).mean()
    raise ValueError(check_loss(loss))


def gradient_penalty(
    critic: Any, real: Tensor, fake: Tensor, *args: Any, generator: torch.Generator | None = None
) -> Tensor:
    """WGAN-GP's penalty ``E[(‖∇_x̂ D(x̂)‖₂ - 1)²]`` at ``x̂ = α x + (1 - α) x̃``, ``α ~ U(0, 1)`` per example.

    ``critic(x̂, *args)`` must return one value per example. Computed in fp32 with autocast off:
    ``autograd.grad`` bypasses the GradScaler, so an fp16 penalty would over- or underflow; the result
    keeps its graph (``create_graph=True``) so the penalty trains the critic. Real and fake are detached.
    """
    real, fake = real.detach().float(), fake.detach().float()
    alpha = torch.rand((real.shape[0],) + (1,) * (real.dim() - 1), device=real.device, generator=generator)
    mixed = (alpha * real + (1.0 - alpha) * fake).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False), torch.enable_grad():
        out = critic(mixed, *args).float()
        (grad,) = torch.autograd.grad(out.sum(), mixed, create_graph=True)
    return ((grad.flatten(1).norm(2, dim=1) - 1.0) ** 2).mean()


@torch.no_grad()
def dcgan_init_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """Radford et al. 2016 initialisation, in place: conv and linear weights ``N(0, std)``, biases 0,
    batch-norm scales ``N(1, std)`` and shifts 0. Spectral-normalised layers are initialised through
    their original weight. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            weight = m.parametrizations.weight.original if hasattr(m, "parametrizations") else m.weight
            nn.init.normal_(weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and m.affine:
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


class ConditionalBatchNorm2d(nn.Module):
    """Conditional batch norm (de Vries et al. 2017; Miyato & Koyama 2018): batch norm without its own
    affine, then ``(1 + γ(y)) x̂ + β(y)`` with class embeddings ``γ``, ``β`` initialised at zero, so
    training starts from plain batch norm (a multiplicative gain initialised at zero would kill the signal)."""

    def __init__(self, num_features: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        gain = 1.0 + self.gain(y)[:, :, None, None]
        return gain * self.norm(x) + self.bias(y)[:, :, None, None]


class ImagePool(nn.Module):
    """Pool of past generated images (Shrivastava et al. 2017; CycleGAN): the discriminator sees a mix of
    current and older fakes. While filling, :meth:`query` returns the current image and stores it; once
    full, each image is swapped with a random stored one with probability ½. The pool is saved in the
    module's ``state_dict`` (and so in checkpoints) as one tensor; the random choices use Python's
    ``random`` (seeded by ``seed_everything``, its state saved by genlight's RNG checkpointing)."""

    def __init__(self, size: int = 50) -> None:
        super().__init__()
        self.size = int(size)
        self.images: list[Tensor] = []

    @torch.no_grad()
    def query(self, images: Tensor) -> Tensor:
        if self.size <= 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif random.random() < 0.5:
                k = random.randrange(self.size)
                out.append(self.images[k].to(image.device))
                self.images[k] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def get_extra_state(self) -> Tensor:
        """The stored images as one tensor ``(n, C, H, W)`` (``(0,)`` while empty): a tensor, so that
        ``state_dict`` comparisons (``torch.equal``) and EMA/checkpoint code treat it like a buffer."""
        return torch.stack(self.images) if self.images else torch.zeros(0)

    def set_extra_state(self, state: Any) -> None:
        images = state.get("images") if isinstance(state, dict) else state  # dict: the first format
        self.images = [] if images is None or images.numel() == 0 else [im.clone() for im in images.unbind(0)]
