"""Adversarial autoencoder: latent priors by name, the two-phase step, prior matching, label supervision."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch

from genlight import create_datamodule, create_model
from genlight.errors import IncompatibleDataError
from genlight.nn.priors import (
    PRIORS,
    GaussianLatentPrior,
    MixtureOfGaussiansLatentPrior,
    SwissRollLatentPrior,
    gaussian_mmd,
    make_prior,
)
from genlight.types import Autoencoder, LatentGenerator, Sampler, is_conditional
from tests.helpers import cpu_trainer

TINY = {"latent_dim": 4, "hidden_channels": 8, "disc_hidden": 32}


# ---------------------------------------------------------------------- priors
@pytest.mark.parametrize("name,dim", [("gaussian", 3), ("mixture_of_gaussians", 2), ("mixture_of_gaussians", 5), ("swiss_roll", 2)])
def test_prior_samples_have_the_right_shape_and_are_seeded(name, dim):
    prior = make_prior(name, dim, 10, kind="sampler")
    z = prior.sample(7, generator=torch.Generator().manual_seed(3))
    assert z.shape == (7, dim) and z.dtype == torch.float32 and torch.isfinite(z).all()
    again = prior.sample(7, generator=torch.Generator().manual_seed(3))
    assert torch.equal(z, again)
    assert not prior.state_dict()  # nothing persistent: checkpoints are the same with any prior


def test_gaussian_prior_moments():
    z = GaussianLatentPrior(4).sample(20000, generator=torch.Generator().manual_seed(0))
    assert z.mean(0).abs().max() < 0.05
    assert (z.std(0) - 1).abs().max() < 0.05


@pytest.mark.parametrize("dim", [2, 6])
def test_mixture_components_sit_on_a_ring_and_labels_pick_them(dim):
    prior = MixtureOfGaussiansLatentPrior(dim, num_components=10, radius=4.0, std=0.5)
    means = prior.component_means()
    assert means.shape == (10, dim)
    assert torch.allclose(means[:, :2].norm(dim=1), torch.full((10,), 4.0), atol=1e-5)
    assert torch.equal(means[:, 2:], torch.zeros(10, dim - 2))
    angles = torch.atan2(means[:, 1], means[:, 0]).remainder(2 * math.pi)
    assert torch.allclose(angles, torch.arange(10) * 2 * math.pi / 10, atol=1e-5)
    gen = torch.Generator().manual_seed(0)
    for k in (0, 3, 9):
        z = prior.sample(4000, torch.full((4000,), k), generator=gen)
        assert (z.mean(0) - means[k]).abs().max() < 0.05, k
        assert (z.std(0) - 0.5).abs().max() < 0.03
        assert (prior.nearest_component(z) == k).float().mean() > 0.98  # components 2.5 apart, std 0.5
    # unlabelled draws cover every component about equally
    counts = torch.bincount(prior.nearest_component(prior.sample(5000, generator=gen)), minlength=10)
    assert counts.min() > 400


def test_swiss_roll_segments_follow_the_roll():
    prior = SwissRollLatentPrior(2, num_components=5, noise=0.0)
    gen = torch.Generator().manual_seed(0)
    means = prior.component_means()
    assert means.shape == (5, 2)
    for k in range(5):
        z = prior.sample(2000, torch.full((2000,), k), generator=gen)
        radius = z.norm(dim=1)  # radius 3 sqrt(u) with u in [k/5, (k+1)/5)
        assert radius.min() >= 3 * math.sqrt(k / 5) - 1e-4 and radius.max() <= 3 * math.sqrt((k + 1) / 5) + 1e-4
        assert (z.mean(0) - means[k]).norm() < 0.1
    assert torch.equal(prior.nearest_component(means), torch.arange(5))
    with pytest.raises(ValueError, match="latent_dim=2"):
        SwissRollLatentPrior(3)


def test_prior_label_errors():
    with pytest.raises(ValueError, match="no components"):
        GaussianLatentPrior(2).sample(3, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"ids in \[0, 10\)"):
        MixtureOfGaussiansLatentPrior(2).sample(2, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match=">= 2"):
        MixtureOfGaussiansLatentPrior(1)


def test_unknown_prior_name_lists_the_valid_ones():
    sampling = ("gaussian", "mixture_of_gaussians", "swiss_roll")
    assert tuple(PRIORS["sampler"]) == sampling
    with pytest.raises(ValueError) as err:
        make_prior("laplace", 2, kind="sampler")
    assert all(name in str(err.value) for name in sampling)
    for name in ("laplace", "vamp"):  # vamp has a density but cannot be drawn without an encoder
        with pytest.raises(ValueError) as err:
            create_model("aae", prior=name)
        assert name in str(err.value) and all(valid in str(err.value) for valid in sampling)
        assert "mog" not in str(err.value)  # only the names an AAE takes


def test_gaussian_mmd_separates_distributions():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(400, 2, generator=gen), torch.randn(400, 2, generator=gen)
    same = gaussian_mmd(a, b)
    shifted = gaussian_mmd(a, b + 1.0)
    assert abs(float(same)) < 0.02 and shifted > 10 * abs(same) and shifted > 0.05
    with pytest.raises(ValueError):
        gaussian_mmd(a[:1], b)


# ---------------------------------------------------------------------- model
def test_capabilities_shapes_and_label_errors():
    torch.manual_seed(0)
    model = create_model("aae", **TINY).eval()
    assert isinstance(model, (Sampler)) and isinstance(model, Autoencoder) and isinstance(model, LatentGenerator)
    assert not is_conditional(model)
    x = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert model.encode(x).shape == (5, 4)
        assert model.decode(model.encode(x)).shape == x.shape
        images = model.sample(6)
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    with pytest.raises(ValueError, match="unsupervised"):
        model.sample(2, y=torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="mixture_of_gaussians"):
        create_model("aae", supervised=True, prior="gaussian")
    with pytest.raises(IncompatibleDataError, match="labelled"):
        create_model("aae", supervised=True, prior="mixture_of_gaussians", num_classes=0)


def test_gaussian_posterior_encodes_its_mean():
    torch.manual_seed(0)
    model = create_model("aae", posterior="gaussian", sample_mode="draw", **TINY).eval()
    x = torch.rand(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model.encode(x), model.encode(x))  # the mean, no noise
        z1, mean = model.posterior_sample(x)
        assert not torch.equal(z1, mean) and torch.equal(mean, model.encode(x))
        levels = model.sample(3) * 16  # drawn pixels sit on the 17-level grid
    assert torch.allclose(levels, levels.round(), atol=1e-5)


def test_code_norm_starts_codes_at_the_prior_moments():
    """``code_norm``: batch norm on the code with its affine part at the prior's per-dimension mean and
    std, so in training mode a batch of codes has the prior's first two moments from the first step."""
    torch.manual_seed(0)
    model = create_model("aae", prior="mixture_of_gaussians", code_norm=True, **TINY)
    draws = model.prior.sample(20000, generator=torch.Generator().manual_seed(1))
    x = torch.rand(256, 1, 8, 8)
    z, _ = model.posterior_sample(x)
    assert torch.allclose(z.mean(0), draws.mean(0), atol=0.1)
    assert torch.allclose(z.std(0), draws.std(0), rtol=0.05, atol=0.05)
    assert draws[:, 0].std() > 2.5  # the ring of radius 4: far from the unit spread of a plain batch norm
    model.eval()
    assert torch.isfinite(model.encode(x)).all()


def _fit(model, epochs: int, subset: int, batch_size: int = 64, **trainer):
    torch.set_num_threads(1)
    dm = create_datamodule("digits", batch_size=batch_size, subset=subset)
    trainer = cpu_trainer(max_epochs=epochs, limit_val_batches=0, num_sanity_val_steps=0, **trainer)
    trainer.fit(model, datamodule=dm)
    return trainer, dm


def test_one_step_is_three_phases_and_adversarial_steps_leave_the_decoder_alone():
    """With the reconstruction learning rate 0 only the D step and the encoder's adversarial step move
    weights: the decoder stays, the encoder and D change; global_step counts three optimizer steps a batch."""
    pl.seed_everything(0, verbose=False)
    model = create_model("aae", **TINY)
    model.hparams.lr = 0.0  # freeze the reconstruction phase (lr 0 is refused as an argument: genlight.ranges)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer, _ = _fit(model, epochs=1, subset=64, batch_size=32)
    assert trainer.global_step == 3 * 2
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("encoder."))
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("discriminator."))
    for name in ("train/recon", "train/d_loss", "train/g_loss"):
        assert name in trainer.callback_metrics


def test_validation_logs_recon_as_loss_and_prior_match():
    pl.seed_everything(0, verbose=False)
    model = create_model("aae", **TINY)
    dm = create_datamodule("digits", batch_size=64, subset=64)
    trainer = cpu_trainer(max_epochs=1, limit_train_batches=1)
    trainer.fit(model, datamodule=dm)
    metrics = trainer.callback_metrics
    assert float(metrics["val/loss"]) == pytest.approx(float(metrics["val/recon"]))
    assert float(metrics["val/loss"]) > 0 and math.isfinite(float(metrics["val/mmd"]))
    assert model.checkpoint_monitor() == ("val/loss", "min")


@torch.no_grad()
def _prior_mmd(model, dm) -> float:
    model.eval()
    x = torch.cat([b[0] for b in dm.train_dataloader()])
    z = model.encode(x)  # deterministic posterior: the code itself
    prior = model.prior.sample(len(z), generator=torch.Generator().manual_seed(0))
    model.train()
    return float(gaussian_mmd(z, prior, bandwidths=(0.5, 1.0, 2.0)))


@pytest.mark.slow
@pytest.mark.parametrize("code_norm", [True, False])
def test_aggregated_posterior_matches_the_prior_better_after_a_short_run(code_norm):
    """MMD² (Gaussian kernels, fixed bandwidths) between the codes of the training images (eval mode) and
    as many seeded prior draws falls after a short run (6 epochs, ~120 batches): the regularisation
    phase moves q(z) towards p(z) = N(0, I). Slow: ~20-30 s of wall clock on the loaded 2-core machine."""
    pl.seed_everything(0, verbose=False)
    model = create_model("aae", latent_dim=4, hidden_channels=8, disc_hidden=64, code_norm=code_norm)
    dm = create_datamodule("digits", batch_size=64)
    dm.setup("fit")
    initial = _prior_mmd(model, dm)
    _fit(model, epochs=6, subset=None)
    trained = _prior_mmd(model, dm)
    assert trained < 0.7 * initial, (initial, trained)


@pytest.mark.slow
def test_supervised_codes_fall_on_their_class_component():
    """Label-supervised AAE (Makhzani §2.3): after a short run (10 epochs), the code of an example of
    class k is nearest to component k for far more validation images than chance (1/10). Slow: ~30 s."""
    pl.seed_everything(0, verbose=False)
    model = create_model(
        "aae", prior="mixture_of_gaussians", supervised=True, latent_dim=2, hidden_channels=16, disc_hidden=128,
        code_norm=True,
    )  # fmt: skip
    assert is_conditional(model) and model.num_classes == 10
    _, dm = _fit(model, epochs=10, subset=None)
    model.eval()
    x, y = (torch.cat(t) for t in zip(*dm.val_dataloader()))
    with torch.no_grad():
        hits = (model.prior.nearest_component(model.encode(x)) == y).float().mean()
        assert hits > 0.35, float(hits)
        # sample(n, y=k) decodes draws of component k
        z = model.sample_latent(200, torch.full((200,), 7))
        assert (model.prior.nearest_component(z) == 7).float().mean() > 0.95
        assert model.sample(4, y=torch.tensor([0, 1, 2, 3])).shape == (4, 1, 8, 8)
