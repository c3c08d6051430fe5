"""Help text as a reader sees it: no reST markup (````x````, ``:class:`~a.B```), and a family's or
datamodule's section heading as its whole first paragraph, not the first line of its docstring cut
mid-sentence (jsonargparse titles the ``--model.help NAME`` section with that first line)."""

from __future__ import annotations

import functools
import re

__all__ = ["full_heading", "plain"]

_ROLE = re.compile(r":(?:class|func|meth|mod|attr|data|obj|exc):`~?([^`]+)`")


def plain(text: str) -> str:
    """``text`` without reST markup: roles keep their last name (``:class:`~a.B``` -> ``B``), literals
    their text (````x```` -> ``x``)."""
    text = _ROLE.sub(lambda m: m.group(1).rsplit(".", 1)[-1], text)
    return text.replace("``", "").replace("::", ":")


@functools.lru_cache(maxsize=1)
def _first_paragraphs() -> dict[str, str]:
    """``{first docstring line: first paragraph}`` of every registered model and datamodule."""
    from genlight.registry import DATAMODULES, MODELS

    found = {}
    for registry in (MODELS, DATAMODULES):
        for name in registry.list():
            doc = (registry.get(name).__doc__ or "").strip()
            if doc:
                lines = doc.splitlines()
                found[lines[0].strip()] = " ".join(doc.split("\n\n")[0].split())
    return found


def full_heading(heading: str | None) -> str | None:
    """A section heading that is the cut first line of a registered class's docstring: that docstring's
    whole first paragraph; markup removed either way."""
    if not heading:
        return heading
    return plain(_first_paragraphs().get(heading.strip(), heading)).rstrip(".")
