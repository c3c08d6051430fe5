"""Every registered model, the moment it is registered: build, fit, capabilities, checkpoint round trip."""

from __future__ import annotations

import math

import pytest
import torch

from genlight import list_models, load_model
from genlight.cli import GenlightCLI
from genlight.types import Autoencoder, DensityModel, Sampler
from tests.helpers import build_model, tiny_trainer

MODELS = list_models()


@pytest.mark.parametrize("name", MODELS)
def test_fit_capabilities_and_checkpoint(name, digits, tmp_path):
    model = build_model(name, digits)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    trainer = tiny_trainer()
    trainer.fit(model, datamodule=digits)

    for key, value in trainer.callback_metrics.items():
        assert math.isfinite(float(value)), f"{name}: {key} = {value}"
    unchanged = [n for n, p in model.named_parameters() if p.requires_grad and torch.equal(p, before[n])]
    assert not unchanged, f"{name}: parameters not trained by one step: {unchanged}"

    model.eval()
    x = next(iter(digits.val_dataloader()))[0][:5]
    if isinstance(model, Sampler):
        samples = model.sample(6)
        assert samples.shape == (6, *digits.image_shape)
        assert torch.isfinite(samples).all() and samples.min() >= 0 and samples.max() <= 1
    if isinstance(model, DensityModel):
        assert isinstance(model.log_prob_is_exact, bool)
        with torch.no_grad():
            lp = model.log_prob(x)
        assert lp.shape == (5,) and torch.isfinite(lp).all()
        assert (lp <= 1e-4).all(), "log-probabilities of discrete images cannot be positive"
    if isinstance(model, Autoencoder):
        with torch.no_grad():
            assert model.decode(model.encode(x)).shape == x.shape

    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_model(path)
    assert type(loaded) is type(model)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    if isinstance(model, Sampler):
        torch.manual_seed(1)
        a = model.sample(4)
        torch.manual_seed(1)
        b = loaded.sample(4)
        assert torch.equal(a, b)


@pytest.mark.parametrize("name", MODELS)
def test_cli_instantiates_with_linked_shapes(name):
    cli = GenlightCLI(args=["--model", name, "--data", "digits", "--trainer.logger", "false"], run=False)
    assert cli.model.hparams["image_shape"] == (1, 8, 8)
    for attr in ("num_levels", "num_classes"):
        if attr in cli.model.hparams:
            assert cli.model.hparams[attr] == getattr(cli.datamodule, attr)


@pytest.mark.parametrize("name", MODELS)
def test_trains_under_bf16_autocast(name, digits):
    """Lightning's ``bf16-mixed`` runs on the CPU too: losses must stay finite under autocast (logits
    losses, float32 likelihoods), and the weights stay float32."""
    model = build_model(name, digits)
    trainer = tiny_trainer(precision="bf16-mixed")
    trainer.fit(model, datamodule=digits)
    assert trainer.callback_metrics, "nothing was logged"
    for key, value in trainer.callback_metrics.items():
        assert math.isfinite(float(value)), f"{name}: {key} = {value} under bf16-mixed"
    assert all(p.dtype == torch.float32 for p in model.parameters())
