"""Run folders: ``runs/<model>/version_N`` named after the model, under ``--trainer.default_root_dir``;
``config.yaml`` in it (and in ``wandb.config``); no folder for ``test``/``validate`` unless a logger is
asked for; the folder of a failed fit removed when nothing but its config was written."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from genlight.callbacks import run_dir
from genlight.checkpoint_config import plain
from genlight.registry import MODELS, import_class

__all__ = [
    "GenlightSaveConfig",
    "RUNS",
    "loggers_of",
    "prepare_run_folders",
    "remove_empty_run",
    "run_name",
    "runs_root",
]

RUNS = "runs"
CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"
DEFAULT_LOGGER = {"class_path": CSV_LOGGER, "init_args": {"save_dir": RUNS}}
DEFAULT_LOGGER_NAME = "lightning_logs"
FOLDER_LOGGERS = ("CSVLogger", "TensorBoardLogger")
#: what a run folder holds before its first epoch has written anything worth keeping
_BARE_FILES = ("config.yaml", "hparams.yaml", "metrics.csv")


class GenlightSaveConfig(SaveConfigCallback):
    """``config.yaml`` in the run's own folder (never over an earlier run's) and in ``wandb.config``; a
    ``test`` or ``validate`` without a logger writes nothing."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved or (stage != "fit" and not trainer.loggers):
            return
        if trainer.is_global_zero:
            folder = run_dir(trainer)
            folder.mkdir(parents=True, exist_ok=True)
            path, n = folder / self.config_filename, 1
            while path.exists():  # a resumed run keeps the earlier config too
                path = folder / f"{Path(self.config_filename).stem}.{n}.yaml"
                n += 1
            self.parser.save(self.config, str(path), skip_none=False, overwrite=False, multifile=False)
            self.save_config(trainer, pl_module, stage)
        self.already_saved = True

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.experiment.config.update(plain(self.config), allow_val_change=True)


def loggers_of(config: Namespace) -> list[Any]:
    """The configured loggers (Namespaces with ``class_path``, or ``True``/``False``/``None``)."""
    loggers = config.trainer.get("logger")
    return loggers if isinstance(loggers, list) else [loggers]


def _kind(logger: Any) -> str:
    return logger.class_path.rsplit(".", 1)[-1] if isinstance(logger, Namespace) else ""


def run_name(config: Namespace) -> str | None:
    """The CSV/TensorBoard logger's ``name`` when the user set one (else runs are named after the model)."""
    for logger in loggers_of(config):
        if _kind(logger) in FOLDER_LOGGERS:
            name = (logger.get("init_args") or {}).get("name")
            if name and name != DEFAULT_LOGGER_NAME:
                return str(name)
    return None


def runs_root(config: Namespace) -> Path:
    """Where run folders go: the first logger's ``save_dir`` when set away from ``runs``, else
    ``--trainer.default_root_dir``."""
    root = config.trainer.get("default_root_dir") or RUNS
    for logger in loggers_of(config):
        if isinstance(logger, Namespace) and logger.get("init_args") and logger.init_args.get("save_dir"):
            save_dir = str(logger.init_args.save_dir)
            return Path(root if save_dir == RUNS else save_dir)
    return Path(root)


def _is_default_logger(logger: Any) -> bool:
    if not isinstance(logger, Namespace) or logger.class_path != CSV_LOGGER:
        return False
    init = plain(logger.get("init_args") or {})
    return init.get("save_dir") == RUNS and init.get("name") in (None, DEFAULT_LOGGER_NAME) and not init.get("version")


def prepare_run_folders(config: Namespace, subcommand: str | None) -> None:
    """Before the Trainer is built: runs under ``--trainer.default_root_dir``, ``test``/``validate``
    without the default CSV logger (no run folder unless asked), run folders named after the model,
    and a ``fast_dev_run``'s images kept in a run folder (Lightning drops its loggers)."""
    root = config.trainer.get("default_root_dir")
    for logger in loggers_of(
        config
    ):  # W&B's files beside the runs (as examples/loggers/wandb_offline.yaml), not ./wandb
        if _kind(logger) == "WandbLogger" and (logger.get("init_args") or {}).get("save_dir") in (None, "."):
            logger.init_args.save_dir = str(root or RUNS)
    if root and root != RUNS:  # the default CSV logger follows --trainer.default_root_dir
        for logger in loggers_of(config):
            if _kind(logger) in FOLDER_LOGGERS and logger.init_args.get("save_dir") == RUNS:
                logger.init_args.save_dir = str(root)
    if subcommand in ("test", "validate") and all(_is_default_logger(lg) for lg in loggers_of(config)):
        config.trainer.logger = False
    model_path = config.model.class_path if isinstance(config.model, Namespace) else None
    if model_path is None:
        return
    name = MODELS.name_of(import_class(model_path)) or model_path.rsplit(".", 1)[-1].lower()
    for logger in loggers_of(config):
        if _kind(logger) in FOLDER_LOGGERS and logger.init_args.get("name") == DEFAULT_LOGGER_NAME:
            logger.init_args.name = name
    if config.trainer.get("fast_dev_run"):
        folder = runs_root(config) / name
        versions = [int(p.name[8:]) for p in folder.glob("version_*") if p.name[8:].isdigit()]
        config.trainer.default_root_dir = str(folder / f"version_{max(versions, default=-1) + 1}")


def existing_folders(config: Namespace) -> set[Path]:
    """The run folders there before this run (a failed run removes only a folder it created)."""
    root = runs_root(config)
    return {p.resolve() for p in root.glob("*/version_*")} if root.is_dir() else set()


def remove_empty_run(trainer: Trainer | None, before: set[Path]) -> Path | None:
    """After a failed fit: remove the run folder it created when that holds no checkpoint and nothing
    but its config (and a metrics file without rows). Returns the folder removed."""
    if trainer is None or not trainer.is_global_zero:
        return None
    try:
        folder = run_dir(trainer).resolve()
    except Exception:  # noqa: BLE001 - a logger that never started
        return None
    if not folder.is_dir() or folder in before or not folder.name.startswith("version_"):
        return None
    files = [p for p in folder.rglob("*") if p.is_file()]
    for path in files:
        if path.suffix == ".ckpt" or path.name not in _BARE_FILES:
            return None
        if path.name == "metrics.csv" and len(path.read_text().strip().splitlines()) > 1:
            return None
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()  # runs/<model> too, when this run was its only one
    return folder
