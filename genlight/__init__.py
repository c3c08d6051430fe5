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

#: sub-packages loaded on first use, so ``import genlight`` is enough for ``genlight.metrics.list_extractors()``
_SUBMODULES = ("callbacks", "checkpoint", "cli", "datamodules", "errors", "functional", "metrics", "module", "modules", "nn", "testing", "types")


def load_model(ckpt_path, map_location="cpu", *, ema: bool = True, **overrides):
    """:func:`genlight.checkpoint.load_model` (imported on first use)."""
    from genlight.checkpoint import load_model as load

    return load(ckpt_path, map_location, ema=ema, **overrides)


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
    "register_datamodule",
    "register_model",
]
