"""Load a trained genlight model from a checkpoint without the training code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genlight.registry import import_class


def checkpoint_class_path(checkpoint: dict[str, Any]) -> str:
    """The model's class path recorded in a Lightning checkpoint (genlight's metadata or LightningCLI's)."""
    meta = checkpoint.get("genlight") or {}
    hparams = checkpoint.get("hyper_parameters") or {}
    path = meta.get("class_path") or hparams.get("_class_path")
    if not path:
        raise ValueError(
            "this checkpoint does not say which model it holds (no 'genlight' metadata and no "
            "'_class_path' hyper-parameter); load it with YourModel.load_from_checkpoint(path) instead"
        )
    return path


def load_model(ckpt_path: str | Path, map_location: str | torch.device = "cpu", **overrides: Any):
    """Rebuild the right class from a checkpoint and load its weights, in eval mode.

    >>> model = load_model("runs/vae/version_0/checkpoints/last.ckpt")  # doctest: +SKIP
    >>> images = model.sample(64)                                          # doctest: +SKIP
    """
    path = Path(ckpt_path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; checkpoints are written under runs/<model>/version_N/checkpoints/")
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    cls = import_class(checkpoint_class_path(checkpoint))
    model = cls.load_from_checkpoint(path, map_location=map_location, **overrides)
    return model.eval()
