"""Exact discrete likelihoods: probabilities over all levels sum to one; samples follow them."""

from __future__ import annotations

import math

import pytest
import torch

from genlight.functional import bits_per_dim, to_levels
from genlight.nn import Bernoulli, Categorical, DiscretizedLogistic, make_likelihood


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


@pytest.mark.parametrize("likelihood", [Categorical(5), DiscretizedLogistic(5), Bernoulli(2)], ids=repr)
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
