"""``--ckpt_path``: ``last`` resolved to a file, the checkpoint checked against ``--model`` and the model
arguments given, the checkpoint's hyper-parameters taken as the model's arguments, and its data shapes
checked against ``--data``."""

from __future__ import annotations

import inspect
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from genlight.checkpoint import checkpoint_class_path, find_last_checkpoint, read_checkpoint
from genlight.cli.errors import init_names
from genlight.errors import CheckpointError, ConfigError
from genlight.ranges import plain as plain_number
from genlight.registry import MODELS, import_class

__all__ = ["LINKED_ATTRIBUTES", "check_trained_on", "checkpoint_model", "class_name", "load_checked_model",
           "model_from_checkpoint", "plain", "same"]

#: attributes of the datamodule that are passed into the model's ``__init__``
LINKED_ATTRIBUTES = ("image_shape", "num_classes", "num_levels")
#: what ``--ckpt_path`` values Lightning resolves itself (beside a file)
LIGHTNING_CKPT_WORDS = ("best", "hpc")
SUBCOMMANDS = ("fit", "validate", "test")


def plain(value: Any) -> Any:
    """A Namespace tree as plain dicts/lists of JSON-friendly values."""
    if isinstance(value, Namespace):
        value = value.as_dict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return plain_number(value) if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def same(a: Any, b: Any) -> bool:
    return json.dumps(plain(a), sort_keys=True) == json.dumps(plain(b), sort_keys=True)


def class_name(path: str) -> str:
    """``genlight.modules.vae.VAE`` -> ``vae`` (the registry name when registered)."""
    try:
        return MODELS.name_of(import_class(path)) or path.rsplit(".", 1)[-1]
    except Exception:  # noqa: BLE001 - a name for a message
        return path.rsplit(".", 1)[-1]


def _given_model_keys(args: Sequence[str]) -> set[str]:
    """Model arguments typed on the command line (``--model.latent_dim``, ``--model.init_args.lr``)."""
    keys = set()
    for token in args:
        m = re.match(r"--model\.(?:init_args\.)?(\w+)", token)
        if m and m.group(1) != "help":
            keys.add(m.group(1))
    return keys


def load_checked_model(ckpt_path: str, model: str | None = None, device: str = "cpu") -> Any:
    """The model of ``--ckpt_path`` (``last``: the newest under ``runs/``) for ``genlight sample`` and
    ``genlight score``, in eval mode on ``device``; with ``--model``, checked to be that family."""
    import torch

    from genlight.checkpoint import load_model

    want = None
    if model is not None:
        want = MODELS.resolve(model)
        if want is None:
            raise ConfigError(MODELS.unknown_message(model))
    path = ckpt_path
    if path == "last":
        path = str(find_last_checkpoint(Path("runs"), want))
        sys.stderr.write(f"genlight: --ckpt_path last: using {path}\n")
    ckpt_class = checkpoint_class_path(read_checkpoint(path), path)
    if want is not None and import_class(ckpt_class) is not MODELS.get(want):
        have = class_name(ckpt_class)
        raise CheckpointError(
            f"{path} holds model '{have}' ({ckpt_class}), not '{want}': pass --model {have}, or a checkpoint of "
            f"{want} (runs/{want}/version_N/checkpoints/last.ckpt)"
        )
    if device != "cpu" and device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device}: no CUDA device is available here; use --device cpu")
    return load_model(path, map_location=device)


def model_from_checkpoint(args: list[str], runs_root: Path) -> list[str]:
    """``test --ckpt_path X`` with no ``--model`` (nor config file) takes the checkpoint's class."""
    if any(t.split("=")[0] in ("--model", "-c", "--config") for t in args):
        return args
    path = next((args[i + 1] for i, t in enumerate(args[:-1]) if t == "--ckpt_path"), None)
    path = path or next((t.split("=", 1)[1] for t in args if t.startswith("--ckpt_path=")), None)
    if not path or path in LIGHTNING_CKPT_WORDS:
        return args
    if path == "last":
        path = str(find_last_checkpoint(runs_root))
    class_path = checkpoint_class_path(read_checkpoint(path), path)
    at = next((i + 1 for i, t in enumerate(args) if t in SUBCOMMANDS), 0)
    return [*args[:at], "--model", class_path, *args[at:]]


def checkpoint_model(
    config: Namespace, subcommand: str, raw_args: Sequence[str], runs_root: Path, run_name: str | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Resolve ``--ckpt_path last`` (in ``config``), check the file, its family and the model arguments
    typed in ``raw_args``. Returns the model config to merge (the checkpoint's class and ``__init__``
    arguments, as LightningCLI does) and the checkpoint's hyper-parameters; ``(None, None)`` when no
    checkpoint file is given."""
    ckpt_path = config.get("ckpt_path")
    if not ckpt_path or ckpt_path in LIGHTNING_CKPT_WORDS or str(ckpt_path).startswith("registry"):
        return None, None
    model = config.get("model")
    model_path = model.class_path if isinstance(model, Namespace) else None
    if ckpt_path == "last":
        name = run_name or (class_name(model_path) if model_path else None)
        ckpt_path = str(find_last_checkpoint(runs_root, name))
        config.ckpt_path = ckpt_path
        verb = "resuming from" if subcommand == "fit" else "using"
        sys.stderr.write(f"genlight: --ckpt_path last: {verb} {ckpt_path}\n")
    checkpoint = read_checkpoint(ckpt_path)
    ckpt_class = checkpoint_class_path(checkpoint, ckpt_path)
    if model_path and import_class(model_path) is not import_class(ckpt_class):
        have, want = class_name(ckpt_class), class_name(model_path)
        raise CheckpointError(
            f"{ckpt_path} holds model '{have}' ({ckpt_class}), not '{want}': pass --model {have}, or a checkpoint of "
            f"{want} (runs/{want}/version_N/checkpoints/last.ckpt)"
        )
    hparams = dict(checkpoint.get("hyper_parameters") or {})
    params = set(init_names(ckpt_class))
    init = {k: v for k, v in hparams.items() if k in params and k not in LINKED_ATTRIBUTES}
    if isinstance(model, Namespace):
        _check_agreement(dict(model.get("init_args") or {}), init, _given_model_keys(raw_args), ckpt_class, ckpt_path)
    return {"model": {"class_path": ckpt_class, "init_args": init}}, hparams


def _check_agreement(given: dict[str, Any], init: dict[str, Any], explicit: set[str], ckpt_class: str, path: str) -> None:
    """Model arguments typed (or set away from the default) must equal the checkpoint's."""
    defaults = {
        n: p.default for n, p in inspect.signature(import_class(ckpt_class).__init__).parameters.items()
        if p.default is not inspect.Parameter.empty
    }
    clash = [
        f"{k}={plain(given[k])!r} (checkpoint: {plain(v)!r})" for k, v in init.items()
        if k in given and not same(given[k], v) and (k in explicit or not same(given[k], defaults.get(k)))
    ]
    if clash:
        raise CheckpointError(
            f"model arguments contradict the checkpoint {path}: {', '.join(clash)}; drop them "
            f"(the checkpoint's values are used) or train a new model with `genlight fit`"
        )


def check_trained_on(ckpt_hparams: dict[str, Any] | None, model: Any, datamodule: Any) -> None:
    """A checkpoint trained on other data than ``--data`` gives: an error naming both shapes."""
    if not ckpt_hparams or model is None:
        return
    for attr in LINKED_ATTRIBUTES:
        if attr in ckpt_hparams and attr in model.hparams:
            ckpt, data = ckpt_hparams[attr], model.hparams[attr]
            if not same(ckpt, data):
                raise CheckpointError(
                    f"the checkpoint was trained on data with {attr}={plain(ckpt)!r}, --data "
                    f"{type(datamodule).__name__} has {plain(data)!r}: pass the --data it was trained on"
                )
