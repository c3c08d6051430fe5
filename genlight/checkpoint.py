"""Load a trained genlight model from a checkpoint without the training code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlight.registry import import_class

__all__ = ["EMA_KEY", "checkpoint_class_path", "load_model"]

#: checkpoint key under which :class:`~genlight.callbacks.EMA` keeps the live (non-averaged) weights
EMA_KEY = "genlight_ema"


def checkpoint_class_path(checkpoint: dict[str, Any]) -> str:
    """The model's class path recorded in a Lightning checkpoint: genlight's metadata (written by every
    family, see :meth:`GenerativeModule.__init_subclass__`) or LightningCLI's ``_class_path``."""
    from genlight.base import CHECKPOINT_KEY

    meta = checkpoint.get(CHECKPOINT_KEY) or {}
    hparams = checkpoint.get("hyper_parameters") or {}
    path = meta.get("class_path") or hparams.get("_class_path")
    if not path:
        raise ValueError(
            "this checkpoint does not say which model it holds (no 'genlight' metadata, no '_class_path' "
            "hyper-parameter); load it with YourModel.load_from_checkpoint(path) instead"
        )
    return path


def load_model(
    ckpt_path: str | Path, map_location: str | torch.device = "cpu", *, ema: bool = True, **overrides: Any
):
    """Rebuild the right class from a checkpoint and load its weights, in eval mode.

    A checkpoint written with the :class:`~genlight.callbacks.EMA` callback holds both weight sets;
    ``ema=True`` (the default) returns the averaged weights, ``ema=False`` the live training weights.

    >>> model = load_model("runs/vae/version_0/checkpoints/last.ckpt")  # doctest: +SKIP
    >>> images = model.sample(64)                                          # doctest: +SKIP
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; checkpoints are written under runs/<model>/version_N/checkpoints/")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    cls = import_class(checkpoint_class_path(checkpoint))
    model = cls.load_from_checkpoint(path, map_location=map_location, **overrides)
    live = (checkpoint.get(EMA_KEY) or {}).get("live_state_dict")
    if not ema and live:
        model.load_state_dict({**model.state_dict(), **live})
    return model.eval()
