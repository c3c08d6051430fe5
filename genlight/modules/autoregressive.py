"""The base class of the autoregressive image families (a LightningModule, registered by none): the chain rule over sub-pixels
``p(x) = prod_d p(x_d | x_<d)`` in raster order (rows, columns, then channels R -> G -> B inside a
pixel), its exact log-likelihood, batch sampling and the training loop.

A family implements :meth:`AutoregressiveImageModel.conditional_logits`: for every sub-pixel the
parameters of its conditional given the sub-pixels before it, computed in one pass (teacher forcing).
The tests in ``tests/test_autoregressive.py`` cover every registered family with ``autoregressive =
True``: probabilities sum to one over every image, and the conditionals are causal (by autograd).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from genlight.functional import check_image_shape, to_levels
from genlight.module import GenerativeModule
from genlight.nn.autoregressive import draw_levels
from genlight.nn.likelihoods import PixelLikelihood, make_likelihood
from genlight.nn.logistic_mixture import LogisticMixture
from genlight.nn.pixel_cache import PixelCache
from genlight.ranges import Decay, NonNegativeFloat, PositiveFloat, check_arguments
from genlight.types import class_count

__all__ = ["AutoregressiveImageModel"]


class AutoregressiveImageModel(GenerativeModule):
    """Base of the autoregressive families over discrete images (PixelCNN, Gated PixelCNN, NADE...).

    Subclasses pass the optimiser arguments to ``super().__init__``, call :meth:`setup_autoregressive`
    and implement :meth:`conditional_logits`; they may set :attr:`receptive_rows` so sampling only
    recomputes the rows the current one can see. The base saves the hyper-parameters of the whole
    ``__init__`` chain (do not call ``save_hyperparameters`` again in a subclass).

    Args:
        lr: AdamW learning rate.
        weight_decay: AdamW's decoupled weight decay.
        lr_decay: multiplied into the learning rate after every epoch (1 = constant).
    """

    autoregressive: ClassVar[bool] = True
    log_prob_is_exact = True

    def __init__(self, lr: PositiveFloat = 1e-3, weight_decay: NonNegativeFloat = 0.0, lr_decay: Decay = 1.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.lr, self.weight_decay, self.lr_decay = float(lr), float(weight_decay), float(lr_decay)

    def setup_autoregressive(
        self,
        image_shape: tuple[int, ...],
        num_levels: int,
        num_classes: int = 0,
        output: str = "softmax",
        components: int = 5,
    ) -> None:
        """Shapes, levels and the output distribution: Bernoulli for 2 levels, else a softmax over the
        levels (``output="softmax"``) or a mixture of ``components`` discretised logistics."""
        family = type(self).__name__
        self.shape = check_image_shape(image_shape, family)
        if num_levels < 2:
            raise ValueError(
                f"{family} models discrete levels and needs num_levels >= 2, got {num_levels}; use a datamodule of "
                f"discrete images (digits, mnist, binarized_mnist, cifar10)"
            )
        self.num_levels = num_levels
        if num_classes > 0:  # a class-conditional instance (a ConditionalSampler); others have no num_classes
            self.num_classes = num_classes
        if output not in ("softmax", "logistic_mixture"):
            raise ValueError(f"output must be softmax or logistic_mixture, got {output!r}")
        if num_levels == 2:
            self.likelihood: PixelLikelihood = make_likelihood("bernoulli", 2)
        elif output == "logistic_mixture":
            self.likelihood = LogisticMixture(num_levels, components)
        else:
            self.likelihood = make_likelihood("categorical", num_levels)
        self.params_per_channel = self.likelihood.params_per_channel

    # ------------------------------------------------------------------ to implement
    def conditional_logits(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``(B, C*P, H, W)``: the parameters of ``p(x_d | x_<d)`` for every sub-pixel ``d``, from images
        ``x`` in [0, 1] ``(B, C, H, W)`` (any real values, so gradients can be taken; the levels are
        ``k / (L-1)``). Channel ``c``'s ``P`` parameters are features ``c*P .. c*P+P-1``."""
        raise NotImplementedError

    #: rows above the current one that its conditionals can see (``None``: all); bounds sampling work
    receptive_rows: int | None = None

    # ------------------------------------------------------------------ likelihood
    def quantize(self, x: Tensor) -> Tensor:
        """Images snapped to the level grid ``k / (L-1)``."""
        dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
        return to_levels(x, self.num_levels).to(dtype) / (self.num_levels - 1)

    def check_labels(self, y: Tensor | None, n: int) -> Tensor | None:
        if y is None:
            return None
        if class_count(self) <= 0:
            raise ValueError(
                f"{type(self).__name__} is unconditional; train it with conditional=True on labelled data to pass y"
            )
        y = torch.as_tensor(y, device=self.device).long().view(-1)
        if y.numel() != n or y.min() < 0 or y.max() >= class_count(self):
            raise ValueError(f"y must hold {n} class ids in [0, {class_count(self)}), got {y.tolist()}")
        return y

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Exact ``log p(x)`` in nats per image; for a class-conditional model ``log p(x | y)``, or, without
        ``y``, ``log (1/K) sum_k p(x | k)`` (uniform class prior, exact)."""
        self.check_log_prob_input(x)
        xq = self.quantize(x)
        if class_count(self) > 0 and y is None:
            per_class = [
                self.log_prob(xq, torch.full((len(x),), k, device=x.device, dtype=torch.long))
                for k in range(class_count(self))
            ]
            return torch.logsumexp(torch.stack(per_class, 1), 1) - math.log(class_count(self))
        y = self.check_labels(y, len(x))
        return self.likelihood.log_prob(self.conditional_logits(xq, y), xq)

    # ------------------------------------------------------------------ sampling
    def sample_row_logits(self, x: Tensor, row: int, y: Tensor | None) -> Tensor:
        """``(B, C*P, W)``: the conditionals of ``row``, computed on the rows it can see only."""
        top = 0 if self.receptive_rows is None else max(0, row - self.receptive_rows)
        return self.conditional_logits(x[:, :, top : row + 1], y)[:, :, -1]

    def pixel_cache(self, x: Tensor, y: Tensor | None) -> PixelCache | None:
        """The cached sampler's state for drawing into ``x`` (:class:`~genlight.nn.pixel_cache.PixelCache`),
        or ``None`` where the family has none."""
        return None

    def cache_refusal(self) -> str | None:
        """Why this configuration cannot be sampled from caches (``None``: it can)."""
        return None

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        """Exact ancestral sampling (:meth:`raster_sample`, from caches where the family has them)."""
        return self.raster_sample(n, y=y)

    @torch.inference_mode()
    def raster_sample(self, n: int, *, y: Tensor | None = None, sampler: str = "cached") -> Tensor:
        """Exact ancestral sampling, the whole batch at once, sub-pixel by sub-pixel in raster order.
        ``sampler="cached"`` (where the family has caches, Ramachandran et al. 2017) computes each layer
        at the new pixel only (:meth:`pixel_cache`); ``"naive"`` re-runs the network over the rows the
        current row can see (:attr:`receptive_rows`) for every sub-pixel. Both draw the same images for
        the same seed. Images in [0, 1] on the level grid."""
        if sampler not in ("cached", "naive"):
            raise ValueError(f"sampler must be cached or naive, got {sampler!r}")
        y = self.check_labels(y, n)
        if y is None and class_count(self) > 0:
            y = torch.randint(class_count(self), (n,), device=self.device)
        c, h, w = self.shape
        p = self.params_per_channel
        x = torch.zeros(n, c, h, w, device=self.device, dtype=self.dtype)
        cache = None
        if sampler == "cached":
            refusal = self.cache_refusal()
            if refusal is not None:
                rank_zero_warn(f"{type(self).__name__}: no cached sampling {refusal}; sampling naively")
            else:
                cache = self.pixel_cache(x, y)
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    params = cache.params(i, j) if cache is not None else self.sample_row_logits(x, i, y)[:, :, j]
                    x[:, k, i, j] = draw_levels(params[:, k * p : (k + 1) * p], self.likelihood).to(x.dtype) / (
                        self.num_levels - 1
                    )
            if cache is not None:
                cache.row_done(i)
        return x

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1] if class_count(self) > 0 else None
        loss = -self.log_prob(x, y).mean() / (self.num_dims * math.log(2.0))  # bits/dim of the batch
        self.log_train(loss=loss, batch_size=len(x))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("val", self.log_prob(batch[0]))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("test", self.log_prob(batch[0]))

    def configure_optimizers(self) -> Any:
        opt = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_decay >= 1.0:
            return opt
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=self.lr_decay)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
