"""genlight: classic generative models as PyTorch Lightning modules, registered by name.

>>> import genlight
>>> model = genlight.create_model("vae", latent_dim=8)
>>> "vae" in genlight.list_models()
True
"""

__version__ = "0.1.0"

from genlight.registry import (  # noqa: E402
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
from genlight.checkpoint import load_model  # noqa: E402

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
