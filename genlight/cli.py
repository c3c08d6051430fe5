"""The ``genlight`` command: LightningCLI with registry names, linked shapes and run folders.

    genlight fit --model vae --data digits --trainer.max_epochs 5
    genlight fit -c examples/digits/vae.yaml
    genlight list models|datamodules|extractors
    genlight test --model vae --ckpt_path last
    genlight sample --ckpt_path runs/vae/version_0/checkpoints/last.ckpt -n 64 --out samples.png

Every ``fit`` writes ``checkpoints/last.ckpt`` and the best checkpoint on the family's validation
metric, stops at the first NaN/Inf loss, and stores the RNG state so that a resume is exact. Mistakes
in the command (a misspelt option, a value out of range, a checkpoint of another family, a missing
package) are reported before training as ``genlight: error: ...`` in at most three lines.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import inspect
import json
import logging
import re
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from genlight.datamodules.base import GenerativeDataModule

from genlight.module import GenerativeModule
from genlight.callbacks import EMA, SampleGrid, run_dir
from genlight.callbacks.nan_guard import NaNGuard
from genlight.callbacks.rng import RNGState
from genlight._compat import jsonargparse_debug_mode
from genlight.checkpoint import checkpoint_class_path, find_last_checkpoint, read_checkpoint
from genlight.errors import CheckpointError, ConfigError, GenlightError
from genlight.registry import DATAMODULES, MODELS, Registry, import_class

__all__ = [
    "GenlightArgumentParser",
    "GenlightCLI",
    "GenlightSaveConfig",
    "default_fit_callbacks",
    "main",
    "rewrite_config",
    "rewrite_registry_names",
]

#: attributes of the datamodule that are passed into the model's ``__init__``
LINKED_ATTRIBUTES = ("image_shape", "num_classes", "num_levels")

#: the datamodule used when no ``--data`` is given: bundled, no download
DEFAULT_DATAMODULE = "digits"
_CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"
_DEFAULT_LOGGER_NAME = "lightning_logs"
_BARE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_TENSORBOARD_LOGGER = "TensorBoardLogger"
#: what ``--ckpt_path`` values Lightning resolves itself (beside a file)
_LIGHTNING_CKPT_WORDS = ("best", "hpc")


class UnknownNameError(SystemExit):
    """Raised (exit code 2) for an unknown ``--model`` / ``--data`` name, after printing the message."""


def rewrite_registry_names(args: Sequence[str]) -> list[str]:
    """Turn ``--model vae`` / ``--model=vae`` / ``--model.help vae`` (and ``--data``) into class paths.

    Values that are not bare names (dotted paths, YAML, files) pass through; a bare name that is
    neither registered nor a class name prints the close matches and exits with code 2.
    """
    registries: dict[str, Registry] = {"--model": MODELS, "--data": DATAMODULES}
    out = list(args)
    for i, token in enumerate(out):
        flag, eq, value = token.partition("=")
        key = flag[: -len(".help")] if flag.endswith(".help") else flag
        if key not in registries:
            continue
        if not eq:
            if i + 1 >= len(out):
                continue
            value = out[i + 1]
        new = _resolve(registries[key], value)
        if eq:
            out[i] = f"{flag}={new}"
        else:
            out[i + 1] = new
    return out


def rewrite_config(data: Any) -> Any:
    """Registry names inside a parsed YAML config, as :func:`rewrite_registry_names` does on the command
    line: ``model: vae``, ``data: digits``, ``model: {class_path: vae, init_args: ...}``, at the top level
    or under a subcommand key (``fit: {model: vae}``). Returns a new structure; other values are kept."""
    if not isinstance(data, dict):
        return data
    out = dict(data)
    for key, registry in (("model", MODELS), ("data", DATAMODULES)):
        value = out.get(key)
        if isinstance(value, str):
            out[key] = _resolve(registry, value)
        elif isinstance(value, dict) and isinstance(value.get("class_path"), str):
            out[key] = {**value, "class_path": _resolve(registry, value["class_path"])}
    for sub in ("fit", "validate", "test", "predict"):
        if isinstance(out.get(sub), dict):
            out[sub] = rewrite_config(out[sub])
    return out


def _rewrite_config_files(args: list[str]) -> list[str]:
    """``-c FILE`` / ``--config FILE`` (and ``--model FILE.yaml``) whose YAML names a registered model or
    datamodule by its registry name are replaced by a rewritten copy in a temporary folder."""
    out = list(args)
    for i, token in enumerate(out):
        flag, eq, value = token.partition("=")
        if flag not in ("-c", "--config", "--model", "--data"):
            continue
        if not eq:
            if i + 1 >= len(out):
                continue
            value = out[i + 1]
        path = Path(value)
        if path.suffix.lower() not in (".yaml", ".yml", ".json") or not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError):
            continue  # jsonargparse reports it
        if flag in ("--model", "--data"):
            new = rewrite_config({flag[2:]: data})[flag[2:]]
        else:
            new = rewrite_config(data)
        if new == data:
            continue
        folder = Path(tempfile.mkdtemp(prefix="genlight-config-"))
        copy = folder / path.name
        copy.write_text(yaml.safe_dump(new, sort_keys=False))
        if eq:
            out[i] = f"{flag}={copy}"
        else:
            out[i + 1] = str(copy)
    return out


def _resolve(registry: Registry, value: str) -> str:
    name = registry.resolve(value)
    if name is not None:
        return registry.class_path(name)
    if _BARE_NAME.match(value) and not Path(value).exists():
        sys.stderr.write(f"genlight: error: {registry.unknown_message(value)}\n")
        raise UnknownNameError(2)
    return value


class GenlightSaveConfig(SaveConfigCallback):
    """Writes ``config.yaml`` into the run's own folder (never over an earlier run's file) and pushes
    the resolved config to ``wandb.config`` for every attached :class:`WandbLogger`."""

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
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
                logger.experiment.config.update(_plain(self.config), allow_val_change=True)


def _plain(value: Any) -> Any:
    """A Namespace tree as plain dicts/lists of JSON-friendly values."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def default_fit_callbacks(model: LightningModule, *, checkpoints: bool = True, ema: bool = True) -> list[Callback]:
    """What every ``genlight fit`` adds: ``last.ckpt`` plus the best checkpoint on the family's own
    validation metric (:meth:`~genlight.module.GenerativeModule.checkpoint_monitor`; only ``last.ckpt``
    when it has none), the :class:`~genlight.callbacks.nan_guard.NaNGuard` and the
    :class:`~genlight.callbacks.rng.RNGState` that makes a resume exact, and the
    :class:`~genlight.callbacks.ema.EMA` of the weights when the family sets ``ema_decay`` (``ema``; the
    command itself adds it through its ``--ema.*`` flags)."""
    callbacks: list[Callback] = []
    if checkpoints:
        monitor = model.checkpoint_monitor() if isinstance(model, GenerativeModule) else None
        if monitor is None:
            callbacks.append(ModelCheckpoint(save_last=True, save_top_k=0))
        else:
            metric, mode = monitor
            callbacks.append(ModelCheckpoint(filename="best-{epoch}-{step}", monitor=metric, mode=mode, save_last=True))
    if ema and float(getattr(model, "ema_decay", 0.0) or 0.0) > 0.0:
        callbacks.append(EMA())  # the family's own decay and target
    return [*callbacks, NaNGuard(), RNGState()]


class GenlightArgumentParser(LightningArgumentParser):
    """LightningCLI's parser whose errors are ``genlight: error: ...`` in at most three lines, with
    "did you mean" for a misspelt option, instead of a usage dump."""

    def error(self, message: str, ex: Exception | None = None) -> Any:
        if not self.exit_on_error or jsonargparse_debug_mode():
            return super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        sys.stderr.write(_short_parse_error(parser, message) + "\n")
        raise SystemExit(2)


def _option_names(parser: Any) -> list[str]:
    names: list[str] = []
    for action in getattr(parser, "_actions", []):
        names.extend(o for o in action.option_strings if o.startswith("--"))
        for sub in (getattr(action, "_name_parser_map", None) or {}).values():
            names.extend(_option_names(sub))
    return sorted(set(names))


def _init_names(class_path: str) -> list[str]:
    try:
        cls = import_class(class_path)
    except Exception:  # noqa: BLE001 - only a hint
        return []
    return [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "args", "kwargs")]


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def _short_parse_error(parser: Any, message: str) -> str:
    """jsonargparse's message (often 10-50 lines) as at most three lines that name the problem and the fix."""
    prog = "genlight " + (parser.prog.split()[-1] if parser.prog and parser.prog.split()[-1] in
                          ("fit", "validate", "test", "predict") else "fit")  # fmt: skip
    help_hint = f"`{prog} --help` lists the options"
    commands = ["fit", "validate", "test", "sample", "list"]
    if 'expected "subcommand"' in message or "argument subcommand: invalid choice" in message:
        bad = re.search(r"invalid choice: '([^']*)'", message)
        hint = _did_you_mean(bad.group(1), commands) if bad else ""
        what = f"unknown command {bad.group(1)!r}.{hint}" if bad else "no command given."
        return f"genlight: error: {what} Commands: {', '.join(commands)} (`genlight --help`)"
    unknown = re.search(r"Option '([\w.]+)' is not accepted", message)
    group = re.search(r'Parser key "(\w+)"', message)
    class_path = re.search(r"class_path '([\w.]+)'", message)
    if unknown and group and class_path:
        key, option = group.group(1), unknown.group(1)
        names = _init_names(class_path.group(1))
        cls = class_path.group(1).rsplit(".", 1)[-1]
        registry = MODELS if key == "model" else DATAMODULES
        name = registry.name_of(import_class(class_path.group(1))) if names else None
        hint = _did_you_mean(option, names).replace(": ", f": --{key}.", 1).replace(", ", f", --{key}.")
        return (
            f"genlight: error: {cls} has no option --{key}.{option}.{hint}\n"
            f"`{prog} --{key}.help {name or class_path.group(1)}` lists its options"
        )
    unrecognized = re.search(r"unrecognized arguments: (.*)", message)
    if unrecognized:
        options = [t.split("=")[0] for t in unrecognized.group(1).split() if t.startswith("-")]
        known = _option_names(parser)
        lines = [f"genlight: error: unknown option {o}.{_did_you_mean(o, known)}" for o in options[:2]]
        return "\n".join([*(lines or [f"genlight: error: unexpected arguments: {unrecognized.group(1)}"]), help_hint])
    required = re.search(r"the following arguments are required: (.*)", message)
    if required:
        missing = ", ".join("--" + a.strip().split(".", 1)[-1] for a in required.group(1).split(","))
        extra = " (e.g. --model vae; `genlight list models`)" if "model" in missing else ""
        return f"genlight: error: missing {missing}{extra}\n{help_hint}"
    keys = re.findall(r'Parser key "([\w.]+)":[ \t]*(.*)', message)
    if keys:
        option = "--" + ".".join(k for k, _ in keys)
        detail = keys[-1][1].strip()
        if not detail:
            after = message.rsplit(f'Parser key "{keys[-1][0]}":', 1)[-1]
            skip = ("Does not validate", "Subtypes", "Errors:", "- Problem with given", "- Expected a <class 'NoneType'>")
            detail = next((ln.strip().lstrip("- ") for ln in after.splitlines() if ln.strip()
                           and not ln.strip().startswith(skip)), "invalid value")  # fmt: skip
        return f"genlight: error: {option}: {detail}\n{help_hint}"
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    detail = next((ln for ln in lines[1:] if not ln.startswith(("Subtypes", "Errors", "- Expected a <class 'NoneType'>",
                                                                  "Does not validate", "Given value type"))), "")  # fmt: skip
    first = lines[0] if lines else message
    text = f"{first} {detail.lstrip('- ')}".strip() if detail and len(first) < 60 else first
    return f"genlight: error: {text}\n{help_hint}"


def _tensorboard_available() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


def _class_name(path: str) -> str:
    """``genlight.modules.vae.VAE`` -> ``vae`` (the registry name when registered)."""
    try:
        return MODELS.name_of(import_class(path)) or path.rsplit(".", 1)[-1]
    except Exception:  # noqa: BLE001 - a name for a message
        return path.rsplit(".", 1)[-1]


def _same(a: Any, b: Any) -> bool:
    return json.dumps(_plain(a), sort_keys=True) == json.dumps(_plain(b), sort_keys=True)


def _given_model_keys(args: Sequence[str]) -> set[str]:
    """Model arguments typed on the command line (``--model.latent_dim``, ``--model.init_args.lr``)."""
    keys = set()
    for token in args:
        m = re.match(r"--model\.(?:init_args\.)?(\w+)", token)
        if m and m.group(1) != "help":
            keys.add(m.group(1))
    return keys


@contextlib.contextmanager
def _quiet_seed_messages() -> Any:
    """Without LightningCLI's two seed lines ("No seed found, seed set to 0", "Seed set to 0"), which
    would precede every error; the seed is in the run's ``config.yaml``."""
    seed_log = logging.getLogger("lightning.fabric.utilities.seed")
    level = seed_log.level
    seed_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No seed found")
            yield
    finally:
        seed_log.setLevel(level)


class GenlightCLI(LightningCLI):
    """LightningCLI over every registered family and datamodule.

    Registry names work wherever a class does (``--model vae``, ``model: vae`` in YAML), the
    datamodule's ``image_shape``, ``num_classes`` and ``num_levels`` are linked into the model, runs go
    to ``runs/<model>/version_N`` with a CSV logger unless another logger is given, the
    ``--samples.*`` flags configure the sample-grid callback, and every ``fit`` gets
    :func:`default_fit_callbacks`. ``--ckpt_path last`` is the newest ``runs/<model>/version_N``'s
    ``last.ckpt``; a checkpoint is checked against ``--model`` and its arguments before anything runs.
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
                "default_root_dir": "runs",
                "logger": {"class_path": _CSV_LOGGER, "init_args": {"save_dir": "runs"}},
                # a progress bar redrawn into a log file floods it: only on a terminal by default
                "enable_progress_bar": sys.stderr.isatty(),
            },
        )
        kwargs.setdefault(
            "parser_kwargs",
            {
                "description": "Train genlight models by name. Also: `genlight list models|datamodules|extractors`, "
                "`genlight sample --ckpt_path PATH -n 64`.",
            },
        )
        # hyper-parameters are the __init__ arguments (Lightning's own record), not the CLI's config
        kwargs.setdefault("load_from_checkpoint_support", False)
        self._ckpt_hparams: dict[str, Any] | None = None
        self._raw_args: list[str] = []
        with _quiet_seed_messages():
            super().__init__(*args, **kwargs)

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
        args = _rewrite_config_files(rewrite_registry_names(args))
        self._raw_args = list(args)
        self.config = parser.parse_args(self._model_from_checkpoint(args))

    def _model_from_checkpoint(self, args: list[str]) -> list[str]:
        """``test --ckpt_path X`` with no ``--model`` (nor config file) takes the checkpoint's class."""
        if any(t.split("=")[0] in ("--model", "-c", "--config") for t in args):
            return args
        path = next((args[i + 1] for i, t in enumerate(args[:-1]) if t == "--ckpt_path"), None)
        path = path or next((t.split("=", 1)[1] for t in args if t.startswith("--ckpt_path=")), None)
        if not path or path in _LIGHTNING_CKPT_WORDS:
            return args
        if path == "last":
            path = str(find_last_checkpoint(Path("runs")))
        class_path = checkpoint_class_path(read_checkpoint(path), path)
        at = next((i + 1 for i, t in enumerate(args) if t in LightningCLI.subcommands()), 0)
        return [*args[:at], "--model", class_path, *args[at:]]

    def _parse_ckpt_path(self) -> None:
        """Resolve ``--ckpt_path last``, check the file, its family and the given model arguments, then
        take the checkpoint's hyper-parameters as the model's arguments (as LightningCLI does)."""
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        ckpt_path = config.get("ckpt_path")
        if not ckpt_path or ckpt_path in _LIGHTNING_CKPT_WORDS or str(ckpt_path).startswith("registry"):
            return
        model = config.get("model")
        model_path = model.class_path if isinstance(model, Namespace) else None
        if ckpt_path == "last":
            name = self._run_name(config) or (_class_name(model_path) if model_path else None)
            ckpt_path = str(find_last_checkpoint(self._runs_root(config), name))
            config.ckpt_path = ckpt_path
            verb = "resuming from" if subcommand == "fit" else "using"
            sys.stderr.write(f"genlight: --ckpt_path last: {verb} {ckpt_path}\n")
        checkpoint = read_checkpoint(ckpt_path)
        ckpt_class = checkpoint_class_path(checkpoint, ckpt_path)
        if model_path and import_class(model_path) is not import_class(ckpt_class):
            have, want = _class_name(ckpt_class), _class_name(model_path)
            raise CheckpointError(
                f"{ckpt_path} holds model '{have}' ({ckpt_class}), not '{want}': pass --model {have}, or a checkpoint of "
                f"{want} (runs/{want}/version_N/checkpoints/last.ckpt)"
            )
        hparams = dict(checkpoint.get("hyper_parameters") or {})
        params = set(_init_names(ckpt_class))
        init = {k: v for k, v in hparams.items() if k in params and k not in LINKED_ATTRIBUTES}
        if isinstance(model, Namespace):
            given = dict(model.get("init_args") or {})
            explicit = _given_model_keys(self._raw_args)
            defaults = {
                n: p.default for n, p in inspect.signature(import_class(ckpt_class).__init__).parameters.items()
                if p.default is not inspect.Parameter.empty
            }  # fmt: skip
            clash = [
                f"{k}={_plain(given[k])!r} (checkpoint: {_plain(v)!r})" for k, v in init.items()
                if k in given and not _same(given[k], v) and (k in explicit or not _same(given[k], defaults.get(k)))
            ]  # fmt: skip
            if clash:
                raise CheckpointError(
                    f"model arguments contradict the checkpoint {ckpt_path}: {', '.join(clash)}; drop them "
                    f"(the checkpoint's values are used) or train a new model with `genlight fit`"
                )
        self._ckpt_hparams = hparams
        update = {subcommand: {"model": {"class_path": ckpt_class, "init_args": init}}}
        self.config = self.parser.parse_object(update, self.config)

    @staticmethod
    def _run_name(config: Namespace) -> str | None:
        """The CSV/TensorBoard logger's ``name`` when the user set one (else runs are named after the model)."""
        loggers = config.trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if isinstance(logger, Namespace) and logger.class_path.rsplit(".", 1)[-1] in ("CSVLogger", _TENSORBOARD_LOGGER):
                name = (logger.get("init_args") or {}).get("name")
                if name and name != _DEFAULT_LOGGER_NAME:
                    return str(name)
        return None

    def _runs_root(self, config: Namespace) -> Path:
        loggers = config.trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if isinstance(logger, Namespace) and logger.get("init_args") and logger.init_args.get("save_dir"):
                return Path(logger.init_args.save_dir)
        return Path(config.trainer.get("default_root_dir") or "runs")

    # ------------------------------------------------------------------ instantiation
    def before_instantiate_classes(self) -> None:
        """Name the default CSV/TensorBoard run folder after the model (``runs/vae/version_0``), check
        that a requested TensorBoard logger can run, and keep ``fast_dev_run`` images in a run folder."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        samples = config.get("samples")
        if isinstance(samples, Namespace) and (samples.get("num_samples") or 0) < 1:
            raise ConfigError(f"--samples.num_samples must be >= 1, got {samples.num_samples} "
                              f"(--samples.every_n_epochs 0 turns the sample grids off)")  # fmt: skip
        model_path = config.model.class_path if isinstance(config.model, Namespace) else None
        loggers = config.trainer.logger
        loggers = loggers if isinstance(loggers, list) else [loggers]
        for logger in loggers:
            if isinstance(logger, Namespace) and logger.class_path.rsplit(".", 1)[-1] == _TENSORBOARD_LOGGER:
                if not _tensorboard_available():
                    raise ConfigError(
                        "--trainer.logger TensorBoardLogger needs the tensorboard package: "
                        "pip install 'genlight[tensorboard]' (or use the default CSV logger)"
                    )
        if model_path is None:
            return
        name = MODELS.name_of(import_class(model_path)) or model_path.rsplit(".", 1)[-1].lower()
        for logger in loggers:
            if (
                isinstance(logger, Namespace)
                and logger.class_path.rsplit(".", 1)[-1] in ("CSVLogger", _TENSORBOARD_LOGGER)
                and logger.init_args.get("name") == _DEFAULT_LOGGER_NAME
            ):
                logger.init_args.name = name
        if config.trainer.get("fast_dev_run"):  # Lightning drops the loggers: give images a run folder
            root = self._runs_root(config) / name
            versions = [int(p.name[8:]) for p in root.glob("version_*") if p.name[8:].isdigit()]
            config.trainer.default_root_dir = str(root / f"version_{max(versions, default=-1) + 1}")

    def instantiate_classes(self) -> None:
        """Lightning's; a ``ValueError``/``TypeError`` raised by a model, datamodule or callback's
        ``__init__`` (a setting out of range) becomes one line (``GENLIGHT_DEBUG=1`` keeps the traceback)."""
        import os

        try:
            super().instantiate_classes()
        except (ValueError, TypeError) as err:
            if _user_error(err) is not None or os.environ.get("GENLIGHT_DEBUG"):
                raise
            cause = _root_cause(err)
            raise ConfigError(f"{_one_line(cause)} (GENLIGHT_DEBUG=1 shows the traceback)") from err

    def after_instantiate_classes(self) -> None:
        """A checkpoint trained on other data than ``--data`` gives: an error naming both shapes."""
        if not self._ckpt_hparams or self.model is None:
            return
        for attr in LINKED_ATTRIBUTES:
            if attr in self._ckpt_hparams and attr in self.model.hparams:
                ckpt, data = self._ckpt_hparams[attr], self.model.hparams[attr]
                if not _same(ckpt, data):
                    raise CheckpointError(
                        f"the checkpoint was trained on data with {attr}={_plain(ckpt)!r}, --data "
                        f"{type(self.datamodule).__name__} has {_plain(data)!r}: pass the --data it was trained on"
                    )

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        """Lightning's, plus :func:`default_fit_callbacks` (unless a ``ModelCheckpoint`` is configured or
        checkpointing is off), with Trainer setting errors (devices, accelerator) as one line."""
        config = self._get(self.config_init, "trainer", default={})
        callbacks = config.get("callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, list) else [callbacks]
        if self.subcommand in (None, "fit"):
            checkpoints = config.get("enable_checkpointing") is not False and not any(
                isinstance(c, ModelCheckpoint) for c in callbacks
            )
            defaults = default_fit_callbacks(self.model, checkpoints=checkpoints, ema=False)  # --ema.* adds it
            callbacks += [c for c in defaults if not any(isinstance(x, type(c)) for x in callbacks)]
        try:
            return super().instantiate_trainer(**{"callbacks": callbacks, **kwargs})
        except (MisconfigurationException, ValueError, TypeError, RuntimeError) as err:
            if isinstance(err, GenlightError):
                raise
            first = " ".join(str(err).split())[:300]
            raise ConfigError(
                f"invalid Trainer settings: {first} (check --trainer.devices / --trainer.accelerator; "
                f"`genlight fit --help`)"
            ) from err


# ---------------------------------------------------------------------------- extra subcommands
class _ShortArgumentParser(argparse.ArgumentParser):
    """argparse with ``genlight: error: ...`` messages in at most three lines (no usage dump)."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        words = re.search(r"unrecognized arguments: (.*)", message)
        if words:
            options = [o for a in self._actions for o in a.option_strings]
            unknown = [t.split("=")[0] for t in words.group(1).split() if t.startswith("-")]
            message = "; ".join(f"unknown option {o}.{_did_you_mean(o, options)}" for o in unknown[:2]) or message
        sys.stderr.write(f"genlight: error: {message}\n`{self.prog} --help` lists the options\n")
        raise SystemExit(2)


def _list_command(argv: list[str]) -> int:
    from genlight.metrics.extractors import EXTRACTORS

    parser = _ShortArgumentParser(prog="genlight list", description="List registered models, datamodules or "
                                  "FID feature extractors.")  # fmt: skip
    parser.add_argument("kind", choices=["models", "datamodules", "extractors"])
    parser.add_argument("pattern", nargs="?", default="", help="glob filter, e.g. '*vae*'")
    ns = parser.parse_args(argv)
    registry = {"models": MODELS, "datamodules": DATAMODULES, "extractors": EXTRACTORS}[ns.kind]
    for name in registry.list(ns.pattern):
        cls = registry.get(name)
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        summary = summary.split(". ")[0].rstrip(".").replace("``", "")
        print(f"{name:<20} {registry.class_path(name):<48} {summary}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (the number of images to draw), got {value}")
    return value


def _sample_command(argv: list[str]) -> int:
    parser = _ShortArgumentParser(prog="genlight sample", description="Draw samples from a trained checkpoint.")
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `genlight fit`, or `last`")
    parser.add_argument("--model", help="the family the checkpoint must hold (a registry name); checked")
    parser.add_argument("-n", "--num_samples", type=_positive, default=64)
    parser.add_argument("--out", default="samples.png", help="PNG grid to write (.pt saves the raw tensor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=int, nargs="*", help="class labels for conditional models")
    parser.add_argument("--device", default="cpu")
    ns = parser.parse_args(argv)

    import torch
    from PIL import Image

    from genlight.callbacks import image_grid
    from genlight.checkpoint import load_model
    from genlight.types import ConditionalSampler, Sampler

    want = None
    if ns.model is not None:
        want = MODELS.resolve(ns.model)
        if want is None:
            raise ConfigError(MODELS.unknown_message(ns.model))
    path = ns.ckpt_path
    if path == "last":
        path = str(find_last_checkpoint(Path("runs"), want))
        sys.stderr.write(f"genlight: --ckpt_path last: using {path}\n")
    ckpt_class = checkpoint_class_path(read_checkpoint(path), path)
    if want is not None and import_class(ckpt_class) is not MODELS.get(want):
        have = _class_name(ckpt_class)
        raise CheckpointError(
            f"{path} holds model '{have}' ({ckpt_class}), not '{want}': pass --model {have}, or a checkpoint of "
            f"{want} (runs/{want}/version_N/checkpoints/last.ckpt)"
        )
    if ns.device != "cpu" and ns.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {ns.device}: no CUDA device is available here; use --device cpu")
    model = load_model(path, map_location=ns.device)
    if not isinstance(model, Sampler):
        raise ConfigError(
            f"{type(model).__name__} cannot sample (it has no sample(n) method); samplers: "
            f"{', '.join(MODELS.list(capability=Sampler))}"
        )
    if ns.labels and not isinstance(model, ConditionalSampler):
        raise ConfigError(f"{type(model).__name__} is unconditional: drop --labels")
    torch.manual_seed(ns.seed)
    y = torch.tensor(ns.labels, device=ns.device).repeat(ns.num_samples)[: ns.num_samples] if ns.labels else None
    images = model.sample(ns.num_samples, y=y)
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".pt":
        torch.save(images.cpu(), out)
    else:
        grid = image_grid(images)
        Image.fromarray((grid.permute(1, 2, 0) * 255).round().byte().numpy()).save(out)
    print(f"wrote {ns.num_samples} samples of {type(model).__name__} to {out}")
    return 0


def _predict_command(argv: list[str]) -> int:
    sys.stderr.write(
        "genlight: error: `genlight predict` has nothing to predict for a generative model: draw images with "
        "`genlight sample --ckpt_path PATH -n 64`, score data with `genlight test --ckpt_path PATH`\n"
    )
    return 2


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``genlight`` console script. Errors of the user's making (a
    :class:`~genlight.errors.GenlightError`) print ``genlight: error: ...`` and exit with code 1."""
    argv = list(sys.argv[1:] if args is None else args)
    commands: dict[str, Any] = {"list": _list_command, "sample": _sample_command, "predict": _predict_command}
    try:
        if argv and argv[0] in commands:
            raise SystemExit(commands[argv[0]](argv[1:]))
        GenlightCLI(args=None if args is None else argv)
    except Exception as err:
        user_error = _user_error(err)
        if user_error is None:
            raise
        sys.stderr.write(f"genlight: error: {_one_line(user_error)}\n")  # the message says what to do
        raise SystemExit(1) from err


def _one_line(err: BaseException) -> str:
    """A user error's message on one line (at most 1000 characters)."""
    text = " ".join(str(err).split())
    if isinstance(err, KeyError) and text.startswith(("'", '"')) and text.endswith(("'", '"')):
        text = text[1:-1]  # KeyError's repr quotes
    return text if len(text) <= 1000 else text[:997] + "..."


def _root_cause(err: BaseException) -> BaseException:
    """The innermost exception of ``err``'s chain (jsonargparse wraps what an ``__init__`` raised)."""
    seen = {id(err)}
    while (err.__cause__ or err.__context__) is not None and id(err.__cause__ or err.__context__) not in seen:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
        seen.add(id(err))
    return err


def _user_error(err: BaseException | None) -> BaseException | None:
    """The :class:`~genlight.errors.GenlightError` behind ``err``, if any (jsonargparse wraps errors
    raised while it instantiates a class in a ``ValueError``)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, GenlightError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


if __name__ == "__main__":  # pragma: no cover
    main()
