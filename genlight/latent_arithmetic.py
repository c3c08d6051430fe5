"""Latent vector arithmetic for any :class:`~genlight.types.LatentGenerator` (GANs, flows, VAEs, AAE).

Radford et al. 2016 (DCGAN, §6.3 and Fig. 7): average the codes ``z`` of a few samples that share a
visual attribute ("smiling woman"), subtract the mean code of another group ("neutral woman"), add the
difference to a third code ("neutral man") and decode: ``G(mean(Z_a) - mean(Z_b) + z_c)`` shows the
attribute moved ("smiling man"). Here, for groups ``P_i`` (positive) and ``N_j`` (negative)::

    direction = sum_i mean(P_i) - sum_j mean(N_j)
    result(z, s) = decode(z + s * direction)

for base codes ``z`` and strengths ``s`` (``s = 0`` is the base image itself). The groups are codes of
samples chosen by any rule (a measured attribute, a classifier, by eye); nothing about the latent
space is read from hyper-parameters, only ``sample_latent`` and ``decode`` are used.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genlight.types import LatentGenerator

__all__ = ["arithmetic_grid", "latent_arithmetic", "latent_direction"]


def latent_direction(positive_groups: Sequence[Tensor], negative_groups: Sequence[Tensor] = ()) -> Tensor:
    """``sum_i mean(P_i) - sum_j mean(N_j)`` over the first (batch) dimension of each group ``(k, ...)``."""
    if not positive_groups and not negative_groups:
        raise ValueError("latent_direction needs at least one group of codes (positive_groups or negative_groups)")
    shapes = {tuple(g.shape[1:]) for g in [*positive_groups, *negative_groups]}
    if len(shapes) != 1 or any(len(g) == 0 for g in [*positive_groups, *negative_groups]):
        raise ValueError(f"every group must hold >= 1 code of one shape, got shapes {sorted(shapes)}")
    direction = sum(g.mean(0) for g in positive_groups) if positive_groups else 0.0
    for g in negative_groups:
        direction = direction - g.mean(0)
    return direction  # type: ignore[return-value]


@torch.no_grad()
def latent_arithmetic(
    model: LatentGenerator,
    positive_groups: Sequence[Tensor],
    negative_groups: Sequence[Tensor],
    base_codes: Tensor,
    scales: Sequence[float] = (1.0,),
    *,
    y: Tensor | None = None,
) -> Tensor:
    """Decode ``base_codes + s * direction`` (see :func:`latent_direction`) for each strength ``s``.

    Args:
        model: anything with ``decode(z)`` (a :class:`~genlight.types.LatentGenerator`).
        positive_groups, negative_groups: codes ``(k, *latent_shape)`` of the groups.
        base_codes: ``(n, *latent_shape)`` codes to move.
        scales: strengths ``s``; ``0`` reproduces the base images.
        y: labels ``(n,)`` of the base codes for conditional models (passed to ``decode(z, y=y)``).

    Returns:
        ``(n, len(scales), *image_shape)``: row ``i`` is base code ``i`` at each strength.
    """
    if not isinstance(model, LatentGenerator):
        raise TypeError(
            f"{type(model).__name__} has no sample_latent/decode; latent arithmetic needs a LatentGenerator"
        )
    direction = latent_direction(positive_groups, negative_groups).to(base_codes)
    if tuple(direction.shape) != tuple(base_codes.shape[1:]):
        raise ValueError(
            f"groups hold codes of shape {tuple(direction.shape)}, base_codes {tuple(base_codes.shape[1:])}"
        )
    s = torch.as_tensor(list(scales), dtype=base_codes.dtype, device=base_codes.device)
    codes = base_codes[:, None] + s.view(1, -1, *[1] * direction.dim()) * direction  # (n, S, ...)
    flat = codes.flatten(0, 1)
    if y is None:
        images = model.decode(flat)
    else:
        images = model.decode(flat, y=y.to(base_codes.device).repeat_interleave(len(s)))  # type: ignore[call-arg]
    return images.view(len(base_codes), len(s), *images.shape[1:])


def arithmetic_grid(results: Tensor, min_cell: int = 32) -> Tensor:
    """One ``(3, h, w)`` picture of :func:`latent_arithmetic`'s output: a row per base code, a column per
    strength (images in [0, 1], grey separators; cells enlarged to ``min_cell`` pixels)."""
    from genlight.callbacks.image_logging import image_grid

    if results.dim() != 5:
        raise ValueError(f"expected (n, scales, C, H, W) images, got shape {tuple(results.shape)}")
    return image_grid(results.flatten(0, 1), nrow=results.shape[1], min_width=0, min_cell=min_cell)
