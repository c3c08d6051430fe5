"""Short errors: jsonargparse's and argparse's messages (often 10-50 lines) as at most three lines
``genlight: error: ...`` that name the problem and the fix, and a user error raised anywhere as one line."""

from __future__ import annotations

import argparse
import difflib
import inspect
import re
import sys
from collections.abc import Sequence
from typing import Any

from genlight.ranges import explain_parse_error
from genlight.registry import DATAMODULES, MODELS, import_class

__all__ = [
    "ShortArgumentParser",
    "at_least",
    "device_type",
    "did_you_mean",
    "init_names",
    "option_names",
    "short_parse_error",
]

COMMANDS = ["fit", "validate", "test", "sample", "score", "translate", "complete", "list", "push"]
_SKIP = ("Subtypes", "Errors", "- Expected a <class 'NoneType'>", "Does not validate", "Given value type")


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def option_names(parser: Any) -> list[str]:
    """The ``--options`` a parser accepts, read from its usage line (argparse's public ``format_usage``)."""
    return sorted(set(re.findall(r"(--[A-Za-z][\w.]*)", parser.format_usage())))


def init_names(class_path: str) -> list[str]:
    """The ``__init__`` argument names of a class given by its path (``[]`` when it cannot be imported)."""
    try:
        cls = import_class(class_path)
    except Exception:  # noqa: BLE001 - only a hint
        return []
    return [n for n in inspect.signature(cls.__init__).parameters if n not in ("self", "args", "kwargs")]


def short_parse_error(parser: Any, message: str) -> str:
    """jsonargparse's message as at most three lines that name the problem and the fix."""
    last = parser.prog.split()[-1] if parser.prog else ""
    prog = "genlight " + (last if last in ("fit", "validate", "test") else "fit")
    help_hint = f"`{prog} --help` lists the options"
    if 'expected "subcommand"' in message or "argument subcommand: invalid choice" in message:
        bad = re.search(r"invalid choice: '([^']*)'", message)
        hint = did_you_mean(bad.group(1), COMMANDS) if bad else ""
        what = f"unknown command {bad.group(1)!r}.{hint}" if bad else "no command given."
        return f"genlight: error: {what} Commands: {', '.join(COMMANDS)} (`genlight --help`)"
    out_of_range = explain_parse_error(message)  # a value outside its type's range (genlight.ranges)
    if out_of_range:
        return f"genlight: error: {out_of_range}\n{_class_help(out_of_range, message, prog) or help_hint}"
    unknown = re.search(r"Option '([\w.]+)' is not accepted", message)
    group = re.search(r'Parser key "(\w+)"', message)
    class_path = re.search(r"class_path '([\w.]+)'", message)
    if unknown and group and class_path:
        return _unknown_init_arg(group.group(1), unknown.group(1), class_path.group(1), prog)
    in_config = re.search(r"(Subcommand|Group) '([\w.]+)' does not accept option '([\w.]+)'", message)
    if in_config:  # a key in a YAML config
        kind, owner, key = in_config.groups()
        option = "--" + (f"{owner}.{key}" if kind == "Group" and not key.startswith(owner + ".") else key)
        hint = did_you_mean(option, option_names(parser))
        return f"genlight: error: unknown option {option} (a key in the config).{hint}\n{help_hint}"
    unrecognized = re.search(r"unrecognized arguments: (.*)", message)
    if unrecognized:
        lines = [f"genlight: error: {line}" for line in _unknown_options(parser, message)]
        return "\n".join([*(lines or [f"genlight: error: unexpected arguments: {unrecognized.group(1)}"]), help_hint])
    required = re.search(r"the following arguments are required: (.*)", message)
    if required:
        missing = ", ".join("--" + a.strip().split(".", 1)[-1] for a in required.group(1).split(","))
        extra = " (e.g. --model vae; `genlight list models`)" if "model" in missing else ""
        return f"genlight: error: missing {missing}{extra}\n{help_hint}"
    if re.search(r'Parser key "seed_everything"', message):
        given = re.search(r"Given value: (.*)", message)
        return (
            f"genlight: error: --seed_everything must be a whole number (the seed of every random draw), got "
            f"{given.group(1).strip() if given else 'another value'}: e.g. --seed_everything 0"
        )
    keys = re.findall(r'Parser key "([\w.]+)":[ \t]*(.*)', message)
    if keys:
        option = "--" + ".".join(k for k, _ in keys)
        detail = keys[-1][1].strip()
        if not detail:
            after = message.rsplit(f'Parser key "{keys[-1][0]}":', 1)[-1]
            skip = (
                "Does not validate",
                "Subtypes",
                "Errors:",
                "- Problem with given",
                "- Expected a <class 'NoneType'>",
            )
            detail = next(
                (
                    ln.strip().lstrip("- ")
                    for ln in after.splitlines()
                    if ln.strip() and not ln.strip().startswith(skip)
                ),
                "invalid value",
            )
        return f"genlight: error: {option}: {detail}\n{help_hint}"
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    detail = next((ln for ln in lines[1:] if not ln.startswith(_SKIP)), "")
    first = lines[0] if lines else message
    text = f"{first} {detail.lstrip('- ')}".strip() if detail and len(first) < 60 else first
    return f"genlight: error: {text}\n{help_hint}"


def _unknown_options(parser: Any, message: str) -> list[str]:
    """``unknown option --x. Did you mean: --y?`` for the first two options argparse did not recognize."""
    words = re.search(r"unrecognized arguments: (.*)", message)
    unknown = [t.split("=")[0] for t in words.group(1).split() if t.startswith("-")] if words else []
    return [f"unknown option {o}.{did_you_mean(o, option_names(parser))}" for o in unknown[:2]]


def _class_help(option_text: str, message: str, prog: str) -> str | None:
    """```genlight fit --model.help vae` lists its options and their ranges`` for an error about a
    ``--model.*`` / ``--data.*`` value (the class named in jsonargparse's message); ``None`` otherwise."""
    key = re.match(r"--(model|data)\.", option_text)
    class_path = re.search(r"class_path '([\w.]+)'", message)
    if not key or not class_path:
        return None
    registry = MODELS if key.group(1) == "model" else DATAMODULES
    try:
        name = registry.name_of(import_class(class_path.group(1))) or class_path.group(1)
    except Exception:  # noqa: BLE001 - only a hint
        return None
    return f"`{prog} --{key.group(1)}.help {name}` lists its options and their ranges"


def _unknown_init_arg(key: str, option: str, class_path: str, prog: str) -> str:
    names = init_names(class_path)
    cls = class_path.rsplit(".", 1)[-1]
    registry = MODELS if key == "model" else DATAMODULES
    name = registry.name_of(import_class(class_path)) if names else None
    hint = did_you_mean(option, names).replace(": ", f": --{key}.", 1).replace(", ", f", --{key}.")
    if key == "model" and option == "compile" and "compile" not in names:
        hint = " torch.compile is a callback that serves every family: --trainer.callbacks+=Compile"
    return (
        f"genlight: error: {cls} has no option --{key}.{option}.{hint}\n"
        f"`{prog} --{key}.help {name or class_path}` lists its options"
    )


def at_least(low: int, what: str = "") -> Any:
    """An argparse type: a whole number ``>= low`` (``what``: what it counts, said when it is too small)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}{f' ({what})' if what else ''}, got {value}")
        return value

    return parse


def device_type(text: str) -> str:
    """An argparse type for ``--device``: ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` that exists here."""
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu, cuda or cuda:0") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text}: no CUDA device is available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise argparse.ArgumentTypeError(
            f"{text}: this machine has {torch.cuda.device_count()} CUDA device(s); use --device cuda:0"
        )
    if device.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text}: genlight runs on cpu, cuda or mps; use --device cpu")
    return text


class ShortArgumentParser(argparse.ArgumentParser):
    """argparse with ``genlight: error: ...`` messages in at most three lines (no usage dump)."""

    def error(self, message: str) -> Any:
        message = "; ".join(_unknown_options(self, message)) or message
        sys.stderr.write(f"genlight: error: {message}\n`{self.prog} --help` lists the options\n")
        raise SystemExit(2)
