"""The background model of the likelihood ratio (Ren et al. 2019, arXiv 1906.02845): the same family,
trained on inputs with a fraction ``mu`` of their values replaced by random levels (:func:`perturb`,
fresh noise at every read), with L2 weight decay, so that it learns the population-level background
statistics (smoothness, local contrast) and not the semantics of the data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from genlight.datamodules.base import GenerativeDataModule, TransformedDataset
from genlight.evaluation.scores import perturb

__all__ = ["TRAINER_KEYS", "PerturbedImages", "background_from_config", "perturb_training_split", "train_background"]


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
    save_path: str | Path | None = None,
) -> torch.nn.Module:
    """Train the background model: ``create_model(model_name, datamodule, **model_kwargs,
    weight_decay=...)`` (shapes linked from ``datamodule``) fit on ``datamodule`` with its training split
    perturbed by ``mu`` (Ren et al. use 0.1-0.3), with Lightning ``Trainer`` arguments ``trainer_kwargs``
    (e.g. ``max_epochs``, ``max_time``; no logger or checkpoints by default). The family must take a
    ``weight_decay`` argument (the L2 of the recipe). ``save_path``: also write a checkpoint there (for
    ``genlight score --background``). Returns the model in eval mode."""
    import inspect

    import lightning.pytorch as pl

    from genlight.registry import MODELS, create_model

    if not 0.0 < mu < 1.0:
        raise ValueError(f"mu must be in (0, 1) (Ren et al. use 0.1-0.3), got {mu}")
    if "weight_decay" not in inspect.signature(MODELS.get(model_name).__init__).parameters:
        raise ValueError(
            f"{model_name} has no weight_decay argument: the background model needs L2 weight decay; "
            "add one to the family or train the background yourself on perturb_training_split(...)"
        )
    pl.seed_everything(seed, verbose=False)
    model = create_model(model_name, datamodule, **{**model_kwargs, "weight_decay": weight_decay})
    trainer = pl.Trainer(
        **{
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "accelerator": "cpu",
            **(trainer_kwargs or {}),
        }
    )
    trainer.fit(model, datamodule=perturb_training_split(datamodule, mu))
    if save_path is not None:
        trainer.save_checkpoint(save_path)
    return model.eval()


#: ``trainer:`` keys of a YAML config that a background training keeps (callbacks and loggers are dropped)
TRAINER_KEYS = ("max_epochs", "max_steps", "max_time", "gradient_clip_val", "accumulate_grad_batches", "precision")


def background_from_config(
    config: str | Path | dict[str, Any],
    mu: float = 0.2,
    weight_decay: float = 1e-4,
    trainer_kwargs: dict[str, Any] | None = None,
    datamodule: GenerativeDataModule | None = None,
    seed: int | None = None,
    save_path: str | Path | None = None,
) -> torch.nn.Module:
    """:func:`train_background` from a ``genlight fit`` YAML config (e.g. ``examples/digits/pixelcnn.yaml``):
    its ``model`` (registry name or ``class_path`` + ``init_args``), its ``data`` unless ``datamodule``
    is given (default ``digits``), the :data:`TRAINER_KEYS` of its ``trainer`` updated by
    ``trainer_kwargs``, and ``seed_everything`` unless ``seed`` is given. The config's
    ``weight_decay`` is replaced by ``weight_decay``; its callbacks, logger and EMA are not used."""
    import yaml

    from genlight.registry import DATAMODULES, MODELS, import_class

    cfg = config if isinstance(config, dict) else yaml.safe_load(Path(config).read_text())

    def name_and_args(entry: Any, registry: Any) -> tuple[str, dict[str, Any]]:
        if isinstance(entry, str):
            return entry, {}
        path = entry["class_path"]
        name = registry.resolve(path) or registry.name_of(import_class(path))
        if name is None:
            raise ValueError(f"{path} is not registered; register it or pass its registry name")
        return name, dict(entry.get("init_args") or {})

    model_name, model_kwargs = name_and_args(cfg["model"], MODELS)
    if datamodule is None:
        data_name, data_kwargs = name_and_args(cfg.get("data") or "digits", DATAMODULES)
        datamodule = DATAMODULES.create(data_name, **data_kwargs)
    trainer = {k: v for k, v in (cfg.get("trainer") or {}).items() if k in TRAINER_KEYS}
    seed = int(cfg.get("seed_everything") or 0) if seed is None else seed
    trainer_kwargs = {**trainer, **(trainer_kwargs or {})}
    return train_background(model_name, model_kwargs, datamodule, mu, weight_decay, trainer_kwargs, seed, save_path)
