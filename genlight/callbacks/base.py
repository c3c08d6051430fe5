"""What the periodic callbacks share: when to run, which capability they need, eval mode."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import ClassVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info

__all__ = ["PeriodicCallback", "evaluating"]


@contextmanager
def evaluating(module: torch.nn.Module, seed: int | None = None) -> Iterator[None]:
    """Eval mode under ``no_grad``, with the EMA weights swapped in when an :class:`~genlight.callbacks.EMA`
    callback is active; train mode and the live weights are restored after. With ``seed``, the draws
    inside are seeded and the global RNG state (CPU, and CUDA where used) is left as it was.

    Inference mode is turned off inside (Lightning runs validation hooks under ``inference_mode``), so
    a sampler that needs gradients, such as Langevin dynamics, can open ``torch.enable_grad()``.
    """
    from genlight.callbacks.ema import find_ema

    ema = find_ema(module)
    was_training = module.training
    module.eval()
    try:
        with torch.inference_mode(False), torch.no_grad(), (ema.averaged(module) if ema else nullcontext()):
            if seed is None:
                yield
                return
            device = next(module.parameters(), torch.empty(0)).device
            with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                torch.manual_seed(seed)
                yield
    finally:
        module.train(was_training)


class PeriodicCallback(pl.Callback):
    """Runs every ``every_n_epochs`` epochs (0 = off) for models that have ``capability``; other
    models are skipped with one log line naming what they lack."""

    capability: ClassVar[type]
    #: what a model without the capability lacks, for the log line ("sample(n)", "encode/decode")
    needs: ClassVar[str]

    def __init__(self, every_n_epochs: int) -> None:
        self.every_n_epochs = every_n_epochs
        self._warned = False

    def is_due(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        if trainer.sanity_checking or self.every_n_epochs <= 0 or (trainer.current_epoch + 1) % self.every_n_epochs:
            return False
        if not isinstance(pl_module, self.capability):
            if not self._warned:
                rank_zero_info(f"{type(self).__name__}: {type(pl_module).__name__} has no {self.needs}; skipped")
                self._warned = True
            return False
        return True


class EpochImageCallback(PeriodicCallback):
    """A :class:`PeriodicCallback` that logs images at the end of training epochs, on rank 0, with the
    model in eval mode: subclasses implement :meth:`log_epoch`."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.is_due(trainer, pl_module) and trainer.is_global_zero:
            with evaluating(pl_module):
                self.log_epoch(trainer, pl_module)

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise NotImplementedError
