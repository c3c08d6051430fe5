"""Patch pieces of Puzzle-GAN (Lee et al. 2017, "Unsupervised Holistic Image Generation from Key Local
Patches", arXiv 1703.10730), shared by the family, the completion callback and the benchmark: cutting
square patches at random positions, pasting them, their masks and mask IoU. The family's generator is
in :mod:`genlight.modules.puzzlegan`.

Positions are the top-left corners ``(row, col)`` of ``p x p`` patches, drawn uniformly over the
``(H - p + 1) x (W - p + 1)`` corners, independently per patch (patches may overlap).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = [
    "composite",
    "corner_index",
    "coverage",
    "cut_patches",
    "mask_iou",
    "paste_patches",
    "patch_masks",
    "random_positions",
    "union_mask",
]


def random_positions(
    n: int,
    k: int,
    image_hw: Sequence[int],
    patch_size: int,
    *,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """``(n, k, 2)`` long top-left corners ``(row, col)`` of ``k`` patches per image, uniform over the
    corners where a ``patch_size`` square fits; drawn on ``generator``'s device (the global RNG if
    ``None``), returned on ``device``."""
    h, w = int(image_hw[0]), int(image_hw[1])
    if patch_size > min(h, w):
        raise ValueError(f"patch_size {patch_size} does not fit in {h}x{w} images; use at most {min(h, w)}")
    on = generator.device if generator is not None else device
    rows = torch.randint(h - patch_size + 1, (n, k), generator=generator, device=on)
    cols = torch.randint(w - patch_size + 1, (n, k), generator=generator, device=on)
    return torch.stack([rows, cols], dim=-1).to(device)  # (n, k, 2)


def cut_patches(x: Tensor, positions: Tensor, patch_size: int) -> Tensor:
    """The ``patch_size`` squares of ``x`` ``(n, C, H, W)`` whose top-left corners are ``positions``
    ``(n, k, 2)``: ``(n, k, C, p, p)``."""
    n = x.shape[0]
    offsets = torch.arange(patch_size, device=x.device)
    rows = (positions[..., 0, None] + offsets)[..., :, None]  # (n, k, p, 1)
    cols = (positions[..., 1, None] + offsets)[..., None, :]  # (n, k, 1, p)
    batch = torch.arange(n, device=x.device)[:, None, None, None]  # (n, 1, 1, 1)
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 1, 4, 2, 3)  # (n, k, p, p, C) -> (n, k, C, p, p)


def paste_patches(canvas: Tensor, patches: Tensor, positions: Tensor) -> Tensor:
    """A copy of ``canvas`` ``(n, C, H, W)`` with ``patches`` ``(n, k, C, p, p)`` pasted with their
    top-left corners at ``positions`` ``(n, k, 2)``, patch 0 first (a later patch covers an earlier one
    where they overlap); the inverse of :func:`cut_patches` on the pasted squares."""
    n, k, _, p, _ = patches.shape
    out = canvas.clone().permute(0, 2, 3, 1)  # (n, H, W, C), a view of the copy
    offsets = torch.arange(p, device=canvas.device)
    batch = torch.arange(n, device=canvas.device)[:, None, None]  # (n, 1, 1)
    for i in range(k):
        rows = (positions[:, i, 0, None] + offsets)[:, :, None]  # (n, p, 1)
        cols = (positions[:, i, 1, None] + offsets)[:, None, :]  # (n, 1, p)
        out[batch, rows, cols] = patches[:, i].permute(0, 2, 3, 1).to(out.dtype)  # (n, p, p, C)
    return out.permute(0, 3, 1, 2)  # (n, C, H, W)


def patch_masks(positions: Tensor, patch_size: int, image_hw: Sequence[int]) -> Tensor:
    """``(n, k, H, W)`` float masks, 1 on each patch's square and 0 elsewhere."""
    h, w = int(image_hw[0]), int(image_hw[1])
    r = torch.arange(h, device=positions.device)
    c = torch.arange(w, device=positions.device)
    r0, c0 = positions[..., 0, None], positions[..., 1, None]  # (n, k, 1)
    in_rows = (r >= r0) & (r < r0 + patch_size)  # (n, k, H)
    in_cols = (c >= c0) & (c < c0 + patch_size)  # (n, k, W)
    return (in_rows[..., :, None] & in_cols[..., None, :]).float()  # (n, k, H, W)


def corner_index(positions: Tensor, image_w: int, patch_size: int) -> Tensor:
    """Top-left corners ``(n, k, 2)`` as flat indices ``row * (W - p + 1) + col`` into the grid of corners, ``(n, k)``."""
    return positions[..., 0] * (image_w - patch_size + 1) + positions[..., 1]


def coverage(corner_probabilities: Tensor, patch_size: int) -> Tensor:
    """Per-pixel probability of being covered by each patch, ``(n, k, H, W)``, from the probabilities
    of its top-left corner ``(n, k, H - p + 1, W - p + 1)``: the corner map convolved (transposed) with a
    ``p x p`` box. A one-hot corner map gives the patch's 0/1 mask (:func:`patch_masks`)."""
    n, k, h, w = corner_probabilities.shape
    box = corner_probabilities.new_ones(1, 1, patch_size, patch_size)
    covered = torch.nn.functional.conv_transpose2d(corner_probabilities.reshape(n * k, 1, h, w), box)
    return covered.view(n, k, h + patch_size - 1, w + patch_size - 1)  # (n, k, H, W)


def composite(background: Tensor, patches: Tensor, corner_probabilities: Tensor) -> Tensor:
    """Patches pasted on ``background`` ``(n, C, H, W)`` at their expected positions: each patch
    ``(n, k, C, p, p)`` spread over the corners by its probabilities ``(n, k, H-p+1, W-p+1)`` (a
    transposed convolution with the patch as kernel, one group per patch), the patches averaged where they
    overlap, the background kept where the total coverage is below 1 in proportion. One-hot corners
    paste the patches exactly (:func:`paste_patches`, overlaps averaged)."""
    n, k, c, p, _ = patches.shape
    hc, wc = corner_probabilities.shape[-2:]
    probs = corner_probabilities.reshape(1, n * k, hc, wc).to(patches.dtype)
    spread = torch.nn.functional.conv_transpose2d(probs, patches.reshape(n * k, c, p, p), groups=n * k)
    spread = spread.view(n, k, c, hc + p - 1, wc + p - 1).sum(1)  # (n, C, H, W): Σ_k E[patch k's pixels]
    covered = coverage(corner_probabilities, p).sum(1, keepdim=True).to(patches.dtype)  # (n, 1, H, W)
    return background * (1 - covered.clamp(max=1)) + spread / covered.clamp(min=1)


def union_mask(probabilities: Tensor) -> Tensor:
    """Per-patch mask probabilities ``(n, k, H, W)`` -> the probability that a pixel belongs to any
    patch, ``1 - Π_k (1 - m_k)``, ``(n, 1, H, W)`` (for hard 0/1 masks: their union)."""
    return 1.0 - (1.0 - probabilities).prod(dim=1, keepdim=True)


def mask_iou(predicted: Tensor, target: Tensor, threshold: float = 0.5) -> Tensor:
    """Per-example intersection over union of ``predicted > threshold`` and ``target > 0.5``, masks
    ``(n, ..., H, W)`` -> ``(n,)``; two empty masks have IoU 1."""
    p = (predicted > threshold).flatten(1)
    t = (target > 0.5).flatten(1)
    inter = (p & t).sum(1).float()
    union = (p | t).sum(1).float()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))
