"""``GenlightCLI``: LightningCLI over every registered family and datamodule (docs/cli.md)."""

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

from genlight._compat import quiet_run
from genlight.callbacks import EMA, SampleGrid, fit_callbacks
from genlight.checkpoint_config import DEFAULT_DATAMODULE, CheckpointChoice
from genlight.cli.checkpoints import LIGHTNING_CKPT_WORDS, trust_argument
from genlight.cli.checks import check_settings
from genlight.cli.names import check_config_files, rewrite_registry_names
from genlight.cli.parser import NO_MODEL, GenlightArgumentParser, join_negative_numbers
from genlight.cli.runs import (
    DEFAULT_LOGGER,
    RUNS,
    GenlightSaveConfig,
    existing_folders,
    prepare_run_folders,
    remove_empty_run,
    run_name,
    runs_root,
)
from genlight.datamodules.base import GenerativeDataModule
from genlight.errors import ConfigError, GenlightError, one_line, root_cause, user_error
from genlight.module import GenerativeModule
from genlight.registry import DATAMODULES, LINKED_ATTRIBUTES, MODELS

__all__ = ["DEFAULT_DATAMODULE", "GenlightCLI"]


class GenlightCLI(LightningCLI):
    """LightningCLI with registry names (``--model vae``, ``model: vae`` in YAML), the datamodule's shapes
    linked into the model, runs in ``runs/<model>/version_N``, ``--samples.*`` / ``--ema.*`` callbacks,
    :func:`~genlight.callbacks.checkpoints.fit_callbacks` in every ``fit`` and ``--ckpt_path`` resolved
    once (:class:`~genlight.cli.checkpoints.CheckpointChoice`). A fit that fails before writing anything
    removes its run folder."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        MODELS.load_plugins()
        DATAMODULES.load_plugins()
        defaults = {
            "model_class": GenerativeModule,
            "datamodule_class": GenerativeDataModule,
            "subclass_mode_model": True,
            "subclass_mode_data": True,
            "save_config_callback": GenlightSaveConfig,
            "auto_configure_optimizers": False,
            "parser_class": GenlightArgumentParser,
            "seed_everything_default": 0,  # a fixed seed: the same command gives the same numbers
            # a progress bar redrawn into a log file floods it: only on a terminal by default
            "trainer_defaults": {
                "default_root_dir": RUNS,
                "logger": DEFAULT_LOGGER,
                "enable_progress_bar": sys.stderr.isatty(),
            },
            "parser_kwargs": {
                "description": "Train genlight models by name. Also: `genlight list models|datamodules|"
                "extractors`, `genlight sample --ckpt_path PATH -n 64`, `genlight score --ckpt_path PATH "
                "--task ood|classify|probe`, `genlight translate|complete --ckpt_path PATH --image a.png`."
            },
            "load_from_checkpoint_support": False,  # hyper-parameters are the __init__ arguments, not the CLI's config
        }
        self.checkpoint: CheckpointChoice | None = None
        self._folders_before: set[Path] = set()
        self.trainer: Trainer | None = None  # type: ignore[assignment]  # None until a subcommand builds it
        with quiet_run():
            try:
                super().__init__(*args, **{**defaults, **kwargs})
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
        trust_argument(parser)
        parser.add_argument(
            "--pretrained", type=str | None, help="start from a pretrained model (genlight.pretrained())"
        )
        # no --model parses (NO_MODEL): `test --ckpt_path X` takes the checkpoint's class, others are refused
        parser.set_defaults(
            {"model": {"class_path": NO_MODEL}, "data": {"class_path": DATAMODULES.class_path(DEFAULT_DATAMODULE)}}
        )

    # ------------------------------------------------------------------ parsing
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Lightning's, after registry names, negative numbers and config files; then :meth:`resolve_checkpoint`."""
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            args = join_negative_numbers(rewrite_registry_names(sys.argv[1:] if args is None else args))
            check_config_files(args)
            self.config = parser.parse_args(args)
        self.resolve_checkpoint(parser)

    def resolve_checkpoint(self, parser: LightningArgumentParser) -> None:
        """Read ``--ckpt_path`` once (``last``: the newest run in the parsed runs folder), check it against
        ``--model`` and its arguments, and take its class, hyper-parameters and datamodule. The path is held
        back until :meth:`before_instantiate_classes`: LightningCLI would read the file again otherwise."""
        subcommand = self.config.get("subcommand")
        config = self.config[subcommand] if subcommand else self.config
        path, given = config.get("ckpt_path"), None if config.model.class_path == NO_MODEL else config.model
        pretrained = config.get("pretrained")
        if path and pretrained:
            raise ConfigError("pass --ckpt_path (resume a run) or --pretrained (start from its weights), not both")
        if subcommand == "test" and not (path or pretrained):
            raise ConfigError(
                "genlight test needs --ckpt_path: without one it would score an untrained model; pass "
                "--ckpt_path last (the newest run), a checkpoint file, or --pretrained NAME"
            )
        if pretrained:
            self.checkpoint = CheckpointChoice.from_pretrained(pretrained, given.class_path if given else None)
        elif not path or path in LIGHTNING_CKPT_WORDS or str(path).startswith("registry:"):
            if given is None:
                raise ConfigError("missing --model (e.g. --model vae; `genlight list models`)")
            return
        else:
            self.checkpoint = CheckpointChoice.resolve(
                path,
                given.class_path if given is not None else None,
                runs_root=runs_root(config),
                run_name=run_name(config),
                trust=_trusted(config),
                verb="resuming from" if subcommand == "fit" else "using",
            )
        update = {"model": self.checkpoint.model_config(given), "data": self.checkpoint.data_config(config.data)}
        update = {k: v for k, v in update.items() if v is not None}
        self.config = parser.parse_object({subcommand: update} if subcommand else update, self.config)
        (self.config[subcommand] if subcommand else self.config).ckpt_path = None

    # ------------------------------------------------------------------ instantiation
    def before_instantiate_classes(self) -> None:
        """``--ckpt_path`` back in place, ``weights_only`` unless trusted, the run folders
        (:mod:`genlight.cli.runs`), then the settings no type can check (:mod:`genlight.cli.checks`)."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if self.checkpoint is not None and not self.checkpoint.pretrained:
            config.ckpt_path = self.checkpoint.path
        if "weights_only" in config:
            config.weights_only = not _trusted(config)
        prepare_run_folders(config, self.subcommand)
        check_settings(config, self.subcommand)
        self._folders_before = existing_folders(config)

    def instantiate_classes(self) -> None:
        """Lightning's; a ``ValueError``/``TypeError`` of an ``__init__`` becomes one line (unless ``GENLIGHT_DEBUG=1``)."""
        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as err:
            if user_error(err) is not None or os.environ.get("GENLIGHT_DEBUG"):
                raise
            raise ConfigError(f"{one_line(root_cause(err))} (GENLIGHT_DEBUG=1 shows the traceback)") from err

    def after_instantiate_classes(self) -> None:
        """A checkpoint trained on other data than ``--data`` gives: an error naming both shapes; the weights of
        ``--pretrained``."""
        if self.checkpoint is not None:
            self.checkpoint.check_trained_on(self.datamodule)
            if self.checkpoint.pretrained:  # --pretrained: its weights, then a new run (no state to resume)
                self.model.load_state_dict(self.checkpoint.checkpoint["state_dict"])

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Lightning's, plus :func:`~genlight.callbacks.checkpoints.fit_callbacks` for a fit; setting errors
        as one line naming the option."""
        config = (self.config_init[self.subcommand] if self.subcommand else self.config_init).get("trainer") or {}
        callbacks = config.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks]
        if self.subcommand in (None, "fit"):
            callbacks = fit_callbacks(
                self.model, callbacks, checkpointing=config.get("enable_checkpointing") is not False
            )
        try:
            return super().instantiate_trainer(**{"callbacks": callbacks, **kwargs})
        except (MisconfigurationException, ValueError, TypeError, RuntimeError) as err:
            if isinstance(err, GenlightError):
                raise
            raise ConfigError(_trainer_message(err)) from err


def _trusted(config: Namespace) -> bool:
    """``--trust_checkpoint`` (or Lightning's own ``--weights_only false``): the user vouches for the file."""
    return bool(config.get("trust_checkpoint")) or config.get("weights_only") is False


def _trainer_message(err: BaseException) -> str:
    """``invalid Trainer settings: <Lightning's words> (check --trainer.<the option it names>)``."""
    text = " ".join(str(err).split())[:300]
    params = [p for p in inspect.signature(Trainer.__init__).parameters if p != "self"]
    named = [p for p in params if re.search(rf"\b{p}\b", text)]
    if not named and re.search(r"device|gpu|cuda|mps|tpu", text, re.IGNORECASE):
        named = ["devices", "accelerator"]
    hint = " / ".join(f"--trainer.{p}" for p in named[:2]) or "the --trainer options"
    return f"invalid Trainer settings: {text} (check {hint}; `genlight fit --help`)"
