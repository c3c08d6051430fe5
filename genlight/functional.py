"""Pure functions every layer shares: levels, bits per dimension, the name of a likelihood figure and
the image-shape check. No state, no Lightning."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

from genlight.errors import ImageShapeError

__all__ = ["bits_per_dim", "check_discrete_images", "check_image_shape", "density_label", "to_levels"]


def bits_per_dim(log_prob: Tensor, num_dims: int) -> Tensor:
    """``bpd = -log p(x) / (D ln 2)``, with ``log p`` in nats and ``D = C*H*W``."""
    return -log_prob / (num_dims * math.log(2.0))


def to_levels(x: Tensor, num_levels: int) -> Tensor:
    """Map images in [0, 1] to integer levels ``0 .. num_levels-1`` (``round(x (L-1))``)."""
    return (x * (num_levels - 1)).round().clamp_(0, num_levels - 1).long()


def density_label(exact: bool, discrete: bool, estimate: bool = False) -> str:
    """``bpd`` (exact, discrete images), ``bpd_bound`` (a lower bound on log p: ELBO, IWAE, DDPM's
    bound, a dequantised flow's E_u log p(x + u)), ``bpd_estimate`` (neither exact nor a bound: flow
    matching's ODE likelihood), ``nll`` / ``nll_bound`` / ``nll_estimate`` (continuous data, nats)."""
    return ("bpd" if discrete else "nll") + ("" if exact else "_estimate" if estimate else "_bound")


def check_image_shape(
    image_shape: Sequence[int], family: str, *, ndim: int = 3, multiple_of: int = 1, min_size: int = 1
) -> tuple[int, ...]:
    """Validate ``image_shape`` for a family and return it as a tuple of ints.

    Raises :class:`~genlight.errors.ImageShapeError` (a ``ValueError``) naming the shapes that fit.
    """
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != ndim:
        what = "(C, H, W) images" if ndim == 3 else f"{ndim}-d inputs"
        raise ImageShapeError(
            f"{family} works on {what}, got image_shape={shape}; pick an image datamodule "
            f"(digits, mnist, cifar10, ...) or a family that fits this data (`genlight list models`)"
        )
    if any(s < 1 for s in shape):
        raise ImageShapeError(f"{family}: every size in image_shape must be >= 1, got {shape}")
    if ndim == 3:
        _, h, w = shape
        if h % multiple_of or w % multiple_of or h < min_size or w < min_size:
            fits = ", ".join(str(multiple_of * k) for k in range(max(1, math.ceil(min_size / multiple_of)), 9))
            raise ImageShapeError(
                f"{family} needs H and W that are multiples of {multiple_of} and at least {min_size}, "
                f"got {h}x{w}; sizes that fit: {fits}, ... (resize the data, e.g. --data.image_size)"
            )
    return shape


def check_discrete_images(x: Tensor, num_levels: int, image_shape: Sequence[int], owner: str = "log_prob") -> None:
    """Refuse, with one ``ValueError`` line, input a density model cannot score: a shape other than
    ``(B, *image_shape)``, and for discrete data (``num_levels >= 2``) values outside [0, 1] or off the
    level grid (``x (L-1)`` not a whole number within 1e-4). One device sync when the input is fine."""
    shape = tuple(int(s) for s in image_shape)
    if x.dim() != len(shape) + 1 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"{owner}: x must have shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
    if num_levels < 2:
        return
    scaled = x.detach() * (num_levels - 1)
    bad = (x < 0) | (x > 1) | ((scaled - scaled.round()).abs() > 1e-4)
    if bool(bad.any()):
        low, high = float(x.min()), float(x.max())
        where = f"values in [{low:.4g}, {high:.4g}]" if low < 0 or high > 1 else "values between the levels"
        raise ValueError(
            f"{owner}: x must be images in [0, 1] on the {num_levels}-level grid (k / {num_levels - 1}), got "
            f"{where}; map raw data with genlight.functional.to_levels(x, {num_levels}) / {num_levels - 1}"
        )
