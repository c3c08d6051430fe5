"""Small helpers shared by the tests: build a registered model for a datamodule, a tiny Trainer."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.strategies import DDPStrategy
import torch
from torch import Tensor, nn

from genlight import create_datamodule, create_model

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


def smoke_setup(name: str, root: Any, **overrides: Any) -> tuple[pl.LightningModule, Any, dict[str, Any]]:
    """A registered family's own smoke test settings, read from the class (nothing per family here):
    ``(model, datamodule set up for fit, Trainer kwargs)``. ``root`` is a temp folder for data files."""
    from pathlib import Path

    from genlight.registry import DATAMODULES

    cls = MODELS.get(name)
    dm = DATAMODULES.get(cls.smoke_data).smoke(Path(root), **cls.smoke_data_kwargs)
    dm.setup("fit")
    model = cls(**{**cls.smoke_kwargs, **linked_kwargs(cls, dm), **overrides})
    return model, dm, dict(cls.smoke_trainer)


def cpu_trainer(root: str | None = None, **overrides: Any) -> pl.Trainer:
    """A quiet single-process CPU Trainer: no logger, no checkpoints, no progress bar."""
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
    return pl.Trainer(**kwargs)


def validation_ddp() -> DDPStrategy:
    """Two-process DDP for tests that only validate: the ranks fork from the session's fork server
    (its imports preloaded in conftest), seconds instead of two fresh interpreters each time. Not for
    training: Lightning un-shares a CPU model's parameters between ranks only under ``spawn``."""
    return DDPStrategy(start_method="forkserver")


def tiny_trainer(**overrides: Any) -> pl.Trainer:
    """:func:`cpu_trainer` with ``fast_dev_run=True``: one batch of each loop."""
    return cpu_trainer(**{"fast_dev_run": True, **overrides})


def digits_datamodule(batch_size: int = 128) -> pl.LightningDataModule:
    return create_datamodule("digits", batch_size=batch_size)


def tiny_vae(seed: int = 0) -> pl.LightningModule:
    """A small VAE with seeded (untrained) weights."""
    torch.manual_seed(seed)
    return create_model("vae", latent_dim=4, hidden_channels=8)


class Identity(nn.Module):
    """A "feature extractor" that returns its input: lets torchmetrics compare metrics on given features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: Tensor) -> Tensor:
        return x


def gaussian_features(n: int, d: int, seed: int, shift: float = 0.0) -> Tensor:
    """Correlated Gaussian features (a fixed random mixing matrix), float64."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(d, d, generator=torch.Generator().manual_seed(123)) / d**0.5
    return (torch.randn(n, d, generator=g, dtype=torch.float64) @ mix.double()) + shift


class RecordRank(pl.Callback):
    """Each rank saves its final weights and its DDP settings (module level: ddp_spawn pickles it)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        wrapped = trainer.strategy.model
        torch.save(
            {
                "params": {k: v.detach().clone() for k, v in pl_module.named_parameters()},
                "buffers": {k: v.detach().clone() for k, v in pl_module.named_buffers()},
                "find_unused": bool(getattr(wrapped, "find_unused_parameters", False)),
                "world_size": trainer.world_size,
                "steps": trainer.global_step,
            },
            Path(self.root) / f"rank{trainer.global_rank}.pt",
        )
