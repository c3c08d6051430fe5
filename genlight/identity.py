"""Checkpoint identity: every checkpoint of a genlight model records which class it holds, so
:func:`genlight.load_model` rebuilds the right class without the training code."""

from __future__ import annotations

from typing import Any

from genlight._compat import attached_trainer
from genlight.registry import MODELS
from genlight.version import __version__

__all__ = ["CHECKPOINT_KEY", "EMA_KEY", "record_identity"]

#: checkpoint key of genlight's metadata: ``{"model": name, "class_path": ..., "version": ..., "datamodule": ...}``
CHECKPOINT_KEY = "genlight"
#: checkpoint key under which the :class:`~genlight.callbacks.EMA` callback keeps the live (non-averaged)
#: weights (``state_dict`` holds the averaged ones); here, below the callbacks, so that loading a
#: checkpoint never imports a callback module
EMA_KEY = "genlight_ema"


def record_identity(model: Any, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint["genlight"]``: the registry name, class path and genlight version, and the class
    path of the datamodule it was trained on (``genlight test --ckpt_path`` tests on that data)."""
    cls = type(model)
    checkpoint[CHECKPOINT_KEY] = {
        "model": MODELS.name_of(cls),
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "version": __version__,
    }
    datamodule = getattr(attached_trainer(model), "datamodule", None)
    if datamodule is not None:
        checkpoint[CHECKPOINT_KEY]["datamodule"] = f"{type(datamodule).__module__}.{type(datamodule).__qualname__}"
