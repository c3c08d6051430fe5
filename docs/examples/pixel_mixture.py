"""A mixture of product-of-categorical distributions over discrete pixels: the worked example of
"Write a family" (docs/write-a-family.md), checked by ``genlight.testing.check_family`` in the tests.

``p(x) = sum_k pi_k prod_d Cat(x_d | theta_kd)``: an exact likelihood of discrete images, computed
with a log-sum-exp over the K components; trained by maximum likelihood with Adam (the EM-fitted
version is the "mixture" baseline row of benchmarks/results/likelihood_digits.md).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlight.functional import check_image_shape, to_levels
from genlight.module import GenerativeModule
from genlight.ranges import Levels, PositiveFloat, Size, check_arguments
from genlight.registry import register_model


@register_model("pixel_mixture")
class PixelMixture(GenerativeModule):
    """Mixture of K independent-pixel categorical models.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: discrete levels per pixel (17 for digits); linked from the datamodule.
        num_components: K, the number of mixture components.
        lr: Adam learning rate.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"num_components": 3}  # tiny, for genlight.testing
    log_prob_is_exact = True  # a DensityModel with an exact likelihood: logged as val/bpd

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        num_components: Size = 10,
        lr: PositiveFloat = 0.05,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()  # every argument above, in the checkpoint and on the CLI
        check_arguments(self, self.hparams)  # each value in its type's range, one line if not
        self.shape = check_image_shape(image_shape, type(self).__name__)  # one clear error for 2-D points
        self.num_levels, self.lr = int(num_levels), float(lr)  # compute with plain numbers (attributes)
        self.mix_logits = nn.Parameter(torch.zeros(num_components))  # log pi_k (unnormalised)
        self.pixel_logits = nn.Parameter(0.01 * torch.randn(num_components, math.prod(self.shape), num_levels))

    # ------------------------------------------------------------------ capabilities (genlight.types)
    def log_prob(self, x: Tensor) -> Tensor:
        """``log p(x)`` in nats, shape ``(n,)``: a :class:`~genlight.types.DensityModel`."""
        self.check_log_prob_input(x)  # outside training: shape, [0, 1] and the level grid
        levels = to_levels(x, self.num_levels).flatten(1)  # (n, D) integer levels
        log_theta = self.pixel_logits.float().log_softmax(-1)  # (K, D, L), float32 under autocast too
        index = levels.T.unsqueeze(0).expand(len(log_theta), -1, -1)  # (K, D, n)
        log_px_k = log_theta.gather(2, index).sum(1).T  # (n, K): log p(x | k)
        return torch.logsumexp(self.mix_logits.float().log_softmax(0) + log_px_k, dim=1)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        """``n`` images in [0, 1], shape ``(n, C, H, W)``: a :class:`~genlight.types.Sampler`."""
        k = torch.multinomial(self.mix_logits.softmax(0), n, replacement=True)  # (n,) components
        probs = self.pixel_logits[k].softmax(-1)  # (n, D, L)
        levels = torch.multinomial(probs.flatten(0, 1), 1).view(n, -1)  # (n, D)
        return (levels.float() / (self.num_levels - 1)).view(n, *self.shape)

    # ------------------------------------------------------------------ Lightning
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0]
        loss = -self.log_prob(x).mean() / self.num_dims  # nats per dimension
        self.log_train(loss=loss, batch_size=len(x))  # not self.log: cheap, epoch means for free
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("val", self.log_prob(batch[0]))  # logged as val/bpd (exact, discrete)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("test", self.log_prob(batch[0]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)
