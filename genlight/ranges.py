"""The ranges of numeric arguments, written in their types, and the check that enforces them.

Every numeric ``__init__`` argument of a family, datamodule or callback is annotated with one of the
types below (jsonargparse's restricted number types), so the ``genlight`` command refuses a value out
of range while it parses, before anything is built. jsonargparse does not check calls from Python, so
each class also calls :func:`check_arguments` at construction: one :class:`~genlight.errors.ConfigError`
line naming the argument, its range and the value.

Sizes that allocate memory (channels, hidden units, latent sizes, buffers, class tables) have an upper
bound as well, so that a typo such as ``--model.width 640000`` is refused instead of exhausting memory.
"""

from __future__ import annotations

import copyreg
import re
import types
import typing
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    restricted_number_type,
)

from genlight._compat import set_initial_hparams
from genlight.errors import ConfigError

__all__ = [
    "Buffer",
    "Choices",
    "ClassCount",
    "ClosedUnitInterval",
    "DataSize",
    "Decay",
    "Depth",
    "DepthOrZero",
    "Fraction",
    "GreyLevels",
    "KernelSize",
    "Levels",
    "LogitAlpha",
    "NonNegativeFloat",
    "NonNegativeInt",
    "OpenUnitInterval",
    "Padding",
    "PositiveFloat",
    "PositiveInt",
    "Seed",
    "Size",
    "SizeOrZero",
    "Steps",
    "check_arguments",
    "describe",
    "explain_parse_error",
    "fits",
    "is_numeric",
    "plain",
]

#: type -> the range in words, as messages print it
RANGES: dict[type, str] = {
    PositiveInt: "an integer >= 1",
    NonNegativeInt: "an integer >= 0",
    PositiveFloat: "a number > 0",
    NonNegativeFloat: "a number >= 0",
    ClosedUnitInterval: "a number in [0, 1]",
    OpenUnitInterval: "a number in (0, 1)",
}

#: the largest layer size (channels, hidden units, latent dimensions, mixture components)
MAX_SIZE = 4096


def _as_plain(value: Any) -> tuple[type, tuple[Any]]:
    """Pickle a restricted-number instance as the plain ``int`` / ``float`` it holds (``copyreg``)."""
    base = int if isinstance(value, int) else float
    return base, (base(value),)


def _register(restricted: type, words: str) -> type:
    """Record the range in words, and make the type's instances (what the CLI passes to ``__init__``)
    pickle and deep-copy as plain numbers, so a checkpoint never names a type that exists only once
    this module is imported (``torch.load(weights_only=True)`` would refuse it too)."""
    RANGES[restricted] = words
    copyreg.pickle(restricted, _as_plain)
    return restricted


def _bounded(
    name: str, base: type, low: float, high: float, *, open_low: bool = False, open_high: bool = False
) -> type:
    """A jsonargparse restricted number type for ``low <= v <= high`` (``<`` where open)."""
    kind = "an integer" if base is int else "a number"
    words = f"{kind} in {'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    restricted = restricted_number_type(
        name, base, [(">" if open_low else ">=", low), ("<" if open_high else "<=", high)], docstring=words
    )
    return _register(restricted, words)


for _builtin, _words in list(RANGES.items()):
    _register(_builtin, _words)

if TYPE_CHECKING:  # the types are made at run time: a type checker sees the number each one restricts
    Size = int
    SizeOrZero = int
    Depth = int
    DepthOrZero = int
    KernelSize = int
    Levels = int
    GreyLevels = int
    Padding = int
    ClassCount = int
    Choices = int
    Steps = int
    Buffer = int
    DataSize = int
    Seed = int
    Fraction = float
    Decay = float
    LogitAlpha = float
else:
    #: a layer size: channels, hidden units, latent dimensions, mixture components (memory grows with it)
    Size = _bounded("Size", int, 1, MAX_SIZE)
    #: a layer size where 0 means "none" (no hidden layer, no noise dimensions)
    SizeOrZero = _bounded("SizeOrZero", int, 0, MAX_SIZE)
    #: a number of layers, blocks, scales or couplings
    Depth = _bounded("Depth", int, 1, 256)
    #: a number of extra layers or codes, 0 = none
    DepthOrZero = _bounded("DepthOrZero", int, 0, 256)
    #: a convolution kernel size
    KernelSize = _bounded("KernelSize", int, 1, 31)
    #: grey levels per pixel (2 = binary, 256 = 8-bit; 0 = continuous data such as 2-D points, which
    #: image families then refuse by its shape)
    Levels = _bounded("Levels", int, 0, 65536)
    #: grey levels an 8-bit image is requantised to (2 = binary, 256 = as stored)
    GreyLevels = _bounded("GreyLevels", int, 2, 256)
    #: pixels of background added on each side of an image
    Padding = _bounded("Padding", int, 0, 64)
    #: a number of classes, 0 = unlabelled
    ClassCount = _bounded("ClassCount", int, 0, 100_000)
    #: a number of values of a categorical code or classes of a classifier
    Choices = _bounded("Choices", int, 2, MAX_SIZE)
    #: a number of diffusion / sampling steps
    Steps = _bounded("Steps", int, 1, 100_000)
    #: a number of stored examples (replay buffers, image pools), 0 = none
    Buffer = _bounded("Buffer", int, 0, 10_000_000)
    #: a number of generated examples of a synthetic data set
    DataSize = _bounded("DataSize", int, 10, 10_000_000)
    #: a random seed (what NumPy accepts)
    Seed = _bounded("Seed", int, 0, 2**32 - 1)
    #: a probability or fraction below 1 (dropout, held-out fractions, Adam's betas, EMA decay)
    Fraction = _bounded("Fraction", float, 0, 1, open_high=True)
    #: a multiplicative decay factor per epoch, 1 = none
    Decay = _bounded("Decay", float, 0, 1, open_low=True)
    #: the share of the data squeezed into the logit's domain, ``alpha + (1 - 2 alpha) x``
    LogitAlpha = _bounded("LogitAlpha", float, 0, 0.5, open_low=True, open_high=True)


def describe(hint: Any) -> str | None:
    """The range of a restricted type in words (``None`` for a type without a range)."""
    return RANGES.get(hint)


def _options(hint: Any) -> list[Any]:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return [a for a in typing.get_args(hint) if a is not type(None)]
    return [hint]


def is_numeric(hint: Any) -> bool:
    """Whether ``hint`` (or the non-``None`` part of an optional) is a number type (``bool`` is not)."""
    return any(isinstance(h, type) and issubclass(h, (int, float)) and not issubclass(h, bool) for h in _options(hint))


def _problem(hint: Any, value: Any) -> str | None:
    """The range of ``hint`` in words when ``value`` does not fit it (``"every value ..."`` for a
    sequence), else ``None``."""
    if value is None or isinstance(value, bool):
        return None
    for h in _options(hint):
        if h in RANGES:
            try:
                h(value)
            except (TypeError, ValueError):
                return RANGES[h]
            return None
        if typing.get_origin(h) is Literal:
            choices = typing.get_args(h)
            return None if value in choices else "one of " + ", ".join(map(repr, choices))
        if typing.get_origin(h) in (tuple, list, Sequence) and isinstance(value, (list, tuple)):
            args = [a for a in typing.get_args(h) if a is not Ellipsis] or [Any]
            for i, item in enumerate(value):
                found = _problem(args[min(i, len(args) - 1)], item)
                if found is not None:
                    return "every value " + found if not found.startswith("every") else found
            return None
    return None


def fits(hint: Any, value: Any) -> bool:
    """Whether ``value`` is in the range that ``hint`` declares (always, for a type without a range)."""
    return _problem(hint, value) is None


def explain_parse_error(message: str) -> str | None:
    """jsonargparse's error for a value out of a restricted type's range, as one line:
    ``--model.latent_dim must be an integer in [1, 4096], got 0`` (``None`` for any other error).

    jsonargparse writes ``Parser key "<key>":`` for each level it descends into (``data``, then
    ``subset``; or ``model.latent_dim``), then ``Not of type <Type>: <value> does not conform to
    restriction ...``; an optional argument leaves the value out there and gives it in a later
    ``Given value: <value>`` line. The CLI (``genlight.cli``) calls this on every parse error.
    """
    lines = message.splitlines()
    found = [(i, m) for i, ln in enumerate(lines) if (m := re.search(r"Not of type (\w+): (.*)", ln))]
    hit, words, detail = next(
        ((i, RANGES[t], m.group(2)) for i, m in found for t in RANGES if t.__name__ == m.group(1)), (None, None, "")
    )
    if hit is None:
        return None
    keys = [k for ln in lines[:hit] for k in re.findall(r'Parser key "([\w.]+)"', ln)]
    found_value = re.match(r"(.*?)\s*does not conform", detail) or re.search(
        r"(?:: |^)'?([^':]*?)'?(?: not an? \w+)?$", detail
    )
    value = found_value.group(1) if found_value else ""
    if not value:  # optional arguments, or not a number at all: the value is on a "Given value:" line
        value = next((ln.split("Given value:", 1)[1].strip() for ln in lines[hit:] if "Given value:" in ln), "?")
    option = "--" + ".".join(k for k in keys if k != "init_args") if keys else "a value"
    return f"{option} must be {words}, got {value}"


def init_hints(cls: type) -> list[tuple[type, dict[str, Any]]]:
    """``(class, resolved __init__ annotations)`` of every class of ``cls``'s MRO that defines ``__init__``."""
    found = []
    for klass in cls.__mro__:
        init = vars(klass).get("__init__")
        if init is None or klass.__module__.split(".")[0] in ("builtins", "torch", "lightning", "typing"):
            continue
        try:
            found.append((klass, typing.get_type_hints(init)))
        except Exception:  # noqa: BLE001 - an annotation that does not resolve has no range to check
            continue
    return found


def plain(value: Any) -> Any:
    """``value`` with jsonargparse's restricted-number instances (what the CLI passes, e.g. ``Size(8)``)
    turned into plain ``int`` / ``float``, inside tuples and lists too: checkpoints then hold only
    builtin types (``torch.load(weights_only=True)`` refuses other classes)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and type(value) is not int:
        return int(value)
    if isinstance(value, float) and type(value) is not float:
        return float(value)
    if isinstance(value, (tuple, list)):
        items = [plain(v) for v in value]
        return type(value)(items) if type(value) in (tuple, list) else value
    return value


def check_arguments(obj: Any, values: Mapping[str, Any]) -> None:
    """Refuse, with one :class:`~genlight.errors.ConfigError` line, a value of ``values`` outside the range
    that the type of its ``__init__`` argument declares in any class of ``type(obj)``'s MRO.

    Families call it as ``check_arguments(self, self.hparams)`` right after ``save_hyperparameters()``
    (the bases do it for their subclasses), before building anything; it also turns the CLI's
    restricted-number instances in ``self.hparams`` into plain numbers (:func:`plain`).
    """
    owner = type(obj).__name__
    for _, hints in init_hints(type(obj)):
        for name, hint in hints.items():
            if name == "return" or name not in values:
                continue
            words = _problem(hint, values[name])
            if words is not None:
                value = values[name]
                value = list(value) if isinstance(value, tuple) else value
                if words.startswith("every value "):
                    raise ConfigError(f"{owner}: every value of {name} must be {words[12:]}, got {value!r}")
                raise ConfigError(f"{owner}: {name} must be {words}, got {value!r}")
    if isinstance(values, MutableMapping) and values is getattr(obj, "hparams", None):
        # the CLI passes restricted-number instances: checkpoints and hparams.yaml keep builtin types
        for name, value in list(values.items()):
            values[name] = plain(value)
        initial = getattr(obj, "hparams_initial", None)
        if initial is not None:
            set_initial_hparams(obj, {k: plain(v) for k, v in initial.items()})
