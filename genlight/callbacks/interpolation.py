"""Latent interpolations and single-dimension traversals for any :class:`~genlight.types.Autoencoder`.

Latent points are encodings of real images, so no latent size is read from hyper-parameters.
Spherical interpolation (slerp, Shoemake 1985; White 2016 for generative models):
``slerp(z0, z1; t) = sin((1-t) w) / sin(w) z0 + sin(t w) / sin(w) z1``, ``cos w = z0.z1 / |z0||z1|``.
"""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight.callbacks.base import EpochImageCallback
from genlight.callbacks.data import first_images
from genlight.callbacks.image_logging import log_images
from genlight.types import Autoencoder

__all__ = ["LatentInterpolation", "lerp", "slerp"]


def lerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """``(1-t) z0 + t z1`` for ``z`` of shape ``(B, ...)`` and ``t`` of shape ``(T,)`` -> ``(B, T, ...)``."""
    t = t.view(1, -1, *[1] * (z0.dim() - 1))
    return (1 - t) * z0[:, None] + t * z1[:, None]


def slerp(z0: Tensor, z1: Tensor, t: Tensor, eps: float = 1e-7) -> Tensor:
    """Spherical interpolation along the great circle (falls back to ``lerp`` for parallel points)."""
    a, b = z0.flatten(1), z1.flatten(1)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(eps)
    omega = cos.clamp(-1 + eps, 1 - eps).acos().view(-1, 1, *[1] * (z0.dim() - 1))
    tt = t.view(1, -1, *[1] * (z0.dim() - 1))
    so = omega.sin()
    out = (((1 - tt) * omega).sin() / so) * z0[:, None] + ((tt * omega).sin() / so) * z1[:, None]
    parallel = (omega.abs() < 1e-4).expand_as(out)
    return torch.where(parallel, lerp(z0, z1, t), out)


class LatentInterpolation(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log (as ``interpolations``) ``num_pairs`` rows of ``num_steps``
    decodings between the codes of pairs of real images (``mode`` linear or spherical), and (as
    ``traversals``) rows that move each of the first ``traverse_dims`` latent dimensions of one code
    over ``[-traverse_range, traverse_range]`` around its value.

    Models without ``encode``/``decode`` are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    capability = Autoencoder
    needs = "encode/decode"

    def __init__(
        self,
        num_pairs: int = 4,
        num_steps: int = 8,
        mode: Literal["linear", "spherical"] = "spherical",
        traverse_dims: int = 8,
        traverse_range: float = 3.0,
        every_n_epochs: int = 1,
        split: str = "val",
    ) -> None:
        if mode not in ("linear", "spherical"):
            raise ValueError(f"mode must be 'linear' or 'spherical', got {mode!r}")
        super().__init__(every_n_epochs)
        self.num_pairs = num_pairs
        self.num_steps = num_steps
        self.mode = mode
        self.traverse_dims = traverse_dims
        self.traverse_range = traverse_range
        self.split = split
        self.last_paths: dict[str, object] = {}

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        x = first_images(trainer, 2 * self.num_pairs, self.split).to(pl_module.device)
        interpolations, traversals = self.draw(pl_module, x)
        epoch = trainer.current_epoch
        self.last_paths["interpolations"] = log_images(
            trainer, "interpolations", interpolations, nrow=self.num_steps, caption=f"{self.mode}, epoch {epoch}"
        )
        if traversals is not None:
            self.last_paths["traversals"] = log_images(
                trainer, "traversals", traversals, nrow=self.num_steps, caption=f"one dimension per row, epoch {epoch}"
            )

    def draw(self, pl_module: Autoencoder, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(pairs*steps, C, H, W)`` interpolations and ``(dims*steps, C, H, W)`` traversals (or ``None``)."""
        z = pl_module.encode(x)
        pairs = len(z) // 2
        t = torch.linspace(0, 1, self.num_steps, device=z.device)
        path = (slerp if self.mode == "spherical" else lerp)(z[:pairs], z[pairs : 2 * pairs], t)
        interpolations = pl_module.decode(path.flatten(0, 1))
        dims = min(self.traverse_dims, z[0].numel())
        if dims <= 0:
            return interpolations, None
        offsets = torch.linspace(-self.traverse_range, self.traverse_range, self.num_steps, device=z.device)
        codes = z[:1].flatten(1).repeat(dims * self.num_steps, 1).view(dims, self.num_steps, -1)
        for d in range(dims):
            codes[d, :, d] += offsets
        traversals = pl_module.decode(codes.flatten(0, 1).view(-1, *z.shape[1:]))
        return interpolations, traversals
