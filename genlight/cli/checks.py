"""Settings no type can check (a family that cannot read the data's batches, ``max_epochs 0``, a logger
folder that cannot be created or whose package is missing), refused after parsing in one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jsonargparse import Namespace

from genlight.cli.runs import loggers_of
from genlight.data_fit import data_mismatch
from genlight.errors import ConfigError, IncompatibleDataError
from genlight.registry import import_class

__all__ = ["check_settings", "tensorboard_available"]


def tensorboard_available() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


def check_settings(config: Namespace, subcommand: str | None) -> None:
    """Raise :class:`~genlight.errors.ConfigError` for the first bad setting of ``config`` (an
    :class:`~genlight.errors.IncompatibleDataError` for a family that cannot read the data's batches)."""
    model, data = config.get("model"), config.get("data")
    if isinstance(model, Namespace) and isinstance(data, Namespace):
        mismatch = data_mismatch(import_class(model.class_path), import_class(data.class_path))
        if mismatch:
            raise IncompatibleDataError(mismatch)
    samples = config.get("samples")
    if isinstance(samples, Namespace) and (samples.get("num_samples") or 0) < 1:
        raise ConfigError(
            f"--samples.num_samples must be >= 1, got {samples.num_samples} "
            f"(--samples.every_n_epochs 0 turns the sample grids off)"
        )
    epochs = config.trainer.get("max_epochs")
    if subcommand in (None, "fit") and epochs is not None and not config.trainer.get("fast_dev_run"):
        if epochs == 0:
            raise ConfigError(
                "--trainer.max_epochs 0 trains nothing and writes no checkpoint: pass "
                "--trainer.max_epochs 1 or more (-1: no limit)"
            )
        if epochs < -1:
            raise ConfigError(
                f"--trainer.max_epochs must be >= 1 (or -1: no limit), got {epochs}: e.g. --trainer.max_epochs 10"
            )
    root = str(config.trainer.get("default_root_dir") or "")
    if subcommand in (None, "fit") and "://" in root:
        raise ConfigError(
            f"--trainer.default_root_dir {root} is a URL, but genlight fit writes its run folder (config.yaml, "
            f"sample grids) with local file I/O: pass a local or mounted folder, and checkpoints can still go to "
            f"the URL with --trainer.callbacks+=ModelCheckpoint --trainer.callbacks.dirpath {root.rstrip('/')}/ckpts"
        )
    for logger in loggers_of(config):
        if not isinstance(logger, Namespace):
            continue
        kind = logger.class_path.rsplit(".", 1)[-1]
        if kind == "TensorBoardLogger" and not tensorboard_available():
            raise ConfigError(
                "--trainer.logger TensorBoardLogger needs the tensorboard package: "
                "pip install 'genlight[tensorboard]' (or use the default CSV logger)"
            )
        save_dir = (logger.get("init_args") or {}).get("save_dir")
        if save_dir and (subcommand in (None, "fit") or config.trainer.get("logger") is not False):
            root = config.trainer.get("default_root_dir")
            option = "--trainer.default_root_dir" if root and str(save_dir) == str(root) else None
            _check_writable(Path(str(save_dir)), kind, option)


def _check_writable(folder: Path, kind: str, option: str | None = None) -> None:
    """``folder`` exists as a folder or can be created (it is created now: the logger would at its start);
    ``option``: the option the user gave it with (the logger's ``save_dir`` unless it came from
    ``--trainer.default_root_dir``)."""
    option = option or "--trainer.logger.init_args.save_dir"
    blocker = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(
            f"{option} {folder}: {blocker} is a file, not a folder; pass a folder for the "
            f"{kind} to write into, e.g. {option} runs"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".genlight-write-test"
        probe.touch()
        probe.unlink()
    except OSError as err:
        raise ConfigError(
            f"{option} {folder} cannot be written ({err.strerror or type(err).__name__}); pass a "
            f"folder you can write to, e.g. {option} runs"
        ) from err
