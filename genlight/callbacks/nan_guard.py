"""Stop training at the first NaN or Inf loss, before anything saves the broken weights.

:class:`NaNGuard` looks, after every training batch, at what ``training_step`` returned (the loss of
an automatically optimised family) and at the values logged in that step under ``train/...`` (through ``self.log`` or
:meth:`~genlight.module.GenerativeModule.log_train`, whose running sums it reads: the losses of manually
optimised families, whose ``training_step`` returns nothing). One finiteness check per batch. The first non-finite
value raises :class:`~genlight.errors.NonFiniteLossError` naming the step and the loss term. Lightning
orders checkpoint callbacks last, so the guard runs before any ``ModelCheckpoint`` of that batch: the
last checkpoint written stays the last good one (``ModelCheckpoint`` saves nothing on an exception
unless ``save_on_exception=True``). The ``genlight`` command adds the guard to every ``fit``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight._compat import logged_step_values
from genlight.epoch_means import EpochMeans
from genlight.errors import NonFiniteLossError

__all__ = ["NaNGuard"]


class NaNGuard(pl.Callback):
    """Raise :class:`~genlight.errors.NonFiniteLossError` at the first NaN/Inf training loss.

    Args:
        prefix: logged values whose names start with this are checked (besides the returned loss).
    """

    def __init__(self, prefix: str = "train/") -> None:
        self.prefix = prefix

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        terms = [
            (n, v.detach()) for n, v in self._terms(trainer, pl_module, outputs) if isinstance(v, Tensor) and v.numel()
        ]
        if not terms:
            return
        flat = torch.cat([v.reshape(-1).float().to(terms[0][1].device) for _, v in terms])
        if bool(torch.isfinite(flat).all()):  # one check (one device sync) per batch
            return
        name, value = next((n, v) for n, v in terms if not bool(torch.isfinite(v).all()))
        raise NonFiniteLossError(self.message(trainer, name, value, batch_idx))

    def _terms(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any) -> Iterator[tuple[str, Any]]:
        if isinstance(outputs, Tensor):
            yield "loss (returned by training_step)", outputs
        elif isinstance(outputs, dict):
            for key, value in outputs.items():
                yield f"{key} (returned by training_step)", value
        # GenerativeModule.log_train's running sums of this epoch: a NaN/Inf term makes its sum non-finite
        means = getattr(pl_module, "train_means", None)
        if isinstance(means, EpochMeans):
            for name, value in means.sums().items():
                yield f"{self.prefix}{name}", value
        for name, value in logged_step_values(trainer):  # what self.log recorded in this step
            if name.startswith(self.prefix):
                yield name, value

    @staticmethod
    def message(trainer: pl.Trainer, name: str, value: Tensor, batch_idx: int) -> str:
        kind = "NaN" if bool(torch.isnan(value.detach()).any()) else "Inf"
        ckpts = trainer.checkpoint_callbacks
        paths = [getattr(c, "last_model_path", "") or getattr(c, "best_model_path", "") for c in ckpts]
        last = next((p for p in paths if str(p).endswith("last.ckpt")), next((p for p in paths if p), ""))
        kept = f"the last good checkpoint is kept: {last}" if last else "no checkpoint had been written yet"
        return (
            f"training stopped: {name} is {kind} at step {trainer.global_step} "
            f"(epoch {trainer.current_epoch}, batch {batch_idx}); "
            f"{kept}. Lower the learning rate (--model.lr), clip gradients (--trainer.gradient_clip_val 1.0) "
            f"or use --trainer.precision 32-true"
        )
