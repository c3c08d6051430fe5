"""Every argument of every family is described in its class docstring's ``Args:`` section, or a
base's: one ``name: description`` line per argument, the form jsonargparse reads (with
``docstring_parser``) for ``--model.help`` (``a, b: ...`` describes neither)."""

from __future__ import annotations

import inspect

import docstring_parser
import pytest

import genlight
from genlight.registry import MODELS


def described_arguments(cls: type) -> set[str]:
    """Names with a description in the docstrings of ``cls``, its bases and their ``__init__``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for doc in (klass.__doc__, getattr(vars(klass).get("__init__"), "__doc__", None)):
            if doc:
                names |= {p.arg_name for p in docstring_parser.parse(doc).params if p.description}
    return names


@pytest.mark.parametrize("name", genlight.list_models())
def test_every_argument_of_every_family_is_described(name: str) -> None:
    cls = MODELS.get(name)
    params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "args", "kwargs")]
    missing = [p for p in params if p not in described_arguments(cls)]
    assert not missing, f"{cls.__name__}: describe {missing} in its docstring's Args: section (one `name: ...` line each)"
