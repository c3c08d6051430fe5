"""The family contract as a kit: check a family, registered or not, in one line.

```python
from genlight.testing import check_family

def test_my_family(tmp_path):
    check_family(MyFamily, tmp_path)
```

:func:`check_family` runs every check below on one class and raises an ``AssertionError`` that names
the family and the check that failed. Each check also works alone (``tests/test_all_models.py``
parametrises them over ``list_models()``). A check builds the family from its own class attributes:
``smoke_kwargs`` (tiny widths), ``smoke_data`` / ``smoke_data_kwargs`` (the registered datamodule it
runs on, made small by its ``smoke()``) and ``smoke_trainer`` (Trainer settings it needs). Everything
runs on the CPU in seconds.
"""

from __future__ import annotations

import inspect
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight.callbacks.ema import EMA, find_ema
from genlight.checkpoint import load_model
from genlight.cli import LINKED_ATTRIBUTES, GenlightCLI
from genlight.module import CHECKPOINT_KEY
from genlight.registry import DATAMODULES, MODELS
from genlight.types import Autoencoder, DensityModel, LatentGenerator, Sampler, Translator, is_conditional

__all__ = [
    "RecordRank",
    "SmokeFit",
    "check_bf16",
    "check_capabilities",
    "check_checkpoint_round_trip",
    "check_cli_instantiation",
    "check_family",
    "check_fit_and_capabilities",
    "check_fp16_manual_optimisation",
    "check_signature",
    "check_training",
    "check_two_process_ddp",
    "cpu_trainer",
    "linked_kwargs",
    "smoke_fit",
    "smoke_setup",
    "tiny_trainer",
    "uses_manual_optimisation",
]

Family = type | str  # a GenerativeModule subclass, or a registry name


# ---------------------------------------------------------------------------- helpers
def _cls(family: Family) -> type:
    return MODELS.get(family) if isinstance(family, str) else family


def _name(family: Family) -> str:
    cls = _cls(family)
    return MODELS.name_of(cls) or cls.__name__


def linked_kwargs(model_cls: type, datamodule: Any) -> dict[str, Any]:
    """What the CLI links from the datamodule into the model (``image_shape``, ``num_classes``,
    ``num_levels``), for the arguments ``model_cls`` takes."""
    params = inspect.signature(model_cls.__init__).parameters
    return {a: getattr(datamodule, a) for a in LINKED_ATTRIBUTES if a in params}


def smoke_setup(family: Family, root: str | Path, **overrides: Any) -> tuple[pl.LightningModule, Any, dict[str, Any]]:
    """``(model, datamodule set up for fit, Trainer kwargs)`` from the family's own smoke settings;
    ``root`` is a folder for data files, ``overrides`` are ``__init__`` arguments."""
    cls = _cls(family)
    dm = DATAMODULES.get(cls.smoke_data).smoke(Path(root), **cls.smoke_data_kwargs)
    dm.setup("fit")
    model = cls(**{**cls.smoke_kwargs, **linked_kwargs(cls, dm), **overrides})
    return model, dm, dict(cls.smoke_trainer)


def cpu_trainer(root: str | None = None, **overrides: Any) -> pl.Trainer:
    """A quiet single-process CPU Trainer: no logger, no checkpoints, no progress bar."""
    kwargs: dict[str, Any] = dict(
        accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    if root is not None:
        kwargs["default_root_dir"] = root
    kwargs.update(overrides)
    return pl.Trainer(**kwargs)


def tiny_trainer(**overrides: Any) -> pl.Trainer:
    """:func:`cpu_trainer` with ``fast_dev_run=True``: one batch of each loop."""
    return cpu_trainer(**{"fast_dev_run": True, **overrides})


def uses_manual_optimisation(family: Family, root: str | Path) -> bool:
    """Whether the family steps its optimizers itself (GANs, AAE, CycleGAN)."""
    return not smoke_setup(family, root)[0].automatic_optimization


@dataclass
class SmokeFit:
    """A family after one batch of each loop: what the checks of a fitted model read."""

    name: str
    model: pl.LightningModule
    datamodule: Any
    trainer: pl.Trainer
    before: dict[str, Tensor]  # trainable parameters before the fit


def smoke_fit(family: Family, root: str | Path, **trainer_overrides: Any) -> SmokeFit:
    """Build the family on its smoke data and fit it for one batch of each loop (with the
    :class:`~genlight.callbacks.EMA` callback, on for families whose ``ema_decay`` > 0)."""
    model, dm, trainer_kwargs = smoke_setup(family, root)
    callbacks = [EMA(), *trainer_kwargs.pop("callbacks", [])]
    trainer = tiny_trainer(**{**trainer_kwargs, **trainer_overrides, "default_root_dir": str(root), "callbacks": callbacks})
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    trainer.fit(model, datamodule=dm)
    return SmokeFit(_name(family), model, dm, trainer, before)


def _seeded(fn: Callable[[], Tensor], seed: int = 1) -> Tensor:
    torch.manual_seed(seed)
    return fn()


def _check_images(name: str, images: Tensor, dm: Any, n: int) -> None:
    assert images.shape == (n, *dm.image_shape), f"{name}: sample shape {tuple(images.shape)}"
    assert torch.isfinite(images).all(), f"{name}: non-finite samples"
    if len(dm.image_shape) == 3:
        assert images.min() >= 0 and images.max() <= 1, f"{name}: images outside [0, 1]"


def _assert_finite_metrics(name: str, trainer: pl.Trainer, context: str = "") -> None:
    for key, value in trainer.callback_metrics.items():
        assert math.isfinite(float(value)), f"{name}: {key} = {value}{context}"


# ---------------------------------------------------------------------------- checks of a fitted model
def check_training(fit: SmokeFit) -> None:
    """The fit finished, logged a finite ``train/`` metric through ``log_train`` and moved every
    trainable parameter."""
    name, model, trainer = fit.name, fit.model, fit.trainer
    assert trainer.state.finished and trainer.global_step >= 1, f"{name}: the fit did not take a step"
    assert any(k.startswith("train/") for k in trainer.callback_metrics), f"{name} logged no train/ metric (log_train)"
    _assert_finite_metrics(name, trainer)
    unchanged = [n for n, p in model.named_parameters() if p.requires_grad and torch.equal(p, fit.before[n])]
    assert not unchanged, f"{name}: parameters not trained by one step: {unchanged}"


def check_capabilities(fit: SmokeFit) -> None:
    """Every capability the family declares (:mod:`genlight.types`) keeps its promise: sample shape and
    range, labels that change samples, translation both ways, finite ``log_prob`` logged through
    ``log_density``, encode/decode shapes, decoded prior codes."""
    name, model, dm, trainer = fit.name, fit.model, fit.datamodule, fit.trainer
    model.eval()
    inputs = tuple(t[:5] for t in next(iter(dm.val_dataloader())))  # (x, y) or (x_a, x_b)
    x = inputs[0]
    if isinstance(model, Sampler):
        _check_images(name, model.sample(6), dm, 6)
    if is_conditional(model):
        y = torch.arange(6) % model.num_classes
        _check_images(name, model.sample(6, y=y), dm, 6)
        zeros = _seeded(lambda: model.sample(6, y=torch.zeros(6, dtype=torch.long)))
        ones = _seeded(lambda: model.sample(6, y=torch.ones(6, dtype=torch.long)))
        assert not torch.equal(zeros, ones), f"{name}: labels y do not change the samples"
    if isinstance(model, Translator):
        for direction, source in (("a2b", inputs[0]), ("b2a", inputs[1])):
            with torch.no_grad():
                out = model.translate(source, direction)
            assert out.shape == source.shape and out.min() >= 0 and out.max() <= 1, f"{name}: translate {direction}"
        try:
            model.translate(inputs[0], "sideways")
        except ValueError:
            pass
        else:
            raise AssertionError(f"{name}: translate(x, 'sideways') must raise ValueError")
    if isinstance(model, DensityModel):
        assert isinstance(model.log_prob_is_exact, bool), f"{name}: log_prob_is_exact must be a bool"
        with torch.no_grad():
            lp = model.log_prob(x)
        assert lp.shape == (len(x),) and torch.isfinite(lp).all(), f"{name}: log_prob {lp}"
        if model.data_is_discrete:
            assert (lp <= 1e-4).all(), f"{name}: log-probabilities of discrete images cannot be positive"
        if trainer.num_val_batches and any(trainer.num_val_batches):
            label = f"val/{model.density_label}"
            assert label in trainer.callback_metrics, f"{name}: density models log {label} through log_density"
    if isinstance(model, Autoencoder):
        with torch.no_grad():
            assert model.decode(model.encode(x)).shape == x.shape, f"{name}: decode(encode(x)) changes the shape"
    if isinstance(model, LatentGenerator):
        with torch.no_grad():
            _check_images(name, model.decode(model.sample_latent(3)), dm, 3)


def _ema_swapped(fit: SmokeFit) -> Any:
    ema = find_ema(fit.model)
    assert (ema is not None) == (fit.model.ema_decay > 0), f"{fit.name}: EMA must be active exactly when ema_decay > 0"
    return ema.averaged(fit.model) if ema is not None else nullcontext()


def check_checkpoint_round_trip(fit: SmokeFit, path: str | Path) -> None:
    """``trainer.save_checkpoint(path)`` records the class; ``load_model(path)`` rebuilds that class with
    the same (EMA) weights, seeded samples and log-probabilities; ``load_model(path, ema=False)`` the
    live weights."""
    name, model, trainer = fit.name, fit.model, fit.trainer
    trainer.save_checkpoint(path)
    meta = torch.load(path, weights_only=False)[CHECKPOINT_KEY]  # recorded even if the family's hook skips super()
    assert meta["class_path"] == f"{type(model).__module__}.{type(model).__qualname__}", f"{name}: {meta}"
    loaded = load_model(path)
    assert type(loaded) is type(model), f"{name}: load_model gave {type(loaded).__name__}"
    assert loaded.state_dict().keys() == model.state_dict().keys(), f"{name}: state_dict keys differ after loading"
    x = next(iter(fit.datamodule.val_dataloader()))[0][:5]
    live = load_model(path, ema=False)
    with _ema_swapped(fit):  # the checkpoint's state_dict holds the EMA weights when EMA is on
        for key, value in model.state_dict().items():
            assert torch.equal(value, loaded.state_dict()[key]), f"{name}: {key} differs after loading"
        if isinstance(model, Sampler):
            assert torch.equal(_seeded(lambda: model.sample(4)), _seeded(lambda: loaded.sample(4))), f"{name}: samples"
        if isinstance(model, DensityModel):
            with torch.no_grad():
                same = torch.equal(_seeded(lambda: model.log_prob(x)), _seeded(lambda: loaded.log_prob(x)))
            assert same, f"{name}: log_prob differs after loading"
    for key, value in model.state_dict().items():  # ... and load_model(ema=False) the live ones
        assert torch.equal(value, live.state_dict()[key]), f"{name}: live weight {key} differs (ema=False)"


# ---------------------------------------------------------------------------- checks of a family class
def check_signature(family: Family, root: str | Path) -> None:
    """What LightningCLI and ``load_model`` need: ``image_shape`` and every other ``__init__`` argument
    typed, with a default, no ``*args`` / ``**kwargs``; the built model's ``hparams`` hold every
    argument (a subclass passes its arguments to ``super().__init__``, whose
    ``save_hyperparameters()`` saves the subclass's too)."""
    cls, name = _cls(family), _name(family)
    params = [p for p in list(inspect.signature(cls.__init__).parameters.values())[1:]]
    variadic = [p.name for p in params if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    assert not variadic, f"{name}: no *args/**kwargs in __init__ (they hide arguments from the CLI): {variadic}"
    assert "image_shape" in {p.name for p in params}, f"{name}: __init__ must take image_shape (linked from the data)"
    untyped = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    assert not untyped, f"{name}: __init__ arguments without a type hint: {untyped}"
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    assert not required, f"{name}: __init__ arguments without a default: {required}"
    model = smoke_setup(cls, root)[0]
    missing = [p.name for p in params if p.name not in model.hparams]
    assert not missing, f"{name}: hparams lack {missing}: call self.save_hyperparameters() (or super().__init__(...))"


def check_fit_and_capabilities(family: Family, root: str | Path) -> SmokeFit:
    """One short fit on the family's smoke data, then :func:`check_training`, :func:`check_capabilities`
    and :func:`check_checkpoint_round_trip` on the fitted model (one fit for the three)."""
    fit = smoke_fit(family, root)
    check_training(fit)
    check_capabilities(fit)
    check_checkpoint_round_trip(fit, Path(root) / "model.ckpt")
    return fit


def check_cli_instantiation(family: Family, root: str | Path) -> None:
    """``genlight fit --model <name or class path> --data <smoke_data> ...`` builds the family, with
    ``image_shape`` (and ``num_classes`` / ``num_levels`` where it takes them) linked from the data.
    An unregistered class is passed by its class path, so it must be importable from its module."""
    cls = _cls(family)
    registered = MODELS.name_of(cls)
    model_arg = registered or f"{cls.__module__}.{cls.__qualname__}"
    _, dm, _ = smoke_setup(cls, root)
    data_args = [f"--data.{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in dm.hparams.items()]
    cli = GenlightCLI(args=["--model", model_arg, "--data", cls.smoke_data, *data_args, "--trainer.logger", "false"], run=False)
    name = _name(cls)
    assert type(cli.model) is cls, f"{name}: --model {model_arg} built {type(cli.model).__name__}"
    assert tuple(cli.model.hparams["image_shape"]) == tuple(dm.image_shape), f"{name}: image_shape not linked"
    for attr in ("num_levels", "num_classes"):
        if attr in cli.model.hparams:
            assert cli.model.hparams[attr] == getattr(cli.datamodule, attr), f"{name}: {attr} not linked"


def check_bf16(family: Family, root: str | Path) -> None:
    """Lightning's ``bf16-mixed`` runs on the CPU too: losses stay finite under autocast (logits
    losses, float32 likelihoods), and the weights stay float32."""
    fit = smoke_fit(family, root, precision="bf16-mixed")
    assert fit.trainer.callback_metrics, f"{fit.name}: nothing was logged under bf16-mixed"
    _assert_finite_metrics(fit.name, fit.trainer, " under bf16-mixed")
    assert all(p.dtype == torch.float32 for p in fit.model.parameters()), f"{fit.name}: weights left float32"


class _CountingScaler(torch.amp.GradScaler):
    """A ``GradScaler`` that counts the losses it scales."""

    calls = 0

    def scale(self, outputs: Any) -> Any:
        self.calls += 1
        return super().scale(outputs)


def check_fp16_manual_optimisation(family: Family, root: str | Path) -> None:
    """What ``16-mixed`` does on a GPU, on the CPU, for a manual-optimisation family: fp16 autocast and
    a ``GradScaler`` (scale set high so that it must act): ``manual_backward`` scales every loss and each
    optimizer step unscales, so the weights move by finite amounts and the losses stay finite."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    scaler = _CountingScaler("cpu", init_scale=2.0**12)
    fit = smoke_fit(family, root, plugins=[MixedPrecision("16-mixed", device="cpu", scaler=scaler)])
    assert scaler.calls > 0, f"{fit.name}: the GradScaler never scaled a loss (use self.manual_backward)"
    _assert_finite_metrics(fit.name, fit.trainer, " under fp16 autocast")
    moved = [n for n, p in fit.model.named_parameters() if n in fit.before and not torch.equal(p, fit.before[n])]
    finite = all(torch.isfinite(p).all() for p in fit.model.parameters())
    assert moved and finite, f"{fit.name}: no finite update under fp16 autocast"


class RecordRank(pl.Callback):
    """Each rank saves its final weights and its DDP settings to ``root/rank<r>.pt`` (module level:
    ``ddp_spawn`` pickles it)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        wrapped = trainer.strategy.model
        torch.save(
            {
                "params": {k: v.detach().clone() for k, v in pl_module.named_parameters()},
                "buffers": {k: v.detach().clone() for k, v in pl_module.named_buffers()},
                "find_unused": bool(getattr(wrapped, "find_unused_parameters", False)),
                "world_size": trainer.world_size,
                "steps": trainer.global_step,
            },
            Path(self.root) / f"rank{trainer.global_rank}.pt",
        )


def check_two_process_ddp(family: Family, root: str | Path) -> None:
    """``ddp_spawn`` on 2 CPU processes (slow: ~40-75 s): the fit runs, both ranks end with the same
    parameters, all trained; manual-optimisation families get ``find_unused_parameters``."""
    root = Path(root)
    model, dm, trainer_kwargs = smoke_setup(family, root / "data")
    trainer = cpu_trainer(
        str(root), devices=2, strategy="ddp_spawn", max_epochs=1, limit_train_batches=2, limit_val_batches=0,
        callbacks=[RecordRank(str(root))], **trainer_kwargs,
    )  # fmt: skip
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer.fit(model, datamodule=dm)
    name = _name(family)
    r0, r1 = (torch.load(root / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["world_size"] == 2, f"{name}: world size {r0['world_size']}"
    if not model.automatic_optimization:
        assert r0["find_unused"] and r1["find_unused"], f"{name}: DDP must expect unused parameters"
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), f"{name}: ranks disagree on {k}"
    untrained = [k for k in before if torch.equal(before[k], r0["params"][k])]
    assert not untrained, f"{name}: not trained under DDP: {untrained}"


# ---------------------------------------------------------------------------- all of them
@contextmanager
def _folder(tmp_path: str | Path | None) -> Iterator[Path]:
    if tmp_path is not None:
        Path(tmp_path).mkdir(parents=True, exist_ok=True)
        yield Path(tmp_path)
    else:
        with tempfile.TemporaryDirectory(prefix="genlight-check-") as folder:
            yield Path(folder)


def check_family(family: Family, tmp_path: str | Path | None = None, *, ddp: bool = False) -> None:
    """Run every check of the family contract on ``family`` (a class, registered or not, or a registry
    name): :func:`check_signature`, :func:`check_fit_and_capabilities` (fit, capabilities, checkpoint
    round trip), :func:`check_cli_instantiation`, :func:`check_bf16`, and for manual-optimisation
    families :func:`check_fp16_manual_optimisation` (and :func:`check_two_process_ddp` with ``ddp=True``).
    Files go under ``tmp_path`` (a temporary folder if ``None``).

    Raises:
        AssertionError: ``"<family>: <check> failed: <why>"``, the original error chained.
    """
    name = _name(family)
    with _folder(tmp_path) as root:
        checks: list[Callable[[Family, Path], Any]] = [
            check_signature, check_fit_and_capabilities, check_cli_instantiation, check_bf16
        ]  # fmt: skip
        if uses_manual_optimisation(family, root):
            checks.append(check_fp16_manual_optimisation)
            if ddp:
                checks.append(check_two_process_ddp)
        for check in checks:
            folder = root / check.__name__
            folder.mkdir(exist_ok=True)
            try:
                check(family, folder)
            except Exception as error:  # noqa: BLE001 - any failure is reported as the family's
                raise AssertionError(f"{name}: {check.__name__} failed: {type(error).__name__}: {error}") from error
