"""The memorisation figure (genlight.metrics.memorisation): copies score 1, fresh draws the quantile."""

from __future__ import annotations

import pytest
import torch

from genlight.metrics import memorisation, nearest_neighbour_distances


def test_nearest_neighbour_distances_match_brute_force() -> None:
    a, b = torch.randn(37, 5), torch.randn(53, 5)
    d, idx = nearest_neighbour_distances(a, b, chunk=10)  # several chunks
    full = ((a[:, None] - b[None]) ** 2).sum(-1).sqrt()
    torch.testing.assert_close(d, full.min(1).values.double())
    assert torch.equal(idx, full.argmin(1))
    loo, loo_idx = nearest_neighbour_distances(b, b, exclude_self=True, chunk=7)
    self_full = ((b[:, None] - b[None]) ** 2).sum(-1).sqrt() + torch.diag(torch.full((53,), float("inf")))
    torch.testing.assert_close(loo, self_full.min(1).values.double())
    assert (loo_idx != torch.arange(53)).all()  # never its own row


def test_copies_score_one_and_fresh_draws_score_the_quantile() -> None:
    g = torch.Generator().manual_seed(0)
    train = torch.randn(600, 6, generator=g)
    copies = train[torch.randint(600, (1000,), generator=g)]
    assert memorisation(copies, train).fraction == 1.0
    fresh = torch.randn(3000, 6, generator=g)  # the same distribution, not seen
    for q in (0.1, 0.5):
        result = memorisation(fresh, train, quantile=q)
        assert abs(result.fraction - q) < 0.04, (q, result.fraction)
        assert abs(result.ratio - 1.0) < 0.4
    # samples crowding around train images (small jitter) lie far above the floor, and far from copies
    near = copies + 0.2 * torch.randn(copies.shape, generator=g)
    near_fraction = memorisation(near, train).fraction
    assert 0.5 < near_fraction < 1.0  # tau is about 0.64 here, the jitter about 0.2 * sqrt(6)
    # samples from a wider distribution than the data are rarely near a train image
    assert memorisation(3 * fresh, train).fraction < 0.05


def test_reused_train_distances_and_errors() -> None:
    train, samples = torch.randn(100, 4), torch.randn(50, 4)
    loo, _ = nearest_neighbour_distances(train, train, exclude_self=True)
    a = memorisation(samples, train, train_distances=loo)
    b = memorisation(samples, train)
    assert a.fraction == b.fraction and a.threshold == b.threshold
    assert a.threshold == pytest.approx(float(torch.quantile(loo, 0.1)))
    assert a.nearest.shape == (50,) and a.sample_distances.shape == (50,)
    with pytest.raises(ValueError, match="quantile"):
        memorisation(samples, train, quantile=1.0)
    with pytest.raises(ValueError, match="features"):
        nearest_neighbour_distances(samples, torch.randn(10, 3))
