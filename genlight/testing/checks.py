"""The checks of the family contract, each usable alone (``tests/test_all_models.py`` runs each over
every registered family); :func:`genlight.testing.check_family` runs them all on one family."""

from __future__ import annotations

import inspect
import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genlight.callbacks.ema import find_ema
from genlight.checkpoint import load_model
from genlight.cli import GenlightCLI
from genlight.identity import CHECKPOINT_KEY
from genlight.registry import MODELS
from genlight.testing.harness import (
    Family,
    SmokeFit,
    assert_finite_metrics,
    assert_images,
    family_class,
    family_name,
    seeded,
    smoke_fit,
    smoke_setup,
)
from genlight.types import (
    Autoencoder,
    DensityModel,
    LatentGenerator,
    MultiDomainTranslator,
    Sampler,
    Translator,
    is_conditional,
)

__all__ = [
    "check_bf16",
    "check_capabilities",
    "check_checkpoint_round_trip",
    "check_cli_instantiation",
    "check_fit_and_capabilities",
    "check_fp16_manual_optimisation",
    "check_signature",
    "check_training",
]


# ---------------------------------------------------------------------------- checks of a fitted model
def check_training(fit: SmokeFit) -> None:
    """The fit finished, logged a finite ``train/`` metric through ``log_train`` and moved every
    trainable parameter."""
    name, model, trainer = fit.name, fit.model, fit.trainer
    assert trainer.state.finished and trainer.global_step >= 1, f"{name}: the fit did not take a step"
    assert any(k.startswith("train/") for k in trainer.callback_metrics), f"{name} logged no train/ metric (log_train)"
    assert_finite_metrics(name, trainer)
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
        assert_images(name, model.sample(6), dm, 6)
    if is_conditional(model):
        y = torch.arange(6) % model.num_classes
        assert_images(name, model.sample(6, y=y), dm, 6)
        zeros = seeded(lambda: model.sample(6, y=torch.zeros(6, dtype=torch.long)))
        ones = seeded(lambda: model.sample(6, y=torch.ones(6, dtype=torch.long)))
        assert not torch.equal(zeros, ones), f"{name}: labels y do not change the samples"
    if isinstance(model, MultiDomainTranslator):
        check_multi_domain_translation(name, model, x)
    elif isinstance(model, Translator):
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
            assert_images(name, model.decode(model.sample_latent(3)), dm, 3)


def check_multi_domain_translation(name: str, model: MultiDomainTranslator, x: Tensor) -> None:
    """``translate(x, t)`` into every domain ``t`` keeps the shape and [0, 1], the target changes the
    output, ``domain_names`` names every domain, and an index out of range is refused (``ValueError``)."""
    assert len(model.domain_names) == model.num_domains >= 2, f"{name}: domain_names {model.domain_names}"
    with torch.no_grad():
        outs = [model.translate(x, t) for t in range(model.num_domains)]
    for t, out in enumerate(outs):
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1, f"{name}: translate(x, {t})"
    change = float((outs[0] - outs[1]).abs().max())
    assert change > 1e-3, f"{name}: the target domain does not change the translation (max change {change:.2g})"
    try:
        model.translate(x, model.num_domains)
    except ValueError:
        pass
    else:
        raise AssertionError(f"{name}: translate(x, num_domains) must raise ValueError")


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
            assert torch.equal(seeded(lambda: model.sample(4)), seeded(lambda: loaded.sample(4))), f"{name}: samples"
        if isinstance(model, DensityModel):
            with torch.no_grad():
                same = torch.equal(seeded(lambda: model.log_prob(x)), seeded(lambda: loaded.log_prob(x)))
            assert same, f"{name}: log_prob differs after loading"
    for key, value in model.state_dict().items():  # ... and load_model(ema=False) the live ones
        assert torch.equal(value, live.state_dict()[key]), f"{name}: live weight {key} differs (ema=False)"


# ---------------------------------------------------------------------------- checks of a family class
def check_signature(family: Family, root: str | Path) -> None:
    """What LightningCLI and ``load_model`` need: ``image_shape`` and every other ``__init__`` argument
    typed, with a default, no ``*args`` / ``**kwargs``; the built model's ``hparams`` hold every
    argument (a subclass passes its arguments to ``super().__init__``, whose
    ``save_hyperparameters()`` saves the subclass's too)."""
    cls, name = family_class(family), family_name(family)
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
    cls = family_class(family)
    registered = MODELS.name_of(cls)
    model_arg = registered or f"{cls.__module__}.{cls.__qualname__}"
    _, dm, _ = smoke_setup(cls, root)
    data_args = [f"--data.{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in dm.hparams.items()]
    cli = GenlightCLI(
        args=["--model", model_arg, "--data", cls.smoke_data, *data_args, "--trainer.logger", "false"], run=False
    )
    name = family_name(cls)
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
    assert_finite_metrics(fit.name, fit.trainer, " under bf16-mixed")
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
    assert_finite_metrics(fit.name, fit.trainer, " under fp16 autocast")
    moved = [n for n, p in fit.model.named_parameters() if n in fit.before and not torch.equal(p, fit.before[n])]
    finite = all(torch.isfinite(p).all() for p in fit.model.parameters())
    assert moved and finite, f"{fit.name}: no finite update under fp16 autocast"
