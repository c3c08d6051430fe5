"""Registry names (``vae``, ``digits``) where LightningCLI wants class paths: rewritten on the command
line before parsing, and in YAML configs in memory by :func:`load_config` (a jsonargparse loader), so
relative paths and error messages keep the user's own file."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import get_loader, set_loader

from genlight.errors import ConfigError
from genlight.registry import DATAMODULES, MODELS, Registry

__all__ = [
    "PARSER_MODE",
    "UnknownNameError",
    "check_config_files",
    "load_config",
    "rewrite_config",
    "rewrite_registry_names",
]

#: the jsonargparse parser mode whose loader resolves registry names (YAML otherwise)
PARSER_MODE = "genlight_yaml"
SUBCOMMANDS = ("fit", "validate", "test", "predict")
_BARE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_FLAGS = {"--model": MODELS, "--data": DATAMODULES}


class UnknownNameError(SystemExit):
    """Raised (exit code 2) for an unknown ``--model`` / ``--data`` name, after printing the message."""


def rewrite_registry_names(args: Sequence[str]) -> list[str]:
    """``--model vae`` / ``--model=vae`` / ``--model.help vae`` (and ``--data``) as class paths; other
    values pass through, an unknown bare name prints the close matches and exits with code 2."""
    out = list(args)
    for i, flag, value, joined in _options(args):
        key = flag[: -len(".help")] if flag.endswith(".help") else flag
        if key in _FLAGS:
            new = _resolve(_FLAGS[key], value)
            out[i if joined else i + 1] = f"{flag}={new}" if joined else new
    return out


def _options(args: Sequence[str]) -> Iterator[tuple[int, str, str, bool]]:
    """``(index, flag, value, joined)`` of each ``--flag value`` or ``--flag=value`` (``joined``) in ``args``."""
    for i, token in enumerate(args):
        flag, eq, value = token.partition("=")
        if eq or i + 1 < len(args):
            yield i, flag, value if eq else args[i + 1], bool(eq)


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
    for sub in SUBCOMMANDS:
        if isinstance(out.get(sub), dict):
            out[sub] = rewrite_config(out[sub])
    return out


def load_config(value: str, path: str | None = None) -> Any:
    """jsonargparse's YAML loader, then registry names resolved: a whole config (``path`` given) by
    :func:`rewrite_config`, another value's ``class_path`` quietly (unknown names are jsonargparse's to report)."""
    data = get_loader("yaml")(value)
    if path is not None:
        return rewrite_config(data)
    if isinstance(data, dict) and isinstance(data.get("class_path"), str):
        name = data["class_path"]
        for registry in (MODELS, DATAMODULES):
            resolved = registry.resolve(name) if _BARE_NAME.match(name) else None
            if resolved is not None:
                return {**data, "class_path": registry.class_path(resolved)}
    return data


def register_loader() -> None:
    """Register :func:`load_config` as the loader of :data:`PARSER_MODE` (idempotent)."""
    set_loader(PARSER_MODE, load_config, exceptions=(yaml.YAMLError,))


def check_config_files(args: Sequence[str]) -> None:
    """Before parsing: every ``-c FILE`` / ``--config FILE`` / ``--model FILE`` / ``--data FILE`` that is
    YAML must load, and its registry names must exist. A broken file is one line naming the file, the
    line and the column (jsonargparse's own message names neither); nothing is written."""
    for _, flag, value, _ in _options(args):
        if flag not in ("-c", "--config", *_FLAGS):
            continue
        path = Path(value)
        yaml_file = flag in ("-c", "--config") or path.suffix.lower() in (".yaml", ".yml", ".json")
        if not yaml_file or not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text())
        except OSError:
            continue  # jsonargparse reports it
        except yaml.YAMLError as err:
            raise ConfigError(
                f"{flag} {value}: {_yaml_problem(err)}; fix that line (YAML: `key: value`, lists "
                f"in [ ], two-space indents)"
            ) from err
        rewrite_config({flag[2:]: data} if flag in _FLAGS else data)  # unknown names exit here


def _yaml_problem(err: yaml.YAMLError) -> str:
    """``not valid YAML at line 5, column 1: expected ',' or ']' (in the flow sequence of line 4)``."""
    if not isinstance(err, yaml.MarkedYAMLError) or err.problem_mark is None:
        return f"not valid YAML ({' '.join(str(err).split())})"
    mark = err.problem_mark
    text = f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {err.problem}"
    if err.context and err.context_mark is not None and err.context_mark.line != mark.line:
        text += f" ({err.context} at line {err.context_mark.line + 1})"
    return text


def _resolve(registry: Registry, value: str) -> str:
    name = registry.resolve(value)
    if name is not None:
        return registry.class_path(name)
    if _BARE_NAME.match(value) and not Path(value).exists():
        sys.stderr.write(f"genlight: error: {registry.unknown_message(value)}\n")
        raise UnknownNameError(2)
    return value
