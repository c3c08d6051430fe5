"""``torch.compile`` for any family, as a callback: ``--trainer.callbacks+=Compile`` (``genlight.callbacks.Compile``).

At ``setup`` (before DDP or FSDP wrap the model) :class:`Compile` compiles, in place, the networks the
family declares in :attr:`~genlight.module.GenerativeModule.compile_modules` (by default every direct
child module that holds parameters: ``net``, ``generator`` and ``discriminator``, ...), with
``nn.Module.compile``. Compiling in place keeps the module tree as it was, so checkpoints hold the
usual keys (no ``_orig_mod.`` prefix) and load into an uncompiled model.

Before compiling anything it compiles and runs a one-line function with the chosen backend on the
model's device; if that fails (no C compiler for ``inductor``, a backend that does not exist, an
unsupported device) it logs one warning line and the run goes on uncompiled. A family whose networks
cannot be compiled declares ``compile_modules = ()`` and says why in a comment; ``Compile`` then logs
one line and compiles nothing. docs/scaling.md lists which families gain from it.
"""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

__all__ = ["Compile", "compiled_networks", "compile_networks"]


def compiled_networks(pl_module: nn.Module) -> dict[str, nn.Module]:
    """The sub-modules :class:`Compile` compiles: ``compile_modules`` if the model declares it (dotted
    names allowed), else every direct child module that holds parameters (metrics excluded). A
    container (``nn.ModuleList``, ``nn.ModuleDict``, whose own ``forward`` is never called) stands for
    its members."""
    names = getattr(pl_module, "compile_modules", None)
    if names is None:
        from torchmetrics import Metric

        names = [
            n for n, m in pl_module.named_children() if not isinstance(m, Metric) and any(True for _ in m.parameters())
        ]
    out: dict[str, nn.Module] = {}
    for name in names:
        module = pl_module.get_submodule(name)
        if isinstance(module, (nn.ModuleList, nn.ModuleDict)):
            out.update({f"{name}.{k}": m for k, m in module.named_children() if any(True for _ in m.parameters())})
        else:
            out[name] = module
    return out


def backend_error(backend: str, device: torch.device) -> str | None:
    """``None`` if ``torch.compile(backend=backend)`` compiles and runs a one-line function on
    ``device``, else the first line of the error."""
    try:
        fn = torch.compile(lambda t: torch.sin(t) * 2.0 + 1.0, backend=backend, fullgraph=True)
        out = fn(torch.linspace(0.0, 1.0, 8, device=device))
        if not torch.allclose(out.cpu(), torch.sin(torch.linspace(0.0, 1.0, 8)) * 2.0 + 1.0, atol=1e-5):
            return "the compiled probe gave a wrong result"
    except Exception as err:  # noqa: BLE001 - any failure means: run uncompiled
        text = str(err).strip().splitlines()
        return f"{type(err).__name__}: {text[0] if text else ''}"[:200]
    return None


def compile_networks(
    pl_module: nn.Module,
    backend: str = "inductor",
    mode: str | None = None,
    dynamic: bool | None = None,
    device: torch.device | None = None,
) -> list[str]:
    """Compile ``pl_module``'s :func:`compiled_networks` in place (``nn.Module.compile``); returns their
    names, or ``[]`` (with one warning line) when the backend does not work on ``device`` (default: the
    model's)."""
    networks = compiled_networks(pl_module)
    if not networks:
        rank_zero_info(f"Compile: {type(pl_module).__name__} declares no networks to compile; running uncompiled")
        return []
    device = device if device is not None else next(pl_module.parameters()).device
    error = backend_error(backend, device)
    if error is not None:
        rank_zero_warn(
            f"Compile: torch.compile (backend {backend!r}) does not work on {device.type} here ({error}); "
            "running uncompiled"
        )
        return []
    kwargs: dict[str, Any] = {"backend": backend, "dynamic": dynamic}
    if mode is not None:
        kwargs["mode"] = mode
    for module in networks.values():
        module.compile(**kwargs)
    return list(networks)


class Compile(pl.Callback):
    """``torch.compile`` the family's networks in place before training (see the module docstring).

    Args:
        backend: ``torch.compile``'s backend: ``inductor`` (generated kernels; needs a C compiler on
            the CPU), ``aot_eager`` or ``eager`` (no code generation: for checking, not for speed).
        mode: ``torch.compile``'s mode (``default`` if ``None``; ``reduce-overhead``, ``max-autotune``).
        dynamic: ``torch.compile``'s ``dynamic`` (``None``: recompile once for a new batch size, then
            treat sizes as dynamic).
    """

    def __init__(self, backend: str = "inductor", mode: str | None = None, dynamic: bool | None = None) -> None:
        self.backend, self.mode, self.dynamic = backend, mode, dynamic
        #: the names of the networks compiled in the last ``setup`` (``[]``: none, uncompiled)
        self.compiled: list[str] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.compiled = compile_networks(pl_module, self.backend, self.mode, self.dynamic, trainer.strategy.root_device)
        if self.compiled:
            rank_zero_info(f"Compile: {', '.join(self.compiled)} compiled (backend {self.backend})")
