"""Every registered model, the moment it is registered: built on its own smoke data (the family's
``smoke_data`` / ``smoke_kwargs`` / ``smoke_trainer``), one short fit (one or two optimizers, manual or
automatic), every capability it declares, its likelihood figure, a checkpoint round trip, bf16, the CLI.
Nothing here names a family: the test-only families of ``tests/families.py`` pass through the same code.
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from genlight import list_models, load_model
from genlight.module import CHECKPOINT_KEY
from genlight.callbacks.ema import EMA
from genlight.cli import GenlightCLI
from genlight.types import Autoencoder, DensityModel, LatentGenerator, Sampler, Translator, is_conditional
from tests.helpers import smoke_setup, tiny_trainer

MODELS = list_models()


def _inputs(dm, n: int = 5) -> tuple[torch.Tensor, ...]:
    """The first ``n`` examples of a validation batch: ``(x, y)`` or ``(x_a, x_b)``."""
    batch = next(iter(dm.val_dataloader()))
    return tuple(t[:n] for t in batch)


def _seeded(fn, seed: int = 1):
    torch.manual_seed(seed)
    return fn()


def _check_images(name: str, images: torch.Tensor, dm, n: int) -> None:
    assert images.shape == (n, *dm.image_shape), f"{name}: sample shape {tuple(images.shape)}"
    assert torch.isfinite(images).all(), f"{name}: non-finite samples"
    if len(dm.image_shape) == 3:
        assert images.min() >= 0 and images.max() <= 1, f"{name}: images outside [0, 1]"


@pytest.fixture
def smoke_fit(tmp_path):
    """Build a family on its smoke data and fit it for one batch of each loop."""

    def fit(name: str, **trainer_overrides):
        model, dm, trainer_kwargs = smoke_setup(name, tmp_path)
        callbacks = [EMA(), *trainer_kwargs.pop("callbacks", [])]  # EMA: on for families whose ema_decay > 0
        trainer = tiny_trainer(
            **{**trainer_kwargs, **trainer_overrides, "default_root_dir": str(tmp_path), "callbacks": callbacks}
        )
        before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        trainer.fit(model, datamodule=dm)
        return model, dm, trainer, before

    return fit


@pytest.mark.parametrize("name", MODELS)
def test_fit_capabilities_and_checkpoint(name, smoke_fit, tmp_path):
    model, dm, trainer, before = smoke_fit(name)
    assert trainer.state.finished and trainer.global_step >= 1
    assert any(k.startswith("train/") for k in trainer.callback_metrics), f"{name} logged no train/ metric"
    for key, value in trainer.callback_metrics.items():
        assert math.isfinite(float(value)), f"{name}: {key} = {value}"
    unchanged = [n for n, p in model.named_parameters() if p.requires_grad and torch.equal(p, before[n])]
    assert not unchanged, f"{name}: parameters not trained by one step: {unchanged}"

    model.eval()
    inputs = _inputs(dm)
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
        with pytest.raises(ValueError):
            model.translate(inputs[0], "sideways")
    if isinstance(model, DensityModel):
        assert isinstance(model.log_prob_is_exact, bool)
        with torch.no_grad():
            lp = model.log_prob(x)
        assert lp.shape == (len(x),) and torch.isfinite(lp).all(), f"{name}: log_prob {lp}"
        if model.data_is_discrete:
            assert (lp <= 1e-4).all(), "log-probabilities of discrete images cannot be positive"
        if trainer.num_val_batches and any(trainer.num_val_batches):
            label = f"val/{model.density_label}"
            assert label in trainer.callback_metrics, f"{name}: density models log {label} through log_density"
    if isinstance(model, Autoencoder):
        with torch.no_grad():
            assert model.decode(model.encode(x)).shape == x.shape
    if isinstance(model, LatentGenerator):
        with torch.no_grad():
            _check_images(name, model.decode(model.sample_latent(3)), dm, 3)

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    meta = torch.load(path, weights_only=False)[CHECKPOINT_KEY]  # recorded even if the family's hook skips super()
    assert meta["class_path"] == f"{type(model).__module__}.{type(model).__qualname__}"
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    live = load_model(path, ema=False)
    with _ema_swapped(trainer, model):  # the checkpoint's state_dict holds the EMA weights when EMA is on
        for key, value in model.state_dict().items():
            assert torch.equal(value, loaded.state_dict()[key]), key
        if isinstance(model, Sampler):
            assert torch.equal(_seeded(lambda: model.sample(4)), _seeded(lambda: loaded.sample(4)))
        if isinstance(model, DensityModel):
            with torch.no_grad():
                assert torch.equal(_seeded(lambda: model.log_prob(x)), _seeded(lambda: loaded.log_prob(x)))
    for key, value in model.state_dict().items():  # ... and load_model(ema=False) the live ones
        assert torch.equal(value, live.state_dict()[key]), key


def _ema_swapped(trainer, model):
    from contextlib import nullcontext

    from genlight.callbacks.ema import find_ema

    ema = find_ema(model)
    assert (ema is not None) == (model.ema_decay > 0), "EMA must be active exactly when the family asks for it"
    return ema.averaged(model) if ema is not None else nullcontext()


@pytest.mark.parametrize("name", MODELS)
def test_cli_instantiates_with_linked_shapes(name, tmp_path):
    model_cls = __import__("genlight").get_model_class(name)
    _, dm, _ = smoke_setup(name, tmp_path)
    data_args = [f"--data.{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in dm.hparams.items()]
    cli = GenlightCLI(
        args=["--model", name, "--data", model_cls.smoke_data, *data_args, "--trainer.logger", "false"], run=False
    )
    assert tuple(cli.model.hparams["image_shape"]) == tuple(dm.image_shape)
    for attr in ("num_levels", "num_classes"):
        if attr in cli.model.hparams:
            assert cli.model.hparams[attr] == getattr(cli.datamodule, attr)


@pytest.mark.parametrize("name", MODELS)
def test_trains_under_bf16_autocast(name, smoke_fit):
    """Lightning's ``bf16-mixed`` runs on the CPU too: losses must stay finite under autocast (logits
    losses, float32 likelihoods), and the weights stay float32."""
    model, _, trainer, _ = smoke_fit(name, precision="bf16-mixed")
    assert trainer.callback_metrics, "nothing was logged"
    for key, value in trainer.callback_metrics.items():
        assert math.isfinite(float(value)), f"{name}: {key} = {value} under bf16-mixed"
    assert all(p.dtype == torch.float32 for p in model.parameters())


MANUAL = [name for name in MODELS if name in list_models(tag="adversarial") or name == "test_mlp_gan"]


@pytest.mark.parametrize("name", MANUAL)
def test_manual_optimisation_under_fp16_autocast_with_a_grad_scaler(name, smoke_fit):
    """What ``16-mixed`` does on a GPU, on the CPU: fp16 autocast and a ``GradScaler`` (its scale set
    high so that it must act) under manual optimisation: ``manual_backward`` scales every loss and
    each optimizer step unscales, so the weights move by finite amounts and the losses stay finite
    (gradient penalties run in fp32, outside the scaler)."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    model, _, trainer, before = smoke_fit(name, plugins=[MixedPrecision("16-mixed", device="cpu", scaler=scaler)])
    assert scaler._scale is not None, f"{name}: the scaler was never used"
    for key, value in trainer.callback_metrics.items():
        assert math.isfinite(float(value)), f"{name}: {key} = {value} under fp16 autocast"
    moved = [n for n, p in model.named_parameters() if n in before and not torch.equal(p, before[n])]
    assert moved and all(torch.isfinite(p).all() for p in model.parameters()), f"{name}: no finite update"


@pytest.mark.slow  # ~40-75 s each: starting the two spawned processes dominates
@pytest.mark.parametrize("name", [n for n in MANUAL if n not in ("dcgan", "wgan_gp")])  # those two: test_adversarial.py
def test_manual_optimisation_families_under_two_process_ddp(name, tmp_path):
    """ddp_spawn on 2 CPU processes for every manual-optimisation family on its smoke data: the fit runs,
    ``find_unused_parameters`` is on (each backward reaches one network) and both ranks end with the same
    parameters, all of them trained."""
    from tests.helpers import RecordRank, cpu_trainer

    model, dm, trainer_kwargs = smoke_setup(name, tmp_path / "data")
    trainer = cpu_trainer(
        str(tmp_path), devices=2, strategy="ddp_spawn", max_epochs=1, limit_train_batches=2, limit_val_batches=0,
        callbacks=[RecordRank(str(tmp_path))], **trainer_kwargs,
    )  # fmt: skip
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer.fit(model, datamodule=dm)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["find_unused"] and r1["find_unused"] and r0["world_size"] == 2
    for k in r0["params"]:
        torch.testing.assert_close(r0["params"][k], r1["params"][k], rtol=0, atol=0, msg=f"{name}: {k}")
    untrained = [k for k in before if torch.equal(before[k], r0["params"][k])]
    assert not untrained, f"{name}: not trained under DDP: {untrained}"


def _parametrised(test) -> list[str]:
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return list(mark.args[1])


def test_test_only_families_are_in_the_harness(tmp_path):
    """The harness above runs every test-only family (registered like any plug-in), and among them the
    four kinds it must exercise, recognised by capability, not by name: a manual-optimisation GAN, a
    flow on toy2d, a conditional sampler and a translator."""
    harness = _parametrised(test_fit_capabilities_and_checkpoint)
    test_only = list_models(tag="test")
    assert test_only and not set(test_only) - set(harness), "test-only families left out of the harness"
    models = {name: smoke_setup(name, tmp_path / name)[0] for name in test_only}
    kinds = {
        "manual-optimisation GAN": [
            n for n, m in models.items() if isinstance(m, Sampler) and not m.automatic_optimization
            and n in _parametrised(test_manual_optimisation_under_fp16_autocast_with_a_grad_scaler)
        ],
        "flow on toy2d": [
            n for n, m in models.items()
            if isinstance(m, DensityModel) and m.log_prob_is_exact and type(m).smoke_data == "toy2d"
        ],
        "conditional sampler": [n for n, m in models.items() if isinstance(m, Sampler) and is_conditional(m)],
        "translator": [n for n, m in models.items() if isinstance(m, Translator)],
    }  # fmt: skip
    missing = [kind for kind, names in kinds.items() if not names]
    assert not missing, f"no test-only family is a {', '.join(missing)}"
