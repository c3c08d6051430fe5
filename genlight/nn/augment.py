"""Differentiable augmentations of the images a discriminator sees, for GANs on small data sets.

Both are applied to real and generated images alike, in the discriminator's step and in the generator's
(the generator's gradient flows through them), on images in the model range [-1, 1]; every example
draws its own parameters.

* **DiffAugment** (Zhao et al. 2020, ``DiffAugment_pytorch.py``): every operation of the policy on every
  image. ``color``: brightness ``x + (u - 0.5)``, saturation ``(x - mean_c) * 2u + mean_c`` and contrast
  ``(x - mean) * (u + 0.5) + mean``, ``u ~ U(0, 1)``; ``translation``: an integer shift of up to 1/8 of
  the size each way, the uncovered border filled with 0; ``cutout``: a square of half the size set to 0.
* **ADA** (Karras et al. 2020, §2.2-2.3): each operation of the policy on each image with probability
  ``p`` (which :class:`AdaptiveProbability` tunes), with the paper's parameter laws. ``xflip``: a flip
  with probability 1/2; ``rot90``: a rotation by ``k·90°``, ``k ~ U{0..3}``; ``translation``: an integer
  shift ``round(U(-1/8, 1/8)·size)``, reflected at the border; ``color``: brightness
  ``x + N(0, 0.2²)``, contrast ``x · lognormal(0, (0.5 ln 2)²)`` and saturation ``lognormal(0, (ln 2)²)``
  about the mean colour; ``cutout``: a square of half the size set to 0. These are the paper's
  non-leaking "pixel blitting" and colour groups (without luma flip and hue rotation) plus cutout; its
  geometric group (isotropic / anisotropic scaling, arbitrary rotation, fractional translation, which
  need resampling) and the filtering and noise groups are not implemented. They do not leak (the
  generator cannot learn the augmented distribution) while ``p`` stays below about 0.8 (§2.3), so
  :class:`AdaptiveProbability` caps ``p`` at :data:`ADA_MAX_P`.

For one-channel images "colour" is brightness and contrast: saturation (a scaling about the mean over
channels) leaves a grey image unchanged. ``xflip`` and ``rot90`` change the meaning of digits and text
(a flipped 2, a 6 turned into a 9), so the default policy leaves them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "ADA_MAX_P",
    "AUGMENTATIONS",
    "AUGMENT_OPS",
    "DEFAULT_POLICY",
    "AdaptiveProbability",
    "Augmentation",
    "ada_augment",
    "diff_augment",
    "parse_policy",
    "translate",
]

#: the augmentation methods of the adversarial base's ``augment`` option
Augmentation = Literal["none", "diffaugment", "ada"]
AUGMENTATIONS: tuple[str, ...] = ("none", "diffaugment", "ada")
#: the operations a policy may name
AUGMENT_OPS: tuple[str, ...] = ("color", "translation", "cutout", "xflip", "rot90")
#: DiffAugment's policy for its small-data results; the ADA default too (no flips or rotations: digits)
DEFAULT_POLICY = "color,translation,cutout"
#: the highest ADA probability: the paper's augmentations start to leak above about 0.8 (its Fig. 3)
ADA_MAX_P = 0.8


def parse_policy(policy: str) -> tuple[str, ...]:
    """``"color,translation"`` -> ``("color", "translation")``; a ``ValueError`` naming the known operations."""
    ops = tuple(op.strip() for op in policy.split(",") if op.strip())
    unknown = [op for op in ops if op not in AUGMENT_OPS]
    if unknown or not ops:
        raise ValueError(
            f"augment_policy {policy!r} names {'unknown operations ' + ', '.join(unknown) if unknown else 'nothing'}; "
            f"use a comma-separated list of {', '.join(AUGMENT_OPS)} (e.g. {DEFAULT_POLICY!r})"
        )
    return ops


def translate(x: Tensor, shift_y: Tensor, shift_x: Tensor, *, reflect: bool) -> Tensor:
    """Shift every image of ``x`` ``(B, C, H, W)`` by the integers ``shift_y``, ``shift_x`` ``(B,)`` (a gather,
    so differentiable in ``x``): the uncovered border is 0, or the image reflected at its edge."""
    b, _, h, w = x.shape
    rows = torch.arange(h, device=x.device)[None, :] - shift_y.view(b, 1)  # (B, H): source row of each row
    cols = torch.arange(w, device=x.device)[None, :] - shift_x.view(b, 1)  # (B, W)
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]  # (B, H, W)
    if reflect:  # -1 -> 0, -2 -> 1, h -> h - 1 (shifts are below the size)
        rows = torch.where(rows < 0, -rows - 1, torch.where(rows >= h, 2 * h - 1 - rows, rows))
        cols = torch.where(cols < 0, -cols - 1, torch.where(cols >= w, 2 * w - 1 - cols, cols))
    rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    index = (rows[:, :, None] * w + cols[:, None, :]).flatten(1)  # (B, H*W)
    out = x.flatten(2).gather(2, index[:, None, :].expand(-1, x.shape[1], -1)).view_as(x)
    return out if reflect else out * inside[:, None].to(x.dtype)


def _cutout(x: Tensor, apply: Tensor) -> Tensor:
    """Zero a square of half the size at a uniform centre in the images where ``apply`` ``(B,)`` holds."""
    b, _, h, w = x.shape
    size_y, size_x = int(h * 0.5 + 0.5), int(w * 0.5 + 0.5)
    cy = torch.randint(0, h + (1 - size_y % 2), (b, 1), device=x.device)
    cx = torch.randint(0, w + (1 - size_x % 2), (b, 1), device=x.device)
    ys, xs = torch.arange(h, device=x.device)[None, :], torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= cy - size_y // 2) & (ys < cy - size_y // 2 + size_y)  # (B, H)
    in_x = (xs >= cx - size_x // 2) & (xs < cx - size_x // 2 + size_x)  # (B, W)
    hole = in_y[:, :, None] & in_x[:, None, :] & apply.view(b, 1, 1)  # (B, H, W)
    return x * (~hole)[:, None].to(x.dtype)


def _uniform(x: Tensor) -> Tensor:
    """``U(0, 1)`` per example, ``(B, 1, 1, 1)``."""
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype)


def diff_augment(x: Tensor, policy: Sequence[str]) -> Tensor:
    """DiffAugment: every operation of ``policy`` on every image of ``x`` ``(B, C, H, W)`` in [-1, 1]
    (module docstring). ``xflip`` and ``rot90``, not DiffAugment operations, are applied as ADA's with ``p = 1``."""
    b, _, h, w = x.shape
    everywhere = torch.ones(b, dtype=torch.bool, device=x.device)
    for op in policy:
        if op == "color":
            x = x + (_uniform(x) - 0.5)
            mean = x.mean(dim=1, keepdim=True)
            x = (x - mean) * (_uniform(x) * 2) + mean
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * (_uniform(x) + 0.5) + mean
        elif op == "translation":
            sy, sx = int(h * 0.125 + 0.5), int(w * 0.125 + 0.5)
            ty = torch.randint(-sy, sy + 1, (b,), device=x.device)
            tx = torch.randint(-sx, sx + 1, (b,), device=x.device)
            x = translate(x, ty, tx, reflect=False)
        elif op == "cutout":
            x = _cutout(x, everywhere)
        else:
            x = _blit(x, op, everywhere)
    return x


def _blit(x: Tensor, op: str, apply: Tensor) -> Tensor:
    """ADA's ``xflip`` (a flip with probability 1/2) or ``rot90`` (``k ~ U{0..3}`` quarter turns) where ``apply``."""
    b = x.shape[0]
    if op == "xflip":
        flip = apply & (torch.rand(b, device=x.device) < 0.5)
        return torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    turns = torch.randint(0, 4, (b,), device=x.device) * apply.long()
    out = x
    for k in (1, 2, 3):  # square images only (a quarter turn of H x W is W x H)
        out = torch.where((turns == k).view(b, 1, 1, 1), torch.rot90(x, k, dims=(2, 3)), out)
    return out


def ada_augment(x: Tensor, policy: Sequence[str], p: float) -> Tensor:
    """ADA: each operation of ``policy`` on each image of ``x`` ``(B, C, H, W)`` in [-1, 1] with probability
    ``p`` (module docstring); ``p = 0`` returns ``x``."""
    if p <= 0:
        return x
    b, c, h, w = x.shape

    def chosen() -> Tensor:
        return torch.rand(b, device=x.device) < p  # (B,)

    def per_example(values: Tensor, where: Tensor, neutral: float) -> Tensor:
        return torch.where(where, values, torch.full_like(values, neutral)).view(b, 1, 1, 1).to(x.dtype)

    for op in policy:
        if op in ("xflip", "rot90"):
            if op == "rot90" and h != w:
                raise ValueError(f"rot90 needs square images, got {h}x{w}; leave it out of augment_policy")
            x = _blit(x, op, chosen())
        elif op == "translation":
            where = chosen()
            ty = (torch.empty(b, device=x.device).uniform_(-0.125, 0.125) * h).round().long() * where.long()
            tx = (torch.empty(b, device=x.device).uniform_(-0.125, 0.125) * w).round().long() * where.long()
            x = translate(x, ty, tx, reflect=True)
        elif op == "color":
            x = x + per_example(torch.randn(b, device=x.device) * 0.2, chosen(), 0.0)
            x = x * per_example(torch.exp(torch.randn(b, device=x.device) * 0.5 * math.log(2)), chosen(), 1.0)
            if c > 1:
                mean = x.mean(dim=1, keepdim=True)
                scale = per_example(torch.exp(torch.randn(b, device=x.device) * math.log(2)), chosen(), 1.0)
                x = (x - mean) * scale + mean
        elif op == "cutout":
            x = _cutout(x, chosen())
    return x


class AdaptiveProbability:
    """ADA's controller of ``p`` (Karras et al. 2020, §3): every ``interval`` discriminator steps, the
    overfitting heuristic ``r_t = E[sign(D(x_real))]`` over the reals those steps saw moves ``p`` by
    ``sign(r_t - target) · N / (kimg · 1000)`` for the ``N`` images seen, so that ``p`` can rise from 0
    to 1 in ``kimg`` thousand images; ``p`` is clipped to [0, :data:`ADA_MAX_P`].

    The paper's speed is 500k images (70k-image FFHQ, 25M-image runs); genlight's default of 100k lets
    ``p`` react within the few hundred thousand images of a small-data run. The state (``p``, and the
    signs summed since the last adjustment) is a plain dict for checkpoints.
    """

    def __init__(self, target: float = 0.6, interval: int = 4, kimg: float = 100.0) -> None:
        self.target, self.interval, self.kimg = float(target), int(interval), float(kimg)
        self.p = 0.0
        self.sign_sum = 0.0
        self.count = 0.0
        self.steps = 0

    def observe(self, sign_sum: float, count: float) -> None:
        """Add one discriminator step's ``sum(sign(D(x_real)))`` over its ``count`` real images; adjust
        ``p`` every ``interval`` steps."""
        self.sign_sum += float(sign_sum)
        self.count += float(count)
        self.steps += 1
        if self.steps % self.interval == 0 and self.count > 0:
            r_t = self.sign_sum / self.count
            direction = (r_t > self.target) - (r_t < self.target)
            self.p = min(max(self.p + direction * self.count / (self.kimg * 1000.0), 0.0), ADA_MAX_P)
            self.sign_sum, self.count = 0.0, 0.0

    @property
    def r_t(self) -> float:
        """The heuristic over the steps since the last adjustment (0 when there were none)."""
        return self.sign_sum / self.count if self.count else 0.0

    def state_dict(self) -> dict[str, float]:
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count, "steps": float(self.steps)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.p, self.sign_sum, self.count = float(state["p"]), float(state["sign_sum"]), float(state["count"])
        self.steps = int(state["steps"])
