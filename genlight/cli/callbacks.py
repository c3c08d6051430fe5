"""What every ``genlight fit`` adds to the Trainer: ``last.ckpt`` written at the end of every epoch,
the best checkpoint on the family's metric, the NaN guard and the RNG state of an exact resume."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from lightning.pytorch import Callback, LightningModule
from lightning.pytorch.callbacks import ModelCheckpoint

from genlight.callbacks import EMA
from genlight.callbacks.nan_guard import NaNGuard
from genlight.callbacks.rng import RNGState
from genlight.module import GenerativeModule

__all__ = ["LastCheckpoint", "default_fit_callbacks", "fit_callbacks"]


class LastCheckpoint(ModelCheckpoint):
    """``checkpoints/last.ckpt``: the state at the end of the last completed epoch, whatever any monitor
    says (a monitored ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only in the epochs
    where its best improves). Lightning's top-1 "latest" checkpoint with the fixed name ``last``: written
    after every training epoch, never on an exception (a NaN stops the fit with the last good one
    kept), never in a ``fast_dev_run`` (so ``--ckpt_path last`` cannot pick up a smoke test)."""

    def __init__(self, dirpath: str | Path | None = None) -> None:
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1, save_last=False,
                         enable_version_counter=False)


def default_fit_callbacks(model: LightningModule, *, checkpoints: bool = True, ema: bool = True) -> list[Callback]:
    """What every ``genlight fit`` adds: :class:`LastCheckpoint` plus the best checkpoint on the family's
    own validation metric (:meth:`~genlight.module.GenerativeModule.checkpoint_monitor`; only
    ``last.ckpt`` when it has none), the :class:`~genlight.callbacks.nan_guard.NaNGuard` and the
    :class:`~genlight.callbacks.rng.RNGState` that makes a resume exact, and the
    :class:`~genlight.callbacks.ema.EMA` of the weights when the family sets ``ema_decay`` (``ema``; the
    command itself adds it through its ``--ema.*`` flags)."""
    callbacks: list[Callback] = []
    if checkpoints:
        callbacks.append(LastCheckpoint())
        monitor = model.checkpoint_monitor() if isinstance(model, GenerativeModule) else None
        if monitor is not None:
            metric, mode = monitor
            callbacks.append(ModelCheckpoint(filename="best-{epoch}-{step}", monitor=metric, mode=mode))
    if ema and float(getattr(model, "ema_decay", 0.0) or 0.0) > 0.0:
        callbacks.append(EMA())  # the family's own decay and target
    return [*callbacks, NaNGuard(), RNGState()]


def fit_callbacks(model: LightningModule, configured: Sequence[Callback], *, checkpointing: bool) -> list[Callback]:
    """``configured`` (the user's callbacks) plus the defaults they lack. A configured ``ModelCheckpoint``
    replaces the defaults; one with ``save_last`` keeps its best checkpoints and leaves ``last.ckpt`` to a
    :class:`LastCheckpoint` in its folder, so that ``last`` means the last epoch there too."""
    callbacks = list(configured)
    mine = [c for c in callbacks if isinstance(c, ModelCheckpoint) and not isinstance(c, LastCheckpoint)]
    last: list[Callback] = []
    for ckpt in mine:
        if ckpt.save_last and not any(isinstance(c, LastCheckpoint) for c in [*callbacks, *last]):
            last.append(LastCheckpoint(dirpath=ckpt.dirpath))
        ckpt.save_last = False  # True or "link": last.ckpt is the LastCheckpoint's
    defaults = default_fit_callbacks(model, checkpoints=checkpointing and not mine, ema=False)  # --ema.* adds EMA
    callbacks = [*last, *callbacks]  # the first checkpoint callback is the one the NaN guard names
    return callbacks + [c for c in defaults if not any(isinstance(x, type(c)) for x in callbacks)]
