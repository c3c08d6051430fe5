"""Whether a family can read a datamodule's batches, decided from class attributes alone (so the CLI
can ask before it builds anything)."""

from __future__ import annotations

from typing import Any

from genlight.registry import DATAMODULES, MODELS

__all__ = ["data_mismatch"]

_KIND_TEXT = {"images": "images", "points": "2-D points", "unpaired": "unpaired image pairs (x_a, x_b)",
              "domains": "images in named domains (x, y, domain)"}


def data_mismatch(model: Any, datamodule: Any) -> str | None:
    """One line saying why the family ``model`` (class or instance) cannot train on ``datamodule``
    (class or instance) and which registered datamodules fit, or ``None`` when its ``batch_kind`` fits.
    Reads only class attributes (``batch_kinds``, ``needs_labels``, ``batch_kind``), so the CLI can ask
    before it builds anything."""
    kinds = getattr(model, "batch_kinds", None)
    kind = getattr(datamodule, "batch_kind", None)
    if kinds is None or kind is None or kind in kinds:
        return None
    model_cls = model if isinstance(model, type) else type(model)
    dm_cls = datamodule if isinstance(datamodule, type) else type(datamodule)
    name = MODELS.name_of(model_cls) or model_cls.__name__
    dm_name = DATAMODULES.name_of(dm_cls) or dm_cls.__name__
    labelled = bool(getattr(model_cls, "needs_labels", False))
    fits = [
        n for n in DATAMODULES.list() if getattr(DATAMODULES.get(n), "batch_kind", None) in kinds
        and (not labelled or int(getattr(DATAMODULES.get(n), "num_classes", 0) or 0) > 0)
    ]  # fmt: skip
    wanted = "labelled images (images with class labels)" if labelled else " or ".join(_KIND_TEXT.get(k, k) for k in kinds)
    return (
        f"{name} needs {wanted}, but the {dm_name} datamodule ({dm_cls.__name__}) gives {_KIND_TEXT.get(kind, kind)}; "
        "use a datamodule that fits, such as "
        f"{', '.join(fits) or 'one of `genlight list datamodules`'}"
    )
