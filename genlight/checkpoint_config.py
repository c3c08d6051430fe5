"""A checkpoint as the configuration of a run: the file read once and safely
(:func:`genlight.checkpoint.read_checkpoint`), the model class and ``__init__`` arguments it holds, the
datamodule it was trained on, and the checks that ``--model`` / ``--data`` agree with it. The commands,
``genlight fit/test --ckpt_path`` and :func:`genlight.load_model` resolve a checkpoint here, one way."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import Namespace

from genlight.checkpoint import build_model, checkpoint_class_path, find_last_checkpoint, read_checkpoint
from genlight.errors import CheckpointError, ConfigError
from genlight.identity import CHECKPOINT_KEY
from genlight.pretrained_models import as_checkpoint, load_folder, pretrained_folder
from genlight.ranges import plain as plain_number
from genlight.registry import DATAMODULES, LINKED_ATTRIBUTES, MODELS, import_class

__all__ = [
    "DEFAULT_DATAMODULE",
    "CheckpointChoice",
    "class_name",
    "given_arguments",
    "init_defaults",
    "open_checkpoint",
    "plain",
    "same",
]

#: the datamodule used when no ``--data`` is given (and the checkpoint names none): bundled, no download
DEFAULT_DATAMODULE = "digits"


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


def init_defaults(cls: type, inherited: bool = False) -> dict[str, Any]:
    """The ``__init__`` arguments of ``cls`` (``inherited``: and of its bases, which a datamodule's
    ``**kwargs`` pass on) with their defaults (``empty`` when none)."""
    found: dict[str, Any] = {}
    inits = [vars(k)["__init__"] for k in reversed(cls.__mro__) if "__init__" in vars(k)] if inherited else [cls]
    for init in inits:
        found.update({n: p.default for n, p in inspect.signature(init).parameters.items()})
    return {n: d for n, d in found.items() if n not in ("self", "args", "kwargs")}


def given_arguments(config: Namespace, inherited: bool = False) -> dict[str, Any]:
    """The ``init_args`` of a class config that differ from the class's defaults: what the user set."""
    defaults = init_defaults(import_class(config.class_path), inherited)
    init = dict(config.get("init_args") or {})
    return {k: v for k, v in init.items() if k in defaults and not same(v, defaults[k])}


@dataclass(frozen=True)
class CheckpointChoice:
    """A checkpoint file chosen with ``--ckpt_path``, read once: ``checkpoint`` is its dict, ``class_path``
    the model class it holds, ``trust`` whether the user vouched for it (``--trust_checkpoint``)."""

    path: str
    checkpoint: dict[str, Any]
    class_path: str
    trust: bool = False
    #: a pretrained model (:mod:`genlight.pretrained`): the weights are in ``checkpoint``, there is no file to resume
    pretrained: bool = False

    @classmethod
    def from_pretrained(cls, name: str, model: str | None = None) -> CheckpointChoice:
        """``--pretrained NAME`` (shipped, ``hf-hub:user/name`` or a folder) as a checkpoint choice, checked to
        hold the class ``model`` (a class path) when given."""
        folder = pretrained_folder(name)
        checkpoint = as_checkpoint(folder)
        class_path = checkpoint[CHECKPOINT_KEY]["class_path"]
        if model and import_class(model) is not import_class(class_path):
            raise CheckpointError(
                f"--pretrained {name} holds model '{class_name(class_path)}', not '{class_name(model)}': "
                f"pass --model {class_name(class_path)} or another pretrained model (genlight.pretrained())"
            )
        return cls(str(folder), checkpoint, class_path, pretrained=True)

    @classmethod
    def resolve(
        cls,
        value: str,
        model: str | None = None,
        *,
        runs_root: Path = Path("runs"),
        run_name: str | None = None,
        trust: bool = False,
        verb: str = "using",
    ) -> CheckpointChoice:
        """``value`` (a file, a URL, or ``last``: the newest ``runs_root/<run_name or model>/version_N``),
        read and checked to hold the class ``model`` (a class path) when given."""
        path = value
        if value == "last":
            path = str(find_last_checkpoint(runs_root, run_name or (class_name(model) if model else None)))
            sys.stderr.write(f"genlight: --ckpt_path last: {verb} {path}\n")
        checkpoint = read_checkpoint(path, trust=trust)
        class_path = checkpoint_class_path(checkpoint, path)
        if model and import_class(model) is not import_class(class_path):
            have, want = class_name(class_path), class_name(model)
            raise CheckpointError(
                f"{path} holds model '{have}' ({class_path}), not '{want}': pass --model {have}, or a checkpoint of "
                f"{want} (runs/{want}/version_N/checkpoints/last.ckpt)"
            )
        return cls(path, checkpoint, class_path, trust)

    @property
    def hparams(self) -> dict[str, Any]:
        return dict(self.checkpoint.get("hyper_parameters") or {})

    def model_config(self, given: Namespace | None = None) -> dict[str, Any]:
        """The model's class and ``__init__`` arguments: the checkpoint's hyper-parameters (as LightningCLI
        takes them) but the data attributes linked from ``--data``. Model arguments ``given`` away from
        their defaults must equal the checkpoint's."""
        params = init_defaults(import_class(self.class_path))
        init = {k: v for k, v in self.hparams.items() if k in params and k not in LINKED_ATTRIBUTES}
        typed = given_arguments(given) if given is not None else {}
        clash = [
            f"{k}={plain(typed[k])!r} (checkpoint: {plain(v)!r})"
            for k, v in init.items()
            if k in typed and not same(typed[k], v)
        ]
        if clash:
            raise CheckpointError(
                f"model arguments contradict the checkpoint {self.path}: {', '.join(clash)}; drop them "
                f"(the checkpoint's values are used) or train a new model with `genlight fit`"
            )
        return {"class_path": self.class_path, "init_args": init}

    def data_arguments(self, data_class: type, names: tuple[str, ...] | None = None) -> dict[str, Any]:
        """The checkpoint's datamodule arguments that ``data_class`` takes (of ``names`` only, when given)."""
        saved = self.checkpoint.get("datamodule_hyper_parameters") or {}
        accepted = init_defaults(data_class, inherited=True)
        return {k: v for k, v in saved.items() if k in accepted and (names is None or k in names)}

    def data_config(self, given: Namespace) -> dict[str, Any] | None:
        """The datamodule the checkpoint was trained on, with its arguments and those ``given`` away from
        their defaults; ``None`` when ``--data`` names another datamodule or the checkpoint names none."""
        trained = (self.checkpoint.get(CHECKPOINT_KEY) or {}).get("datamodule")
        registered = {DATAMODULES.class_path(name): DATAMODULES.get(name) for name in DATAMODULES.list()}
        data_class = registered.get(str(trained))  # only a registered one: nothing the file names is imported
        if data_class is None or import_class(given.class_path) not in (
            data_class,
            DATAMODULES.get(DEFAULT_DATAMODULE),
        ):
            return None
        typed = {k: v for k, v in given_arguments(given, True).items() if k in init_defaults(data_class, True)}
        return {"class_path": trained, "init_args": {**self.data_arguments(data_class), **typed}}

    def check_trained_on(self, datamodule: Any, attrs: Sequence[str] = LINKED_ATTRIBUTES) -> None:
        """A checkpoint trained on other data than ``--data`` gives (its ``attrs``): an error naming both."""
        for attr in attrs:
            if attr in self.hparams and hasattr(datamodule, attr):
                ckpt, data = self.hparams[attr], getattr(datamodule, attr)
                if not same(ckpt, data):
                    raise CheckpointError(
                        f"the checkpoint was trained on data with {attr}={plain(ckpt)!r}, --data "
                        f"{type(datamodule).__name__} has {plain(data)!r}: pass the --data it was trained on"
                    )

    def load(self, device: str = "cpu") -> Any:
        """The model, in eval mode on ``device`` (Lightning's ``load_from_checkpoint`` reads the weights)."""
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"--device {device}: no CUDA device is available here; use --device cpu")
        if self.pretrained:
            return load_folder(self.path, device)
        return build_model(self.checkpoint, self.path, map_location=device, trust=self.trust)


def open_checkpoint(
    value: str | None, model: str | None = None, *, trust: bool = False, pretrained: str | None = None
) -> CheckpointChoice:
    """The commands' ``--ckpt_path`` (``last``: the newest under ``runs/``) or ``--pretrained`` (exactly one),
    checked to hold ``--model`` (a registry name) when given."""
    if (value is None) == (pretrained is None):
        raise ConfigError("pass --ckpt_path PATH (a checkpoint, or last) or --pretrained NAME, one of them")
    model_path = None
    if model is not None:
        name = MODELS.resolve(model)
        if name is None:
            raise ConfigError(MODELS.unknown_message(model))
        model_path = MODELS.class_path(name)
    if pretrained is not None:
        return CheckpointChoice.from_pretrained(pretrained, model_path)
    return CheckpointChoice.resolve(str(value), model_path, trust=trust)
