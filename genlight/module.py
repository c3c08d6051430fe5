"""``GenerativeModule``: the plain base class of every genlight family.

A family is an ordinary ``LightningModule``: it overrides Lightning's hooks the normal way and
``super()`` is optional in every one of them. What genlight must do in every run is done by the
callback :class:`GenerativeModuleHooks` that :meth:`GenerativeModule.configure_callbacks` returns, so
a plain ``Trainer(...).fit(model)`` gets it as well as ``genlight fit``:

* before the first step (``setup``): refuse a datamodule whose ``batch_kind`` the family cannot read,
  and tell DDP to expect unused parameters for manual-optimisation families (GANs step one network
  per backward);
* at every checkpoint: record the family's class (``checkpoint["genlight"]``), so
  :func:`genlight.load_model` rebuilds the right class, and the state of a family's unfinished
  gradient-accumulation window (its ``accumulation``, :class:`~genlight.nn.accumulate.AccumulationWindow`);
* at the end of every training epoch: log the epoch means of :meth:`GenerativeModule.log_train`.

A family's ``ema_decay`` is applied by the :class:`~genlight.callbacks.EMA` callback, which ``genlight
fit`` adds; a plain ``Trainer(...).fit(model)`` needs ``callbacks=[EMA()]``, and without it the hooks
warn once that the weights are not averaged.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor

from genlight._compat import attached_trainer, enable_find_unused_parameters, should_update_logs
from genlight.data_fit import data_mismatch
from genlight.epoch_means import EpochMeans
from genlight.errors import IncompatibleDataError
from genlight.functional import check_discrete_images, density_label
from genlight.identity import record_identity
from genlight.nn.accumulate import AccumulationWindow
from genlight.registry import MODELS
from genlight.types import DensityModel, class_count

__all__ = ["GenerativeModule", "GenerativeModuleHooks", "WeightAverager"]

#: where checkpoints keep the state of an unfinished gradient-accumulation window
ACCUMULATION_KEY = "genlight_accumulation"

#: what :meth:`GenerativeModule.manual_step` minimises: a loss, or named terms whose sum is the loss
Loss = TypeVar("Loss", Tensor, dict[str, Tensor])


@runtime_checkable
class WeightAverager(Protocol):
    """A callback that keeps an average of a model's weights and swaps it in where the model is used
    (:class:`~genlight.callbacks.EMA`): ``averaged(pl_module)`` is that context."""

    def averaged(self, pl_module: pl.LightningModule) -> AbstractContextManager[None]: ...


def averages_weights(callback: pl.Callback) -> bool:
    """Whether ``callback`` averages the weights: genlight's :class:`~genlight.callbacks.EMA` (a
    :class:`WeightAverager`) or Lightning's ``WeightAveraging`` (Lightning >= 2.5)."""
    lightning_averaging = getattr(pl.callbacks, "WeightAveraging", None)
    if lightning_averaging is not None and isinstance(callback, lightning_averaging):
        return True
    return isinstance(callback, WeightAverager)


class GenerativeModuleHooks(pl.Callback):
    """What genlight does in every run of a :class:`GenerativeModule` (see the module docstring);
    returned by :meth:`GenerativeModule.configure_callbacks`."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, GenerativeModule):
            return
        pl_module.check_batch_kind(getattr(trainer, "datamodule", None))
        wanted = pl_module.ddp_find_unused_parameters
        if wanted is None:  # auto: manual optimisation of several networks steps one part per backward
            wanted = not pl_module.automatic_optimization
        if wanted:
            enable_find_unused_parameters(trainer.strategy)
        decay = float(getattr(pl_module, "ema_decay", 0.0) or 0.0)
        if stage == "fit" and decay > 0 and not any(averages_weights(c) for c in getattr(trainer, "callbacks", [])):
            name = MODELS.name_of(type(pl_module)) or type(pl_module).__name__
            rank_zero_warn(
                f"{name} sets ema_decay={decay} but no EMA callback is attached, so its weights are not averaged: "
                f"pass callbacks=[genlight.callbacks.EMA()] to the Trainer (genlight fit adds it), or set "
                f"model.ema_decay = 0 to train without the average"
            )

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        record_identity(pl_module, checkpoint)
        window = getattr(pl_module, "accumulation", None)
        if isinstance(window, AccumulationWindow):  # an unfinished window resumes exactly
            checkpoint[ACCUMULATION_KEY] = window.state_dict(pl_module)

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        window = getattr(pl_module, "accumulation", None)
        if isinstance(window, AccumulationWindow) and ACCUMULATION_KEY in checkpoint:
            window.load_state_dict(checkpoint[ACCUMULATION_KEY])

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        window = getattr(pl_module, "accumulation", None)
        if isinstance(window, AccumulationWindow):  # after the Trainer cleared the gradients for the fit
            window.restore_gradients(pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(pl_module, GenerativeModule):
            pl_module.log_epoch_means()


class GenerativeModule(pl.LightningModule):
    """Base class of every genlight family: a ``LightningModule`` with genlight's logging helpers and
    the class attributes below. Subclasses take ``image_shape`` (linked from the datamodule by the CLI),
    annotate numeric arguments with a range type of :mod:`genlight.ranges`, call
    ``self.save_hyperparameters()`` then ``check_arguments(self, self.hparams)`` first in ``__init__``, and
    implement the capabilities of :mod:`genlight.types` they have. A subclass of a family calls neither
    again (the family's call covers the whole ``__init__`` chain) and may declare only some of its
    parent's arguments.
    If a family overrides :meth:`configure_callbacks`, it returns ``super().configure_callbacks()`` too.

    Training scalars go through :meth:`log_train` (once per step), validation and test figures through
    ``self.log(..., sync_dist=True)``, likelihoods through :meth:`log_density`.
    """

    #: tiny ``__init__`` arguments for the family's smoke test (``genlight.testing``)
    smoke_kwargs: ClassVar[dict[str, Any]] = {}
    #: the registered datamodule the smoke test uses (``digits``, ``toy2d``, ``unpaired_folders``...)
    smoke_data: ClassVar[str] = "digits"
    #: arguments of that datamodule's ``smoke()``
    smoke_data_kwargs: ClassVar[dict[str, Any]] = {}
    #: Trainer settings the smoke test needs
    smoke_trainer: ClassVar[dict[str, Any]] = {}
    if TYPE_CHECKING:  # what a type checker sees where torch and Lightning declare unions a family never gets
        hparams: Any  # a MutableMapping for Lightning; families read it as attributes: self.hparams.lr

        def optimizers(self, use_pl_optimizer: bool = True) -> Any: ...  # one optimizer, or a list of them

        def lr_schedulers(self) -> Any: ...

        @property
        def dtype(self) -> torch.dtype: ...  # Lightning allows a str; the module's dtype is a torch.dtype

        @dtype.setter
        def dtype(self, new_dtype: str | torch.dtype) -> None: ...

    #: default decay of the :class:`~genlight.callbacks.EMA` of the weights (0 = off); the callback applies
    #: it (``genlight fit`` adds one; from Python: ``Trainer(callbacks=[EMA()])``)
    ema_decay: ClassVar[float] = 0.0
    #: the sub-module the EMA averages (``None`` = the whole model; GANs name their ``generator``)
    ema_target: ClassVar[str | None] = None
    #: the validation metric that selects checkpoints (``None``: see :meth:`checkpoint_monitor`; ``""``: none)
    monitor: ClassVar[str | None] = None
    #: ``min`` or ``max``: the direction in which ``monitor`` improves
    monitor_mode: ClassVar[str] = "min"
    #: the datamodule ``batch_kind`` s the family trains on, checked before the first step (``None`` = any
    #: ``(x, y)`` kind; the kinds of :data:`genlight.data_fit.OPT_IN_KINDS`, e.g. ``captioned``, must be named)
    batch_kinds: ClassVar[tuple[str, ...] | None] = None
    #: whether the family needs class labels (a conditional family: ``cgan``); named in data errors
    needs_labels: ClassVar[bool] = False
    #: for a family whose instances take class labels only when built so: the arguments that make one
    #: conditional, as the command line gives them (``"--model.conditional true"``), named by ``genlight
    #: list models``; such an instance sets ``num_classes``, another has none
    #: (:class:`~genlight.types.ConditionalSampler`). ``None``: every instance is conditional, or none is
    conditional_with: ClassVar[str | None] = None
    #: whether DDP must expect parameters without gradients (``None`` = under manual optimisation)
    ddp_find_unused_parameters: ClassVar[bool | None] = None
    #: the sub-modules :class:`~genlight.callbacks.Compile` compiles (``None`` = every direct child module
    #: with parameters; ``()`` = none: the family cannot be compiled, and says why beside it)
    compile_modules: ClassVar[tuple[str, ...] | None] = None

    def __init__(self) -> None:
        super().__init__()
        #: the running sums of :meth:`log_train` (read by :class:`~genlight.callbacks.nan_guard.NaNGuard`)
        self.train_means = EpochMeans()
        self._density_metrics: dict[str, Any] = {}  # a plain dict: kept out of the module tree and checkpoint
        self._test_scores: dict[str, Any] = {}  # likewise: the extractor never enters the checkpoint
        #: what the last test epoch of :meth:`test_step` measured (n samples, reference, extractor)
        self.test_protocol: str | None = None

    def configure_callbacks(self) -> list[pl.Callback]:
        """:class:`GenerativeModuleHooks`, what genlight does in every run of this model."""
        return [GenerativeModuleHooks()]

    # ------------------------------------------------------------------ checks
    def check_batch_kind(self, datamodule: Any) -> None:
        """Refuse a datamodule whose batches this family cannot read (``batch_kinds``, ``None`` = any)."""
        message = data_mismatch(self, datamodule)
        if message is not None:
            raise IncompatibleDataError(message)

    def check_num_classes(self, unlabelled_fix: str, *, min_classes: int = 1) -> None:
        """For a class-conditional model (``self.num_classes > 0``): refuse, in ``setup``, a datamodule with
        another number of classes, naming the fix (``unlabelled_fix`` when it has fewer than ``min_classes``)."""
        dm = getattr(attached_trainer(self), "datamodule", None)
        classes = getattr(dm, "num_classes", None)
        mine = class_count(self)
        if mine and classes is not None and classes != mine:
            name = MODELS.name_of(type(self)) or type(self).__name__
            raise IncompatibleDataError(
                f"{name} was built for {mine} classes but {type(dm).__name__} has {classes}"
                + (f" (unlabelled data); {unlabelled_fix}" if classes < min_classes else "; set --model.num_classes")
            )

    def check_log_prob_input(self, x: Tensor) -> None:
        """Outside training (eval mode), refuse input ``log_prob`` cannot score: the wrong shape, or, for
        discrete data, values outside [0, 1] or off the level grid (:func:`~genlight.functional.check_discrete_images`).
        Density families call it first in ``log_prob``; training steps skip it (it costs a device sync)."""
        if not self.training:
            levels = int(self.hparams.get("num_levels", 0) or 0) if self.data_is_discrete else 0
            check_discrete_images(x, levels, self.hparams["image_shape"], f"{type(self).__name__}.log_prob")

    # ------------------------------------------------------------------ optimisation
    def manual_step(
        self,
        optimizer: Any,
        loss: Loss | Callable[[], Loss],
        *,
        scale: float = 1.0,
        zero_grad: bool = True,
        step: bool = True,
    ) -> Loss:
        """One step of manual optimisation: with only ``optimizer``'s parameters trainable
        (``toggled_optimizer``), zero its gradients, ``manual_backward`` the loss (scaled under
        ``16-mixed``) and step it. Returns the loss.

        Gradient accumulation (:class:`~genlight.nn.accumulate.AccumulationWindow`): ``scale`` multiplies
        the loss before the backward (``1/k``), ``zero_grad=False`` adds to the gradients already there
        and ``step=False`` leaves the step to a later batch of the window.

        ``loss`` is the loss, named loss terms (their sum is the loss), or a function that builds either:
        called inside the toggle, so that its graph leaves the other optimizers' parameters out. A
        generator step through a frozen discriminator passes a function (no gradient reaches the
        discriminator), ``terms = self.manual_step(opt_g, lambda: self.generator_terms(fake))``; a
        discriminator step on detached fakes passes its loss, ``self.manual_step(opt_d, d_loss)``."""
        with self.toggled_optimizer(optimizer):
            built = loss() if callable(loss) else loss
            total = built if isinstance(built, Tensor) else sum(built.values())
            if zero_grad:
                optimizer.zero_grad(set_to_none=True)
            self.manual_backward(total * scale if scale != 1.0 else total)
            if step:
                optimizer.step()
        return built

    def on_validation_model_zero_grad(self) -> None:
        """Lightning clears the gradients before a validation run inside an epoch; not those summed so far
        in an unfinished gradient-accumulation window (``self.accumulation``)."""
        window = getattr(self, "accumulation", None)
        if isinstance(window, AccumulationWindow) and not window.begins:
            return
        super().on_validation_model_zero_grad()

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickle a model holding parametrized layers (spectral norm) by rebuilding it from its
        hyper-parameters and ``state_dict``: torch refuses to pickle parametrized modules, and
        ``ddp_spawn`` pickles the model for its processes. Other models pickle as usual."""
        from torch.nn.utils import parametrize

        if not any(parametrize.is_parametrized(m) for m in self.modules()):
            return super().__reduce_ex__(protocol)
        return (_rebuild, (type(self), dict(self.hparams), self.state_dict()))

    # ------------------------------------------------------------------ likelihood figures
    @property
    def num_dims(self) -> int:
        """``D = C*H*W``, the number of dimensions bits/dim divides by."""
        return math.prod(self.hparams["image_shape"])

    @property
    def data_is_discrete(self) -> bool:
        """Whether the data are discrete images (``num_levels`` > 0 and a ``(C, H, W)`` shape)."""
        shape = tuple(self.hparams.get("image_shape", ()))
        return len(shape) == 3 and int(self.hparams.get("num_levels", 256) or 0) > 0

    @property
    def density_label(self) -> str:
        """The name of this model's likelihood figure (see :func:`genlight.functional.density_label`)."""
        return density_label(
            bool(getattr(self, "log_prob_is_exact", False)),
            self.data_is_discrete,
            bool(getattr(self, "log_prob_is_estimate", False)),
        )

    def log_density(self, stage: str, log_prob: Tensor, *, prog_bar: bool | None = None) -> None:
        """Log per-example ``log_prob`` (nats) as this model's likelihood figure for ``stage``.

        Accumulated in a :class:`~genlight.metrics.BitsPerDim` (sums of nats and dimensions, DDP-summed)
        and logged once per epoch as ``{stage}/bpd`` (exact, discrete data), ``{stage}/bpd_bound`` (a
        bound), ``{stage}/bpd_estimate`` (an estimate) or ``{stage}/nll`` / ``{stage}/nll_bound`` /
        ``{stage}/nll_estimate`` (nats per example, continuous data).
        """
        from genlight.metrics.bpd import BitsPerDim

        label = self.density_label
        metric = self._density_metrics.get(stage)
        if metric is None or metric.device != log_prob.device:
            metric = self._density_metrics[stage] = BitsPerDim(per_dim=label.startswith("bpd")).to(log_prob.device)
        metric.update(log_prob, self.num_dims)
        self.log(
            f"{stage}/{label}",
            metric,
            on_step=False,
            on_epoch=True,
            metric_attribute=f"_density_{stage}",
            prog_bar=(stage == "val") if prog_bar is None else prog_bar,
        )

    # ------------------------------------------------------------------ training scalars
    def log_train(self, *, batch_size: int = 1, prog_bar: Sequence[str] = ("loss",), **values: Tensor | float) -> None:
        """Log training scalars ``train/<name>`` cheaply; call it once per ``training_step`` with all of
        them: ``self.log_train(loss=loss, recon=nll.mean(), kl=kl.mean(), batch_size=len(x))`` (GANs:
        ``d_loss=..., g_loss=..., prog_bar=("d_loss", "g_loss")``). Use it instead of per-step
        ``self.log(..., on_epoch=True)``, whose bookkeeping cost the digits VAE 4-12% of its step
        (``benchmarks/overhead.py``).

        * ``train/<name>``: logged on the steps whose logs the Trainer writes (``log_every_n_steps``);
          no other step pays any of Lightning's logging cost.
        * ``train/<name>_epoch``: the epoch mean weighted by ``batch_size``, accumulated in
          :attr:`train_means` and logged once at epoch end (``sync_dist=True``); then
          ``callback_metrics["train/<name>"]`` holds this mean for the ``prog_bar`` names, as with
          ``on_epoch=True``.
        """
        stacked = torch.stack(
            [
                v.detach().float() if isinstance(v, Tensor) else torch.tensor(float(v), device=self.device)
                for v in values.values()
            ]
        )
        names = tuple(values)
        self.train_means.add(self.current_epoch, names, stacked, batch_size, prog_bar)
        trainer = attached_trainer(self)
        if trainer is None or trainer.barebones or not should_update_logs(trainer):
            return
        stacked = stacked.cpu()  # one copy here; the progress bar's per-step .item() then never syncs a GPU
        for show in (True, False):
            step = {f"train/{k}": v for k, v in zip(names, stacked) if (k in prog_bar) == show}
            if step:
                self.log_dict(step, prog_bar=show, on_step=True, on_epoch=False, batch_size=batch_size)

    def log_epoch_means(self) -> None:
        """Log the epoch means that :meth:`log_train` accumulated (``train/<name>_epoch``), once; called
        by :class:`GenerativeModuleHooks` at the end of every training epoch."""
        prog_bar = set(self.train_means.prog_bar)
        means = self.train_means.pop_means()
        trainer = attached_trainer(self)
        if not means or trainer is None or trainer.barebones:
            return
        epoch_kw: dict[str, Any] = {"on_step": False, "on_epoch": True, "sync_dist": True, "batch_size": 1}
        for show in (True, False):
            shown = {f"train/{k}_epoch": v for k, v in means.items() if (k in prog_bar) == show}
            if shown:
                self.log_dict(shown, prog_bar=show, **epoch_kw)
        shown = {f"train/{k}": v for k, v in means.items() if k in prog_bar}  # as Lightning's on_epoch=True
        if shown:
            self.log_dict(shown, logger=False, **epoch_kw)

    # ------------------------------------------------------------------ test split
    def test_step(self, batch: Any, batch_idx: int) -> None:
        """``genlight test`` for a family without a test figure of its own: samples against the test
        images (``test/fid``, ``test/kid``, ``test/precision``, ``test/recall``) for a sampler, round-trip,
        identity and distribution errors for a translator (:mod:`genlight.test_scores`). Density
        models and autoencoders override it with their own figures."""
        from genlight.test_scores import TestScores

        scores = self._test_scores.get("test")
        if scores is None:
            scores = self._test_scores["test"] = TestScores()
        trainer = attached_trainer(self)
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        scores.update(self, batch, batch_idx, rank, world)

    def on_test_epoch_start(self) -> None:
        """Start :meth:`test_step`'s scores afresh (nothing is left of a test run that failed)."""
        self._test_scores.pop("test", None)

    def on_test_epoch_end(self) -> None:
        """Log what :meth:`test_step` accumulated (every rank computes; the values agree on every rank)."""
        scores = self._test_scores.pop("test", None)
        if scores is None or not scores.metrics:
            return
        values = scores.compute()
        scores.reset()
        rank_zero_info(f"{type(self).__name__} test protocol: {scores.protocol}")
        self.test_protocol = scores.protocol
        self.log_dict(values, sync_dist=False, rank_zero_only=False, batch_size=1)

    def checkpoint_monitor(self) -> tuple[str, str] | None:
        """``(metric, mode)`` that selects the best checkpoint: ``monitor`` if the family sets it, else
        ``val/<density label>`` for a density model, else ``val/loss``; ``None`` when there is none."""
        if self.monitor is not None:
            return (self.monitor, self.monitor_mode) if self.monitor else None
        if isinstance(self, DensityModel):
            return f"val/{self.density_label}", "min"
        if is_overridden("validation_step", self, pl.LightningModule):
            return "val/loss", "min"
        return None


def _rebuild(cls: type[GenerativeModule], hparams: dict[str, Any], state: dict[str, Any]) -> GenerativeModule:
    """Inverse of :meth:`GenerativeModule.__reduce_ex__` for parametrized models."""
    params = inspect.signature(cls.__init__).parameters
    model = cls(**{k: v for k, v in hparams.items() if k in params})
    model.load_state_dict(state)
    return model
