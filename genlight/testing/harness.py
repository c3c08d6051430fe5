"""What the checks of :mod:`genlight.testing` build on: a family on its own smoke data, a quiet CPU
Trainer, one short fit."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from torch import Tensor

from genlight.callbacks.ema import EMA
from genlight.cli import LINKED_ATTRIBUTES
from genlight.registry import DATAMODULES, MODELS

__all__ = [
    "Family",
    "LeaveProcessGroup",
    "SmokeFit",
    "cpu_trainer",
    "family_class",
    "family_name",
    "linked_kwargs",
    "smoke_fit",
    "smoke_setup",
    "tiny_trainer",
    "uses_manual_optimisation",
]

Family = type | str  # a GenerativeModule subclass, or a registry name


def family_class(family: Family) -> type[Any]:
    """The class of ``family`` (a class, or a registry name)."""
    return MODELS.get(family) if isinstance(family, str) else family


def family_name(family: Family) -> str:
    """The registry name of ``family``, else its class name (what messages call it)."""
    cls = family_class(family)
    return MODELS.name_of(cls) or cls.__name__


def linked_kwargs(model_cls: type[Any], datamodule: Any) -> dict[str, Any]:
    """What the CLI links from the datamodule into the model (``image_shape``, ``num_classes``,
    ``num_levels``), for the arguments ``model_cls`` takes."""
    params = inspect.signature(model_cls.__init__).parameters
    return {a: getattr(datamodule, a) for a in LINKED_ATTRIBUTES if a in params}


def smoke_setup(family: Family, root: str | Path, **overrides: Any) -> tuple[pl.LightningModule, Any, dict[str, Any]]:
    """``(model, datamodule set up for fit, Trainer kwargs)`` from the family's own smoke settings;
    ``root`` is a folder for data files, ``overrides`` are ``__init__`` arguments."""
    cls = family_class(family)
    dm = DATAMODULES.get(cls.smoke_data).smoke(Path(root), **cls.smoke_data_kwargs)
    dm.setup("fit")
    model = cls(**{**cls.smoke_kwargs, **linked_kwargs(cls, dm), **overrides})
    return model, dm, dict(cls.smoke_trainer)


class LeaveProcessGroup(pl.Callback):
    """Each process of a distributed run leaves the process group when the run ends, after a barrier
    (no rank closes its connections while another still talks).

    Lightning destroys only NCCL groups at exit, so a ``ddp_spawn`` process on the CPU exits with its
    gloo group alive, and Python's interpreter finalization then tears it down: gloo's worker threads
    can still hold work objects whose tensors reference Python objects, and freeing those while the
    interpreter is being finalized aborts the process (SIGABRT, "terminate called without an active
    exception"), after a fit that passed; torch then reports the exit signal, not the fit's result. (A
    run that raises ends through torch's error file, which names the error whatever the exit.) Module
    level: ``ddp_spawn`` pickles it."""

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def cpu_trainer(root: str | None = None, **overrides: Any) -> pl.Trainer:
    """A quiet single-process CPU Trainer: no logger, no checkpoints, no progress bar. With
    ``strategy="ddp_spawn"``, every spawned process leaves its process group when the run ends
    (:class:`LeaveProcessGroup`), so that it exits cleanly."""
    kwargs: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    if root is not None:
        kwargs["default_root_dir"] = root
    kwargs.update(overrides)
    if kwargs.get("strategy") == "ddp_spawn":
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), LeaveProcessGroup()]
    return pl.Trainer(**kwargs)


def tiny_trainer(**overrides: Any) -> pl.Trainer:
    """:func:`cpu_trainer` with ``fast_dev_run=True``: one batch of each loop."""
    return cpu_trainer(**{"fast_dev_run": True, **overrides})


def uses_manual_optimisation(family: Family, root: str | Path) -> bool:
    """Whether the family steps its optimizers itself (GANs, AAE, CycleGAN)."""
    return not smoke_setup(family, root)[0].automatic_optimization


@dataclass
class SmokeFit:
    """A family after one batch of each loop: what the checks of a fitted model read."""

    name: str
    model: pl.LightningModule
    datamodule: Any
    trainer: pl.Trainer
    before: dict[str, Tensor]  # trainable parameters before the fit


def smoke_fit(family: Family, root: str | Path, **trainer_overrides: Any) -> SmokeFit:
    """Build the family on its smoke data and fit it for one batch of each loop (with the
    :class:`~genlight.callbacks.EMA` callback, on for families whose ``ema_decay`` > 0)."""
    model, dm, trainer_kwargs = smoke_setup(family, root)
    callbacks = [EMA(), *trainer_kwargs.pop("callbacks", [])]
    trainer = tiny_trainer(
        **{**trainer_kwargs, **trainer_overrides, "default_root_dir": str(root), "callbacks": callbacks}
    )
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.fit(model, datamodule=dm)
    return SmokeFit(family_name(family), model, dm, trainer, before)


def seeded(fn: Callable[[], Tensor], seed: int = 1) -> Tensor:
    """``fn()`` after ``torch.manual_seed(seed)``."""
    torch.manual_seed(seed)
    return fn()


def assert_images(name: str, images: Tensor, dm: Any, n: int) -> None:
    """``n`` finite images of the datamodule's shape, in [0, 1] when they are images (not points)."""
    assert images.shape == (n, *dm.image_shape), f"{name}: sample shape {tuple(images.shape)}"
    assert torch.isfinite(images).all(), f"{name}: non-finite samples"
    if len(dm.image_shape) == 3:
        assert images.min() >= 0 and images.max() <= 1, f"{name}: images outside [0, 1]"


def assert_finite_metrics(name: str, trainer: pl.Trainer, context: str = "") -> None:
    """Every value the Trainer logged is finite."""
    for key, value in trainer.callback_metrics.items():
        assert math.isfinite(float(value)), f"{name}: {key} = {value}{context}"
