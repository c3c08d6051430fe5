"""What every ``genlight fit`` adds to the Trainer: ``last.ckpt`` written at the end of every epoch,
the best checkpoint on the family's metric (its best carried across a resume), the NaN guard, the RNG
state of an exact resume, and the closing line naming the run folder and ``last.ckpt``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint

from genlight.callbacks.ema import EMA
from genlight.callbacks.image_logging import run_dir
from genlight.callbacks.nan_guard import NaNGuard
from genlight.callbacks.rng import RNGState
from genlight.module import GenerativeModule

__all__ = ["BestCheckpoint", "LastCheckpoint", "RunSummary", "default_fit_callbacks", "fit_callbacks"]


class LastCheckpoint(ModelCheckpoint):
    """``checkpoints/last.ckpt``: the state at the end of the last completed epoch, whatever any monitor
    says (a monitored ``ModelCheckpoint(save_last=True)`` rewrites ``last.ckpt`` only in the epochs
    where its best improves). Lightning's top-1 "latest" checkpoint with the fixed name ``last``: written
    at the end of every training epoch (after that epoch's validation, if any), also in the epochs a
    ``check_val_every_n_epoch`` > 1 leaves without validation, where Lightning would wait for the next
    validation; never on an exception (a NaN or Ctrl+C stops the fit with the last completed epoch
    kept), never in a ``fast_dev_run`` (so ``--ckpt_path last`` cannot pick up a smoke test)."""

    def __init__(self, dirpath: str | Path | None = None) -> None:
        super().__init__(
            dirpath=dirpath,
            filename="last",
            monitor=None,
            save_top_k=1,
            save_last=False,
            enable_version_counter=False,
            save_on_train_epoch_end=True,
        )


class BestCheckpoint(ModelCheckpoint):
    """``best-{epoch}-{step}.ckpt``: the top-1 checkpoint on ``monitor``, compared across a resume. A
    resumed fit writes a new run folder; Lightning then restores only ``best_model_path`` and would name
    the first checkpoint of the new run "best" whatever its score. Here the resumed checkpoint's best
    score and path are restored too, so a new ``best-...ckpt`` is written only when it beats them (the
    earlier run's file stays where it is: Lightning removes only files in this run's folder)."""

    def __init__(self, monitor: str, mode: str = "min", dirpath: str | Path | None = None) -> None:
        super().__init__(dirpath=dirpath, filename="best-{epoch}-{step}", monitor=monitor, mode=mode)

    @property
    def state_key(self) -> str:
        """Lightning's own key for a ``ModelCheckpoint`` on this monitor and mode, so that checkpoints
        written before this class existed resume into it."""
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Lightning's, restoring the best score(s) and path(s) whatever folder they were written in."""
        super().load_state_dict({**state_dict, "dirpath": self.dirpath})


class RunSummary(Callback):
    """The last line of ``genlight fit`` (rank 0): the run folder and the ``last.ckpt`` to resume or
    sample from, after a fit that finished or was interrupted with Ctrl+C."""

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._announce(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt):
            self._announce(trainer)

    def _announce(self, trainer: Trainer) -> None:
        if not trainer.is_global_zero:
            return
        last = next((c for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)), None)
        path = Path(last.dirpath or "", "last.ckpt") if last is not None else None
        what = (
            f"last checkpoint {_shown(path)}"
            if path is not None and path.is_file()
            else "no last.ckpt (fast_dev_run, checkpointing off or no epoch completed)"
        )
        print(f"genlight: run folder {_shown(run_dir(trainer))}, {what}", flush=True)


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


def default_fit_callbacks(model: LightningModule, *, checkpoints: bool = True, ema: bool = True) -> list[Callback]:
    """What every ``genlight fit`` adds: the :class:`BestCheckpoint` on the family's own validation metric
    (:meth:`~genlight.module.GenerativeModule.checkpoint_monitor`; none when it has none), then
    :class:`LastCheckpoint`, the :class:`~genlight.callbacks.nan_guard.NaNGuard` and the
    :class:`~genlight.callbacks.rng.RNGState` that makes a resume exact, and the
    :class:`~genlight.callbacks.ema.EMA` of the weights when the family sets ``ema_decay`` (``ema``; the
    command itself adds it through its ``--ema.*`` flags)."""
    callbacks: list[Callback] = []
    if checkpoints:
        monitor = model.checkpoint_monitor() if isinstance(model, GenerativeModule) else None
        if monitor is not None:
            metric, mode = monitor
            callbacks.append(BestCheckpoint(metric, mode))
        callbacks.append(LastCheckpoint())  # after the best: last.ckpt holds its state of the same epoch
    if ema and float(getattr(model, "ema_decay", 0.0) or 0.0) > 0.0:
        callbacks.append(EMA())  # the family's own decay and target
    return [*callbacks, NaNGuard(), RNGState()]


def fit_callbacks(model: LightningModule, configured: Sequence[Callback], *, checkpointing: bool) -> list[Callback]:
    """``configured`` (the user's callbacks) plus the defaults they lack. A configured ``ModelCheckpoint``
    replaces the defaults; one with ``save_last`` keeps its best checkpoints and leaves ``last.ckpt`` to a
    :class:`LastCheckpoint` in its folder, so that ``last`` means the last epoch there too. The
    :class:`RunSummary` comes last: it prints the closing line."""
    callbacks = list(configured)
    mine = [c for c in callbacks if isinstance(c, ModelCheckpoint) and not isinstance(c, LastCheckpoint)]
    last: list[Callback] = []
    for ckpt in mine:
        if ckpt.save_last and not any(isinstance(c, LastCheckpoint) for c in [*callbacks, *last]):
            last.append(LastCheckpoint(dirpath=ckpt.dirpath))
        ckpt.save_last = False  # True or "link": last.ckpt is the LastCheckpoint's
    defaults = default_fit_callbacks(model, checkpoints=checkpointing and not mine, ema=False)  # --ema.* adds EMA
    callbacks = [*callbacks, *last]  # last.ckpt after the others: it holds their state of the same epoch
    return [*callbacks, *(c for c in defaults if not any(isinstance(x, type(c)) for x in callbacks)), RunSummary()]
