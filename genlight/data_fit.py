"""Whether a family can read a datamodule's batches, decided from class attributes alone (so the CLI
can ask before it builds anything)."""

from __future__ import annotations

from typing import Any

from genlight.registry import DATAMODULES, MODELS

__all__ = ["data_mismatch"]

_KIND_TEXT = {
    "images": "images",
    "points": "2-D points",
    "unpaired": "unpaired image pairs (x_a, x_b)",
    "captioned": "captioned images (x, y, tokens, attributes)",
    "domains": "images in named domains (x, y, domain)",
}
#: batch kinds that are not ``(x, y)`` pairs: only families that name them in ``batch_kinds`` read them
OPT_IN_KINDS = ("captioned",)


def data_mismatch(model: Any, datamodule: Any) -> str | None:
    """One line saying why the family ``model`` (class or instance) cannot train on ``datamodule``
    (class or instance) and which registered datamodules fit, or ``None`` when its ``batch_kind`` fits.
    Reads only class attributes (``batch_kinds``, ``needs_labels``, ``batch_kind``), so the CLI can ask
    before it builds anything."""
    kinds = getattr(model, "batch_kinds", None)
    kind = getattr(datamodule, "batch_kind", None)
    if kind is None or (kinds is None and kind not in OPT_IN_KINDS) or (kinds is not None and kind in kinds):
        return None
    any_kind = kinds is None  # "any" means any batch that starts (x, y) and has no more items
    kinds = tuple(k for k in _KIND_TEXT if k not in OPT_IN_KINDS) if kinds is None else kinds
    model_cls = model if isinstance(model, type) else type(model)
    dm_cls = datamodule if isinstance(datamodule, type) else type(datamodule)
    name = MODELS.name_of(model_cls) or model_cls.__name__
    dm_name = DATAMODULES.name_of(dm_cls) or dm_cls.__name__
    labelled = bool(getattr(model_cls, "needs_labels", False))
    fits = [
        n
        for n in DATAMODULES.list()
        if getattr(DATAMODULES.get(n), "batch_kind", None) in kinds
        and (not labelled or int(getattr(DATAMODULES.get(n), "num_classes", 0) or 0) > 0)
    ]
    wanted = (
        "labelled images (images with class labels)" if labelled else " or ".join(_KIND_TEXT.get(k, k) for k in kinds)
    )
    wanted = "(x, y) batches" if any_kind else wanted
    return (
        f"{name} needs {wanted}, but the {dm_name} datamodule ({dm_cls.__name__}) gives {_KIND_TEXT.get(kind, kind)}; "
        "use a datamodule that fits, such as "
        f"{', '.join(fits) or 'one of `genlight list datamodules`'}"
    )
