"""The Lightning side every flow family shares (not registered itself): dequantisation, the
likelihood and its bookkeeping, sampling with a temperature, encode / decode, training and the
optimiser. A family (``realnvp``, ``glow``) builds its :class:`~genlight.nn.flows.MultiScaleFlow` in
``__init__`` and calls :meth:`NormalizingFlow.setup_data` first.

Images ``x`` in [0, 1] on an ``L``-level grid (levels ``k``): the flow models the dequantised
``y = (k + u) / L`` in (0, 1)^D, preprocessed by a bijection inside the flow (logit or shift, its
Jacobian included). ``log_prob(x) = log p_Y(y) - log q(u|x) - D log L`` for one draw of ``u``, an
unbiased estimate of a *lower bound* on the discrete ``log P(k)`` (``log_prob_is_exact = False``;
logged as ``val/bpd_bound``, the papers' bits/dim). On 2-D points (``image_shape == (d,)``,
``num_levels == 0``) the density is exact (``log_prob_is_exact = True``, logged as ``val/nll``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genlight._compat import attached_trainer
from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape, to_levels
from genlight.module import GenerativeModule
from genlight.nn.flows import (
    MultiScaleFlow,
    UniformDequantization,
    VariationalDequantization,
    standard_normal_log_prob,
)
from genlight.nn.schedules import warmup_cosine_scheduler
from genlight.ranges import NonNegativeFloat, NonNegativeInt, PositiveFloat, check_arguments

__all__ = ["NormalizingFlow"]

Dequantization = Literal["uniform", "variational"]


class NormalizingFlow(GenerativeModule):
    """Shared base of the flow families; subclasses set ``self.flow`` (and call :meth:`setup_data`).

    Families pass the optimiser arguments to ``super().__init__``; the base saves the hyper-parameters
    of the whole ``__init__`` chain (do not call ``save_hyperparameters`` again in a subclass).

    Args:
        optimizer: ``adam`` or ``adamax``.
        lr: learning rate.
        weight_decay: L2 on the weights of the s,t networks only.
        warmup_steps: linear warm-up, in optimizer steps.
        lr_schedule: ``constant`` or ``cosine`` over the run's estimated steps.
    """

    #: test discovery: every flow family has this (``tests/test_flows.py`` covers them all)
    is_normalizing_flow: ClassVar[bool] = True
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images", "points")  # images, and 2-D points (toy2d)
    #: Polyak averaging of the weights (the EMA callback; Glow's recipe averages too): on digits a
    #: decay of 0.99 lowered validation bits/dim by ~0.03 at equal epochs (benchmarks/results/tuning.md)
    ema_decay: ClassVar[float] = 0.99
    log_prob_is_exact = False  # image data: a dequantisation bound; set per instance in setup_data
    flow: MultiScaleFlow

    def __init__(
        self,
        optimizer: Literal["adam", "adamax"] = "adam",
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        warmup_steps: NonNegativeInt = 100,
        lr_schedule: Literal["constant", "cosine"] = "constant",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.optimizer_name, self.lr, self.weight_decay = optimizer, float(lr), float(weight_decay)
        self.warmup_steps, self.lr_schedule = int(warmup_steps), lr_schedule

    def setup_data(
        self,
        image_shape: tuple[int, ...],
        num_levels: int,
        *,
        multiple_of: int = 1,
        dequantization: Dequantization = "uniform",
        dequantization_kwargs: dict[str, Any] | None = None,
    ) -> tuple[int, ...]:
        """Validate the data, choose the likelihood label and build the dequantiser; returns the shape.

        Images ``(C, H, W)`` need ``num_levels >= 2`` and H, W multiples of ``multiple_of``; vectors
        ``(d,)`` (toy2d) need ``d >= 2`` and ``num_levels == 0`` (continuous)."""
        name = type(self).__name__
        self.is_images = len(tuple(image_shape)) == 3
        if self.is_images:
            shape = check_image_shape(image_shape, name, multiple_of=multiple_of, min_size=multiple_of)
            if num_levels < 2:
                raise IncompatibleDataError(
                    f"{name} on images needs the number of pixel levels (num_levels >= 2, e.g. 256 for 8-bit data) "
                    f"to dequantise, got num_levels={num_levels}; use an image datamodule, which links it"
                )
        else:
            shape = check_image_shape(image_shape, name, ndim=1)
            if shape[0] < 2 or num_levels:
                raise IncompatibleDataError(
                    f"{name} on vectors needs continuous points of at least 2 dimensions (num_levels=0), got "
                    f"image_shape={shape}, num_levels={num_levels}; use toy2d or an image datamodule"
                )
        if dequantization not in ("uniform", "variational"):
            raise ValueError(f"dequantization must be 'uniform' or 'variational', got {dequantization!r}")
        self.log_prob_is_exact = not self.is_images  # exact density on continuous points
        self.num_levels = int(num_levels)
        self.dequantizer: nn.Module | None = None
        if self.is_images:
            kwargs = dequantization_kwargs or {}
            self.dequantizer = (
                VariationalDequantization(shape, num_levels, **kwargs)
                if dequantization == "variational"
                else UniformDequantization(num_levels)
            )
        return shape

    # ------------------------------------------------------------------ density
    def forward(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def log_prob(self, x: Tensor) -> Tensor:
        """Per-example log-likelihood in nats. Images: ``log p_Y(y) - log q(u|x) - D log L`` with one draw
        of the dequantisation noise, a stochastic lower bound on ``log P(x)``; points: exact ``log p(x)``."""
        self.check_log_prob_input(x)
        if not self.is_images:
            return self.flow.log_prob(x.float())
        y, log_q = self.dequantizer(x)  # type: ignore[misc]
        return self.flow.log_prob(y) - log_q - self.num_dims * math.log(self.num_levels)

    # ------------------------------------------------------------------ latent space
    def encode(self, x: Tensor) -> Tensor:
        """``x -> eps (B, D)``, the standard-normal noise of the flow. Images are placed at the centre
        of their dequantisation cell, ``y = (k + 1/2) / L``, so :meth:`decode` returns them exactly."""
        if self.is_images:
            x = (to_levels(x, self.num_levels).float() + 0.5) / self.num_levels
        return self.flow(x.float())[0]

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the flow's latent (:meth:`encode`), every scale's ``z`` flattened and
        concatenated, ``(B, D)``; images at the centre of their dequantisation cell (deterministic)."""
        return self.encode(x)

    def decode(self, z: Tensor) -> Tensor:
        """``eps (B, D) -> x``: images in [0, 1] on the level grid (the cell ``y`` falls in), or points."""
        y = self.flow.inverse(z.float())
        if not self.is_images:
            return y
        k = torch.floor(y * self.num_levels).clamp_(0, self.num_levels - 1)
        return k / (self.num_levels - 1)

    def sample_latent(self, n: int, temperature: float = 1.0) -> Tensor:
        """``eps ~ N(0, T^2 I)``, shape ``(n, D)`` (reduced temperature ``T < 1`` as in Glow, §6)."""
        return temperature * torch.randn(n, self.num_dims, device=self.device)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None, temperature: float = 1.0) -> Tensor:
        """``n`` draws ``decode(eps)``, ``eps ~ N(0, T^2 I)``: images in [0, 1] of shape
        ``(n, *image_shape)`` on the level grid, or ``(n, d)`` points."""
        if y is not None:
            raise ValueError(f"{type(self).__name__} is unconditional; sample without labels y")
        return self.decode(self.sample_latent(n, temperature))

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """Loss: the negative log-likelihood (bound) in nats per dimension, averaged over the batch."""
        loss = -self.log_prob(batch[0]).mean() / self.num_dims
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("val", self.log_prob(batch[0]))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("test", self.log_prob(batch[0]))

    def configure_optimizers(self) -> Any:
        decay: list[Tensor] = []
        rest: list[Tensor] = []
        for name, p in self.named_parameters():
            (decay if ".net." in f".{name}" and p.dim() > 1 else rest).append(p)
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        optimizers = {"adam": torch.optim.Adam, "adamax": torch.optim.Adamax}
        if self.optimizer_name not in optimizers:
            raise ValueError(f"optimizer must be one of {sorted(optimizers)}, got {self.optimizer_name!r}")
        opt = optimizers[self.optimizer_name](groups, lr=self.lr)
        total = None  # constant after the warm-up
        if self.lr_schedule == "cosine":  # decays over the steps after the warm-up
            total = max(1, int(self.trainer.estimated_stepping_batches)) if attached_trainer(self) is not None else 1
        scheduler = warmup_cosine_scheduler(opt, self.warmup_steps, total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    @staticmethod
    def latent_log_prob(eps: Tensor) -> Tensor:
        """``log N(eps; 0, I)`` per example."""
        return standard_normal_log_prob(eps)
