"""``genlight test`` scores every family on the test split: samplers by FID/KID/precision/recall of their
samples against the test images, translators by round-trip, identity and per-direction FID/KID,
density models by their own figures. The metrics are DDP-correct (states summed or gathered)."""

from __future__ import annotations

import math

import pytest
import torch

from genlight import list_models
from genlight.cli import main
from genlight.metrics.sample_quality import SampleQuality
from genlight.test_scores import TestScores
from tests.helpers import cpu_trainer, gaussian_features, smoke_setup

FAST = {"gan": "sampler", "cyclegan": "translator", "ebm": "energy model"}


def _test_metrics(name: str, tmp_path, limit: int = 2) -> dict[str, float]:
    model, dm, trainer_kwargs = smoke_setup(name, tmp_path)
    trainer = cpu_trainer(str(tmp_path), limit_test_batches=limit, **trainer_kwargs)
    (results,) = trainer.test(model, datamodule=dm, verbose=False)
    return {k: float(v) for k, v in results.items() if k.startswith("test/")}


def _assert_scored(name: str, metrics: dict[str, float]) -> None:
    assert metrics, f"{name}: `test` logged no test/ metric"
    finite = [k for k, v in metrics.items() if math.isfinite(v)]
    assert finite, f"{name}: no finite test/ metric in {metrics}"


@pytest.mark.parametrize("name", sorted(FAST))
def test_test_scores_each_kind(name, tmp_path):
    metrics = _test_metrics(name, tmp_path)
    _assert_scored(name, metrics)
    if FAST[name] == "translator":
        assert {"test/cycle", "test/cycle_a", "test/identity", "test/fid_a2b", "test/kid_b2a"} <= set(metrics)
        assert 0 <= metrics["test/cycle"] <= 1 and metrics["test/fid_a2b"] >= 0
    else:
        assert {"test/fid", "test/kid", "test/precision", "test/recall"} <= set(metrics)
        assert metrics["test/fid"] >= 0 and 0 <= metrics["test/precision"] <= 1
    if FAST[name] == "energy model":
        assert "test/energy_gap" in metrics


def test_sampler_test_scores_are_seeded(tmp_path):
    """The same model and data give the same numbers twice (samples drawn with a fixed seed per batch),
    and the global RNG is left alone."""
    model, dm, _ = smoke_setup("gan", tmp_path)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        (res,) = cpu_trainer(str(tmp_path), limit_test_batches=2).test(model, datamodule=dm, verbose=False)
        runs.append((res["test/fid"], torch.rand(1)))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])
    assert "samples (one seeded draw per test batch, seed 0) vs" in model.test_protocol and "digits" in model.test_protocol


def test_conditional_samplers_draw_the_test_labels(tmp_path):
    model, dm, _ = smoke_setup("cgan", tmp_path)
    seen = []
    original = model.sample

    def spy(n, *, y=None):
        seen.append(y)
        return original(n, y=y)

    model.sample = spy
    cpu_trainer(str(tmp_path), limit_test_batches=1).test(model, datamodule=dm, verbose=False)
    (x, y) = next(iter(dm.test_dataloader()))
    assert seen and torch.equal(seen[0].cpu(), y)
    assert "with the test labels" in model.test_protocol


def test_points_are_compared_as_they_are(tmp_path):
    """2-D points (toy2d) need no extractor: FID of the raw coordinates."""
    from genlight import create_datamodule, create_model

    dm = create_datamodule("toy2d", num_samples=400, batch_size=40)
    dm.setup("test")
    model = create_model("gan", image_shape=(2,), latent_dim=4, hidden=8, layers=1)
    (res,) = cpu_trainer(str(tmp_path)).test(model, datamodule=dm, verbose=False)
    assert math.isfinite(res["test/fid"]) and "raw coordinates" in model.test_protocol
    assert model.test_protocol.startswith(f"{len(dm.test_set)} samples") and f"vs {len(dm.test_set)} test" in model.test_protocol


def test_a_model_with_nothing_to_score_says_so(tmp_path):
    """Neither a sampler nor a translator and no test_step of its own: one line, no Lightning traceback."""
    from genlight.errors import ConfigError

    scores = TestScores()
    with pytest.raises(ConfigError, match="has no test figure: it is neither a sampler"):
        scores.update(torch.nn.Linear(2, 2), (torch.zeros(2, 2), torch.zeros(2)), 0)


def test_sample_quality_is_the_same_split_over_two_ranks():
    """What DDP does to the states (sum / cat, then sort by index) gives the one-process numbers:
    two metrics, each fed its rank's interleaved share, merged, equal one metric fed everything."""
    real, fake = gaussian_features(40, 6, seed=1), gaussian_features(40, 6, seed=2, shift=0.3)
    whole = SampleQuality(6, kid_subsets=5, kid_subset_size=20)
    idx = torch.arange(40)
    whole.update(real, idx, real=True)
    whole.update(fake, idx, real=False)
    ranks = [SampleQuality(6, kid_subsets=5, kid_subset_size=20) for _ in range(2)]
    for r, metric in enumerate(ranks):
        metric.update(real[r::2], idx[r::2], real=True)
        metric.update(fake[r::2], idx[r::2], real=False)
    ranks[1].merge_state(ranks[0])  # the reduction DDP applies (sum and cat)
    a, b = whole.compute(), ranks[1].compute()
    assert set(a) == {"fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "num_real", "num_fake"}
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-6, atol=1e-9, msg=key)
    assert a["fid"] > 0 and a["num_fake"] == 40


def test_sample_quality_of_identical_sets_is_near_zero():
    x = gaussian_features(60, 4, seed=3)
    metric = SampleQuality(4, kid_subsets=3, kid_subset_size=30)
    metric.update(x, torch.arange(60), real=True)
    metric.update(x, torch.arange(60), real=False)
    out = metric.compute()
    assert float(out["fid"]) < 1e-6 and float(out["precision"]) == 1.0 and float(out["recall"]) == 1.0


@pytest.mark.slow  # ~5 s: a fit and a test through the command
def test_genlight_test_on_a_gan_checkpoint(tmp_path, monkeypatch, capsys):
    """The command itself: `genlight test --ckpt_path` of a tiny fit exits 0 and prints test/fid."""
    monkeypatch.chdir(tmp_path)
    quick = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    main(["fit", "--model", "gan", "--data", "digits", "--data.subset", "64", "--model.hidden", "8",
          "--model.layers", "1", "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0", *quick])  # fmt: skip
    ckpt = tmp_path / "runs" / "gan" / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    capsys.readouterr()
    main(["test", "--ckpt_path", str(ckpt), "--data", "digits", "--trainer.logger", "false", *quick])
    out = capsys.readouterr().out
    assert "test/fid" in out and "test/kid" in out and "Traceback" not in out


@pytest.mark.slow  # every registered family, one after another (~1-10 s each)
@pytest.mark.parametrize("name", list_models())
def test_every_family_scores_on_the_test_split(name, tmp_path):
    _assert_scored(name, _test_metrics(name, tmp_path, limit=1))


def test_test_scores_the_averaged_weights_like_validation(tmp_path):
    """With an EMA of the generator, `test` samples from the average (as grids and FID do), and the live
    weights are back in the model afterwards."""
    from genlight.callbacks.ema import EMA

    model, dm, _ = smoke_setup("gan", tmp_path)
    ema = EMA(decay=0.5)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=3, limit_val_batches=0, limit_test_batches=1,
                          callbacks=[ema])  # fmt: skip
    trainer.fit(model, datamodule=dm)
    live = {k: v.clone() for k, v in model.generator.state_dict().items()}
    seen = {}
    original = model.sample

    def spy(n, *, y=None):
        seen.update({k: v.clone() for k, v in model.generator.state_dict().items()})
        return original(n, y=y)

    model.sample = spy
    trainer.test(model, datamodule=dm, verbose=False)
    averaged = {k[len("generator."):]: v for k, v in ema.shadow.items()}
    assert any(not torch.equal(live[k], averaged[k]) for k in live)
    assert all(torch.equal(seen[k], averaged[k]) for k in live)
    assert all(torch.equal(model.generator.state_dict()[k], live[k]) for k in live)
