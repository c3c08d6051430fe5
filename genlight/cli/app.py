"""``GenlightCLI``: LightningCLI over every registered family and datamodule, assembled from the parts
of this package (names, errors, checkpoints, run folders, settings checks, fit callbacks)."""

from __future__ import annotations

import inspect
import os
import re
import sys
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from genlight._compat import LightningCLICheckpointHook
from genlight.callbacks import EMA, SampleGrid
from genlight.cli.callbacks import fit_callbacks
from genlight.cli.checkpoints import LINKED_ATTRIBUTES, check_trained_on, checkpoint_model, model_from_checkpoint
from genlight.cli.checks import check_settings
from genlight.cli.errors import one_line, root_cause, user_error
from genlight.cli.names import check_config_files, rewrite_registry_names
from genlight.cli.parser import GenlightArgumentParser, join_negative_numbers
from genlight.cli.quiet import quiet_run
from genlight.cli.runs import (
    DEFAULT_LOGGER,
    RUNS,
    GenlightSaveConfig,
    existing_folders,
    prepare_run_folders,
    remove_empty_run,
    run_name,
    runs_root,
    runs_root_of_args,
)
from genlight.datamodules.base import GenerativeDataModule
from genlight.errors import ConfigError, GenlightError
from genlight.module import GenerativeModule
from genlight.registry import DATAMODULES, MODELS

__all__ = ["DEFAULT_DATAMODULE", "GenlightCLI"]

#: the datamodule used when no ``--data`` is given: bundled, no download
DEFAULT_DATAMODULE = "digits"


class GenlightCLI(LightningCLICheckpointHook, LightningCLI):
    """LightningCLI over every registered family and datamodule.

    Registry names work wherever a class does (``--model vae``, ``model: vae`` in YAML), the
    datamodule's ``image_shape``, ``num_classes`` and ``num_levels`` are linked into the model, runs go
    to ``runs/<model>/version_N`` with a CSV logger unless another logger is given, the
    ``--samples.*`` flags configure the sample-grid callback, and every ``fit`` gets
    :func:`~genlight.cli.callbacks.default_fit_callbacks`. ``--ckpt_path last`` is the newest
    ``runs/<model>/version_N``'s ``last.ckpt``; a checkpoint is checked against ``--model`` and its
    arguments before anything runs. A fit that fails before writing anything removes its run folder.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        MODELS.load_plugins()
        DATAMODULES.load_plugins()
        kwargs.setdefault("model_class", GenerativeModule)
        kwargs.setdefault("datamodule_class", GenerativeDataModule)
        kwargs.setdefault("subclass_mode_model", True)
        kwargs.setdefault("subclass_mode_data", True)
        kwargs.setdefault("save_config_callback", GenlightSaveConfig)
        kwargs.setdefault("auto_configure_optimizers", False)
        kwargs.setdefault("parser_class", GenlightArgumentParser)
        kwargs.setdefault(
            "trainer_defaults",
            {
                "default_root_dir": RUNS,
                "logger": DEFAULT_LOGGER,
                # a progress bar redrawn into a log file floods it: only on a terminal by default
                "enable_progress_bar": sys.stderr.isatty(),
            },
        )
        kwargs.setdefault(
            "parser_kwargs",
            {
                "description": "Train genlight models by name. Also: `genlight list models|datamodules|extractors`, "
                "`genlight sample --ckpt_path PATH -n 64`, `genlight score --ckpt_path PATH --task ood|classify|probe`.",
            },
        )
        # hyper-parameters are the __init__ arguments (Lightning's own record), not the CLI's config
        kwargs.setdefault("load_from_checkpoint_support", False)
        self._ckpt_hparams: dict[str, Any] | None = None
        self._raw_args: list[str] = []
        self._folders_before: set[Path] = set()
        self.trainer: Trainer | None = None  # type: ignore[assignment]
        with quiet_run():
            try:
                super().__init__(*args, **kwargs)
            except BaseException:
                if getattr(self, "subcommand", None) == "fit":
                    remove_empty_run(self.trainer, self._folders_before)
                raise

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's, without ``predict`` (a generative model has nothing to predict: ``genlight sample``)."""
        return {k: v for k, v in LightningCLI.subcommands().items() if k != "predict"}

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for attr in LINKED_ATTRIBUTES:
            parser.link_arguments(f"data.{attr}", f"model.init_args.{attr}", apply_on="instantiate")
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_lightning_class_args(EMA, "ema")  # --ema.decay: the family's ema_decay by default, 0 = off
        parser.set_defaults({"data": {"class_path": DATAMODULES.class_path(DEFAULT_DATAMODULE)}})

    # ------------------------------------------------------------------ parsing
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        if args is None:
            args = sys.argv[1:]
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
            return
        args = join_negative_numbers(rewrite_registry_names(args))
        check_config_files(args)
        self._raw_args = list(args)
        self.config = parser.parse_args(model_from_checkpoint(args, runs_root_of_args(args)))

    def reconcile_checkpoint(self) -> None:
        """Resolve ``--ckpt_path last``, check the file, its family and the given model arguments, then
        take the checkpoint's hyper-parameters as the model's arguments (as LightningCLI does)."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        update, self._ckpt_hparams = checkpoint_model(config, subcommand, self._raw_args, runs_root(config),
                                                      run_name(config))
        if update is not None:
            self.config = self.parser.parse_object({subcommand: update}, self.config)

    # ------------------------------------------------------------------ instantiation
    def before_instantiate_classes(self) -> None:
        """Run folders named after the model under ``--trainer.default_root_dir`` (none for ``test``
        unless a logger is asked for), then the settings no type can check (:mod:`genlight.cli.checks`)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        prepare_run_folders(config, self.subcommand, self._raw_args)
        check_settings(config, self.subcommand)
        self._folders_before = existing_folders(config)

    def instantiate_classes(self) -> None:
        """Lightning's; a ``ValueError``/``TypeError`` raised by a model, datamodule or callback's
        ``__init__`` (a setting out of range) becomes one line (``GENLIGHT_DEBUG=1`` keeps the traceback)."""
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as err:
            if user_error(err) is not None or os.environ.get("GENLIGHT_DEBUG"):
                raise
            raise ConfigError(f"{one_line(root_cause(err))} (GENLIGHT_DEBUG=1 shows the traceback)") from err

    def after_instantiate_classes(self) -> None:
        """A checkpoint trained on other data than ``--data`` gives: an error naming both shapes."""
        check_trained_on(self._ckpt_hparams, self.model, self.datamodule)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Lightning's, plus :func:`~genlight.cli.callbacks.fit_callbacks` for a fit, with Trainer setting
        errors as one line naming the option."""
        config = (self.config_init[self.subcommand] if self.subcommand else self.config_init).get("trainer") or {}
        callbacks = config.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks]
        if self.subcommand in (None, "fit"):
            callbacks = fit_callbacks(self.model, callbacks, checkpointing=config.get("enable_checkpointing") is not False)
        try:
            return super().instantiate_trainer(**{"callbacks": callbacks, **kwargs})
        except (MisconfigurationException, ValueError, TypeError, RuntimeError) as err:
            if isinstance(err, GenlightError):
                raise
            raise ConfigError(_trainer_message(err)) from err


def _trainer_message(err: BaseException) -> str:
    """``invalid Trainer settings: <Lightning's words> (check --trainer.<the option it names>)``."""
    text = " ".join(str(err).split())[:300]
    params = [p for p in inspect.signature(Trainer.__init__).parameters if p != "self"]
    named = [p for p in params if re.search(rf"\b{p}\b", text)]
    if not named and re.search(r"device|gpu|cuda|mps|tpu", text, re.IGNORECASE):
        named = ["devices", "accelerator"]
    hint = " / ".join(f"--trainer.{p}" for p in named[:2]) or "the --trainer options"
    return f"invalid Trainer settings: {text} (check {hint}; `genlight fit --help`)"
