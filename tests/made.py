"""A MADE (Germain et al. 2015) written as a newcomer writes a plug-in from docs/write-a-family.md, on the
plain base, and five copies of it with one planted bug each: the test of :mod:`genlight.testing` is that
it fails every copy, naming the property, and passes the original (``tests/test_testing_kit.py``).

``p(x) = prod_d Cat(x_d; softmax(f_d(x_<d)))`` over sub-pixels in raster order, ``f`` one hidden layer
whose weights are masked so that output ``d`` sees only inputs before ``d``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.functional import check_image_shape, to_levels
from genlight.module import GenerativeModule
from genlight.ranges import Levels, PositiveFloat, Size, check_arguments
from genlight.registry import register_model

__all__ = ["MADE", "MADELeaky", "MADEOnePass", "MADEUnnormalised", "MADEWrongLevels", "MADEWrongShape"]


@register_model("test_made", tags=("test",))
class MADE(GenerativeModule):
    """Masked autoencoder for distribution estimation over discrete images, exact ``log p(x)``.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule.
        num_levels: levels per sub-pixel; linked.
        hidden: hidden units.
        lr: Adam learning rate.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"hidden": 16}
    log_prob_is_exact = True
    see_self: ClassVar[bool] = False  # the planted leak: output d sees hidden units that see input d

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), num_levels: Levels = 17, hidden: Size = 64, lr: PositiveFloat = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        c, h, w = self.shape = check_image_shape(image_shape, type(self).__name__)
        self.num_levels, self.lr = int(num_levels), float(lr)
        d = c * h * w
        rank = torch.arange(d).view(h, w, c).permute(2, 0, 1).flatten()  # raster position of each (c, i, j)
        degree = torch.arange(hidden) % max(1, d - 1)  # hidden unit k sees inputs of rank <= degree[k]
        output_sees = rank[:, None] >= degree[None] if self.see_self else rank[:, None] > degree[None]
        self.register_buffer("mask_in", (degree[:, None] >= rank[None]).float())  # (hidden, D)
        self.register_buffer("mask_out", output_sees.float().repeat_interleave(num_levels, 0))  # (D*L, hidden)
        self.inner = nn.Linear(d, hidden)
        self.outer = nn.Linear(hidden, d * num_levels)

    def conditional_logits(self, x: Tensor) -> Tensor:
        """``(B, C*L, H, W)``: the logits of every sub-pixel's conditional, from images in [0, 1]."""
        c, h, w = self.shape
        hid = F.relu(F.linear(x.flatten(1) * 2 - 1, self.inner.weight * self.mask_in, self.inner.bias))
        out = F.linear(hid, self.outer.weight * self.mask_out, self.outer.bias)  # (B, D*L), D in (C, H, W) order
        return out.view(-1, c, h, w, self.num_levels).permute(0, 1, 4, 2, 3).flatten(1, 2)

    def level_log_probs(self, x: Tensor) -> Tensor:
        """``(B, C, L, H, W)``: log-probabilities of every level of every sub-pixel."""
        c, h, w = self.shape
        return self.conditional_logits(x).view(-1, c, self.num_levels, h, w).log_softmax(2)

    def log_prob(self, x: Tensor) -> Tensor:
        self.check_log_prob_input(x)
        levels = to_levels(x, self.num_levels)  # (B, C, H, W) ints
        return self.level_log_probs(x).gather(2, levels.unsqueeze(2)).flatten(1).sum(1)

    def draw(self, x: Tensor, c: int, i: int, j: int) -> Tensor:
        """``(B,)`` levels of sub-pixel ``(c, i, j)`` drawn given ``x``."""
        return torch.multinomial(self.level_log_probs(x)[:, c, :, i, j].exp(), 1).squeeze(1)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        c, h, w = self.shape
        x = torch.zeros(n, c, h, w, device=self.device)
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    x[:, k, i, j] = self.draw(x, k, i, j) / (self.num_levels - 1)
        return x

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = -self.log_prob(batch[0]).mean() / (self.num_dims * math.log(2))
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("val", self.log_prob(batch[0]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


class MADEUnnormalised(MADE):
    """Planted: ``logsigmoid`` where ``log_softmax`` belongs."""

    def level_log_probs(self, x: Tensor) -> Tensor:
        c, h, w = self.shape
        return F.logsigmoid(self.conditional_logits(x).view(-1, c, self.num_levels, h, w))


class MADELeaky(MADE):
    """Planted: the mask leaks, each sub-pixel's conditional sees the sub-pixel itself."""

    see_self: ClassVar[bool] = True


class MADEOnePass(MADE):
    """Planted: every sub-pixel drawn in one pass from the conditionals of a blank image."""

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        probs = self.level_log_probs(torch.zeros(n, *self.shape, device=self.device)).exp()  # (n, C, L, H, W)
        levels = torch.multinomial(probs.movedim(2, -1).reshape(-1, self.num_levels), 1)
        return levels.view(n, *self.shape).float() / (self.num_levels - 1)


class MADEWrongLevels(MADE):
    """Planted: samples are the levels 0..L-1, not images in [0, 1]."""

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return super().sample(n) * (self.num_levels - 1)


class MADEWrongShape(MADE):
    """Planted: samples are flat, ``(n, C*H*W)``."""

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return super().sample(n).flatten(1)
