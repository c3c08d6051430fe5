"""FID / KID / IS / precision-recall / bits-per-dim against torch-fidelity and torchmetrics; extractors."""

from __future__ import annotations

import math
import urllib.error
from pathlib import Path

import pytest
import torch
from tests.helpers import Identity, gaussian_features
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
from torch_fidelity.metric_isc import isc_features_to_metric
from torch_fidelity.metric_kid import kid_features_to_metric
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from genlight.datamodules.digits import load_digits_tensors
from genlight.metrics import (
    BitsPerDim,
    FrechetDistance,
    InceptionScore,
    KernelDistance,
    PrecisionRecall,
    create_extractor,
    list_extractors,
)
from genlight.metrics.extractors import default_inception_path
from genlight.metrics.functional import frechet_distance, kernel_distance


def genlight_fid(real: torch.Tensor, fake: torch.Tensor) -> float:
    ref = FrechetDistance(real.shape[1])
    ref.update(real)
    metric = FrechetDistance(fake.shape[1])
    metric.set_reference(*ref.statistics())
    for chunk in fake.split(37):  # several updates: sufficient statistics must add up
        metric.update(chunk)
    return float(metric.compute())


def test_fid_matches_torch_fidelity_and_torchmetrics():
    real, fake = gaussian_features(400, 24, seed=0), gaussian_features(300, 24, seed=1, shift=0.3)
    ours = genlight_fid(real, fake)
    tf = fid_statistics_to_metric(fid_features_to_statistics(real), fid_features_to_statistics(fake), verbose=False)
    tm = FrechetInceptionDistance(feature=Identity(24))
    tm.update(real, real=True)
    tm.update(fake, real=False)
    assert ours > 1.0  # shifted by 0.3 in 24 dims: ||mu diff||^2 alone is ~2.2
    assert ours == pytest.approx(tf["frechet_inception_distance"], abs=1e-3)
    assert ours == pytest.approx(float(tm.compute()), abs=1e-3)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_noise():
    real = gaussian_features(500, 16, seed=2)
    assert abs(genlight_fid(real, real)) < 1e-6
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(real.shape, generator=g, dtype=torch.float64)
    fids = [genlight_fid(real, real + s * noise) for s in (0.05, 0.2, 0.5, 1.0)]
    assert all(a < b for a, b in zip(fids, fids[1:])), fids


def test_kid_matches_torch_fidelity_and_torchmetrics():
    real, fake = gaussian_features(120, 10, seed=3), gaussian_features(100, 10, seed=4, shift=0.2)
    metric = KernelDistance(subsets=20, subset_size=50, seed=7)
    metric.set_reference(real)
    metric.update(fake[:60], torch.arange(60))
    metric.update(fake[60:], torch.arange(60, 100))
    mean, std = metric.compute()
    tf = kid_features_to_metric(real, fake, kid_subsets=20, kid_subset_size=50, rng_seed=7, verbose=False)
    assert float(mean) > 0.0
    assert float(mean) == pytest.approx(tf["kernel_inception_distance_mean"], abs=1e-3)
    assert float(std) == pytest.approx(tf["kernel_inception_distance_std"], abs=1e-3)
    # torchmetrics draws its own subsets; with one subset of all samples the draw cannot matter
    tm = KernelInceptionDistance(feature=Identity(10), subsets=1, subset_size=100)
    tm.update(real[:100], real=True)
    tm.update(fake, real=False)
    ours_full, _ = kernel_distance(real[:100], fake, subsets=1, subset_size=100)
    assert float(ours_full) == pytest.approx(float(tm.compute()[0]), abs=1e-3)


def test_inception_score_matches_torch_fidelity():
    logits = gaussian_features(200, 10, seed=5) * 3
    metric = InceptionScore(splits=4)
    metric.update(logits.float())
    mean, std = metric.compute()
    tf = isc_features_to_metric(logits.float(), splits=4, shuffle=False)
    assert 1.0 < float(mean) <= 10.0
    assert float(mean) == pytest.approx(tf["inception_score_mean"], abs=1e-3)
    assert float(std) == pytest.approx(tf["inception_score_std"], abs=1e-3)


def test_feature_set_metrics_order_by_index():
    real, fake = gaussian_features(80, 6, seed=6), gaussian_features(80, 6, seed=7)
    a, b = KernelDistance(subsets=5, subset_size=40), KernelDistance(subsets=5, subset_size=40)
    for m in (a, b):
        m.set_reference(real)
    a.update(fake, torch.arange(80))
    b.update(fake[40:], torch.arange(40, 80))  # arrives in another order, as after a DDP gather
    b.update(fake[:40], torch.arange(40))
    assert float(a.compute()[0]) == float(b.compute()[0])


def test_precision_recall_extremes():
    real = gaussian_features(100, 4, seed=8)
    pr = PrecisionRecall(k=3)
    pr.set_reference(real)
    pr.update(real.clone())
    precision, recall = pr.compute()
    assert float(precision) == 1.0 and float(recall) == 1.0
    far = PrecisionRecall(k=3)
    far.set_reference(real)
    far.update(real + 100.0)
    assert [float(v) for v in far.compute()] == [0.0, 0.0]


def test_bits_per_dim_equals_hand_computation():
    metric = BitsPerDim()
    log_probs = [torch.tensor([-100.0, -120.0]), torch.tensor([-90.0])]
    for lp in log_probs:
        metric.update(lp, dims_per_example=64)
    expected = 310.0 / (3 * 64 * math.log(2))
    assert float(metric.compute()) == pytest.approx(expected, rel=1e-6)


def test_frechet_distance_of_known_gaussians():
    # N(0, I) vs N(m, 4 I) in d dims: |m|^2 + d (1 + 4 - 2*2) = |m|^2 + d
    d, m = 5, torch.full((5,), 0.5, dtype=torch.float64)
    value = frechet_distance(torch.zeros(d), torch.eye(d), m, 4 * torch.eye(d))
    assert float(value) == pytest.approx(float(m @ m) + d, abs=1e-9)


# ------------------------------------------------------------------------------------ extractors
def test_extractor_registry_and_digits_extractor():
    assert {"digits", "inception", "mnist"} <= set(list_extractors())
    with pytest.raises(KeyError, match="digits"):
        create_extractor("digitz")
    extractor = create_extractor("digits")
    x, y = load_digits_tensors()
    features, logits = extractor(x[:500])
    assert features.shape == (500, extractor.num_features) and features.dtype == torch.float32
    assert (logits.argmax(1) == y[:500]).float().mean() > 0.9  # the shipped weights classify digits
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        extractor(torch.zeros(2, 1, 28, 28))


def test_mnist_extractor_without_weights_says_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="train_digits_extractor.py --dataset mnist"):
        create_extractor("mnist", weights_path=str(tmp_path / "none.pt"))


def test_features_are_float32_under_autocast():
    extractor = create_extractor("digits")
    x = load_digits_tensors()[0][:8]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        features, _ = extractor(x.bfloat16())
    assert features.dtype == torch.float32
    assert torch.allclose(features, extractor(x)[0], atol=1e-2)


@pytest.fixture(scope="module")
def random_inception_weights(tmp_path_factory) -> Path:
    """A randomly initialised inception-v3-compat saved to a temp file (no download needed)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    mp = pytest.MonkeyPatch()
    mp.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
    mp.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
    torch.manual_seed(0)
    net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    mp.undo()
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    torch.save(net.state_dict(), path)
    return path


def test_inception_extractor_loads_local_weights(random_inception_weights):
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    extractor = create_extractor("inception", weights_path=str(random_inception_weights))
    x = load_digits_tensors()[0][:4]
    features, logits = extractor(x)
    assert features.shape == (4, 2048) and logits.shape == (4, 1008)
    reference = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(random_inception_weights)
    )
    uint8 = (x * 255).round().to(torch.uint8).expand(-1, 3, -1, -1)
    assert torch.allclose(features, reference(uint8)[0], atol=1e-5)


def test_inception_offline_without_weights_says_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv("GENLIGHT_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    expected = str(default_inception_path())
    assert expected.startswith(str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        create_extractor("inception")
    assert expected in str(info.value) and "URLError" in str(info.value)


# ~10 s on 2 idle cores (two eigh of 2048x2048 matrices plus Inception on 16 images); ~45 s under load
def test_fid_callback_end_to_end_with_inception_architecture(random_inception_weights, tmp_path):
    from tests.helpers import cpu_trainer, digits_datamodule, tiny_vae

    from genlight.callbacks import FIDCallback

    model, trainer = tiny_vae(), cpu_trainer(str(tmp_path), limit_val_batches=1)
    trainer.validate(model, digits_datamodule(), verbose=False)
    callback = FIDCallback(
        metrics=["fid", "kid", "is"], extractor="inception", weights_path=str(random_inception_weights),
        num_samples=8, batch_size=4, max_reference=8, every_n_epochs=0, cache_dir=str(tmp_path / "cache"),
        kid_subsets=2, kid_subset_size=4, is_splits=2,
    )
    results = callback.evaluate(trainer, model)
    assert set(results) == {f"val/{k}_inception" for k in ("fid", "kid", "kid_std", "is", "is_std")}
    assert all(math.isfinite(v) for v in results.values()), results
    assert results["val/fid_inception"] >= 0 and results["val/is_inception"] >= 1.0 - 1e-6
    assert callback._reference["num_images"] == 8 and "extractor inception" in callback.protocol
