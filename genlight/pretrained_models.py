"""Trained models in one line: ``genlight.pretrained("dcgan-digits")``, shipped in the package or on the
Hugging Face Hub (``"hf-hub:user/name"``), loaded without unpickling anything.

A pretrained model is a folder of three files, the format ``genlight push`` writes and the package ships
under ``genlight/assets/pretrained/<name>/``:

- ``model.safetensors``: the weights (the EMA weights when the run kept them), tensors only;
- ``config.json``: the family by its registry name, its ``__init__`` arguments, the datamodule it was trained
  on, the figures with their protocol, the training command, the commit and the weights' sha256;
- ``README.md`` (a model card, on the Hub).

Loading builds the family named in ``config.json`` from the registry (never a class path the file names),
checks the weights against the sha256 it records, and reads them with ``safetensors`` (no pickle), so a
folder from a stranger cannot run code. The same loader serves the shipped models and Hub downloads.
"""

from __future__ import annotations

import inspect
import json
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from genlight.checkpoint import sha256_of
from genlight.errors import CheckpointError, ConfigError
from genlight.identity import CHECKPOINT_KEY
from genlight.ranges import plain
from genlight.registry import DATAMODULES, MODELS

__all__ = [
    "CONFIG_FILE",
    "FORMAT",
    "HUB_PREFIX",
    "WEIGHTS_FILE",
    "PretrainedModel",
    "as_checkpoint",
    "list_pretrained",
    "load_folder",
    "pretrained",
    "pretrained_folder",
    "save_pretrained",
]

FORMAT = "genlight-pretrained/1"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
HUB_PREFIX = "hf-hub:"
#: the files a Hub download may fetch: never a pickle
HUB_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)


@dataclass(frozen=True)
class PretrainedModel:
    """One shipped model, as :func:`list_pretrained` lists it."""

    name: str
    family: str
    data: str
    figures: dict[str, float]
    size_mb: float
    sha256: str
    protocol: str

    def __str__(self) -> str:
        figures = ", ".join(f"{k} {v:.4g}" for k, v in self.figures.items())
        return f"{self.name:<26} {self.family:<16} {self.data:<14} {self.size_mb:6.2f} MB  {figures}"


def _shipped_root() -> Path:
    return Path(str(resources.files("genlight") / "assets" / "pretrained"))


def _json(value: Any) -> Any:
    """Hyper-parameters as JSON values (tuples as lists, paths and other objects as strings)."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    return plain(value) if value is None or isinstance(value, (bool, int, float, str)) else str(value)


def save_pretrained(
    model: Any,
    folder: str | Path,
    *,
    data: str | None = None,
    data_args: dict[str, Any] | None = None,
    figures: dict[str, float] | None = None,
    protocol: str = "",
    command: str = "",
    commit: str = "",
) -> Path:
    """Write ``model`` (a registered family) as a pretrained folder: ``model.safetensors`` and ``config.json``.
    ``data``/``data_args``: the registered datamodule it was trained on and its arguments; ``figures``: its
    results with their ``protocol``; ``command``/``commit``: how and at which commit it was trained."""
    from safetensors.torch import save_file

    family = MODELS.name_of(type(model))
    if family is None:
        raise ConfigError(f"{type(model).__name__} is not a registered family: register it to save it pretrained")
    if data is not None and DATAMODULES.resolve(data) is None:
        raise ConfigError(DATAMODULES.unknown_message(data))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
    hparams = dict(getattr(model, "hparams", {}) or {})
    config = {
        "format": FORMAT,
        "family": family,
        "init_args": _json(hparams),
        "data": {"name": DATAMODULES.resolve(data) if data else None, "init_args": _json(data_args or {})},
        "figures": {k: float(v) for k, v in (figures or {}).items()},
        "protocol": protocol,
        "command": command,
        "commit": commit,
        "sha256": sha256_of(folder / WEIGHTS_FILE),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    """``config.json`` of a pretrained folder, checked: the format, a registered family, weights whose
    sha256 matches. Errors name the folder and the fix."""
    folder = Path(folder)
    path = folder / CONFIG_FILE
    if not path.is_file() or not (folder / WEIGHTS_FILE).is_file():
        raise CheckpointError(
            f"{folder} is not a pretrained model: it needs {CONFIG_FILE} and {WEIGHTS_FILE} "
            f"(written by genlight.pretrained.save_pretrained or `genlight push`)"
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} cannot be read as JSON ({' '.join(str(err).split())})") from err
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a genlight pretrained config (format {FORMAT!r} expected)")
    if MODELS.resolve(str(config.get("family"))) is None:
        raise CheckpointError(
            f"{path} names family {config.get('family')!r}, which is not registered here: install the package "
            f"that provides it (`genlight list models` shows what is registered)"
        )
    digest = sha256_of(folder / WEIGHTS_FILE)
    if digest != config.get("sha256"):
        raise CheckpointError(
            f"{folder / WEIGHTS_FILE}: sha256 {digest[:12]}... does not match the {config.get('sha256', '')[:12]}... "
            f"its config records: the file is damaged or was replaced; download it again"
        )
    return config


def load_folder(folder: str | Path, device: str | torch.device = "cpu") -> Any:
    """The model of a pretrained folder in eval mode on ``device``: the registered family built with the
    recorded arguments, the weights read by ``safetensors`` (nothing unpickled), all of them required."""
    from safetensors.torch import load_file

    config = read_config(folder)
    cls = MODELS.get(MODELS.resolve(config["family"]))  # type: ignore[arg-type]
    model = cls(**_accepted(cls, config["init_args"]))
    missing, unexpected = model.load_state_dict(load_file(str(Path(folder) / WEIGHTS_FILE)), strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{folder}: the weights do not fit {config['family']} built with its config "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); the folder is not consistent"
        )
    return model.to(device).eval()


def _accepted(cls: type, init_args: dict[str, Any]) -> dict[str, Any]:
    """The recorded arguments that ``cls.__init__`` takes (a base class's ``save_hyperparameters`` may
    record more); all of them when it takes ``**kwargs``."""
    params = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return dict(init_args)
    return {k: v for k, v in init_args.items() if k in params}


def as_checkpoint(folder: str | Path) -> dict[str, Any]:
    """A pretrained folder as the dict a Lightning checkpoint holds (``state_dict``, ``hyper_parameters``,
    genlight's identity with the datamodule, ``datamodule_hyper_parameters``): what ``--pretrained`` gives the
    commands in place of a ``--ckpt_path`` file."""
    from safetensors.torch import load_file

    config = read_config(folder)
    family = MODELS.resolve(config["family"])
    data = (config.get("data") or {}).get("name")
    identity = {"model": family, "class_path": MODELS.class_path(family)}  # type: ignore[arg-type]
    if data and DATAMODULES.resolve(data):
        identity["datamodule"] = DATAMODULES.class_path(DATAMODULES.resolve(data))  # type: ignore[arg-type]
    return {
        "state_dict": load_file(str(Path(folder) / WEIGHTS_FILE)),
        "hyper_parameters": dict(config["init_args"]),
        "datamodule_hyper_parameters": dict((config.get("data") or {}).get("init_args") or {}),
        CHECKPOINT_KEY: identity,
    }


def pretrained_folder(name: str) -> Path:
    """The local folder of ``name``: a shipped model, a folder path, or ``hf-hub:user/name`` (downloaded into
    the Hub cache, weights and config only; ``HF_HUB_OFFLINE=1`` reads the cache alone)."""
    if name.startswith(HUB_PREFIX):
        return _hub_download(name[len(HUB_PREFIX) :])
    shipped = _shipped_root() / name
    if (shipped / CONFIG_FILE).is_file():
        return shipped
    if Path(name).is_dir():
        return Path(name)
    known = ", ".join(m.name for m in list_pretrained()) or "none"
    raise ConfigError(
        f"no pretrained model {name!r}: shipped ones are {known}; or pass hf-hub:user/name or a folder "
        f"written by `genlight push` (genlight.pretrained() lists them)"
    )


def _hub_download(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError as err:
        raise ConfigError("hf-hub: models need huggingface_hub: pip install 'genlight[hub]'") from err
    try:
        return Path(snapshot_download(repo_id, allow_patterns=list(HUB_FILES)))
    except Exception as err:
        offline = " (HF_HUB_OFFLINE is set: only the local cache is read)" if os.environ.get("HF_HUB_OFFLINE") else ""
        raise ConfigError(
            f"hf-hub:{repo_id} could not be fetched{offline}: {type(err).__name__}: {' '.join(str(err).split())[:200]}"
        ) from err


def list_pretrained() -> list[PretrainedModel]:
    """Every model shipped with the package, by name."""
    found = []
    root = _shipped_root()
    for folder in sorted(root.iterdir()) if root.is_dir() else []:
        path = folder / CONFIG_FILE
        if not path.is_file():
            continue
        config = json.loads(path.read_text())
        found.append(
            PretrainedModel(
                name=folder.name,
                family=config["family"],
                data=(config.get("data") or {}).get("name") or "",
                figures=dict(config.get("figures") or {}),
                size_mb=sum(p.stat().st_size for p in folder.iterdir()) / 2**20,
                sha256=config.get("sha256", ""),
                protocol=config.get("protocol", ""),
            )
        )
    return found


def pretrained(name: str | None = None, device: str | torch.device = "cpu") -> Any:
    """``pretrained()``: the shipped models (:class:`PretrainedModel` rows); ``pretrained("dcgan-digits")``,
    ``pretrained("hf-hub:user/name")`` or ``pretrained("path/to/folder")``: that model in eval mode.

    >>> model = genlight.pretrained("vae-digits")  # doctest: +SKIP
    >>> images = model.sample(64)                  # doctest: +SKIP
    """
    if name is None:
        return list_pretrained()
    return load_folder(pretrained_folder(name), device)
