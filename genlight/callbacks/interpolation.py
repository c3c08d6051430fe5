"""Latent interpolations and single-dimension traversals for any :class:`~genlight.types.Autoencoder`
or :class:`~genlight.types.LatentGenerator` (GANs, flows, AAE).

Latent points are encodings of real images (autoencoders) or seeded draws of the model's prior
(``sample_latent``), so no latent size is read from hyper-parameters.
Spherical interpolation (slerp, Shoemake 1985; White 2016 for generative models):
``slerp(z0, z1; t) = sin((1-t) w) / sin(w) z0 + sin(t w) / sin(w) z1``, ``cos w = z0.z1 / |z0||z1|``.
"""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight.callbacks.base import EpochImageCallback, evaluating, first_batch, label_kwargs
from genlight.callbacks.image_logging import log_images
from genlight.ranges import Decay, NonNegativeInt, PositiveFloat, PositiveInt, Seed, check_arguments
from genlight.types import Autoencoder, LatentGenerator, is_conditional

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
    decodings between pairs of latent codes (``mode`` linear or spherical), and (as ``traversals``)
    rows that move each of the first ``traverse_dims`` latent dimensions of one code over
    ``[-traverse_range, traverse_range]`` around its value.

    The codes are the encodings of the first real images of ``split`` for an
    :class:`~genlight.types.Autoencoder`, else ``sample_latent`` draws (seeded by ``seed``, the same
    every epoch) for a :class:`~genlight.types.LatentGenerator`. A conditional model decodes each row
    with one label: the first image's label of the pair (autoencoders) or ``row % num_classes``.
    Models with neither capability are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    capability = (Autoencoder, LatentGenerator)
    needs = "encode/decode or sample_latent/decode"

    def __init__(
        self,
        num_pairs: PositiveInt = 4,
        num_steps: PositiveInt = 8,
        mode: Literal["linear", "spherical"] = "spherical",
        traverse_dims: PositiveInt = 8,
        traverse_range: PositiveFloat = 3.0,
        every_n_epochs: NonNegativeInt = 1,
        split: str = "val",
        seed: Seed = 0,
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        if mode not in ("linear", "spherical"):
            raise ValueError(f"mode must be 'linear' or 'spherical', got {mode!r}")
        super().__init__(every_n_epochs, max_time_fraction)
        self.num_pairs = num_pairs
        self.num_steps = num_steps
        self.mode = mode
        self.traverse_dims = traverse_dims
        self.traverse_range = traverse_range
        self.split = split
        self.seed = seed
        self.last_paths: dict[str, object] = {}

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        z, y = self.codes(trainer, pl_module)
        interpolations, traversals = self.draw(pl_module, z, y)
        epoch = trainer.current_epoch
        self.last_paths["interpolations"] = log_images(
            trainer, "interpolations", interpolations, nrow=self.num_steps, caption=f"{self.mode}, epoch {epoch}"
        )
        if traversals is not None:
            self.last_paths["traversals"] = log_images(
                trainer, "traversals", traversals, nrow=self.num_steps, caption=f"one dimension per row, epoch {epoch}"
            )

    def codes(self, trainer: pl.Trainer | None, pl_module: pl.LightningModule) -> tuple[Tensor, Tensor | None]:
        """``2 * num_pairs`` latent codes (pairs: ``z[i]``, ``z[num_pairs + i]``) and their labels
        (``None`` for unconditional models): encodings of real images, else seeded prior draws."""
        device = pl_module.device
        if isinstance(pl_module, Autoencoder) and trainer is not None:
            x, y = first_batch(trainer, 2 * self.num_pairs, self.split)
            x = x.to(device)
            y = y.to(device) if isinstance(y, Tensor) else None
            kwargs = label_kwargs(pl_module, pl_module.encode, y)
            return pl_module.encode(x, **kwargs), kwargs.get("y")
        if not isinstance(pl_module, LatentGenerator):
            raise TypeError(f"{type(pl_module).__name__} has no encode/decode or sample_latent/decode")
        with evaluating(pl_module, seed=self.seed):
            z = pl_module.sample_latent(2 * self.num_pairs).to(device)
        y = None
        if is_conditional(pl_module):  # pair i (and its row) gets label i % num_classes
            y = (torch.arange(2 * self.num_pairs, device=device) % self.num_pairs) % pl_module.num_classes
        return z, y

    def draw(self, pl_module: LatentGenerator, z: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``(pairs*steps, ...)`` interpolations and ``(dims*steps, ...)`` traversals (or ``None``),
        decoded row by row with label ``y[row]`` for conditional models (``y`` labels ``z``)."""
        if y is not None and not label_kwargs(pl_module, pl_module.decode, y):
            y = None
        pairs = len(z) // 2
        t = torch.linspace(0, 1, self.num_steps, device=z.device)
        path = (slerp if self.mode == "spherical" else lerp)(z[:pairs], z[pairs : 2 * pairs], t)
        rows = None if y is None else y[:pairs].repeat_interleave(self.num_steps)
        interpolations = self._decode(pl_module, path.flatten(0, 1), rows)
        dims = min(self.traverse_dims, z[0].numel())
        if dims <= 0:
            return interpolations, None
        offsets = torch.linspace(-self.traverse_range, self.traverse_range, self.num_steps, device=z.device)
        codes = z[:1].flatten(1).repeat(dims * self.num_steps, 1).view(dims, self.num_steps, -1)
        for d in range(dims):
            codes[d, :, d] += offsets
        rows = None if y is None else y[:1].repeat(dims * self.num_steps)
        traversals = self._decode(pl_module, codes.flatten(0, 1).view(-1, *z.shape[1:]), rows)
        return interpolations, traversals

    @staticmethod
    def _decode(pl_module: LatentGenerator, z: Tensor, y: Tensor | None) -> Tensor:
        return pl_module.decode(z) if y is None else pl_module.decode(z, y=y)  # type: ignore[call-arg]
