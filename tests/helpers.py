"""Small helpers shared by the tests: build a registered model for a datamodule, a tiny Trainer."""

from __future__ import annotations

import inspect
from typing import Any

import lightning.pytorch as pl

from genlight.cli import LINKED_ATTRIBUTES
from genlight.registry import MODELS


def linked_kwargs(model_cls: type, datamodule: Any) -> dict[str, Any]:
    """What the CLI links from the datamodule into the model, for the arguments the model takes."""
    params = inspect.signature(model_cls.__init__).parameters
    return {a: getattr(datamodule, a) for a in LINKED_ATTRIBUTES if a in params}


def build_model(name: str, datamodule: Any, **overrides: Any) -> pl.LightningModule:
    """The registered model ``name`` with its tiny ``smoke_kwargs``, shaped for ``datamodule``."""
    cls = MODELS.get(name)
    return cls(**{**cls.smoke_kwargs, **linked_kwargs(cls, datamodule), **overrides})


def tiny_trainer(**overrides: Any) -> pl.Trainer:
    kwargs: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        fast_dev_run=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)
