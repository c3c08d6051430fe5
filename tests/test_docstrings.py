"""Every argument of every family and datamodule is described in its class docstring's ``Args:`` section, or a
base's: one ``name: description`` line per argument, the form jsonargparse reads (with
``docstring_parser``) for ``--model.help`` (``a, b: ...`` describes neither)."""

from __future__ import annotations

import inspect

import docstring_parser
import pytest

import genlight
from genlight.registry import DATAMODULES, MODELS


def reachable_arguments(cls: type) -> list[str]:
    """The class's ``__init__`` arguments and, through ``**kwargs``, its parents'."""
    names: list[str] = []
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        params = inspect.signature(vars(klass)["__init__"]).parameters
        names += [n for n, p in params.items() if n != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break
    return list(dict.fromkeys(names))


def described_arguments(cls: type) -> set[str]:
    """Names with a description in the docstrings of ``cls``, its bases and their ``__init__``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for doc in (klass.__doc__, getattr(vars(klass).get("__init__"), "__doc__", None)):
            if doc:
                names |= {p.arg_name for p in docstring_parser.parse(doc).params if p.description}
    return names


CLASSES = [MODELS.get(n) for n in genlight.list_models()] + [DATAMODULES.get(n) for n in genlight.list_datamodules()]


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
def test_every_argument_of_every_family_and_datamodule_is_described(cls: type) -> None:
    params = reachable_arguments(cls)
    missing = [p for p in params if p not in described_arguments(cls)]
    assert not missing, f"{cls.__name__}: describe {missing} in its docstring's Args: section (one `name: ...` line each)"
