"""Load a trained genlight model from a checkpoint without the training code.

Checkpoints are read with ``torch.load(weights_only=True)``: tensors, numbers, strings and containers,
plus the few classes of :data:`SAFE_GLOBALS`, never arbitrary objects, so a checkpoint from a colleague or
a download cannot run code when it is loaded. A file that needs arbitrary unpickling is refused (one
line naming the class it asks for); ``trust=True`` (``--trust_checkpoint`` on the command line) loads it
anyway, for files the user vouches for.
"""

from __future__ import annotations

import hashlib
import pathlib
import pickle
import re
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import LightningModule

from genlight.errors import CheckpointError, CheckpointNotFoundError
from genlight.identity import CHECKPOINT_KEY, EMA_KEY
from genlight.registry import import_class

__all__ = [
    "EMA_KEY",
    "SAFE_GLOBALS",
    "build_model",
    "checkpoint_class_path",
    "find_last_checkpoint",
    "is_url",
    "load_model",
    "read_checkpoint",
    "sha256_of",
]

#: classes a genlight checkpoint may hold beyond torch's weights-only defaults: a path given as a
#: hyper-parameter (``create_datamodule("mnist", data_dir=Path("data"))``). Every family's checkpoint, its
#: EMA weights, RNG state, optimizer, scheduler and callback states hold nothing else
#: (``tests/test_safe_loading.py`` checks every family); building a path runs no code.
SAFE_GLOBALS = (pathlib.PosixPath, pathlib.WindowsPath, pathlib.PurePosixPath, pathlib.PureWindowsPath)
torch.serialization.add_safe_globals(list(SAFE_GLOBALS))  # also for Lightning's own load of --ckpt_path

_WHERE = "`genlight fit` writes runs/<model>/version_N/checkpoints/last.ckpt"
#: how the user vouches for a file, named in the refusal
TRUST = "--trust_checkpoint (genlight.load_model(path, trust=True))"


def is_url(path: str | Path) -> bool:
    """Whether ``path`` is an fsspec URL (``s3://``, ``gs://``, ``memory://``, ``file://``...), which a
    ``Path`` would mangle (``s3:/bucket``)."""
    return "://" in str(path)


def read_checkpoint(path: str | Path, *, trust: bool = False) -> dict[str, Any]:
    """The checkpoint dict at ``path`` (a local path or an fsspec URL such as ``s3://bucket/last.ckpt``),
    read with ``torch.load(weights_only=True)`` unless ``trust``. A missing, unreadable (truncated,
    corrupted), unsafe (needs arbitrary unpickling) or non-Lightning file raises
    :class:`~genlight.errors.CheckpointError` naming the file and what is wrong."""
    if is_url(path):
        from lightning.fabric.utilities.cloud_io import get_filesystem

        fs, path = get_filesystem(str(path)), str(path)
        is_file, is_dir, size, opener = (
            fs.isfile(path),
            fs.isdir(path),
            lambda: fs.size(path),
            lambda: fs.open(path, "rb"),
        )
    else:
        path = Path(path)
        is_file, is_dir, size, opener = (
            path.is_file(),
            path.is_dir(),
            lambda: path.stat().st_size,
            lambda: path.open("rb"),
        )
    if not is_file:
        what = "is a folder, not a checkpoint file" if is_dir else "does not exist"
        raise CheckpointNotFoundError(f"checkpoint {path} {what}; {_WHERE} (or pass --ckpt_path last)")
    try:
        with opener() as f:
            checkpoint = torch.load(f, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise _unreadable(path, size(), err) from err
        found = re.search(r"GLOBAL (\S+)", str(err))
        what = found.group(1) if found else "objects beyond tensors and numbers"
        raise CheckpointError(
            f"checkpoint {path} was refused: it asks to call or build {what}, which genlight never writes and which "
            f"could run code when loaded; if you trust where the file came from, load it with {TRUST}"
        ) from None
    except Exception as err:
        raise _unreadable(path, size(), err) from err
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a Lightning checkpoint (no 'state_dict'); {_WHERE}")
    return checkpoint


def _unreadable(path: str | Path, size: int, err: BaseException) -> CheckpointError:
    reason = " ".join(str(err).split()).split(". ")[0][:100] or type(err).__name__
    return CheckpointError(
        f"checkpoint {path} cannot be read ({size} bytes; truncated or corrupted: {reason}); "
        f"use another checkpoint of that run (its checkpoints/ folder) or train again"
    )


def checkpoint_class_path(checkpoint: dict[str, Any], path: str | Path | None = None) -> str:
    """The model's class path recorded in a Lightning checkpoint: genlight's metadata (written by every
    family, see :class:`~genlight.module.GenerativeModuleHooks`), the ``_genlight_class`` hyper-parameter of
    older checkpoints, or LightningCLI's ``_class_path``. A checkpoint that records none raises
    :class:`~genlight.errors.CheckpointError` (a ``ValueError``)."""
    meta = checkpoint.get(CHECKPOINT_KEY) or {}
    hparams = checkpoint.get("hyper_parameters") or {}
    class_path = meta.get("class_path") or hparams.get("_genlight_class") or hparams.get("_class_path")
    if not class_path:
        raise CheckpointError(
            f"{'checkpoint ' + str(path) if path else 'this checkpoint'} was not written by genlight: it does not "
            f"say which model it holds (no 'genlight' metadata, no '_class_path' hyper-parameter); load it with "
            f"YourModel.load_from_checkpoint(path) instead"
        )
    try:
        cls = import_class(class_path)
    except Exception as err:
        raise CheckpointError(
            f"checkpoint {path or ''} holds a {class_path}, which cannot be imported ({type(err).__name__}); "
            f"install the package that defines it (`genlight list models` shows what is installed)"
        ) from err
    if not (isinstance(cls, type) and issubclass(cls, LightningModule)):
        raise CheckpointError(
            f"checkpoint {path or ''} names {class_path}, which is not a LightningModule: "
            f"it was not written by genlight; {_WHERE}"
        )
    return class_path


def find_last_checkpoint(root: str | Path = "runs", model: str | None = None) -> Path:
    """``<root>/<model>/version_N/checkpoints/last.ckpt`` of the highest ``N`` that has one (any model
    when ``model`` is ``None``: the most recently written); :class:`~genlight.errors.CheckpointError`
    when there is none."""
    root = Path(root)
    pattern = f"{model or '*'}/version_*/checkpoints/last.ckpt"
    found = [p for p in root.glob(pattern) if p.parts[-3][8:].isdigit()]
    if not found:
        train = f"genlight fit --model {model}" if model else "genlight fit --model NAME"
        raise CheckpointNotFoundError(
            f"--ckpt_path last: no {root / pattern} yet; train first with `{train}` or pass a checkpoint file"
        )
    if model:
        return max(found, key=lambda p: int(p.parts[-3][8:]))
    return max(found, key=lambda p: p.stat().st_mtime)


def load_model(
    ckpt_path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    ema: bool = True,
    trust: bool = False,
    **overrides: Any,
) -> Any:
    """Rebuild the right class from a checkpoint and load its weights, in eval mode.

    A checkpoint written with the :class:`~genlight.callbacks.EMA` callback holds both weight sets;
    ``ema=True`` (the default) returns the averaged weights, ``ema=False`` the live training weights.
    The file is read with ``weights_only=True`` (see the module docstring); ``trust=True`` allows
    arbitrary unpickling, for a file you vouch for.

    >>> model = load_model("runs/vae/version_0/checkpoints/last.ckpt")  # doctest: +SKIP
    >>> images = model.sample(64)                                          # doctest: +SKIP
    """
    path = str(ckpt_path) if is_url(ckpt_path) else Path(ckpt_path)  # fsspec URLs (s3://...) stay strings
    return build_model(read_checkpoint(path, trust=trust), path, map_location, ema=ema, trust=trust, **overrides)


def build_model(
    checkpoint: dict[str, Any],
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    ema: bool = True,
    trust: bool = False,
    **overrides: Any,
) -> Any:
    """:func:`load_model` for a checkpoint already read by :func:`read_checkpoint` from ``path``: the class it
    names, built by Lightning's ``load_from_checkpoint`` (which reads the file once more, as safely)."""
    cls: Any = import_class(checkpoint_class_path(checkpoint, path))  # a LightningModule subclass
    model = cls.load_from_checkpoint(path, map_location=map_location, weights_only=not trust, **overrides)
    live = (checkpoint.get(EMA_KEY) or {}).get("live_state_dict")
    if not ema and live:
        model.load_state_dict({**model.state_dict(), **live})
    return model.eval()


def sha256_of(path: str | Path) -> str:
    """The hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
