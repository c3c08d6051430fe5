"""Discriminative baselines (Foster, *Generative Deep Learning*, ch. 2): an MLP and a CNN classifier.

Ordinary classifiers trained with cross-entropy; they log ``val/acc`` and ``val/loss`` and expose
``features(x)``, the penultimate layer, which is what a domain feature extractor for FID uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.ranges import ClassCount, Fraction, PositiveFloat, Size, check_arguments
from genlight.registry import register_model

__all__ = ["CNNClassifier", "ClassifierModule", "MLPClassifier"]


class ClassifierModule(GenerativeModule):
    """Shared training logic of the classifiers; subclasses build ``self.net`` (``body`` + ``head``)."""

    net: nn.Module

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, num_classes)``."""
        return self.net(x)

    def features(self, x: Tensor) -> Tensor:
        """Penultimate-layer activations ``(B, num_features)``."""
        return self.net.body(x)

    def check_data(self, image_shape: tuple[int, ...], num_classes: int) -> tuple[int, ...]:
        """The validated ``(C, H, W)``; unlabelled data is refused with a message saying what fits."""
        shape = check_image_shape(image_shape, type(self).__name__)
        if num_classes < 2:
            raise IncompatibleDataError(
                f"{type(self).__name__} needs a labelled datamodule (num_classes >= 2), got {num_classes}; "
                "use labelled data (digits, mnist, cifar10, an image_folder with class sub-folders)"
            )
        return shape

    @property
    def num_features(self) -> int:
        return int(self.net.num_features)

    def _step(self, batch: tuple[Tensor, Tensor], stage: str) -> Tensor:
        x, y = batch[0], batch[1]  # (x, y), and any further items (digit_domains: the domain) ignored
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.argmax(1) == y).float().mean()
        if stage == "train":
            self.log_train(loss=loss, acc=acc, batch_size=len(x), prog_bar=("loss", "acc"))
        else:
            self.log_dict({f"{stage}/loss": loss, f"{stage}/acc": acc}, prog_bar=stage != "test", sync_dist=True)
        return loss

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


@register_model("mlp_classifier")
class MLPClassifier(ClassifierModule):
    """Multilayer perceptron classifier (Foster ch. 2): Flatten -> 200 -> 150 -> num_classes.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_classes: number of labels; linked from the datamodule.
        hidden: widths of the hidden layers; the last is the feature size.
        batch_norm: batch norm after each hidden layer.
        dropout: dropout after each hidden layer (0 = off).
        lr: Adam learning rate.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"hidden": (16, 8)}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_classes: ClassCount = 10,
        hidden: Sequence[Size] = (200, 150),
        batch_norm: bool = False,
        dropout: Fraction = 0.0,
        lr: PositiveFloat = 5e-4,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        shape = self.check_data(image_shape, num_classes)
        self.net = MLPNet(shape, num_classes, tuple(hidden), batch_norm, dropout)
        self.example_input_array = torch.zeros(2, *shape)


@register_model("cnn_classifier")
class CNNClassifier(ClassifierModule):
    """Convolutional classifier (Foster ch. 2): 4 conv layers (strides 1, 2, 1, 2) -> Dense(hidden) -> logits.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_classes: number of labels; linked from the datamodule.
        channels: widths of the four conv layers.
        hidden: width of the dense layer; the feature size.
        batch_norm: batch norm after each conv and the dense layer.
        dropout: dropout after the dense layer (0 = off).
        lr: Adam learning rate.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"channels": (4, 4, 8, 8), "hidden": 16}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_classes: ClassCount = 10,
        channels: Sequence[Size] = (32, 32, 64, 64),
        hidden: Size = 128,
        batch_norm: bool = True,
        dropout: Fraction = 0.5,
        lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        shape = self.check_data(image_shape, num_classes)
        self.net = CNNNet(shape, num_classes, tuple(channels), hidden, batch_norm, dropout)
        self.example_input_array = torch.zeros(2, *shape)
