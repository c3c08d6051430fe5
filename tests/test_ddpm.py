"""DDPM: the forward process, DDIM against ancestral sampling, and the variational bound, checked
against hand computations and an analytic ε-model (Gaussian data, where the optimal ε is known)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence

from genlight import create_model
from genlight.errors import ImageShapeError, IncompatibleDataError
from genlight.modules.ddpm import DDPM
from genlight.nn.diffusion import ddim_timesteps
from genlight.nn.diffusion import beta_schedule, discretized_gaussian_log_prob
from genlight.nn.unet import UNet
from tests.helpers import cpu_trainer

MEAN, STD = 0.3, 0.5  # the toy data distribution, in model space [-1, 1]


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: these tests use small tensors, and the machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class GaussianEps(nn.Module):
    """The optimal ε for data ``x_0 ~ N(MEAN, STD²)`` per dimension: ``E[ε | x_t] = √(1-ᾱ) (x_t - √ᾱ m) / (ᾱ s² + 1 - ᾱ)``."""

    def __init__(self, alphas_cumprod: Tensor, mean: float = MEAN, std: float = STD) -> None:
        super().__init__()
        self.register_buffer("a", alphas_cumprod.double())
        self.mean, self.var = mean, std**2

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        a = self.a[t].view(-1, *([1] * (x.dim() - 1)))
        return ((1 - a).sqrt() * (x.double() - a.sqrt() * self.mean) / (a * self.var + 1 - a)).to(x.dtype)


class ZeroEps(nn.Module):
    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.zeros_like(x)


def analytic_ddpm(timesteps: int = 100, schedule: str = "linear", shape=(1, 8, 8), **kwargs) -> DDPM:
    model = create_model("ddpm", image_shape=shape, num_levels=17, timesteps=timesteps, schedule=schedule, channels=8, **kwargs)
    model.net = GaussianEps(model.alphas_cumprod)
    return model.eval()


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_closed_form_q_matches_iterating_the_one_step_process(schedule):
    """Moments of ``q(x_t | x_0)`` by iterating ``x_t = √(1-β_t) x_{t-1} + √β_t ε`` (exactly, and by a
    seeded Monte Carlo run in float64) equal the closed form ``N(√ᾱ_t x_0, 1 - ᾱ_t)`` the model uses."""
    T = 100
    model = create_model("ddpm", timesteps=T, schedule=schedule, channels=8, num_levels=17)
    betas = beta_schedule(schedule, T)
    assert betas.dtype == torch.float64 and model.betas.dtype == torch.float32
    x0 = torch.tensor([-1.0, -0.2, 0.5, 1.0], dtype=torch.float64)
    mean, var = x0.clone(), torch.zeros_like(x0)
    g = torch.Generator().manual_seed(0)
    paths = x0.expand(40_000, -1).clone()
    for t in range(T):
        b = betas[t]
        mean, var = (1 - b).sqrt() * mean, (1 - b) * var + b
        paths = (1 - b).sqrt() * paths + b.sqrt() * torch.randn(paths.shape, generator=g, dtype=torch.float64)
        closed_mean = model.sqrt_alphas_cumprod[t].double() * x0
        closed_var = model.sqrt_one_minus_alphas_cumprod[t].double() ** 2
        torch.testing.assert_close(mean, closed_mean, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(var.expand(4), closed_var.expand(4), rtol=1e-5, atol=1e-6)
        if t in (0, T // 10, T // 2, T - 1):
            se = closed_var.sqrt() / math.sqrt(len(paths))
            assert (paths.mean(0) - closed_mean).abs().max() < 5 * se
            assert ((paths.var(0) / closed_var - 1).abs() < 0.04).all()
    # q_sample draws from that closed form
    t = torch.full((100_000,), T // 2)
    draws = model.q_sample(torch.full((100_000, 1), 0.5), t, torch.randn(100_000, 1, generator=g))
    assert abs(draws.mean().item() - 0.5 * model.sqrt_alphas_cumprod[T // 2].item()) < 0.01
    assert abs(draws.var().item() / (1 - model.alphas_cumprod[T // 2].item()) - 1) < 0.02


def test_schedules():
    T = 1000
    lin = beta_schedule("linear", T)
    assert lin[0].item() == pytest.approx(1e-4) and lin[-1].item() == pytest.approx(0.02)
    assert beta_schedule("linear", 250)[-1].item() == pytest.approx(0.08)  # scaled by 1000 / T
    cos = beta_schedule("cosine", T)
    s = 0.008
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    alpha_bar = torch.cumprod(1 - cos, 0)
    assert alpha_bar[499].item() == pytest.approx(f(500) / f(0), rel=1e-9)
    with pytest.raises(ValueError, match="linear or cosine"):
        beta_schedule("sigmoid", T)


def test_ddim_timesteps_cover_both_ends():
    assert ddim_timesteps(1000, 50)[0] == 999 and ddim_timesteps(1000, 50)[-1] == 0
    assert len(set(ddim_timesteps(1000, 50).tolist())) == 50
    assert ddim_timesteps(10, 10).tolist() == list(range(9, -1, -1))
    assert ddim_timesteps(10, 50).tolist() == list(range(9, -1, -1))  # capped at T


def test_ddim_eta0_is_deterministic_given_the_noise():
    torch.manual_seed(0)
    model = create_model("ddpm", num_levels=17, timesteps=50, channels=8).eval()
    noise = torch.randn(4, 1, 8, 8)
    torch.manual_seed(1)
    a = model.generate(noise, steps=10, eta=0.0)
    torch.manual_seed(2)
    b = model.generate(noise, steps=10, eta=0.0)
    assert torch.equal(a, b)
    torch.manual_seed(1)
    c = model.generate(noise, steps=10, eta=1.0)
    torch.manual_seed(2)
    d = model.generate(noise, steps=10, eta=1.0)
    assert not torch.equal(c, d)  # eta = 1 injects fresh noise


def test_ddim_all_steps_eta1_is_ancestral_sampling():
    """With S = T and η = 1, DDIM's update is DDPM's ancestral step with the posterior variance β̃_t:
    given the same random draws the two chains coincide. In distribution: under the analytic ε-model
    every step is linear-Gaussian, ``x_{t-1} = A_t x_t + B_t + σ_t z``, so the chain's output law is
    exactly ``N(μ, v)`` by propagating moments; independent draws of both samplers match it, and it
    is close to the data law ``N(MEAN, STD²)`` (the fixed variance leaves a small gap at finite T)."""
    T = 100
    model = analytic_ddpm(T)
    noise = torch.randn(2000, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(3)
    ancestral = model.generate(noise, sampler="ancestral", clip=False)
    torch.manual_seed(3)
    ddim = model.generate(noise, sampler="ddim", steps=T, eta=1.0, clip=False)
    torch.testing.assert_close(ddim, ancestral, atol=2e-4, rtol=1e-4)

    mu, var = 0.0, 1.0  # x_T ~ N(0, 1), per dimension
    for i in reversed(range(T)):
        t = torch.full((1,), i)
        b, logvar = model.p_mean_logvar(torch.zeros(1, 1, 1, 1), t)
        a = model.p_mean_logvar(torch.ones(1, 1, 1, 1), t)[0] - b
        mu, var = a.item() * mu + b.item(), a.item() ** 2 * var + (logvar.exp().item() if i > 0 else 0.0)
    assert abs(mu - MEAN) < 0.01 and abs(math.sqrt(var) / STD - 1) < 0.1
    torch.manual_seed(4)
    other = model.generate(noise, sampler="ddim", steps=T, eta=1.0, clip=False)
    n = other.numel()
    for x in (ancestral, other):  # 128k independent values each
        assert abs(x.mean().item() - mu) < 5 * math.sqrt(var / n)
        assert abs(x.var().item() / var - 1) < 5 * math.sqrt(2 / n)
    # deterministic DDIM (η = 0) also lands near the data law (the probability-flow ODE)
    ode = model.generate(noise, sampler="ddim", steps=T, eta=0.0, clip=False)
    assert abs(ode.mean().item() - MEAN) < 0.02 and abs(ode.std().item() / STD - 1) < 0.1


def test_discretized_gaussian_decoder_sums_to_one():
    levels = 17
    grid = torch.linspace(-1, 1, levels, dtype=torch.float64)
    for mean, log_scale in [(0.1, -2.0), (-0.97, -5.0), (0.5, 0.3), (1.2, -8.0), (0.0, -12.0)]:
        lp = discretized_gaussian_log_prob(grid, torch.full_like(grid, mean), torch.full_like(grid, log_scale), levels)
        assert torch.isfinite(lp).all()
        assert lp.exp().sum().item() == pytest.approx(1.0, abs=1e-9)
        if log_scale <= -2.0:  # a narrow decoder puts most mass on the nearest level
            assert grid[lp.argmax()].item() == pytest.approx(max(-1.0, min(1.0, round((mean + 1) * 8) / 8 - 1)), abs=1e-9)


def test_bound_terms_equal_a_hand_computation():
    """T = 4, a fixed ε = 0 model: L_T, the three KL terms and the decoder term by hand (torch.distributions,
    the same noise draws) equal ``bound_terms``, and the terms add up to the total."""
    T, levels = 4, 17
    model = create_model("ddpm", image_shape=(1, 8, 8), num_levels=levels, timesteps=T, channels=8, schedule="linear")
    model.net = ZeroEps()
    x = torch.randint(0, levels, (3, 1, 8, 8)).float() / (levels - 1)
    terms = model.bound_terms(x, num_terms=T - 1, generator=torch.Generator().manual_seed(5))

    betas = beta_schedule("linear", T)
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([torch.ones(1, dtype=torch.float64), abar[:-1]])
    post_var = betas * (1 - abar_prev) / (1 - abar)
    x0 = x.double() * 2 - 1
    g = torch.Generator().manual_seed(5)
    prior = kl_divergence(Normal(abar[-1].sqrt() * x0, (1 - abar[-1]).sqrt()), Normal(0.0, 1.0)).flatten(1).sum(1)
    kl = torch.zeros(3, dtype=torch.float64)
    for t in range(1, T):  # 0-indexed: paper's L_{t} for t = 2..T
        eps = torch.randn(x.shape, generator=g).double()
        xt = (abar[t].sqrt() * x0).float().double() + ((1 - abar[t]).sqrt() * eps).float().double()
        q_mean = (betas[t] * abar_prev[t].sqrt() * x0 + (1 - abar_prev[t]) * alphas[t].sqrt() * xt) / (1 - abar[t])
        x0_hat = xt / abar[t].sqrt()  # ε = 0
        p_mean = (betas[t] * abar_prev[t].sqrt() * x0_hat + (1 - abar_prev[t]) * alphas[t].sqrt() * xt) / (1 - abar[t])
        kl += kl_divergence(Normal(q_mean, post_var[t].sqrt()), Normal(p_mean, post_var[t].sqrt())).flatten(1).sum(1)
    eps = torch.randn(x.shape, generator=g).double()
    x1 = abar[0].sqrt() * x0 + (1 - abar[0]).sqrt() * eps
    mean = x1 / abar[0].sqrt()  # the posterior mean at t = 0 is x̂_0
    decoder_dist = Normal(mean, post_var[1].sqrt())  # the clipped variance: β̃ at t=0 is 0
    half = 1.0 / (levels - 1)
    upper = torch.where(x0 > 1 - half, torch.ones_like(x0), decoder_dist.cdf(x0 + half))
    lower = torch.where(x0 < -1 + half, torch.zeros_like(x0), decoder_dist.cdf(x0 - half))
    decoder = -torch.log(upper - lower).flatten(1).sum(1)

    torch.testing.assert_close(terms["prior"], prior, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(terms["kl"], kl, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(terms["decoder"], decoder, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(terms["total"], terms["prior"] + terms["kl"] + terms["decoder"])
    assert (terms["kl"] > 0).all() and (terms["decoder"] > 0).all()


def test_stratified_bound_is_unbiased():
    """Averaged over draws, the stratified estimate of Σ KL (3 strata) equals the full sum."""
    model = analytic_ddpm(20, schedule="cosine")
    x = torch.full((4, 1, 8, 8), 0.5)
    full, strat = [], []
    for seed in range(150):
        full.append(model.bound_terms(x, num_terms=19, generator=torch.Generator().manual_seed(seed))["kl"].mean())
        strat.append(model.bound_terms(x, num_terms=3, generator=torch.Generator().manual_seed(10_000 + seed))["kl"].mean())
    full_t, strat_t = torch.stack(full), torch.stack(strat)
    se = (full_t.var() / len(full) + strat_t.var() / len(strat)).sqrt()
    assert abs(full_t.mean() - strat_t.mean()) < 4 * se
    assert strat_t.std() > full_t.std()  # it is an estimate, not the sum itself


def test_bound_is_finite_and_falls_over_a_short_run(digits):
    torch.manual_seed(0)
    model = create_model("ddpm", num_levels=17, timesteps=100, channels=16, bound_examples=32, bound_timesteps=10, lr=2e-3, warmup_steps=5)
    x = next(iter(digits.val_dataloader()))[0][:32]

    def bound() -> float:
        model.eval()
        with torch.no_grad():
            return model.bound_terms(x, generator=torch.Generator().manual_seed(0))["total"].mean().item()

    before = bound()
    trainer = cpu_trainer(max_steps=40, limit_val_batches=1, check_val_every_n_epoch=1, num_sanity_val_steps=0)
    trainer.fit(model.train(), datamodule=digits)
    after = bound()
    assert math.isfinite(before) and math.isfinite(after)
    assert after < 0.8 * before, (before, after)
    assert math.isfinite(float(trainer.callback_metrics["val/bpd_bound"]))
    bpd = float(trainer.callback_metrics["val/bpd_bound"])
    assert 0 < bpd < before / (64 * math.log(2)) * 2


def test_sampling_api_and_conditioning():
    torch.manual_seed(0)
    model = create_model("ddpm", num_levels=17, num_classes=10, conditional=True, timesteps=20, channels=8, guidance=1.0)
    model.eval()
    for kwargs in ({}, {"steps": 5, "eta": 1.0}, {"sampler": "ancestral"}, {"guidance": 0.0}):
        images = model.sample(6, y=torch.arange(6), **kwargs)
        assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
        assert torch.equal(images * 16, (images * 16).round())  # on the 17-level grid
    # labels change the samples, at equal noise
    with torch.no_grad():
        for p in model.net.label_emb.parameters():
            p.normal_()
    torch.manual_seed(0)
    zeros = model.sample(4, y=torch.zeros(4, dtype=torch.long))
    torch.manual_seed(0)
    ones = model.sample(4, y=torch.ones(4, dtype=torch.long))
    assert not torch.equal(zeros, ones)
    assert model.sample(3).shape == (3, 1, 8, 8)  # y = None: the "no label" token
    with pytest.raises(ValueError, match="unknown sampler"):
        model.generate(torch.zeros(1, 1, 8, 8), sampler="euler")
    unconditional = create_model("ddpm", num_levels=17, num_classes=10, channels=8, timesteps=10)
    assert not hasattr(unconditional, "num_classes")  # an unconditional instance is no ConditionalSampler
    with pytest.raises(ValueError, match="unconditional"):
        unconditional.sample(2, y=torch.zeros(2, dtype=torch.long))


def test_bad_configurations_are_refused_early():
    with pytest.raises(ImageShapeError, match="multiples of 4"):
        create_model("ddpm", image_shape=(1, 10, 10))
    with pytest.raises(ImageShapeError):
        create_model("ddpm", image_shape=(2,))
    with pytest.raises(IncompatibleDataError, match="labelled"):
        create_model("ddpm", conditional=True, num_classes=0)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_unet_is_sized_from_the_image(shape):
    net = UNet(shape, channels=8, num_classes=3)
    x = torch.randn(2, *shape)
    out = net(x, torch.tensor([0, 999]), torch.tensor([1, 3]))  # 3 = the "no label" token
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_cli_builds_a_class_conditional_ddpm():
    from genlight.cli import GenlightCLI
    from genlight.types import is_conditional

    args = ["--model", "ddpm", "--data", "digits", "--model.conditional", "true", "--model.channels", "8",
            "--model.guidance", "2.0", "--trainer.logger", "false"]  # fmt: skip
    model = GenlightCLI(args=args, run=False).model
    assert is_conditional(model) and model.num_classes == 10 and model.hparams.num_levels == 17
    plain = GenlightCLI(args=["--model", "ddpm", "--data", "digits", "--trainer.logger", "false"], run=False).model
    assert not is_conditional(plain)  # num_classes is linked, but labels are used only when asked


def test_validation_bound_does_not_depend_on_the_batch_size():
    """Each image's timesteps and noise come from a generator seeded by the image, so the bound over the
    first ``bound_examples`` validation images is the same in batches of 8 and of 48 (and so on any number
    of processes, each taking its share: tests/test_multinode.py)."""
    from genlight.datamodules.digits import DigitsDataModule

    torch.manual_seed(0)
    model = create_model("ddpm", num_levels=17, timesteps=20, channels=8, bound_examples=40, bound_timesteps=4)
    figures = []
    for batch_size in (8, 48):
        dm = DigitsDataModule(batch_size=batch_size)
        trainer = cpu_trainer(limit_val_batches=6)
        figures.append(float(trainer.validate(model, datamodule=dm, verbose=False)[0]["val/bpd_bound"]))
    assert figures[0] == pytest.approx(figures[1], rel=1e-6)
    # and the draws are those of the images: other images, another figure
    model.hparams.bound_examples = 24
    trainer = cpu_trainer(limit_val_batches=6)
    assert float(trainer.validate(model, datamodule=DigitsDataModule(batch_size=8), verbose=False)[0]["val/bpd_bound"]) != figures[0]
