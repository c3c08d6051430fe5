"""genlight: classic generative models as PyTorch Lightning modules, registered by name.

>>> import genlight
>>> model = genlight.create_model("vae", latent_dim=8)
>>> "vae" in genlight.list_models()
True
"""

from genlight.registry import (
    DATAMODULES,
    MODELS,
    Registry,
    create_datamodule,
    create_model,
    get_datamodule_class,
    get_model_class,
    list_datamodules,
    list_models,
    register_datamodule,
    register_model,
)
from genlight.version import __version__


class _NoTips:  # a logging filter: Lightning's advertising tips ("💡 Tip: ... install litlogger") are not about the run
    @staticmethod
    def filter(record: object) -> bool:
        return "💡 Tip:" not in str(getattr(record, "msg", ""))


def _quiet_upstream() -> None:
    """No advertising tips from Lightning, and no deprecation warning that Lightning's own code raises
    on torch >= 2.10 (``LeafSpec``): neither is about the user's code, both appeared in the README's recipe."""
    import logging
    import warnings

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NoTips)
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


_quiet_upstream()

#: sub-packages loaded on first use, so ``import genlight`` is enough for ``genlight.metrics.list_extractors()``
_SUBMODULES = (
    "callbacks",
    "checkpoint",
    "cli",
    "datamodules",
    "errors",
    "functional",
    "metrics",
    "module",
    "modules",
    "nn",
    "testing",
    "types",
)


def load_model(ckpt_path, map_location="cpu", *, ema: bool = True, trust: bool = False, **overrides):
    """:func:`genlight.checkpoint.load_model` (imported on first use)."""
    from genlight.checkpoint import load_model as load

    return load(ckpt_path, map_location, ema=ema, trust=trust, **overrides)


def pretrained(name: str | None = None, device: str = "cpu"):
    """:func:`genlight.pretrained_models.pretrained` (imported on first use): ``pretrained()`` lists the shipped
    models, ``pretrained("vae-digits")`` or ``pretrained("hf-hub:user/name")`` returns one in eval mode."""
    from genlight.pretrained_models import pretrained as load

    return load(name, device)


def __getattr__(name: str):  # PEP 562: lazy sub-packages (importing them all would slow `import genlight`)
    if name in _SUBMODULES:
        import importlib

        return importlib.import_module(f"genlight.{name}")
    raise AttributeError(f"module 'genlight' has no attribute {name!r}")


__all__ = [
    "DATAMODULES",
    "MODELS",
    "Registry",
    "__version__",
    "create_datamodule",
    "create_model",
    "get_datamodule_class",
    "get_model_class",
    "list_datamodules",
    "list_models",
    "load_model",
    "pretrained",
    "register_datamodule",
    "register_model",
]
