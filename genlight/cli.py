"""The ``genlight`` command: LightningCLI with registry names, linked shapes and run folders.

    genlight fit --model vae --data digits --trainer.max_epochs 5
    genlight fit -c examples/digits/vae.yaml
    genlight list models
    genlight sample --ckpt_path runs/vae/version_0/checkpoints/last.ckpt -n 64 --out samples.png
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from genlight.base import GenerativeDataModule, GenerativeModule
from genlight.callbacks import EMA, SampleGrid, run_dir
from genlight.errors import GenlightError
from genlight.registry import DATAMODULES, MODELS, Registry, import_class

__all__ = ["GenlightCLI", "GenlightSaveConfig", "main", "rewrite_registry_names"]

#: attributes of the datamodule that are passed into the model's ``__init__``
LINKED_ATTRIBUTES = ("image_shape", "num_classes", "num_levels")

#: the datamodule used when no ``--data`` is given: bundled, no download
DEFAULT_DATAMODULE = "digits"
_CSV_LOGGER = "lightning.pytorch.loggers.CSVLogger"
_DEFAULT_LOGGER_NAME = "lightning_logs"
_BARE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


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


class GenlightCLI(LightningCLI):
    """LightningCLI over every registered family and datamodule.

    Registry names work wherever a class does (``--model vae``), the datamodule's
    ``image_shape``, ``num_classes`` and ``num_levels`` are linked into the model, runs go to
    ``runs/<model>/version_N`` with a CSV logger unless another logger is given, and the
    ``--samples.*`` flags configure the sample-grid callback.
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
        kwargs.setdefault(
            "trainer_defaults",
            {
                "default_root_dir": "runs",
                "logger": {"class_path": _CSV_LOGGER, "init_args": {"save_dir": "runs"}},
            },
        )
        kwargs.setdefault(
            "parser_kwargs",
            {
                "description": "Train genlight models by name. Also: `genlight list models|datamodules`, "
                "`genlight sample --ckpt_path PATH -n 64`.",
            },
        )
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        for attr in LINKED_ATTRIBUTES:
            parser.link_arguments(f"data.{attr}", f"model.init_args.{attr}", apply_on="instantiate")
        parser.add_lightning_class_args(SampleGrid, "samples")
        parser.add_lightning_class_args(EMA, "ema")  # --ema.decay: the family's ema_decay by default, 0 = off
        parser.set_defaults({"data": {"class_path": DATAMODULES.class_path(DEFAULT_DATAMODULE)}})

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        if args is None:
            args = sys.argv[1:]
        if isinstance(args, (dict, Namespace)):
            self.config = parser.parse_object(args)
        else:
            self.config = parser.parse_args(rewrite_registry_names(args))

    def before_instantiate_classes(self) -> None:
        """Name the default CSV/TensorBoard run folder after the model: ``runs/vae/version_0``."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        model_path = config.model.class_path if isinstance(config.model, Namespace) else None
        if model_path is None:
            return
        name = MODELS.name_of(import_class(model_path)) or model_path.rsplit(".", 1)[-1].lower()
        loggers = config.trainer.logger
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            if (
                isinstance(logger, Namespace)
                and logger.class_path.rsplit(".", 1)[-1] in ("CSVLogger", "TensorBoardLogger")
                and logger.init_args.get("name") == _DEFAULT_LOGGER_NAME
            ):
                logger.init_args.name = name


# ---------------------------------------------------------------------------- extra subcommands
def _list_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genlight list", description="List registered models or datamodules.")
    parser.add_argument("kind", choices=["models", "datamodules"])
    parser.add_argument("pattern", nargs="?", default="", help="glob filter, e.g. '*vae*'")
    ns = parser.parse_args(argv)
    registry = MODELS if ns.kind == "models" else DATAMODULES
    for name in registry.list(ns.pattern):
        cls = registry.get(name)
        summary = " ".join((cls.__doc__ or "").strip().split("\n\n")[0].split())
        summary = summary.split(". ")[0].rstrip(".").replace("``", "")
        print(f"{name:<20} {registry.class_path(name):<48} {summary}")
    return 0


def _sample_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="genlight sample", description="Draw samples from a trained checkpoint.")
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `genlight fit`")
    parser.add_argument("-n", "--num_samples", type=int, default=64)
    parser.add_argument("--out", default="samples.png", help="PNG grid to write (.pt saves the raw tensor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=int, nargs="*", help="class labels for conditional models")
    parser.add_argument("--device", default="cpu")
    ns = parser.parse_args(argv)

    import torch
    from PIL import Image

    from genlight.callbacks import image_grid
    from genlight.checkpoint import load_model
    from genlight.types import Sampler

    model = load_model(ns.ckpt_path, map_location=ns.device)
    if not isinstance(model, Sampler):
        parser.error(f"{type(model).__name__} cannot sample (it has no sample(n) method)")
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


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``genlight`` console script."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] == "list":
        raise SystemExit(_list_command(argv[1:]))
    if argv and argv[0] == "sample":
        raise SystemExit(_sample_command(argv[1:]))
    try:
        GenlightCLI(args=None if args is None else argv)
    except Exception as err:
        user_error = _user_error(err)
        if user_error is None:
            raise
        sys.stderr.write(f"genlight: error: {user_error}\n")  # the message says what to do
        raise SystemExit(1) from err


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
