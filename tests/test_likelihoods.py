"""Exact discrete likelihoods: probabilities over all levels sum to one; samples follow them."""

from __future__ import annotations

import math

import pytest
import torch

from genlight.functional import bits_per_dim, to_levels
from genlight.nn import (
    Bernoulli, Categorical, DiscretizedLogistic, LogisticMixture, logistic_mixture_log_prob_at, logistic_mixture_log_probs,
    make_likelihood,
)  # fmt: skip


def _all_levels(num_levels: int) -> torch.Tensor:
    """One single-pixel image per level, ``(L, 1, 1, 1)`` in [0, 1]."""
    return torch.arange(num_levels).float().div(num_levels - 1).view(-1, 1, 1, 1)


@pytest.mark.parametrize(
    "likelihood",
    [Bernoulli(2), Categorical(2), Categorical(17), DiscretizedLogistic(17), DiscretizedLogistic(256)],
    ids=lambda lik: f"{type(lik).__name__}-{lik.num_levels}",
)
@pytest.mark.parametrize("scale", [0.3, 3.0, 20.0])
def test_probabilities_sum_to_one(likelihood, scale):
    levels = likelihood.num_levels
    params = torch.randn(1, likelihood.params_per_channel, 1, 1) * scale
    if isinstance(likelihood, DiscretizedLogistic):
        params[:, 0] = torch.rand(()) * 1.4 - 0.2  # locations inside and just outside [0, 1]
    log_p = likelihood.log_prob(params.expand(levels, -1, -1, -1), _all_levels(levels))
    assert torch.logsumexp(log_p, 0).exp().item() == pytest.approx(1.0, abs=1e-5)


EXTREME_LOG_SCALES = [-30.0, -7.0, 0.0, 6.0, 7.0, 30.0]  # at, inside and past the ends of LOG_SCALE_RANGE
EXTREME_MEANS = [-1e4, -3.0, 0.0, 0.37, 1.0, 4.0, 1e4]


@pytest.mark.parametrize("num_levels", [2, 17, 256])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_discretized_logistic_sums_to_one_at_the_extremes(num_levels, dtype):
    """Every (location, log-scale) of the grid: the L probabilities sum to one, and each matches a
    float64 sigmoid difference (open outer bins) wherever that reference is accurate."""
    lik = DiscretizedLogistic(num_levels)
    mu, log_s = torch.meshgrid(torch.tensor(EXTREME_MEANS), torch.tensor(EXTREME_LOG_SCALES), indexing="ij")
    params = torch.stack([mu.flatten(), log_s.flatten()], 1).to(dtype).view(-1, 2, 1, 1)  # (N, 2, 1, 1)
    n = len(params)
    log_p = lik.log_prob(params.repeat_interleave(num_levels, 0), _all_levels(num_levels).to(dtype).repeat(n, 1, 1, 1))
    probs = log_p.view(n, num_levels).double().exp()
    assert torch.allclose(probs.sum(1), torch.ones(n, dtype=torch.float64), atol=1e-5 if dtype == torch.float32 else 1e-12)
    assert torch.allclose(lik.log_probs(params).double().exp().view(n, num_levels), probs, atol=1e-4)
    inner = (torch.arange(1, num_levels, dtype=torch.float64) - 0.5) / (num_levels - 1)
    edges = torch.cat([torch.tensor([-math.inf], dtype=torch.float64), inner, torch.tensor([math.inf], dtype=torch.float64)])
    inv_s = torch.exp(-log_s.flatten().double().clamp(-7.0, 7.0))[:, None]
    cdf = torch.sigmoid((edges - mu.flatten().double()[:, None]) * inv_s)  # (N, L+1)
    reference = cdf[:, 1:] - cdf[:, :-1]
    accurate = reference > 1e-6
    rel = (probs[accurate] / reference[accurate] - 1).abs().max().item()
    assert rel < (1e-3 if dtype == torch.float32 else 1e-9), rel


@pytest.mark.parametrize("num_levels", [2, 17, 256])
def test_logistic_mixture_sums_to_one_at_the_extremes(num_levels):
    """Mixture weights, means and log-scales at the extremes, float32 and float64: normalised (the outer
    bins used to end at +-1000, so the sum fell to 0.845 at log-scale 6 and 0.427 at 7)."""
    cases = [(w, m, s) for w in (-20.0, 0.0, 20.0) for m in EXTREME_MEANS for s in EXTREME_LOG_SCALES]
    logits = torch.tensor([[w, 0.0] for w, _, _ in cases])
    means = torch.tensor([[m, 0.5] for _, m, _ in cases])
    log_scales = torch.tensor([[s, s / 2] for _, _, s in cases])
    params = torch.cat([logits, means, log_scales], 1)  # (N, 3M), M = 2
    for dtype, tol in ((torch.float64, 1e-12), (torch.float32, 1e-5)):
        total = logistic_mixture_log_probs(params.to(dtype), num_levels).double().exp().sum(-1)
        assert torch.allclose(total, torch.ones(len(cases), dtype=torch.float64), atol=tol), total.min()


@pytest.mark.parametrize("num_levels", [2, 17, 256])
def test_log_prob_at_the_observed_level_is_the_gathered_table(num_levels):
    """The observed level's log-probability alone (what training reads) equals the full table's entry,
    in value and gradient, at the outer bins and at extreme parameters too."""
    torch.manual_seed(0)
    extreme = torch.tensor([[20.0, -20.0, -1e4, 0.5, -7.0, 7.0], [0.0, 0.0, 1e4, 0.5, 7.0, -30.0]])
    params = torch.cat([torch.randn(300, 6, dtype=torch.float64) * 2, extreme.double()]).requires_grad_()  # M = 2
    levels = torch.randint(num_levels, (302,))
    levels[:3] = torch.tensor([0, num_levels - 1, num_levels // 2])
    at = logistic_mixture_log_prob_at(params, levels, num_levels)
    table = logistic_mixture_log_probs(params, num_levels).gather(-1, levels[:, None])[:, 0]
    assert torch.allclose(at, table, atol=1e-9, rtol=1e-9)
    (grad_at,) = torch.autograd.grad(at.sum(), params)
    (grad_table,) = torch.autograd.grad(table.sum(), params)
    assert torch.isfinite(grad_at).all() and torch.allclose(grad_at, grad_table, atol=1e-8)
    x = torch.rand(4, 1, 5, 5)
    lik = LogisticMixture(num_levels, components=2)
    head = torch.randn(4, 6, 5, 5)
    expected = lik.log_probs(head).gather(2, to_levels(x, num_levels).unsqueeze(2)).flatten(1).sum(1)
    assert torch.allclose(lik.log_prob(head, x), expected, atol=1e-4)


def test_logistic_gradients_are_finite_at_the_extremes():
    params = torch.tensor([[0.0, -1e4, -7.0], [0.0, 1e4, 7.0], [0.0, 0.5, 30.0], [0.0, 0.5, -30.0]], requires_grad=True)
    logistic_mixture_log_probs(params, 17).sum().backward()
    assert torch.isfinite(params.grad).all()


@pytest.mark.parametrize("likelihood", [Categorical(5), DiscretizedLogistic(5), Bernoulli(2)], ids=lambda likelihood: type(likelihood).__name__)
def test_samples_follow_the_probabilities(likelihood):
    levels = likelihood.num_levels
    params = torch.randn(1, likelihood.params_per_channel, 1, 1)
    probs = likelihood.log_prob(params.expand(levels, -1, -1, -1), _all_levels(levels)).exp()
    draws = likelihood.sample(params.expand(20000, -1, -1, -1))
    freq = torch.bincount(to_levels(draws, levels).flatten(), minlength=levels).float() / 20000
    assert torch.allclose(freq, probs, atol=0.015), (freq, probs)
    assert draws.min() >= 0 and draws.max() <= 1


def test_mean_is_the_expected_value():
    lik = Categorical(4)
    params = torch.randn(3, 4, 2, 2)
    probs = torch.softmax(params.view(3, 1, 4, 2, 2), dim=2)
    expected = (probs * torch.tensor([0, 1 / 3, 2 / 3, 1.0]).view(1, 1, 4, 1, 1)).sum(2)
    assert torch.allclose(lik.mean(params), expected, atol=1e-6)


@pytest.mark.parametrize("num_levels", [2, 17, 256])
def test_discretized_logistic_mean_is_the_expected_value(num_levels):
    """``mean`` is ``sum_k P(k) k/(L-1)`` by brute force over the levels, not the location (at L=17,
    mu=0, log s=0 the expected image is 0.380 where the clamped location is 0)."""
    lik = DiscretizedLogistic(num_levels)
    centred = lik.log_prob(torch.zeros(num_levels, 2, 1, 1), _all_levels(num_levels)).exp()  # mu = 0, log s = 0
    assert lik.mean(torch.zeros(1, 2, 1, 1)).item() == pytest.approx((centred * _all_levels(num_levels).flatten()).sum().item(), abs=1e-6)
    mu, log_s = torch.meshgrid(torch.tensor(EXTREME_MEANS), torch.tensor(EXTREME_LOG_SCALES), indexing="ij")
    params = torch.stack([mu.flatten(), log_s.flatten()], 1).double().view(-1, 2, 1, 1)  # (N, 2, 1, 1)
    n = len(params)
    grid = _all_levels(num_levels).double()  # (L, 1, 1, 1)
    probs = lik.log_prob(params.repeat_interleave(num_levels, 0), grid.repeat(n, 1, 1, 1)).exp().view(n, num_levels)
    brute = (probs * grid.view(1, -1)).sum(1)
    assert torch.allclose(lik.mean(params).view(n), brute, atol=1e-12)
    if num_levels == 17:
        assert lik.mean(torch.zeros(1, 2, 1, 1)).item() == pytest.approx(0.380, abs=5e-4)
    mixture = LogisticMixture(num_levels, components=1)  # the same distribution, the other class
    one = torch.stack([torch.zeros(n, dtype=torch.float64), mu.flatten().double(), log_s.flatten().double()], 1)
    assert torch.allclose(mixture.mean(one.view(n, 3, 1, 1)).view(n), brute, atol=1e-12)


def test_auto_choice_and_errors():
    assert isinstance(make_likelihood("auto", 2), Bernoulli)
    assert isinstance(make_likelihood("auto", 17), Categorical)
    assert isinstance(make_likelihood("auto", 256), DiscretizedLogistic)
    with pytest.raises(ValueError, match="choose one of"):
        make_likelihood("gaussian", 17)
    with pytest.raises(ValueError, match="binary"):
        Bernoulli(17)


def test_bits_per_dim_of_uniform_is_log2_levels():
    d, levels = 64, 17
    assert bits_per_dim(torch.tensor([-d * math.log(levels)]), d).item() == pytest.approx(math.log2(levels))
