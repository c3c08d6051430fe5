"""DoSE, WAIC, the extra outlier sets and the recommended score (genlight.evaluation.dose, .ensemble,
.outlier_sets, .recommend): fitting sees the inlier split only, the KDE bandwidth on constructed data,
the leave-one-out choice on a constructed table (`genlight score` reporting it first: test_cli_score)."""

from __future__ import annotations

import math

import pytest
import torch

from genlight.datamodules import DigitOutliersDataModule
from genlight.datamodules.outliers import stack_images
from genlight.evaluation import ood_task
from genlight.evaluation.dose import DoSE, model_statistics, select_bandwidth
from genlight.evaluation.ensemble import waic_score
from genlight.evaluation.outlier_sets import MORE_SETS, more_outlier_sets
from genlight.evaluation.recommend import choose_score, leave_one_out, recommended_rows
from tests.test_evaluation import fitted_categorical


@pytest.fixture(scope="module")
def data() -> DigitOutliersDataModule:
    dm = DigitOutliersDataModule(held_out_class=3)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def model(data):
    return fitted_categorical(*stack_images(data.reference_dataset("train")))


# ------------------------------------------------------------------ DoSE fits on inliers only
def test_dose_is_fitted_on_the_validation_split_only(data, model, monkeypatch):
    """The fitted density is the one of the validation split's statistics, and replacing every outlier
    set (and the test inliers' outliers) by other images changes nothing in it."""
    fitted: list[DoSE] = []
    original = DoSE.fit.__func__

    def spy(cls, statistics, *args, **kwargs):
        fitted.append(original(cls, statistics, *args, **kwargs))
        return fitted[-1]

    monkeypatch.setattr(DoSE, "fit", classmethod(spy))
    ood_task(model, data, max_examples=30, draws=1)
    val = stack_images(data.reference_dataset("val"))[0][:30]
    expected = model_statistics(model, val, num_levels=17)
    assert len(fitted) == 1 and set(fitted[0].data) == {"nll", "complexity"}
    for name, values in expected.items():
        assert torch.equal(fitted[0].data[name] * fitted[0].scale[name], values) or torch.allclose(
            fitted[0].data[name] * fitted[0].scale[name], values, rtol=1e-12
        )
    other = {name: torch.rand_like(x).mul(16).round().div(16) for name, x in data.outlier_sets().items()}
    monkeypatch.setattr(type(data), "outlier_sets", lambda self: other)
    ood_task(model, data, max_examples=30, draws=1)
    assert fitted[1].bandwidths == fitted[0].bandwidths
    assert all(torch.equal(fitted[1].data[k], fitted[0].data[k]) for k in fitted[0].data)


def test_dose_flags_what_the_inliers_never_show():
    g = torch.Generator().manual_seed(0)
    inliers = {"a": torch.randn(300, generator=g), "b": 5 + torch.randn(300, generator=g)}
    dose = DoSE.fit(inliers)
    typical = dose.score({"a": torch.zeros(50), "b": torch.full((50,), 5.0)})
    odd = dose.score({"a": torch.full((50,), -4.0), "b": torch.full((50,), 5.0)})  # low AND high tails count
    assert (odd > typical.max()).all()
    with pytest.raises(ValueError, match="statistics \\['b'\\] are missing"):
        dose.score({"a": torch.zeros(3)})


# ------------------------------------------------------------------ bandwidth by validation likelihood
def test_bandwidth_follows_the_spread_of_the_data():
    g = torch.Generator().manual_seed(0)
    grid = tuple(float(h) for h in torch.logspace(-3, 1, 41))
    wide = select_bandwidth(torch.randn(400, generator=g), grid)
    # Silverman's rule for N(0, 1), n = 400: 1.06 n^(-1/5) = 0.32; leave-one-out likelihood is near it
    assert 0.15 < wide < 0.6
    narrow = select_bandwidth(0.01 * torch.randn(400, generator=g), grid)
    assert narrow == pytest.approx(wide / 100, rel=0.5)
    # two tight clusters far apart: a bandwidth near the clusters' width, not the gap's
    clusters = torch.cat([0.05 * torch.randn(200, generator=g), 10 + 0.05 * torch.randn(200, generator=g)])
    assert select_bandwidth(clusters, grid) < 0.1


def test_bandwidth_is_the_leave_one_out_maximum():
    values = torch.tensor([0.0, 1.0, 2.0, 3.0])
    grid = (0.01, 1.0, 100.0)
    # h = 0.01: each point is 1 away from its nearest neighbour, so log-density ~ -5000; h = 100: ~ -5.5
    # per point; h = 1.0: neighbours at distance 1 give log(2/3 N(1; 0, 1) + ...) ~ -2.3
    assert select_bandwidth(values, grid) == 1.0


# ------------------------------------------------------------------ WAIC
def test_waic_penalises_disagreement():
    agree = torch.tensor([[-10.0, -10.0], [-10.0, -10.0]])  # (K=2, B=2)
    disagree = torch.tensor([[-8.0, -10.0], [-12.0, -10.0]])
    assert torch.equal(waic_score(agree), torch.tensor([10.0, 10.0], dtype=torch.float64))
    assert waic_score(disagree)[0] == pytest.approx(10.0 + 4.0)  # mean -10, variance 4
    with pytest.raises(ValueError, match="K >= 2"):
        waic_score(torch.zeros(1, 3))


# ------------------------------------------------------------------ outlier sets
def test_more_outlier_sets_stay_on_the_grid(data):
    x = data.inliers()[0][:40]
    sets = more_outlier_sets(x, 17, seed=0)
    assert tuple(sets) == MORE_SETS
    for name, images in sets.items():
        assert images.shape == x.shape, name
        assert torch.equal(images, (images * 16).round() / 16), name
    assert torch.equal(sets["flipped_vertical"], x.flip(-2))
    noise = [(sets[f"noise_{s}"] - x).abs().mean() for s in (0.05, 0.1, 0.2, 0.4)]
    assert noise == sorted(noise) and noise[0] > 0
    assert torch.equal(more_outlier_sets(x, 17, seed=0)["salt_pepper"], sets["salt_pepper"])


# ------------------------------------------------------------------ recommended score, leave one set out
TABLE = {
    "nll": {"a": 0.90, "b": 0.60, "c": 0.95, "d": 0.80},
    "fancy": {"a": 0.99, "b": 0.99, "c": 0.99, "d": 0.50},  # best mean, but far below nll on d
    "safe": {"a": 0.91, "b": 0.70, "c": 0.96, "d": 0.79},  # never more than 0.02 below nll
}


def test_choice_excludes_scores_that_fall_below_nll_anywhere():
    assert choose_score(TABLE, "abcd") == "safe"
    assert choose_score(TABLE, "abc") == "fancy"  # without d, fancy is never worse than nll
    assert choose_score(TABLE, "abcd", tolerance=1.0) == "fancy"  # a loose tolerance: the best mean
    assert choose_score({"nll": TABLE["nll"], "bad": {k: 0.0 for k in "abcd"}}, "abcd") == "nll"


def test_leave_one_out_never_uses_the_set_it_reports():
    loo = leave_one_out(TABLE)
    # d held out: fancy is chosen on a, b, c and reported with ITS d value (0.50), a failure
    assert loo["d"] == ("fancy", 0.50)
    # any other set held out: d is among the sets chosen on, so fancy is excluded
    assert loo["a"] == ("safe", 0.91) and loo["b"] == ("safe", 0.70) and loo["c"] == ("safe", 0.96)
    # changing a score's AUROC on the held-out set alone never changes the choice for it
    changed = {**TABLE, "safe": {**TABLE["safe"], "b": 0.0}}
    assert leave_one_out(changed)["b"][0] == "safe"


def test_recommended_rows_come_first_and_mark_the_choice():
    rows = [{"score": s, "outlier_set": u, "auroc": v} for s, by in TABLE.items() for u, v in by.items()]
    out, note = recommended_rows(rows)
    assert [r["score"] for r in out[:4]] == ["recommended"] * 4
    assert [r["chosen"] for r in out[:4]] == ["safe", "safe", "safe", "fancy"]
    assert {r["score"] for r in out if r["recommended"] == "for new data"} == {"safe"}
    assert "recommended for new data: safe" in note


# ------------------------------------------------------------------ statistics asked by capability
def test_statistics_follow_what_the_model_can_do(data):
    from genlight.registry import get_model_class

    x = data.inliers()[0][:6]
    torch.manual_seed(0)
    vae = get_model_class("vae")(**{**get_model_class("vae").smoke_kwargs, "image_shape": (1, 8, 8), "num_levels": 17})
    stats = model_statistics(vae, x, num_levels=17)
    assert {"nll", "complexity", "elbo_reconstruction", "elbo_kl", "reconstruction"} <= set(stats)
    flow_cls = get_model_class("glow")
    flow = flow_cls(**{**flow_cls.smoke_kwargs, "image_shape": (1, 8, 8), "num_levels": 17})
    stats = model_statistics(flow, x, num_levels=17)
    assert {"nll", "latent_norm", "log_det"} <= set(stats) and "reconstruction" not in stats
    eps = flow.eval().encode(x)  # the cell centres, as the statistic
    assert torch.allclose(stats["latent_norm"], eps.pow(2).sum(1).double(), rtol=1e-5)
    scales = [k for k in stats if k.startswith("scale_")]
    if scales:  # per-scale norms average to the whole latent's mean square
        sizes = [math.prod(s) for s in flow.flow.latent_shapes]
        total = sum(stats[k] * n for k, n in zip(sorted(scales), sizes))
        assert torch.allclose(total, stats["latent_norm"], rtol=1e-5)
    assert all(v.shape == (6,) and v.dtype == torch.float64 for v in stats.values())
