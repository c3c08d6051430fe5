"""Deterministic convolutional autoencoder (Hinton & Salakhutdinov 2006): ``x -> z -> x_hat``."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn import ConvDecoder, ConvEncoder
from genlight.ranges import PositiveFloat, Size, check_arguments
from genlight.registry import register_model


@register_model("ae")
class AE(GenerativeModule):
    """Autoencoder trained to reconstruct its input; an ``Autoencoder``, not a ``Sampler``.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        latent_dim: size of the code ``z``.
        hidden_channels: width of the first conv layer.
        loss: ``bce`` (binary cross-entropy on logits, targets in [0, 1]) or ``mse``.
        lr: Adam learning rate.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "hidden_channels": 8}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        latent_dim: Size = 16,
        hidden_channels: Size = 32,
        loss: Literal["bce", "mse"] = "bce",
        lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        shape = check_image_shape(image_shape, type(self).__name__)
        self.encoder = ConvEncoder(shape, hidden_channels, latent_dim)
        self.decoder = ConvDecoder(latent_dim, shape, hidden_channels, shape[0])
        self.example_input_array = torch.zeros(2, *shape)

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the code ``z = enc(x)``, ``(B, latent_dim)``."""
        return self.encode(x)

    def reconstruction_loss(self, x: Tensor) -> Tensor:
        """Mean over the batch of the summed per-pixel loss."""
        logits = self.decoder(self.encoder(x)).float()
        if self.hparams.loss == "bce":
            per_pixel = F.binary_cross_entropy_with_logits(logits, x.float(), reduction="none")
        else:
            per_pixel = (torch.sigmoid(logits) - x.float()).pow(2)
        return per_pixel.flatten(1).sum(1).mean()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self.reconstruction_loss(batch[0])
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/loss", self.reconstruction_loss(batch[0]), prog_bar=True, sync_dist=True)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("test/loss", self.reconstruction_loss(batch[0]), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
