"""Density/coverage, intra-class FID and CAS: against references computed here from the papers' formulas,
on what should make them move, and 2 gloo processes against 1."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from scipy.spatial.distance import cdist
from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

from genlight.metrics import ClassificationAccuracyScore, DensityCoverage, IntraClassFID
from genlight.metrics.functional import density_coverage
from genlight.metrics.sample_quality import SampleQuality
from tests.helpers import gaussian_features


def reference_density_coverage(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    """Naeem et al. 2020, eqs. (3) and (4), by brute force: the radius of real i is the distance to its k-th
    nearest other real vector (sorted row: index 0 is the point itself); strict inequality as in ``prdc``."""
    radii = np.sort(cdist(real, real), axis=1)[:, k]
    d = cdist(real, fake)  # (N real, M fake)
    density = (d < radii[:, None]).sum(axis=0).mean() / k
    coverage = (d.min(axis=1) < radii).mean()
    return float(density), float(coverage)


@pytest.mark.parametrize(("k", "shift", "n_fake"), [(5, 0.0, 150), (5, 0.4, 90), (3, 1.5, 120)])
def test_density_coverage_equal_the_papers_definitions(k: int, shift: float, n_fake: int) -> None:
    real, fake = gaussian_features(200, 8, seed=0), gaussian_features(n_fake, 8, seed=1, shift=shift)
    want = reference_density_coverage(real.numpy(), fake.numpy(), k)
    metric = DensityCoverage(k)
    metric.set_reference(real)
    order = torch.randperm(n_fake, generator=torch.Generator().manual_seed(0))
    for chunk in order.split(32):  # arriving out of order, as after a DDP gather
        metric.update(fake[chunk], chunk)
    got = [float(v) for v in metric.compute()]
    assert got == pytest.approx(want, abs=1e-6)
    assert [float(v) for v in density_coverage(real, fake, k)] == pytest.approx(want, abs=1e-6)
    if shift == 0.0:  # same distribution: density near 1, most balls covered
        assert 0.7 < got[0] < 1.3 and got[1] > 0.8, got
    if shift == 1.5:  # far away: few fakes in any ball
        assert got[0] < 0.2 and got[1] < 0.3, got


def test_density_coverage_in_sample_quality_and_on_copies_and_outliers() -> None:
    real = gaussian_features(120, 6, seed=2)
    metric = SampleQuality(6, kid_subsets=3, kid_subset_size=50)
    metric.update(real, torch.arange(120), real=True)
    metric.update(real, torch.arange(120), real=False)
    out = metric.compute()
    want = reference_density_coverage(real.numpy(), real.numpy(), 5)
    assert [float(out["density"]), float(out["coverage"])] == pytest.approx(want, abs=1e-6)
    assert float(out["coverage"]) == 1.0  # every ball holds its own centre
    outliers = real + 100.0
    assert [float(v) for v in density_coverage(real, outliers, 5)] == [0.0, 0.0]
    with pytest.raises(ValueError, match="more than 5 real vectors"):
        density_coverage(real[:5], real, 5)


def labelled_features(n: int, d: int, classes: int, seed: int, shift: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features whose mean depends on the class (class c shifted by c along one axis) and ``y = i % classes``."""
    x = gaussian_features(n, d, seed=seed, shift=shift)
    y = torch.arange(n) % classes
    x[:, 0] += 2.0 * y.double()
    return x, y


def test_intra_fid_equals_torch_fidelity_per_class_and_its_mean() -> None:
    real, y_real = labelled_features(300, 5, 3, seed=3)
    fake, y_fake = labelled_features(240, 5, 3, seed=4, shift=0.2)
    fake[y_fake == 2] += 1.0  # one class far worse than the others
    metric = IntraClassFID(3, 5)
    for i in range(0, 300, 64):
        metric.update(real[i : i + 64], y_real[i : i + 64], real=True)
    for i in range(0, 240, 50):
        metric.update(fake[i : i + 50], y_fake[i : i + 50], real=False)
    out = metric.compute()
    want = []
    for c in range(3):
        stats = [fid_features_to_statistics(f[y == c]) for f, y in ((real, y_real), (fake, y_fake))]
        want.append(fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"])
    assert out["per_class"].tolist() == pytest.approx(want, rel=1e-4, abs=1e-4)
    assert float(out["mean"]) == pytest.approx(sum(want) / 3, rel=1e-4)
    assert int(out["per_class"].argmax()) == 2 and want[2] > 2 * max(want[:2])
    # the real side given as cached statistics instead gives the same numbers
    cached = IntraClassFID(3, 5)
    cached.set_reference(metric.real_sum, metric.real_outer, metric.real_count)
    cached.update(fake, y_fake, real=False)
    torch.testing.assert_close(cached.compute()["per_class"], out["per_class"])


def test_intra_fid_leaves_out_a_class_without_samples() -> None:
    real, y_real = labelled_features(90, 4, 3, seed=5)
    metric = IntraClassFID(3, 4)
    metric.update(real, y_real, real=True)
    keep = y_real != 1
    metric.update(real[keep], y_real[keep], real=False)
    out = metric.compute()
    assert torch.isnan(out["per_class"][1]) and float(out["mean"]) < 1e-6
    with pytest.raises(ValueError, match=r"label in \[0, 3\)"):
        metric.update(real[:2], torch.tensor([0, 3]), real=False)


def class_images(n: int, seed: int, noise: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """1x8x8 images whose class (4 classes) is which quadrant is bright, plus noise; ``y = i % 4``."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.rand(n, 1, 8, 8, generator=g) * noise
    for c in range(4):
        r, s = divmod(c, 2)
        x[y == c, :, 4 * r : 4 * r + 4, 4 * s : 4 * s + 4] += 0.7
    return x.clamp(0, 1), y


def test_cas_is_high_for_samples_that_carry_their_class_and_chance_for_shuffled_labels() -> None:
    real, y_real = class_images(200, seed=0)
    good, y_good = class_images(200, seed=1)
    scores = []
    for labels in (y_good, y_good[torch.randperm(200, generator=torch.Generator().manual_seed(0))]):
        cas = ClassificationAccuracyScore(4, net="mlp", steps=60, batch_size=32)
        cas.update(good, labels, torch.arange(200), real=False)
        cas.update(real, y_real, torch.arange(200), real=True)
        scores.append(float(cas.compute()))
    assert scores[0] > 0.95 and scores[1] < 0.5, scores
    again = ClassificationAccuracyScore(4, net="mlp", steps=60, batch_size=32)
    again.update(good, y_good, torch.arange(200), real=False)
    again.update(real, y_real, torch.arange(200), real=True)
    assert float(again.compute()) == scores[0]  # seeded: the same classifier every time


def test_cas_trains_under_inference_mode_and_leaves_the_rng_alone() -> None:
    real, y = class_images(40, seed=2)
    cas = ClassificationAccuracyScore(4, net="cnn", steps=3, batch_size=8)
    with torch.inference_mode():  # as in Lightning's test loop
        cas.update(real, y, torch.arange(40), real=False)
        cas.update(real, y, torch.arange(40), real=True)
        torch.manual_seed(7)
        value = cas.compute()
        after = torch.rand(1)
    torch.manual_seed(7)
    assert 0.0 <= float(value) <= 1.0 and torch.equal(after, torch.rand(1))


# ------------------------------------------------------------------ 2 processes = 1
def _all_metrics(data: dict[str, torch.Tensor], rank: int, world: int) -> dict[str, torch.Tensor]:
    """Every new metric fed this rank's interleaved share; computed (collectively under DDP)."""
    share = slice(rank, None, world)
    idx = torch.arange(len(data["real"]))
    dc = DensityCoverage(5)
    dc.set_reference(data["real"])
    dc.update(data["fake"][share], idx[share])
    quality = SampleQuality(data["real"].shape[1], kid_subsets=3, kid_subset_size=20)
    quality.update(data["real"][share], idx[share], real=True)
    quality.update(data["fake"][share], idx[share], real=False)
    intra = IntraClassFID(4, data["real"].shape[1])
    intra.update(data["real"][share], data["y"][share], real=True)
    intra.update(data["fake"][share], data["y"][share], real=False)
    cas = ClassificationAccuracyScore(4, net="mlp", steps=20, batch_size=16)
    cas.update(data["images"][share], data["y"][share], idx[share], real=False)
    cas.update(data["real_images"][share], data["y"][share], idx[share], real=True)
    density, coverage = dc.compute()
    q, i = quality.compute(), intra.compute()
    return {
        "density": density, "coverage": coverage, "q_density": q["density"], "q_coverage": q["coverage"],
        "q_fid": q["fid"], "intra_mean": i["mean"], "intra_per_class": i["per_class"], "cas": cas.compute(),
    }  # fmt: skip


def _ddp_worker(rank: int, world: int, folder: str, data: dict[str, torch.Tensor]) -> None:
    dist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank, world_size=world)
    try:
        torch.save(_all_metrics(data, rank, world), f"{folder}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _data() -> dict[str, torch.Tensor]:
    real, y = labelled_features(80, 6, 4, seed=6)
    fake, _ = labelled_features(80, 6, 4, seed=7, shift=0.3)
    real_images, _ = class_images(80, seed=3)
    images, _ = class_images(80, seed=4, noise=0.6)
    return {"real": real, "fake": fake, "y": y, "real_images": real_images, "images": images}


def test_merged_states_of_two_ranks_give_the_one_process_values() -> None:
    """What DDP's reduction does to the states (sum / cat, then sort by index), without processes."""
    data = _data()
    for make in (lambda: IntraClassFID(4, 6), lambda: ClassificationAccuracyScore(4, net="mlp", steps=20)):
        metrics = [make() for _ in range(3)]
        for m, share in zip(metrics, (slice(None), slice(0, None, 2), slice(1, None, 2))):
            idx = torch.arange(80)[share]
            if isinstance(m, IntraClassFID):
                m.update(data["real"][share], data["y"][share], real=True)
                m.update(data["fake"][share], data["y"][share], real=False)
            else:
                m.update(data["images"][share], data["y"][share], idx, real=False)
                m.update(data["real_images"][share], data["y"][share], idx, real=True)
        metrics[2].merge_state(metrics[1])  # rank 1 after the gather: its share last, the index sorts it
        whole, merged = metrics[0].compute(), metrics[2].compute()
        if isinstance(whole, dict):
            torch.testing.assert_close(merged["per_class"], whole["per_class"], rtol=1e-6, atol=1e-7)
        else:
            assert float(merged) == float(whole)


@pytest.mark.slow  # ~20 s: starting the two processes dominates; the test above checks the reduction in-process
def test_two_gloo_processes_give_the_one_process_values(tmp_path: Path) -> None:
    data = _data()
    one = _all_metrics(data, 0, 1)
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, str(tmp_path), data), nprocs=2, start_method="forkserver"
    )
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert set(one) == set(ranks[0])
    for key, value in one.items():
        for r, got in enumerate(ranks):
            torch.testing.assert_close(got[key], value, rtol=1e-6, atol=1e-7, equal_nan=True, msg=f"{key} rank {r}")
    assert 0 < float(one["coverage"]) < 1 and float(one["intra_mean"]) > 0 and 0 < float(one["cas"]) <= 1


# ------------------------------------------------------------------ offered by FIDCallback
def test_fid_callback_offers_density_coverage_intra_fid_and_cas_for_a_conditional_sampler(tmp_path: Path) -> None:
    from genlight.callbacks import FIDCallback
    from genlight.callbacks.data import ordered_loader
    from tests.helpers import build_model, cpu_trainer, digits_datamodule

    dm = digits_datamodule()
    model = build_model("cgan", dm)
    trainer = cpu_trainer(str(tmp_path), max_steps=1, limit_val_batches=0)
    trainer.fit(model, dm)
    callback = FIDCallback(
        metrics=["fid", "dc", "intra_fid", "cas"], num_samples=200, batch_size=100, every_n_epochs=0,
        cache_dir=str(tmp_path / "cache"), cas_net="mlp", cas_steps=5,
    )  # fmt: skip
    results = callback.evaluate(trainer, model)
    per_class = [results[f"val/intra_fid_digits_class{c}"] for c in range(10)]
    assert {"val/fid_digits", "val/density_digits", "val/coverage_digits", "val/intra_fid_digits", "val/cas"} <= set(
        results
    )
    assert 0 <= results["val/coverage_digits"] <= 1 and results["val/density_digits"] >= 0
    assert results["val/intra_fid_digits"] == pytest.approx(sum(per_class) / 10, rel=1e-5)
    extractor = callback.extractor(torch.device("cpu"))  # the same seeded samples, scored here per class
    with torch.no_grad():
        fake = torch.cat([extractor(x)[0] for _, x in callback.generate(model)]).double()
        real_x, real_y = (torch.cat(t) for t in zip(*ordered_loader(dm.train_set, 500)))
        real = extractor(real_x)[0].double()
    for c in (0, 7):
        stats = [fid_features_to_statistics(f) for f in (real[real_y == c], fake[torch.arange(200) % 10 == c])]
        want = fid_statistics_to_metric(*stats, verbose=False)["frechet_inception_distance"]
        assert per_class[c] == pytest.approx(want, rel=1e-4)
    assert 0 <= results["val/cas"] <= 1
    assert {"class_count", "class_outer", "class_sum"} <= set(callback._reference)  # cached with the reference
    assert int(callback._reference["class_count"].sum()) == len(dm.train_set)


def test_fid_callback_refuses_class_metrics_for_an_unconditional_sampler_in_one_line(tmp_path: Path) -> None:
    from genlight.callbacks import FIDCallback
    from genlight.errors import ConfigError
    from tests.helpers import cpu_trainer, digits_datamodule, tiny_vae

    callback = FIDCallback(metrics=["fid", "cas"], every_n_epochs=1, cache_dir=str(tmp_path))
    trainer = cpu_trainer(str(tmp_path), max_steps=1, callbacks=[callback])
    with pytest.raises(
        ConfigError, match=r"^FIDCallback: cas need a class-conditional sampler .*drop them from metrics$"
    ):
        trainer.fit(tiny_vae(), digits_datamodule())


# ------------------------------------------------------------------ offered by genlight test
def test_genlight_test_of_a_conditional_sampler_reports_density_coverage_intra_fid_and_cas(tmp_path: Path) -> None:
    import math

    from tests.helpers import cpu_trainer, smoke_setup

    model, dm, _ = smoke_setup("cgan", tmp_path)
    (res,) = cpu_trainer(str(tmp_path), limit_test_batches=3).test(model, datamodule=dm, verbose=False)
    per_class = [res[f"test/intra_fid_class{c}"] for c in range(10)]
    assert {"test/fid", "test/density", "test/coverage", "test/intra_fid", "test/cas"} <= set(res)
    assert all(math.isfinite(res[k]) for k in ("test/fid", "test/density", "test/coverage", "test/cas"))
    scored = [v for v in per_class if not math.isnan(v)]
    assert scored and res["test/intra_fid"] == pytest.approx(sum(scored) / len(scored), rel=1e-5)
    assert 0 <= res["test/coverage"] <= 1 and 0 <= res["test/cas"] <= 1
    assert "cas: an MLP trained on the samples only" in model.test_protocol
