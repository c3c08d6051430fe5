"""What each registered family is, on one line: its capabilities (the :mod:`genlight.types` protocols it
implements, as ``genlight list models`` shows them) and the first paragraph of its docstring."""

from __future__ import annotations

import functools
import inspect
import sys

from genlight import types
from genlight.registry import MODELS

__all__ = ["capabilities", "describe", "first_paragraph", "samplers_taking"]


def first_paragraph(doc: str | None) -> str:
    """The first paragraph of a docstring, on one line."""
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def describe(cls: type) -> str:
    """The first paragraph of a class's docstring on one line (its module's when the class's only points
    there), without reST literals."""
    text = first_paragraph(cls.__doc__).replace("``", "")
    if "see the module docstring" in text or len(text.split()) < 4:
        module = first_paragraph(getattr(sys.modules.get(cls.__module__), "__doc__", None)).replace("``", "")
        name, sep, rest = module.partition(": ")
        text = (rest[0].upper() + rest[1:]) if sep and " " not in name and rest else module or text
    return text


def capabilities(cls: type) -> str:
    """``Sampler, DensityModel (bound), Autoencoder``: the :mod:`genlight.types` protocols a family implements."""
    protocols = (
        types.Sampler,
        types.ConditionalSampler,
        types.DensityModel,
        types.Autoencoder,
        types.LatentGenerator,
        types.Translator,
        types.MultiDomainTranslator,
        types.EnergyModel,
        types.CodeTraversable,
        types.TextConditionalSampler,
        types.PatchCompleter,
    )
    names = []
    for protocol in protocols:
        if MODELS.name_of(cls) in _implementers(protocol) or _instance_is(cls, protocol):
            if protocol is types.Translator and MODELS.name_of(cls) in _implementers(types.MultiDomainTranslator):
                continue  # translate(x, target_domain), not the two-domain translate(x, "a2b")
            label = protocol.__name__
            switch = getattr(cls, "conditional_with", None)
            if protocol is types.ConditionalSampler and switch:
                label += f" (with {switch})"  # only instances built so take labels
            if protocol is types.DensityModel:
                exact, estimate = getattr(cls, "log_prob_is_exact", False), getattr(cls, "log_prob_is_estimate", False)
                label += " (exact)" if exact else " (estimate)" if estimate else " (bound)"
            names.append(label)
    return ", ".join(names) or "-"


@functools.cache
def _instance_is(cls: type, protocol: type) -> bool:
    """An :class:`~genlight.types.EnergyModel` whose ``energy`` is a network set in ``__init__`` (ebm) is
    one only as an instance: asked of a tiny one (``smoke_kwargs``) when its ``__init__`` sets an
    ``energy``. Other protocols are judged on the class."""
    init = getattr(cls, "__init__", None)
    if protocol is not types.EnergyModel or "energy" not in getattr(getattr(init, "__code__", None), "co_names", ()):
        return False
    try:
        return isinstance(cls(**getattr(cls, "smoke_kwargs", {})), protocol)
    except Exception:  # noqa: BLE001 - only a listing
        return False


@functools.cache
def _implementers(protocol: type) -> frozenset[str]:
    return frozenset(MODELS.list(capability=protocol))


def samplers_taking(keyword: str) -> list[str]:
    """The registered samplers whose ``sample()`` has the keyword argument ``keyword`` (``steps``, ...)."""
    return [
        m
        for m in MODELS.list(capability=types.Sampler)
        if keyword in inspect.signature(MODELS.get(m).sample).parameters
    ]
