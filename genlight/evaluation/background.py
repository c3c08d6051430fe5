"""The background model of the likelihood ratio (Ren et al. 2019, arXiv 1906.02845): the same family,
trained on inputs with a fraction ``mu`` of their values replaced by random levels (:func:`perturb`,
fresh noise at every read), with L2 weight decay, so that it learns the population-level background
statistics (smoothness, local contrast) and not the semantics of the data."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlight.datamodules.base import GenerativeDataModule, TransformedDataset
from genlight.evaluation.scores import perturb

__all__ = ["PerturbedImages", "perturb_training_split", "train_background"]


class PerturbedImages:
    """``x -> perturb(x, mu, num_levels)``, one example at a time, fresh noise from the global RNG
    (seeded by Lightning's ``seed_everything``)."""

    def __init__(self, mu: float, num_levels: int) -> None:
        self.mu, self.num_levels = float(mu), int(num_levels)

    def __call__(self, x: Tensor) -> Tensor:
        return perturb(x[None], self.mu, self.num_levels)[0]


def perturb_training_split(datamodule: GenerativeDataModule, mu: float) -> GenerativeDataModule:
    """``datamodule`` with its training split perturbed (:class:`PerturbedImages`); val/test unchanged."""
    datamodule.setup("fit")
    train: Dataset = datamodule.reference_dataset("train")
    datamodule.train_set = TransformedDataset(train, PerturbedImages(mu, datamodule.num_levels))
    return datamodule


def train_background(
    model_name: str,
    model_kwargs: dict[str, Any],
    datamodule: GenerativeDataModule,
    mu: float = 0.2,
    weight_decay: float = 1e-4,
    trainer_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
) -> torch.nn.Module:
    """Train the background model: ``create_model(model_name, **model_kwargs, weight_decay=...)`` fit on
    ``datamodule`` with its training split perturbed by ``mu`` (Ren et al. use 0.1-0.3), for
    ``trainer_kwargs`` (Lightning ``Trainer`` arguments, e.g. ``max_epochs``). The family must take a
    ``weight_decay`` argument (the L2 of the recipe). Returns the model in eval mode."""
    import inspect

    import lightning.pytorch as pl

    from genlight.registry import MODELS

    if not 0.0 < mu < 1.0:
        raise ValueError(f"mu must be in (0, 1) (Ren et al. use 0.1-0.3), got {mu}")
    cls = MODELS.get(model_name)
    if "weight_decay" not in inspect.signature(cls.__init__).parameters:
        raise ValueError(f"{model_name} has no weight_decay argument: the background model needs L2 weight decay; "
                         "add one to the family or pass weight_decay=0 and train it yourself")  # fmt: skip
    pl.seed_everything(seed, verbose=False)
    model = cls(**{**model_kwargs, "weight_decay": weight_decay})
    trainer = pl.Trainer(**{"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                            "enable_model_summary": False, "accelerator": "cpu", **(trainer_kwargs or {})})  # fmt: skip
    trainer.fit(model, datamodule=perturb_training_split(datamodule, mu))
    return model.eval()
