"""The VAE family's bounds are true bounds, for every prior and for the conditional VAE.

* IWAE with k=1 is the ELBO with the same noise (the KL estimated at that ``z``); with larger k it is
  not below the ELBO (seeded, averaged over the batch).
* The Monte Carlo KL is unbiased against the closed form for ``N(0, I)``; mixture densities match
  ``torch.distributions``.
* With a 1-d latent, ``log p(x)`` and the expected ELBO by quadrature (as in tests/test_vae_bound.py):
  ELBO < log p(x) ~= IWAE(k large) for the MoG and VampPrior, and for cvae's label-free bound.
* beta_vae trains with its beta (or KL capacity) and reports the beta=1 bound; cvae samples differ by
  class and it refuses unlabelled data before training.
"""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from genlight import create_datamodule, create_model
from genlight.functional import bits_per_dim
from genlight.errors import IncompatibleDataError
from genlight.nn.priors import DiagonalGaussianMixture, gaussian_log_prob, kl_monte_carlo, kl_standard_normal
from tests.helpers import cpu_trainer

pytestmark = pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")

PRIORS = ["gaussian", "vamp", "mog"]
CASES = [("vae", p) for p in PRIORS] + [("cvae", "gaussian"), ("cvae", "mog")]


def _model(family: str, prior: str, **kwargs):
    torch.manual_seed(0)
    model = create_model(family, prior=prior, prior_components=5, latent_dim=4, hidden_channels=8, **kwargs).eval()
    with torch.no_grad():  # make p(x|z) depend strongly on z, so bound gaps are visible
        model.decoder.head.weight.mul_(4.0)
    return model


def _batch(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    dm = create_datamodule("digits", batch_size=n)
    dm.setup("fit")
    return next(iter(dm.val_dataloader()))


def _labels_kwargs(family: str, y: torch.Tensor) -> dict:
    return {"y": y} if family == "cvae" else {}


# ---------------------------------------------------------------------------------------- IWAE vs ELBO
@pytest.mark.parametrize(("family", "prior"), CASES)
@torch.no_grad()
def test_iwae_with_one_sample_is_the_elbo_with_the_same_noise(family, prior):
    model = _model(family, prior)
    x, y = _batch(8)
    labels = _labels_kwargs(family, y)
    torch.manual_seed(3)
    nll, kl = model.elbo_terms(x, **labels)
    torch.manual_seed(3)  # the same z, drawn again by hand
    mu, logvar = model.posterior(x, **labels)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    kl_mc = kl_monte_carlo(z, mu, logvar, model.prior_distribution())
    if prior != "gaussian":  # no closed form: the ELBO's KL is this very estimate
        torch.testing.assert_close(kl, kl_mc)
    torch.manual_seed(3)
    log_w = model.log_weights(x, 1, **labels)
    assert log_w.shape == (1, len(x))
    torch.testing.assert_close(log_w[0], -(nll + kl_mc), rtol=1e-5, atol=1e-3)
    torch.manual_seed(3)
    iwae1 = model.log_prob(x, num_samples=1, **labels)  # the ELBO path
    torch.testing.assert_close(iwae1, -(nll + kl))


@pytest.mark.parametrize(("family", "prior"), CASES)
@torch.no_grad()
def test_iwae_with_more_samples_is_not_below_the_elbo(family, prior):
    model = _model(family, prior)
    x, y = _batch(32)
    labels = _labels_kwargs(family, y)
    torch.manual_seed(5)
    elbo = torch.stack([model.log_prob(x, num_samples=1, **labels) for _ in range(16)]).mean()
    iwae8 = model.log_prob(x, num_samples=8, **labels).mean()
    iwae32 = model.log_prob(x, num_samples=32, **labels).mean()
    assert iwae8 > elbo and iwae32 > elbo, (elbo, iwae8, iwae32)
    # chunking the k samples changes nothing but the memory used
    torch.manual_seed(6)
    whole = model.log_weights(x, 10, **labels)
    torch.manual_seed(6)
    chunked = model.log_weights(x, 10, chunk_size=3 * len(x), **labels)
    torch.testing.assert_close(whole, chunked)


# ---------------------------------------------------------------------------------------- KL and densities
def test_monte_carlo_kl_is_unbiased_for_the_gaussian_prior():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 3, generator=g), torch.randn(6, 3, generator=g).clamp(-2, 1)
    prior = create_model("vae", latent_dim=3).prior_distribution()
    n = 200_000
    z = mu + torch.randn(n, 6, 3, generator=g) * torch.exp(0.5 * logvar)
    estimates = kl_monte_carlo(z, mu, logvar, prior)  # (n, 6)
    closed = kl_standard_normal(mu, logvar)
    stderr = estimates.std(0) / math.sqrt(n)
    assert ((estimates.mean(0) - closed).abs() < 4 * stderr + 1e-4).all(), (estimates.mean(0), closed)
    assert torch.equal(prior.kl(z[0], mu, logvar), closed)  # the ELBO uses the closed form


def test_mixture_density_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    means, logvars, logits = torch.randn(4, 3, generator=g), torch.randn(4, 3, generator=g), torch.randn(4, generator=g)
    mixture = DiagonalGaussianMixture(means, logvars, logits)
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits),
        torch.distributions.Independent(torch.distributions.Normal(means, torch.exp(0.5 * logvars)), 1),
    )
    z = torch.randn(7, 2, 3, generator=g)
    torch.testing.assert_close(mixture.log_prob(z), reference.log_prob(z))
    standard = DiagonalGaussianMixture(torch.zeros(1, 3), torch.zeros(1, 3), standard=True)
    torch.testing.assert_close(standard.log_prob(z), gaussian_log_prob(z, torch.zeros(3), torch.zeros(3)))
    torch.manual_seed(0)
    draws = mixture.sample(40_000)
    torch.testing.assert_close(draws.mean(0), reference.mean, atol=0.05, rtol=0)


@pytest.mark.parametrize("prior", PRIORS)
@torch.no_grad()
def test_samples_and_latents_come_from_the_chosen_prior(prior):
    model = _model("vae", prior)
    p = model.prior_distribution()
    assert p.num_components == (1 if prior == "gaussian" else 5)
    torch.manual_seed(2)
    z = model.sample_latent(20_000)
    torch.testing.assert_close(z.mean(0), (p.log_weights.exp()[:, None] * p.means).sum(0), atol=0.06, rtol=0)
    images = model.sample(6)
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1


def test_unknown_or_sampling_only_prior_is_refused_before_anything_is_built():
    """The VAE takes the priors with a density (the one prior registry, kind ``density``)."""
    for name in ("laplace", "swiss_roll"):  # swiss_roll serves the AAE: no log p(z) to put in the KL
        with pytest.raises(ValueError) as err:
            create_model("vae", prior=name)
        message = str(err.value)
        assert name in message and all(valid in message for valid in PRIORS) and "mixture_of_gaussians" not in message
    with pytest.raises(ValueError, match=r"prior_components must be an integer in \[1, 4096\], got 0"):
        create_model("vae", prior="vamp", prior_components=0)


# ---------------------------------------------------------------------------------------- exact log p(x), 1-d latent
GRID = torch.linspace(-12, 12, 6001).unsqueeze(1)
DZ = 24 / 6000


def _quadrature(log_px_z: torch.Tensor, log_pz: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor):
    """Exact ``log p(x)`` and expected ELBO on the grid; ``log_px_z`` ``(B, grid)``, ``mu`` ``(B, 1)``."""
    exact = torch.logsumexp(log_px_z + log_pz, 1) + math.log(DZ)
    log_q = gaussian_log_prob(GRID.unsqueeze(0), mu.unsqueeze(1), logvar.unsqueeze(1))  # (B, grid)
    q = log_q.exp()
    elbo = (q * (log_px_z + log_pz - log_q)).sum(1) * DZ
    return exact, elbo


def _tiny(family: str, prior: str, **kwargs):
    torch.manual_seed(0)
    model = create_model(
        family, latent_dim=1, hidden_channels=4, image_shape=(1, 4, 4), num_levels=3, prior=prior,
        prior_components=3, **kwargs,
    ).eval()  # fmt: skip
    with torch.no_grad():
        model.decoder.head.weight.mul_(8.0)
        if prior == "mog":  # three well separated modes of different widths and weights
            model.prior.means.copy_(torch.tensor([[-3.0], [0.5], [3.0]]))
            model.prior.logvars.copy_(torch.tensor([[-1.0], [-2.0], [0.0]]))
            model.prior.logits.copy_(torch.tensor([0.5, -0.5, 0.0]))
    return model


@pytest.mark.parametrize("prior", ["mog", "vamp"])
@torch.no_grad()
def test_bound_stays_below_exact_log_likelihood(prior):
    model = _tiny("vae", prior)
    torch.manual_seed(1)
    x = torch.randint(0, 3, (4, 1, 4, 4)).float() / 2
    params = model.decoder(GRID)
    log_px_z = torch.stack([model.likelihood.log_prob(params, xi.expand(len(GRID), -1, -1, -1)) for xi in x])
    log_pz = model.prior_distribution().log_prob(GRID)  # (grid,)
    mu, logvar = model.posterior(x)
    exact, expected_elbo = _quadrature(log_px_z, log_pz, mu, logvar)

    estimated_elbo = model.log_prob(x.repeat(2000, 1, 1, 1), num_samples=1).view(2000, 4).mean(0)
    gap = exact - expected_elbo
    assert (gap > 0.05).all(), "the test needs a visible gap"
    assert torch.allclose(estimated_elbo, expected_elbo, rtol=0, atol=0.1 + 0.02 * gap.max()), (estimated_elbo, expected_elbo)
    # IWAE is a bound in expectation; one draw may overshoot (the untrained encoder misses the prior's
    # modes, so the weights are heavy-tailed): compare the mean of 8 draws, within 3 standard errors
    draws = torch.stack([model.log_prob(x, num_samples=2500) for _ in range(8)])
    iwae, sem = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert (iwae > expected_elbo).all() and (iwae < exact + 3 * sem + 0.01).all(), (iwae, exact, sem)
    assert ((iwae - exact).abs() < 0.05 + 3 * sem).all(), (iwae, exact, sem)


@torch.no_grad()
def test_cvae_label_free_bound_stays_below_exact_log_likelihood():
    """``log p(x) = log 1/K sum_y int p(x|z,y) p(z) dz`` by quadrature, against the label-free bound."""
    model = _tiny("cvae", "gaussian", num_classes=3)
    torch.manual_seed(1)
    x = torch.randint(0, 3, (4, 1, 4, 4)).float() / 2
    log_pz = model.prior_distribution().log_prob(GRID)
    exact_y, elbo_y = [], []
    for k in range(3):
        y = torch.full((len(GRID),), k)
        params = model.decoder_given(y)(GRID)
        log_px_z = torch.stack([model.likelihood.log_prob(params, xi.expand(len(GRID), -1, -1, -1)) for xi in x])
        mu, logvar = model.posterior(x, torch.full((4,), k))
        exact, elbo = _quadrature(log_px_z, log_pz, mu, logvar)
        exact_y.append(exact)
        elbo_y.append(elbo)
    exact_y, elbo_y = torch.stack(exact_y, 1), torch.stack(elbo_y, 1)  # (B, K)
    exact = torch.logsumexp(exact_y, 1) - math.log(3)
    expected_marginal_elbo = torch.logsumexp(elbo_y, 1) - math.log(3)
    gap = exact - expected_marginal_elbo
    assert (gap > 0.01).all() and gap.max() > 0.2, "the test needs a visible gap"
    torch.testing.assert_close(  # conditional ELBO with labels, estimated, against quadrature
        model.log_prob(x.repeat(2000, 1, 1, 1), torch.ones(8000, dtype=torch.long)).view(2000, 4).mean(0),
        elbo_y[:, 1], atol=0.1 + 0.02 * (exact_y[:, 1] - elbo_y[:, 1]).max(), rtol=0,
    )  # fmt: skip
    draws = torch.stack([model.log_prob(x, num_samples=2000) for _ in range(4)])  # 2000 draws per class, pooled
    iwae, sem = draws.mean(0), draws.std(0) / 2
    assert ((iwae - exact).abs() < 0.05 + 3 * sem).all() and (iwae < exact + 3 * sem + 0.01).all(), (iwae, exact)
    marginal_elbo = model.log_prob(x.repeat(500, 1, 1, 1), num_samples=1).view(500, 4).mean(0)  # E <= log p(x)
    assert (marginal_elbo < exact).all() and (marginal_elbo > expected_marginal_elbo - 0.1).all()


# ---------------------------------------------------------------------------------------- beta_vae
def test_beta_vae_defaults_and_capacity_schedule():
    model = create_model("beta_vae")
    assert model.hparams.beta > 1 and model.hparams.capacity_max == 0
    capped = create_model("beta_vae", capacity_max=20.0, capacity_steps=100, gamma=10.0, latent_dim=4, hidden_channels=8)
    assert [capped.capacity(t) for t in (0, 50, 100, 400)] == [0.0, 10.0, 20.0, 20.0]
    x, y = _batch(16)
    torch.manual_seed(4)
    loss = capped.training_step((x, y), 0)
    torch.manual_seed(4)
    nll, kl = capped.elbo_terms(x)
    torch.testing.assert_close(loss, nll.mean() + 10.0 * (kl.mean() - 0.0).abs())  # C(0) = 0
    with pytest.raises(ValueError, match="capacity_steps"):
        create_model("beta_vae", capacity_steps=0)


def test_beta_vae_trains_with_beta_and_reports_the_beta_one_bound(tmp_path):
    dm = create_datamodule("digits", batch_size=64)
    torch.manual_seed(0)
    model = create_model("beta_vae", beta=4.0, latent_dim=4, hidden_channels=8, lr=3e-3)
    x, y = _batch(16)
    torch.manual_seed(4)
    loss = model.training_step((x, y), 0)
    torch.manual_seed(4)
    nll, kl = model.elbo_terms(x)
    torch.testing.assert_close(loss, (nll + 4.0 * kl).mean())

    # beta=4 alone collapses q(z|x) onto the prior in a short run (KL ~ 0, both figures agree); a KL
    # capacity of 15 nats keeps the KL large, so the reported figure can tell beta=1 from beta=4
    model.hparams.capacity_max, model.hparams.capacity_steps, model.hparams.gamma = 15.0, 1, 5.0
    trainer = cpu_trainer(str(tmp_path), max_epochs=2, limit_train_batches=10)
    trainer.fit(model, datamodule=dm)
    model.eval()
    metrics = trainer.callback_metrics
    reported = float(metrics["val/bpd_bound"])
    with torch.no_grad():  # the same split, fresh noise: beta=1 and beta=4 "bounds"
        terms = [model.elbo_terms(xb) for xb, _ in dm.val_dataloader()]
    nll, kl = torch.cat([t[0] for t in terms]), torch.cat([t[1] for t in terms])
    beta1 = float(bits_per_dim(-(nll + kl), 64).mean())
    beta4 = float(bits_per_dim(-(nll + 4.0 * kl), 64).mean())
    assert kl.mean() > 1.0, "the KL must be non-trivial for the test to tell beta=1 from beta=4"
    assert abs(reported - beta1) < 0.1 and abs(reported - beta4) > 0.5, (reported, beta1, beta4)
    assert abs(float(metrics["val/loss"]) - float((nll + 4.0 * kl).mean())) < 0.03 * float(metrics["val/loss"])


# ---------------------------------------------------------------------------------------- cvae
@torch.no_grad()
def test_cvae_samples_and_decodes_differ_by_class():
    model = _model("cvae", "gaussian")
    outs = []
    for k in range(3):
        torch.manual_seed(7)
        outs.append(model.sample(16, y=k))
    assert not torch.equal(outs[0], outs[1]) and not torch.equal(outs[1], outs[2])
    z = model.sample_latent(4)
    means = [model.decode(z, y=torch.full((4,), k)) for k in range(10)]
    assert (means[0] - means[1]).abs().max() > 1e-3
    torch.testing.assert_close(model.decode(z), torch.stack(means).mean(0))  # no label: uniform class prior
    x, y = _batch(8)
    assert model.encode(x, y=y).shape == (8, 4) and model.decode(model.encode(x, y=y), y=y).shape == x.shape
    torch.testing.assert_close(model.encode(x), model.encode(x, y=model.classify(x)))
    with pytest.raises(ValueError, match="class ids"):
        model.sample(2, y=torch.tensor([0, 10]))


@torch.no_grad()
def test_cvae_label_free_bound_pools_the_importance_weights_of_all_classes():
    """``log_prob(x)`` is ``logsumexp`` over classes and draws of the log-weights, ``- log(kK)``
    (tests/test_cvae_bound.py: why not a logsumexp over per-class bounds)."""
    model = _model("cvae", "gaussian")
    x, y = _batch(8)
    for k in (1, 3):
        torch.manual_seed(8)
        log_w = torch.cat([model.log_weights(x, k, y=torch.full((8,), c)) for c in range(10)])  # (10k, 8)
        torch.manual_seed(8)
        marginal = model.log_prob(x, num_samples=k)
        torch.testing.assert_close(marginal, torch.logsumexp(log_w, 0) - math.log(10 * k))
        own_class = log_w.view(10, k, 8)[y, :, torch.arange(8)]  # (8, k): the draws of each image's own label
        assert (marginal >= torch.logsumexp(own_class, 1) - math.log(10 * k) - 1e-4).all()


class _UnlabelledDigits(type(create_datamodule("digits"))):
    num_classes = 0


def test_cvae_refuses_unlabelled_data_before_training(tmp_path):
    with pytest.raises(IncompatibleDataError, match="labelled"):
        create_model("cvae", num_classes=0)
    model = create_model("cvae", latent_dim=4, hidden_channels=8)
    before = [p.detach().clone() for p in model.parameters()]
    trainer = cpu_trainer(str(tmp_path), fast_dev_run=True)
    with pytest.raises(IncompatibleDataError, match="unlabelled"):
        trainer.fit(model, datamodule=_UnlabelledDigits())
    assert trainer.global_step == 0 and all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_cvae_cli_refuses_a_flat_image_folder(tmp_path):
    from genlight.cli import GenlightCLI

    for i in range(4):
        Image.fromarray((torch.rand(8, 8) * 255).byte().numpy()).save(tmp_path / f"{i}.png")
    args = ["--model", "cvae", "--data", "image_folder", f"--data.data_dir={tmp_path}", "--data.image_size=8",
            "--data.channels=1", "--trainer.logger", "false"]  # fmt: skip
    with pytest.raises(ValueError, match="cvae needs labelled data"):  # jsonargparse wraps the IncompatibleDataError
        GenlightCLI(args=args, run=False)


@pytest.mark.slow
def test_cvae_samples_are_recognised_as_their_class(tmp_path):
    """After a short fit, the digits classifier of the FID extractor reads most samples as the asked class."""
    from genlight.metrics import create_extractor

    torch.manual_seed(0)
    model = create_model("cvae", latent_dim=8, hidden_channels=32, lr=2e-3)
    cpu_trainer(str(tmp_path), max_epochs=25).fit(model, datamodule=create_datamodule("digits", batch_size=64))
    model.eval()
    y = torch.arange(10).repeat_interleave(50)
    torch.manual_seed(1)
    _, logits = create_extractor("digits")(model.sample(len(y), y=y))
    accuracy = (logits.argmax(1) == y).float().mean()
    assert accuracy > 0.8, accuracy


# ---------------------------------------------------------------------------------------- example configs
@pytest.mark.parametrize(
    ("example", "family", "prior"),
    [("digits/beta_vae.yaml", "BetaVAE", "gaussian"), ("digits/cvae.yaml", "CVAE", "gaussian"),
     ("digits/vae_vamp.yaml", "VAE", "vamp"), ("mnist/beta_vae.yaml", "BetaVAE", "gaussian"),
     ("mnist/cvae.yaml", "CVAE", "gaussian"), ("cifar10/cvae.yaml", "CVAE", "gaussian")],
)  # fmt: skip
def test_example_configs_instantiate(example, family, prior, tmp_path):
    from pathlib import Path

    from genlight.cli import GenlightCLI

    args = ["--config", str(Path(__file__).parents[1] / "examples" / example),
            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false"]  # fmt: skip
    cli = GenlightCLI(args=args, run=False)
    model, dm = cli.model, cli.datamodule
    assert type(model).__name__ == family and model.hparams.prior == prior
    assert tuple(model.hparams.image_shape) == tuple(dm.image_shape) and model.hparams.num_levels == dm.num_levels
    if family == "CVAE":
        assert model.num_classes == dm.num_classes == 10
    monitors = [c.monitor for c in cli.trainer.checkpoint_callbacks if c.monitor]
    assert monitors and all(m == "val/bpd_bound" for m in monitors)
