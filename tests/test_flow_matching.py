"""Flow matching: the solvers' order of accuracy, the ODE likelihood against a closed form and the
Hutchinson trace against the exact one, all on Gaussian data where the exact velocity field is known:
for ``x_1 ~ N(μ, s² I)`` and the straight path (``σ_min = 0``) the marginal is ``p_t = N(t μ, σ_t² I)``,
``σ_t² = (1 - t)² + t² s²``, its velocity ``v(x, t) = μ + (σ_t'/σ_t)(x - t μ)`` and the flow of
``x_0`` is ``x_1 = μ + s x_0``."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from genlight import create_model
from genlight.errors import ConfigError, IncompatibleDataError
from genlight.modules.flow_matching import TIME_SCALE
from genlight.nn.ode import divergence, evaluations
from genlight.types import DensityModel, capabilities
from tests.helpers import build_model, cpu_trainer, digits_datamodule

MU = torch.tensor([1.5, -0.5])
S = 0.4


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these tests use small tensors, and the machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class GaussianVelocity(nn.Module):
    """The exact marginal velocity of the straight path from ``N(0, I)`` to ``N(MU, S² I)`` (module docstring);
    called as the family's net, ``(x, t * TIME_SCALE, y)``."""

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        t = (t / TIME_SCALE)[:, None].to(x.dtype)  # (B, 1)
        sigma = ((1 - t) ** 2 + t**2 * S**2).sqrt()
        dsigma = (-(1 - t) + t * S**2) / sigma
        mu = MU.to(x)
        return mu + dsigma / sigma * (x - t * mu)


def gaussian_model(**kwargs) -> torch.nn.Module:
    model = create_model("flow_matching", image_shape=(2,), num_levels=0, **kwargs)
    model.net = GaussianVelocity()
    return model.eval()


def exact_log_prob(x: Tensor) -> Tensor:
    return torch.distributions.Normal(MU.double(), S).log_prob(x.double()).sum(1)


@pytest.mark.parametrize(("sampler", "order"), [("euler", 1), ("midpoint", 2), ("heun", 2)])
def test_sampler_error_falls_with_its_order(sampler: str, order: int) -> None:
    """Halving the step halves Euler's endpoint error (1st order) and at least quarters midpoint's and
    Heun's (2nd order; midpoint does better on this linear field)."""
    model = gaussian_model()
    noise = torch.randn(256, 2, generator=torch.Generator().manual_seed(0))
    target = MU + S * noise
    steps = (8, 16, 32, 64)
    errors = [float((model.generate(noise, sampler=sampler, steps=k) - target).abs().max()) for k in steps]
    rates = [math.log2(a / b) for a, b in zip(errors, errors[1:])]  # the observed order
    if order == 1:
        assert all(abs(r - 1) < 0.2 for r in rates), (sampler, errors, rates)
    else:
        assert all(r > 1.6 for r in rates[1:]) and rates[-1] > 1.8, (sampler, errors, rates)
    assert errors[-1] < (0.05 if order == 1 else 1e-3), errors


def test_samples_follow_the_target_gaussian() -> None:
    model = gaussian_model(sample_steps=10)
    torch.manual_seed(1)
    x = model.sample(4000)  # heun, 20 evaluations
    assert torch.allclose(x.mean(0), MU, atol=0.03) and torch.allclose(x.std(0), torch.full((2,), S), atol=0.02)
    assert evaluations("heun", 10) == 20 and evaluations("euler", 10) == 10


def test_log_prob_on_points_matches_the_closed_form() -> None:
    """The ODE likelihood with the exact trace reaches ``log N(x; μ, s² I)`` as the steps grow (2nd order)."""
    model = gaussian_model()
    x = MU + S * torch.randn(64, 2, generator=torch.Generator().manual_seed(2)) * 1.5
    exact = exact_log_prob(x)
    errors = [float((model.log_prob(x, steps=k).double() - exact).abs().max()) for k in (10, 20, 40)]
    assert errors[-1] < 0.01, errors
    assert errors[0] > errors[1] > errors[2] and errors[1] / errors[2] > 3, errors  # second order


def test_hutchinson_is_unbiased_for_the_exact_trace() -> None:
    """On a random U-Net velocity over 1x8x8 images, the mean of many Rademacher and Gaussian probes
    matches the exact trace (64 backward passes) within 4 standard errors; on points, so does the mean
    of the Hutchinson ``log_prob`` the exact ``log_prob``."""
    torch.manual_seed(0)
    model = create_model("flow_matching", image_shape=(1, 8, 8), channels=8).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))  # a field with a trace far from 0
    x = torch.randn(2, 1, 8, 8)
    exact = divergence(lambda z: model.velocity(z, 0.5), x, "exact")[1]  # (2,)
    r = 800
    xs = x.repeat(r, 1, 1, 1)  # (2r, 1, 8, 8): probe draws in the batch
    for kind in ("rademacher", "gaussian"):
        eps = torch.randn(xs.shape)
        if kind == "rademacher":
            eps = torch.sign(eps)
        draws = divergence(lambda z: model.velocity(z, 0.5), xs, "hutchinson", eps)[1].view(r, 2)
        mean, error = draws.mean(0), draws.std(0) / math.sqrt(r)
        assert ((mean - exact).abs() < 4 * error).all(), (kind, mean, exact, error)
        assert (error < 0.3).all(), error  # 4 standard errors resolve a bias of about a nat
    # the Gaussian field's Jacobian is c I: Rademacher probes give c d exactly, Gaussian ones vary
    points = gaussian_model(trace="hutchinson", hutchinson_noise="gaussian", likelihood_steps=4)
    p = MU + S * torch.randn(3, 2)
    draws = points.log_prob_draws(p.repeat(1000, 1), 1, seed=0)[0].view(1000, 3).double()
    reference = gaussian_model(likelihood_steps=4).log_prob(p).double()
    assert ((draws.mean(0) - reference).abs() < 4 * draws.std(0) / math.sqrt(1000) + 1e-4).all()
    assert (draws.std(0) > 1e-3).all()  # the probes do vary


def test_likelihood_is_labelled_an_estimate() -> None:
    images = create_model("flow_matching", channels=8)
    points = gaussian_model()
    assert isinstance(images, DensityModel) and not images.log_prob_is_exact and images.log_prob_is_estimate
    assert images.density_label == "bpd_estimate" and points.density_label == "nll_estimate"
    assert images.trace_method == "hutchinson" and points.trace_method == "exact"
    assert "Sampler" in capabilities(images)


def test_validation_logs_the_estimate_and_its_variance() -> None:
    dm = digits_datamodule(batch_size=16)
    model = build_model("flow_matching", dm, likelihood_examples=8, likelihood_steps=2, likelihood_draws=3)
    trainer = cpu_trainer(max_steps=1, limit_val_batches=1, limit_train_batches=1)
    trainer.fit(model, datamodule=dm)
    metrics = trainer.callback_metrics
    assert {"val/loss", "val/bpd_estimate", "val/bpd_estimate_var"} <= set(metrics)
    bpd, var = float(metrics["val/bpd_estimate"]), float(metrics["val/bpd_estimate_var"])
    assert 0 < bpd < 40 and 0 < var < 10, (bpd, var)


def test_dequantised_log_prob_of_discrete_images_is_negative_and_varies() -> None:
    torch.manual_seed(0)
    model = create_model("flow_matching", channels=8, likelihood_steps=3).eval()
    x = torch.randint(0, 256, (4, 1, 8, 8)) / 255.0
    draws = model.log_prob_draws(x, 3, seed=0)
    assert draws.shape == (3, 4) and (draws < 0).all() and draws.std(0).min() > 0
    assert torch.equal(draws, model.log_prob_draws(x, 3, seed=0))  # seeded draws repeat


def test_conditional_guidance_changes_samples() -> None:
    torch.manual_seed(0)
    model = create_model("flow_matching", channels=8, conditional=True, num_classes=10, sample_steps=2).eval()
    y = torch.arange(4)
    torch.manual_seed(3)
    plain = model.sample(4, y=y, guidance=0.0)
    torch.manual_seed(3)
    guided = model.sample(4, y=y, guidance=3.0)
    assert plain.shape == (4, 1, 8, 8) and not torch.equal(plain, guided)
    with pytest.raises(ValueError, match="unconditional"):
        create_model("flow_matching", channels=8).sample(2, y=y[:2])


def test_bad_arguments_are_refused_in_one_line() -> None:
    with pytest.raises(ConfigError, match="sampler must be one of 'euler', 'midpoint', 'heun'"):
        create_model("flow_matching", sampler="rk4")
    with pytest.raises(ConfigError, match="sigma_min must be"):
        create_model("flow_matching", sigma_min=1.5)
    with pytest.raises(IncompatibleDataError, match="continuous points"):
        create_model("flow_matching", image_shape=(2,), num_levels=256)
    with pytest.raises(ConfigError, match="trace 'exact'"):
        create_model("flow_matching", image_shape=(1, 28, 28), trace="exact")


@pytest.mark.parametrize("recipe", ["toy2d", "digits"])
def test_recipes_parse_and_train_one_batch(recipe: str, tmp_path) -> None:
    """examples/{toy2d,digits}/flow_matching.yaml build the family on their data (the toy2d one trains a
    batch; the mnist5k recipe's batch is tests/test_examples_mnist5k.py's); the checkpoint monitor is the
    estimate's label."""
    import yaml

    from genlight.cli import GenlightCLI

    path = Path(__file__).resolve().parents[1] / "examples" / recipe / "flow_matching.yaml"
    small = ["--data.init_args.num_samples=1000"] if recipe == "toy2d" else []
    cli = GenlightCLI(
        args=["-c", str(path), "--trainer.callbacks=[]", "--trainer.logger=false", "--trainer.max_epochs=1",
              "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1", "--trainer.enable_checkpointing=false",
              "--trainer.check_val_every_n_epoch=1", "--samples.every_n_epochs=0", "--model.likelihood_examples=4",
              "--model.likelihood_steps=2", f"--trainer.default_root_dir={tmp_path}", *small],
        run=False,
    )  # fmt: skip
    assert type(cli.model).__name__ == "FlowMatching" and cli.model.is_images == (recipe == "digits")
    label = f"val/{cli.model.density_label}"
    if recipe == "toy2d":
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        assert math.isfinite(float(cli.trainer.callback_metrics[label]))
    monitor = yaml.safe_load(path.read_text())["trainer"]["callbacks"][0]["init_args"]["monitor"]
    assert monitor == label
