"""What the periodic callbacks share: when to run, which capability they need, eval mode."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import ClassVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from genlight.ranges import Decay, NonNegativeInt, check_arguments
from genlight.types import is_conditional

__all__ = ["EpochImageCallback", "PeriodicCallback", "accepts_labels", "evaluating", "first_batch", "label_kwargs"]


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
        with torch.inference_mode(False), torch.no_grad(), ema.averaged(module) if ema else nullcontext():
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
    models are skipped with one log line naming what they lack.

    Time budget: while fitting, a due epoch is skipped when this callback's drawing time (measured by
    subclasses with :meth:`timed`), plus the last draw's duration for the coming one, would exceed
    ``max_time_fraction`` of the wall time since training started, so a slow sampler (DDPM,
    PixelRNN) does not make a run spend more time drawing than training. The first due epoch always
    draws (to measure); the skipped epochs are logged in one line at the end of training.
    ``max_time_fraction=None`` turns the budget off.

    The last epoch of a fit always draws, whatever ``every_n_epochs`` and the budget say: the epoch that
    reaches ``max_epochs`` or ``max_steps``, or in which a stop was requested (``trainer.should_stop``:
    ``max_time``, early stopping, any callback; see :meth:`is_last_epoch`). Where the stop is decided
    after this callback's hook of that epoch has run (a callback later in the list), the draw happens
    in ``on_train_end`` instead (:meth:`draw_final`).
    A callback whose metric a ``ModelCheckpoint`` or ``EarlyStopping`` monitors never skips.
    Under DDP rank 0 decides, so every rank runs or skips together.
    """

    capability: ClassVar[type | tuple[type, ...]]
    #: what a model without the capability lacks, for the log line ("sample(n)", "encode/decode")
    needs: ClassVar[str]
    #: the time source of the budget, in seconds (monotonic); an instance may take another, e.g. a
    #: fake clock in tests, so budget decisions can be checked without sleeping
    clock: Callable[[], float] = staticmethod(time.perf_counter)

    def __init__(self, every_n_epochs: NonNegativeInt, max_time_fraction: Decay | None = 0.25) -> None:
        check_arguments(self, {"every_n_epochs": every_n_epochs, "max_time_fraction": max_time_fraction})
        self.every_n_epochs = every_n_epochs
        self.max_time_fraction = max_time_fraction
        self._warned = False
        self.draw_seconds = 0.0  # drawing time while fitting, summed
        self.last_draw_seconds: float | None = None
        self.skipped_epochs: list[int] = []
        self._fit_start: float | None = None
        self._last_epoch: int | None = None  # the last training epoch that ended in this fit
        self._drawn_epoch: int | None = None  # the last epoch this callback drew at

    # ------------------------------------------------------------------ schedule
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._fit_start = self.clock()
        self.draw_seconds, self.last_draw_seconds, self.skipped_epochs = 0.0, None, []
        self._last_epoch = self._drawn_epoch = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last_epoch = trainer.current_epoch

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        missed = self._last_epoch is not None and self._drawn_epoch != self._last_epoch
        if missed and self.every_n_epochs > 0 and isinstance(pl_module, self.capability):
            self._drawn_epoch = self._last_epoch
            self.draw_final(trainer, pl_module)
        if self.skipped_epochs:
            elapsed = self.clock() - self._fit_start if self._fit_start is not None else 0.0
            rank_zero_info(
                f"{type(self).__name__}: skipped due epochs {self.skipped_epochs} to keep drawing under "
                f"{self.max_time_fraction:.0%} of the training time (one draw took {self.last_draw_seconds:.2f} s; "
                f"{self.draw_seconds:.1f} s of {elapsed:.1f} s spent drawing); raise max_time_fraction or "
                "every_n_epochs to change this"
            )
        self._fit_start = None

    def draw_final(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Draw once more after training, for a last epoch whose draw was missed (the stop was decided
        after this callback's hook ran, or the hook never ran, e.g. no validation in the last epoch).
        Called on every rank."""

    @staticmethod
    def is_last_epoch(trainer: pl.Trainer) -> bool:
        """Whether the fit's epoch now ending is its last: ``max_epochs`` or ``max_steps`` reached, or a
        stop requested (``trainer.should_stop``: ``max_time``, early stopping, a callback). Outside
        ``fit`` (``validate``), never."""
        if trainer.state.fn != TrainerFn.FITTING:
            return False
        if trainer.should_stop:
            return True
        max_epochs, max_steps = trainer.max_epochs, trainer.max_steps
        if max_epochs is not None and max_epochs > 0 and trainer.current_epoch >= max_epochs - 1:
            return True
        return max_steps is not None and max_steps > 0 and trainer.global_step >= max_steps

    def is_due(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        if trainer.sanity_checking or self.every_n_epochs <= 0:
            return False
        if (trainer.current_epoch + 1) % self.every_n_epochs and not self.is_last_epoch(trainer):
            return False
        if not isinstance(pl_module, self.capability):
            if not self._warned:
                rank_zero_info(f"{type(self).__name__}: {type(pl_module).__name__} has no {self.needs}; skipped")
                self._warned = True
            return False
        if not self.within_budget(trainer):
            self.skipped_epochs.append(trainer.current_epoch)
            return False
        self._drawn_epoch = trainer.current_epoch
        return True

    def within_budget(self, trainer: pl.Trainer) -> bool:
        """Whether drawing now keeps this callback's drawing time within ``max_time_fraction`` of the
        training wall time (always true outside fitting, before the first draw and at the last epoch)."""
        if self.max_time_fraction is None or self._fit_start is None or self.last_draw_seconds is None:
            return True
        if self.monitored(trainer) or self.is_last_epoch(trainer):
            return True
        estimate = self.last_draw_seconds
        elapsed = self.clock() - self._fit_start
        ok = self.draw_seconds + estimate <= self.max_time_fraction * (elapsed + estimate)
        if trainer.world_size > 1:  # rank 0's clock decides for all, so collective metrics never hang
            ok = bool(trainer.strategy.broadcast(ok, src=0))
        return ok

    def monitored(self, trainer: pl.Trainer) -> bool:
        """Whether a checkpoint or early-stopping callback watches a metric this callback logs (the
        names in its ``last_results``, as :class:`~genlight.callbacks.FIDCallback` keeps them): such a
        callback never skips, so checkpoints are never selected on a stale (or missing) value."""
        logged = set(getattr(self, "last_results", None) or ())
        return bool(logged) and any(getattr(cb, "monitor", None) in logged for cb in getattr(trainer, "callbacks", []))

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Measure one draw (while fitting) for the time budget; see :meth:`record_draw`."""
        start = self.clock()
        try:
            yield
        finally:
            self.record_draw(self.clock() - start)

    def record_draw(self, seconds: float) -> None:
        """Count ``seconds`` of drawing towards the budget (ignored outside fitting). Every rank
        records each due draw (a rank with nothing to draw records 0) so all reach the same decision."""
        if self._fit_start is not None:
            self.draw_seconds += seconds
            self.last_draw_seconds = seconds


class EpochImageCallback(PeriodicCallback):
    """A :class:`PeriodicCallback` that logs images at the end of training epochs, on rank 0, with the
    model in eval mode: subclasses implement :meth:`log_epoch`."""

    #: where the last picture was written (``None`` before the first, or where no logger saves files)
    last_path: Path | None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.is_due(trainer, pl_module):
            with self.timed():  # on every rank, so the budget's broadcast is reached by all
                if trainer.is_global_zero:
                    with evaluating(pl_module):
                        self.log_epoch(trainer, pl_module)
        super().on_train_epoch_end(trainer, pl_module)

    def draw_final(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            with evaluating(pl_module):
                self.log_epoch(trainer, pl_module)

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        raise NotImplementedError


def accepts_labels(method: Callable[..., object]) -> bool:
    """Whether ``method`` takes a ``y=`` keyword (conditional ``encode``/``decode``/``sample``)."""
    try:
        params = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "y" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def label_kwargs(pl_module: object, method: Callable[..., object], y: Tensor | None) -> dict[str, Tensor]:
    """``{"y": y}`` for a conditional model (:func:`~genlight.types.is_conditional`) whose ``method``
    takes ``y`` and real labels (``y >= 0``), else ``{}``."""
    if y is None or not is_conditional(pl_module) or not accepts_labels(method):
        return {}
    if not isinstance(y, Tensor) or y.dtype.is_floating_point or bool((y < 0).any()):
        return {}
    return {"y": y}


def first_batch(trainer: pl.Trainer, n: int, split: str = "val") -> tuple[Tensor, object]:
    """The first ``n`` items of ``split`` as ``(x, second)``: ``second`` is the labels ``y`` of
    ``(x, y)`` batches, the domain-B images of unpaired ``(x_a, x_b)`` batches, or ``None``."""
    from genlight.callbacks.data import ordered_loader, split_dataset_of

    dataset = split_dataset_of(trainer, split)
    batch = next(iter(ordered_loader(dataset, min(n, len(dataset)))))
    if isinstance(batch, (tuple, list)):
        return batch[0], (batch[1] if len(batch) > 1 else None)
    return batch, None
