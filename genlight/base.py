"""What every family and every datamodule shares; no family logic lives here."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import lightning.pytorch as pl
from lightning.pytorch.utilities.model_helpers import is_overridden
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from genlight.errors import ConfigError, ImageShapeError, IncompatibleDataError

__all__ = [
    "CHECKPOINT_KEY",
    "GenerativeModule",
    "density_label",
    "record_identity",
    "GenerativeDataModule",
    "TransformedDataset",
    "bits_per_dim",
    "check_image_shape",
    "split_dataset",
    "to_levels",
]


def bits_per_dim(log_prob: Tensor, num_dims: int) -> Tensor:
    """``bpd = -log p(x) / (D ln 2)``, with ``log p`` in nats and ``D = C*H*W``."""
    return -log_prob / (num_dims * math.log(2.0))


def to_levels(x: Tensor, num_levels: int) -> Tensor:
    """Map images in [0, 1] to integer levels ``0 .. num_levels-1`` (``round(x (L-1))``)."""
    return (x * (num_levels - 1)).round().clamp_(0, num_levels - 1).long()


def check_image_shape(
    image_shape: Sequence[int], family: str, *, ndim: int = 3, multiple_of: int = 1, min_size: int = 1
) -> tuple[int, ...]:
    """Validate ``image_shape`` for a family and return it as a tuple of ints.

    Raises :class:`~genlight.errors.ImageShapeError` (a ``ValueError``) naming the shapes that fit.
    """
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != ndim:
        what = "(C, H, W) images" if ndim == 3 else f"{ndim}-d inputs"
        raise ImageShapeError(
            f"{family} works on {what}, got image_shape={shape}; pick an image datamodule "
            f"(digits, mnist, cifar10, ...) or a family that fits this data (`genlight list models`)"
        )
    if ndim == 3:
        _, h, w = shape
        if h % multiple_of or w % multiple_of or h < min_size or w < min_size:
            fits = ", ".join(str(multiple_of * k) for k in range(max(1, math.ceil(min_size / multiple_of)), 9))
            raise ImageShapeError(
                f"{family} needs H and W that are multiples of {multiple_of} and at least {min_size}, "
                f"got {h}x{w}; sizes that fit: {fits}, ... (resize the data, e.g. --data.image_size)"
            )
    return shape


class GenerativeModule(pl.LightningModule):
    """Base class of every genlight family.

    Subclasses take ``image_shape`` (linked from the datamodule by the CLI), call
    ``self.save_hyperparameters()``, and implement whichever capabilities of
    :mod:`genlight.types` they have.

    Class attributes a family may set (all optional):

    * ``smoke_kwargs``, ``smoke_data``, ``smoke_data_kwargs``, ``smoke_trainer``: the family's smoke
      test, in one place: tiny ``__init__`` arguments, the registered datamodule it is tested on
      (``digits``, ``toy2d``, ``unpaired_folders``...; made by its :meth:`GenerativeDataModule.smoke`),
      and the Trainer settings it needs. The registry-wide tests read only these.
    * ``ema_decay`` (0 = off) and ``ema_target`` (the sub-module averaged, ``None`` = the whole
      model; GANs name their generator): the defaults of the CLI's :class:`~genlight.callbacks.EMA`.
    * ``ddp_find_unused_parameters``: whether DDP must expect parameters without gradients in a backward;
      ``None`` (default) = under manual optimisation (GANs, AAE, CycleGAN step one network per backward).
    * ``batch_kinds``: the datamodule ``batch_kind`` s the family can train on (``("unpaired",)`` for a
      translator; ``None``, the default, takes any), checked in :meth:`setup` before the first step.
    * ``monitor``: the validation metric that selects checkpoints (``"val/fid_digits"``); by default
      :meth:`checkpoint_monitor` uses the density figure of a ``DensityModel``, else ``val/loss``.

    Density models log their likelihood through :meth:`log_density`, which names the figure from
    ``log_prob_is_exact`` and the data (see :func:`density_label`) and sums it with a
    :class:`~genlight.metrics.BitsPerDim` metric, so DDP averages are exact.

    Training scalars go through :meth:`log_train`, once per ``training_step``
    (``self.log_train(loss=loss, recon=nll.mean(), kl=kl.mean())``), never through per-step
    ``self.log(..., on_epoch=True)``: each such call runs about 1900 Python calls of Lightning
    bookkeeping every step (argument checks, ``apply_to_collection``, a result-metric ``.to()`` and
    update, a batch-size lookup, the progress bar's ``.item()``); three of them cost the digits VAE
    4-12% of its step (``benchmarks/overhead.py``, ``benchmarks/results/overhead.md``). Validation
    and test logging (once per evaluation batch, with ``sync_dist``) stays ordinary ``self.log``.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {}
    smoke_data: ClassVar[str] = "digits"
    smoke_data_kwargs: ClassVar[dict[str, Any]] = {}
    smoke_trainer: ClassVar[dict[str, Any]] = {}
    ema_decay: ClassVar[float] = 0.0
    ema_target: ClassVar[str | None] = None
    monitor: ClassVar[str | None] = None
    monitor_mode: ClassVar[str] = "min"
    batch_kinds: ClassVar[tuple[str, ...] | None] = None
    ddp_find_unused_parameters: ClassVar[bool | None] = None

    def setup(self, stage: str) -> None:
        self._genlight_setup(stage)

    def _genlight_setup(self, stage: str) -> None:
        """genlight's part of ``setup``, run even when a family overrides it without ``super()``: the
        batch-kind check and DDP's ``find_unused_parameters`` (both before the model is wrapped)."""
        self._check_batch_kind(stage)
        self._allow_unused_parameters_under_ddp()

    def _check_batch_kind(self, stage: str) -> None:
        """Refuse, before the first step, a datamodule whose batches this family cannot read:
        ``batch_kinds`` (``None`` = any) against the datamodule's ``batch_kind``."""
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        kind = getattr(dm, "batch_kind", None)
        if self.batch_kinds is not None and kind is not None and kind not in self.batch_kinds:
            raise IncompatibleDataError(
                f"{type(self).__name__} trains on {' or '.join(self.batch_kinds)} batches, but "
                f"{type(dm).__name__} gives {kind} batches; pick a datamodule of that kind (`genlight list datamodules`)"
            )

    def manual_step(self, optimizer: Any, loss: Tensor) -> None:
        """One step of manual optimisation: with only ``optimizer``'s parameters trainable
        (``toggled_optimizer``), zero its gradients, ``manual_backward(loss)`` (scaled under ``16-mixed``)
        and step it."""
        with self.toggled_optimizer(optimizer):
            optimizer.zero_grad(set_to_none=True)
            self.manual_backward(loss)
            optimizer.step()

    def check_num_classes(self, unlabelled_fix: str, *, min_classes: int = 1) -> None:
        """For a class-conditional model (``self.num_classes > 0``): refuse, in ``setup``, a datamodule with
        another number of classes, naming the fix (``unlabelled_fix`` when it has fewer than ``min_classes``)."""
        dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        classes = getattr(dm, "num_classes", None)
        mine = int(getattr(self, "num_classes", 0) or 0)
        if mine and classes is not None and classes != mine:
            raise IncompatibleDataError(
                f"{_registry_name(self)} was built for {mine} classes but {type(dm).__name__} has {classes}"
                + (f" (unlabelled data); {unlabelled_fix}" if classes < min_classes else "; set --model.num_classes")
            )

    def __reduce_ex__(self, protocol: Any) -> Any:
        """Pickle a model holding parametrized layers (spectral norm) by rebuilding it from its
        hyper-parameters and ``state_dict``: torch refuses to pickle parametrized modules, and
        ``ddp_spawn`` pickles the model for its processes. Other models pickle as usual."""
        from torch.nn.utils import parametrize

        if not any(parametrize.is_parametrized(m) for m in self.modules()):
            return super().__reduce_ex__(protocol)
        return (_rebuild, (type(self), dict(self.hparams), self.state_dict()))

    def _allow_unused_parameters_under_ddp(self) -> None:
        """``ddp_find_unused_parameters = True`` (GANs, AAE, CycleGAN): each backward of a manual-optimisation
        family reaches one sub-network only (a generator-only loss leaves the discriminator without
        gradients), so DDP must expect unused parameters; set on the strategy in ``setup``, before it
        wraps the model, so users need not pick ``ddp_find_unused_parameters_true`` themselves."""
        wanted = self.ddp_find_unused_parameters
        if wanted is None:  # auto: manual optimisation of several networks steps one part per backward
            wanted = not self.automatic_optimization
        strategy = self._trainer.strategy if wanted and self._trainer is not None else None
        kwargs = getattr(strategy, "_ddp_kwargs", None)
        if isinstance(kwargs, dict) and not kwargs.get("find_unused_parameters"):
            kwargs["find_unused_parameters"] = True

    #: hooks whose genlight part runs even when a family overrides the hook without ``super()``:
    #: ``hook -> (method, runs before the family's code)``; each part is idempotent
    _GUARANTEED_HOOKS: ClassVar[dict[str, tuple[str, bool]]] = {
        "setup": ("_genlight_setup", True),
        "on_save_checkpoint": ("_record_identity", False),
        "on_train_epoch_end": ("_log_train_epoch_means", False),
    }

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap a family's override of each hook of ``_GUARANTEED_HOOKS`` so that genlight's part of it
        still runs: the batch-kind check before ``setup``, the class record in every checkpoint (so
        :func:`~genlight.load_model` always works), the epoch means of :meth:`log_train`."""
        super().__init_subclass__(**kwargs)
        for name, (part, before) in cls._GUARANTEED_HOOKS.items():
            hook = cls.__dict__.get(name)
            if hook is not None and not getattr(hook, "_genlight_guaranteed", False):
                setattr(cls, name, _with_part(hook, part, before))

    def save_hyperparameters(
        self, *args: Any, ignore: Sequence[str] | str | None = None, frame: Any = None, logger: bool = True
    ) -> None:
        """Lightning's, keeping only arguments that ``__init__`` takes.

        LightningCLI records every applied data->model link (``num_classes`` ...) as a
        hyper-parameter, also for a model that has no such argument; such a key would break
        ``--ckpt_path`` and ``load_from_checkpoint``, so it is dropped here.
        """
        super().save_hyperparameters(*args, ignore=ignore, frame=frame or inspect.currentframe().f_back, logger=logger)
        params = inspect.signature(type(self).__init__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return
        for hparams in (self._hparams, getattr(self, "_hparams_initial", {})):
            for key in [k for k in hparams if k not in params and not k.startswith("_")]:
                del hparams[key]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._record_identity(checkpoint)

    def _record_identity(self, checkpoint: dict[str, Any]) -> None:
        record_identity(self, checkpoint)

    @property
    def num_dims(self) -> int:
        """``D = C*H*W``, the number of dimensions bits/dim divides by."""
        return math.prod(self.hparams["image_shape"])

    # ------------------------------------------------------------------ likelihood figures
    @property
    def data_is_discrete(self) -> bool:
        """Whether the data are discrete images (``num_levels`` > 0 and a ``(C, H, W)`` shape)."""
        shape = tuple(self.hparams.get("image_shape", ()))
        return len(shape) == 3 and int(self.hparams.get("num_levels", 256) or 0) > 0

    @property
    def density_label(self) -> str:
        """The name of this model's likelihood figure (see :func:`density_label`)."""
        return density_label(bool(getattr(self, "log_prob_is_exact", False)), self.data_is_discrete)

    def log_density(self, stage: str, log_prob: Tensor, *, prog_bar: bool | None = None) -> None:
        """Log per-example ``log_prob`` (nats) as this model's likelihood figure for ``stage``.

        Accumulated in a :class:`~genlight.metrics.BitsPerDim` (sums of nats and dimensions, DDP-summed)
        and logged once per epoch as ``{stage}/bpd`` (exact, discrete data), ``{stage}/bpd_bound`` (a
        bound) or ``{stage}/nll`` / ``{stage}/nll_bound`` (nats per example, continuous data).
        """
        from genlight.metrics.bpd import BitsPerDim

        label = self.density_label
        metrics = self.__dict__.setdefault("_genlight_density_metrics", {})
        metric = metrics.get(stage)
        if metric is None or metric.device != log_prob.device:  # kept out of the module tree and checkpoint
            metric = metrics[stage] = BitsPerDim(per_dim=label.startswith("bpd")).to(log_prob.device)
        metric.update(log_prob, self.num_dims)
        self.log(
            f"{stage}/{label}", metric, on_step=False, on_epoch=True, metric_attribute=f"_density_{stage}",
            prog_bar=(stage == "val") if prog_bar is None else prog_bar,
        )  # fmt: skip

    # ------------------------------------------------------------------ training scalars
    def log_train(self, *, batch_size: int = 1, prog_bar: Sequence[str] = ("loss",), **values: Tensor) -> None:
        """Log training scalars ``train/<name>`` cheaply; every family's ``training_step`` uses this.

        The rule for families: call it once per step with all the scalars (detached or not), e.g.
        ``self.log_train(loss=loss, recon=nll.mean(), kl=kl.mean(), batch_size=len(x))``; GANs and
        other manual-optimisation families name theirs (``d_loss=..., g_loss=...``) and pass
        ``prog_bar=("d_loss", "g_loss")``. Do not compute extra metrics just to log them every step,
        and do not call ``.item()`` on them (it synchronises the GPU).

        * ``train/<name>``: logged on step only (``log_dict``: the ``prog_bar`` names, then the rest),
          and only on the steps whose logs the Trainer writes (``log_every_n_steps``); so
          ``callback_metrics["train/loss"]`` and the progress bar refresh at that rate. No other
          step pays any of Lightning's logging cost.
        * ``train/<name>_epoch``: the epoch mean weighted by ``batch_size`` (as Lightning's
          ``on_epoch=True`` computes it), accumulated as one detached tensor (one ``stack`` and one
          in-place add a step, no ``.item()``, no sync) and logged once in
          :meth:`on_train_epoch_end` (``sync_dist=True``, so DDP averages the ranks); at epoch end
          ``callback_metrics["train/<name>"]`` holds this mean too for the ``prog_bar`` names, as
          with ``on_epoch=True``; this runs even if a family overrides ``on_train_epoch_end``.
        """
        stacked = torch.stack([v.detach().float() if isinstance(v, Tensor) else torch.tensor(float(v), device=self.device)
                               for v in values.values()])  # fmt: skip
        names = tuple(values)
        epoch = self.current_epoch
        acc = self.__dict__.get("_genlight_train_sums")
        if acc is None or acc["epoch"] != epoch:  # a new epoch (or an interrupted one): start afresh
            acc = self.__dict__["_genlight_train_sums"] = {"epoch": epoch, "groups": {}, "prog_bar": set()}
        group = acc["groups"].get(names)
        if group is None:
            acc["groups"][names] = [stacked * batch_size, float(batch_size)]
            acc["prog_bar"].update(prog_bar)
        else:
            group[0].add_(stacked, alpha=batch_size)
            group[1] += batch_size
        trainer = self._trainer
        if trainer is None or trainer.barebones or not trainer._logger_connector.should_update_logs:
            return
        stacked = stacked.cpu()  # one copy here; the progress bar's per-step .item() then never syncs a GPU
        for show in (True, False):
            step = {f"train/{k}": v for k, v in zip(names, stacked) if (k in prog_bar) == show}
            if step:
                self.log_dict(step, prog_bar=show, on_step=True, on_epoch=False, batch_size=batch_size)

    def on_train_epoch_end(self) -> None:
        self._log_train_epoch_means()

    def _log_train_epoch_means(self) -> None:
        """Logs the epoch means that :meth:`log_train` accumulated (``train/<name>_epoch``), once."""
        acc = self.__dict__.pop("_genlight_train_sums", None)
        if acc is None or self._trainer is None or self._trainer.barebones:
            return
        sums: dict[str, Tensor] = {}
        weights: dict[str, float] = {}
        for names, (total, weight) in acc["groups"].items():
            for name, value in zip(names, total):
                sums[name] = sums[name] + value if name in sums else value
                weights[name] = weights.get(name, 0.0) + weight
        means = {name: sums[name] / weights[name] for name in sums}
        epoch_kw: dict[str, Any] = {"on_step": False, "on_epoch": True, "sync_dist": True, "batch_size": 1}
        for show in (True, False):
            shown = {f"train/{k}_epoch": v for k, v in means.items() if (k in acc["prog_bar"]) == show}
            if shown:
                self.log_dict(shown, prog_bar=show, **epoch_kw)
        # as with Lightning's on_epoch=True: callback_metrics["train/loss"] is the epoch mean at epoch end
        shown = {f"train/{k}": v for k, v in means.items() if k in acc["prog_bar"]}
        if shown:
            self.log_dict(shown, logger=False, **epoch_kw)

    def checkpoint_monitor(self) -> tuple[str, str] | None:
        """``(metric, mode)`` that selects the best checkpoint: ``monitor`` if the family sets it, else
        ``val/<density label>`` for a density model, else ``val/loss``; ``None`` when there is none."""
        if self.monitor is not None:
            return (self.monitor, self.monitor_mode) if self.monitor else None
        from genlight.types import DensityModel

        if isinstance(self, DensityModel):
            return f"val/{self.density_label}", "min"
        if is_overridden("validation_step", self, pl.LightningModule):
            return "val/loss", "min"
        return None


def _rebuild(cls: type[GenerativeModule], hparams: dict[str, Any], state: dict[str, Any]) -> GenerativeModule:
    """Inverse of :meth:`GenerativeModule.__reduce_ex__` for parametrized models."""
    model = cls(**hparams)
    model.load_state_dict(state)
    return model


def _registry_name(model: pl.LightningModule) -> str:
    """The registry name of ``model``'s class (its class name if unregistered)."""
    from genlight.registry import MODELS

    return MODELS.name_of(type(model)) or type(model).__name__


def _with_part(hook: Callable[..., Any], part: str, before: bool) -> Callable[..., Any]:
    """``hook`` that also calls the method ``part`` with the same arguments, before or after it."""

    @functools.wraps(hook)
    def wrapped(self: GenerativeModule, *args: Any, **kwargs: Any) -> Any:
        if before:
            getattr(self, part)(*args, **kwargs)
        out = hook(self, *args, **kwargs)
        if not before:
            getattr(self, part)(*args, **kwargs)
        return out

    wrapped._genlight_guaranteed = True  # type: ignore[attr-defined]
    return wrapped


#: checkpoint key of genlight's metadata: ``{"model": name, "class_path": ..., "version": ...}``
CHECKPOINT_KEY = "genlight"


def record_identity(model: pl.LightningModule, checkpoint: dict[str, Any]) -> None:
    """Write ``checkpoint["genlight"]``: the registry name, class path and genlight version."""
    from genlight import __version__
    from genlight.registry import MODELS

    cls = type(model)
    checkpoint[CHECKPOINT_KEY] = {
        "model": MODELS.name_of(cls),
        "class_path": f"{cls.__module__}.{cls.__qualname__}",
        "version": __version__,
    }


def density_label(exact: bool, discrete: bool) -> str:
    """``bpd`` (exact, discrete images), ``bpd_bound`` (a lower bound on log p: ELBO, IWAE, DDPM's
    bound, a dequantised flow's E_u log p(x + u)), ``nll`` / ``nll_bound`` (continuous data, nats)."""
    return ("bpd" if discrete else "nll") + ("" if exact else "_bound")


def split_dataset(dataset: Dataset, fractions: Sequence[float], seed: int) -> list[Subset]:
    """Split ``dataset`` into parts of the given fractions (the last takes the rest), by a seeded permutation."""
    n = len(dataset)  # type: ignore[arg-type]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    parts, start = [], 0
    for i, frac in enumerate(fractions):
        stop = n if i == len(fractions) - 1 else start + int(round(frac * n))
        parts.append(Subset(dataset, perm[start:stop]))
        start = stop
    return parts


class TransformedDataset(Dataset):
    """``dataset`` with ``transform`` applied to the first element of every item (the image ``x``)."""

    def __init__(self, dataset: Dataset, transform: Callable[[Tensor], Tensor]) -> None:
        self.dataset = dataset
        self.transform = transform

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        x, *rest = self.dataset[index]
        return (self.transform(x), *rest)


class GenerativeDataModule(pl.LightningDataModule):
    """Base class of every genlight datamodule.

    Batches are ``(x, y)``: ``x`` float in [0, 1] of shape ``(B, *image_shape)``, ``y`` class ids
    (or -1). Subclasses set ``image_shape``, ``num_classes`` and ``num_levels`` and implement
    :meth:`load_datasets`; the base makes deterministic train/val/test splits by ``seed``, keeps
    the first ``subset`` training examples if asked, and builds the dataloaders (Lightning adds the
    distributed sampler under DDP).
    """

    image_shape: tuple[int, ...] = ()
    num_classes: int = 0
    num_levels: int = 256
    #: what a batch holds: ``images`` (``(x, y)``), ``points`` (``(x, -1)``, 2-D), ``unpaired`` (``(x_a, x_b)``)
    batch_kind: ClassVar[str] = "images"
    #: fraction held out as test data when the source has no official test split
    test_fraction: ClassVar[float] = 0.0

    def __init__(
        self,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        persistent_workers: bool = False,
        val_fraction: float = 0.1,
        subset: int | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1 (images per batch), got {batch_size}: e.g. --data.batch_size 64")
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0 (0 loads in the main process), got {num_workers}")
        if not 0.0 <= val_fraction < 1.0:
            raise ConfigError(
                f"val_fraction must be in [0, 1) (the share of training data held out for validation), got "
                f"{val_fraction}: e.g. --data.val_fraction 0.1"
            )
        if subset is not None and subset < 1:
            raise ConfigError(f"subset must be a positive number of training examples, got {subset}: e.g. --data.subset 128")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.val_fraction = val_fraction
        self.subset = subset
        self.seed = seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._plain_train_set: Dataset | None = None

    @classmethod
    def smoke(cls, root: Path, **kwargs: Any) -> GenerativeDataModule:
        """A tiny instance for smoke tests, with any files it needs written under ``root`` (a temp
        folder): the datamodule a family names as its ``smoke_data``. Bundled data needs no files."""
        return cls(**{"batch_size": 16, **kwargs})

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        """Return ``(train_pool, test)``; ``test`` is ``None`` when the source has no official split.

        A source with an official validation split may return ``(train, val, test)`` instead; then
        ``val_fraction`` is not used.
        """
        raise NotImplementedError

    def train_transform(self) -> Callable[[Tensor], Tensor] | None:
        """A random augmentation of ``x`` applied to the training split only (``None``: no augmentation)."""
        return None

    def split_train_val(self, pool: Dataset) -> tuple[Subset, Subset]:
        """``val_fraction`` of ``pool`` held out as validation, by a permutation seeded with ``seed + 1``."""
        train, val = split_dataset(pool, [1.0 - self.val_fraction, self.val_fraction], self.seed + 1)
        return train, val

    def split_pool(self, pool: Dataset, test: Dataset | None = None) -> tuple[Dataset, Dataset, Dataset]:
        """Seeded ``(train, val, test)``: without an official ``test``, ``test_fraction`` of ``pool`` is
        held out first (seeded with ``seed``), then :meth:`split_train_val` splits the rest."""
        if test is None:
            if not self.test_fraction:
                raise ValueError(f"{type(self).__name__} has no test split; set test_fraction")
            pool, test = split_dataset(pool, [1.0 - self.test_fraction, self.test_fraction], self.seed)
        return (*self.split_train_val(pool), test)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        parts = self.load_datasets()
        train, val, test = parts if len(parts) == 3 else self.split_pool(*parts)
        if self.subset is not None:
            train = Subset(train, range(min(self.subset, len(train))))
        self._plain_train_set = train
        transform = self.train_transform()
        if transform is not None:
            train = TransformedDataset(train, transform)
        self.train_set, self.val_set, self.test_set = train, val, test

    def reference_dataset(self, split: str) -> Dataset:
        """``split`` (``train``, ``val`` or ``test``) without augmentation or any other randomness:
        reading it twice gives the same images and leaves the global RNG untouched. What FID reference
        statistics and image grids are computed from. Datamodules whose data are random per read
        (stochastic binarisation) override this with a fixed draw."""
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be train, val or test, got {split!r}")
        if self.train_set is None:
            self.setup("fit")
        dataset = self._plain_train_set if split == "train" else getattr(self, f"{split}_set")
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__} has no {split} split")
        return dataset

    def _loader(self, dataset: Dataset | None, shuffle: bool) -> DataLoader:
        if dataset is None:
            raise RuntimeError(f"{type(self).__name__}.setup() has not run; call dm.setup() first")
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            drop_last=shuffle and len(dataset) > self.batch_size,  # type: ignore[arg-type]
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.persistent_workers and self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, shuffle=False)
