"""The parser of ``genlight``: LightningCLI's, with short errors, registry names in YAML, and a help that
lists registry names, not class paths, without reST markup (````x````, ``:class:`~a.B```), and titles a
family's section with its docstring's whole first paragraph (jsonargparse takes the first line)."""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Sequence
from typing import Any

from lightning.pytorch.cli import LightningArgumentParser

from genlight._compat import help_formatter, jsonargparse_debug_mode
from genlight.catalog import first_paragraph
from genlight.cli.errors import short_parse_error
from genlight.cli.names import PARSER_MODE, register_loader
from genlight.registry import DATAMODULES, MODELS

__all__ = [
    "NO_MODEL",
    "GenlightArgumentParser",
    "GenlightHelpFormatter",
    "is_number",
    "join_negative_numbers",
    "plain",
]

#: the ``--model`` default, which stands for "none given" (``test --ckpt_path`` takes the checkpoint's class)
NO_MODEL = "genlight.module.GenerativeModule"

register_loader()  # also in a process that only unpickles the parser (ddp_spawn's ranks)

_SUBCLASSES = re.compile(r", known subclasses: ([^)]*)\)$")
_NEGATIVE = re.compile(r"^-(\d|\.\d|inf$|nan$)")
_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`~?([^`]+)`")


def join_negative_numbers(args: Sequence[str]) -> list[str]:
    """``--model.lr_g -1e-3`` -> ``--model.lr_g=-1e-3``: argparse takes a space-separated ``-1e-3`` (or
    ``-.5``, ``-inf``) for an option, not a value; joined, every negative number parses."""
    out: list[str] = []
    for token in args:
        if out and out[-1].startswith("--") and "=" not in out[-1] and _NEGATIVE.match(token) and is_number(token):
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def plain(text: str) -> str:
    """``text`` without reST markup: roles keep their last name (``:class:`~a.B``` -> ``B``), literals
    their text (````x```` -> ``x``)."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text.replace("``", "").replace("::", ":")


@functools.lru_cache(maxsize=1)
def _first_paragraphs() -> dict[str, str]:
    """``{first docstring line: first paragraph}`` of every registered model and datamodule."""
    docs = [
        (registry.get(name).__doc__ or "").strip() for registry in (MODELS, DATAMODULES) for name in registry.list()
    ]
    return {doc.splitlines()[0].strip(): first_paragraph(doc) for doc in docs if doc}


def _help_text(action: Any, text: str) -> str:
    """``--model`` / ``--data``: the registry names (not every imported subclass, abstract bases included);
    any other class-typed option: class names instead of full class paths."""
    registry = {"model": MODELS, "data": DATAMODULES}.get(str(action.dest).split(".")[-1])
    if registry is MODELS:  # its default NO_MODEL means "none given"
        text = text.replace("%(default)s", "none, or the class held by --ckpt_path")
    found = _SUBCLASSES.search(text)
    if not found:
        return text
    if registry is not None:
        names = ", ".join(registry.list())
        tail = f", registered names: {names}; `genlight list {registry.kind}s` describes them)"
    else:
        short = dict.fromkeys(p.strip().rsplit(".", 1)[-1] for p in found.group(1).split(","))
        tail = f", known subclasses: {', '.join(short)})"
    return text[: found.start()] + tail


class GenlightHelpFormatter(help_formatter(lambda action, text: plain(_help_text(action, text)))):  # type: ignore[misc]
    """The help formatter (no reST markup, whole headings), at module level so that the parser pickles
    (``--trainer.strategy ddp_spawn`` pickles the CLI's config callback)."""

    def start_section(self, heading: str | None) -> None:
        full = plain(_first_paragraphs().get(heading.strip(), heading)).rstrip(".") if heading else heading
        super().start_section(full)


class GenlightArgumentParser(LightningArgumentParser):
    """LightningCLI's parser whose errors are ``genlight: error: ...`` in at most three lines, with
    "did you mean" for a misspelt option, instead of a usage dump; configs are loaded by
    :func:`genlight.cli.names.load_config` (registry names resolved in memory)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        register_loader()
        kwargs.setdefault("parser_mode", PARSER_MODE)
        kwargs.setdefault("formatter_class", GenlightHelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str, ex: Exception | None = None) -> Any:
        if not self.exit_on_error or jsonargparse_debug_mode():
            return super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        sys.stderr.write(short_parse_error(parser, message) + "\n")
        raise SystemExit(2)
