"""genlight.evaluation on cases with known answers: detection metrics, outlier scores of exact tiny
models, the digit_outliers sets, classification with rejection, linear probes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

import genlight
from genlight import create_model
from genlight.datamodules import DigitOutliersDataModule
from genlight.datamodules.outliers import stack_images
from genlight.evaluation import (
    accuracy_at_coverage,
    accuracy_coverage,
    bayes_decision,
    class_log_likelihoods,
    compressed_bits,
    detection_metrics,
    features_of,
    few_labels,
    linear_probe,
    outlier_scores,
    perturb,
    predict_with_rejection,
    train_background,
)
from genlight.functional import to_levels
from genlight.types import Featurizer
from tests.families import TestConditionalCategorical


def fitted_categorical(x: torch.Tensor, y: torch.Tensor, smoothing: float = 0.5) -> TestConditionalCategorical:
    """The exact per-pixel, per-class categorical model of ``(x, y)`` (add-``smoothing`` counts)."""
    model = TestConditionalCategorical()
    counts = torch.full((10, 64, 17), smoothing)
    levels = to_levels(x, 17).flatten(1)
    for k in range(10):
        counts[k] += torch.nn.functional.one_hot(levels[y == k], 17).sum(0).float()
    model.logits.data = counts.log()
    return model.eval()


@pytest.fixture(scope="module")
def data() -> DigitOutliersDataModule:
    dm = DigitOutliersDataModule()
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def model(data) -> TestConditionalCategorical:
    return fitted_categorical(*stack_images(data.reference_dataset("train")))


# ------------------------------------------------------------------ detection metrics
def test_detection_metrics_extremes():
    assert detection_metrics(torch.zeros(5), torch.ones(7)) == {"auroc": 1.0, "auprc": 1.0, "fpr_at_95_tpr": 0.0}
    reversed_ = detection_metrics(torch.ones(5), torch.zeros(7))
    assert reversed_["auroc"] == 0.0 and reversed_["fpr_at_95_tpr"] == 1.0
    assert reversed_["auprc"] == pytest.approx(7 / 12)  # one threshold flags everyone: precision = prevalence
    same = detection_metrics(torch.full((4,), 3.0), torch.full((6,), 3.0))  # all tied
    assert same["auroc"] == 0.5 and same["auprc"] == pytest.approx(0.6) and same["fpr_at_95_tpr"] == 1.0
    g = torch.Generator().manual_seed(0)
    alike = detection_metrics(torch.randn(4000, generator=g), torch.randn(4000, generator=g))
    assert abs(alike["auroc"] - 0.5) < 0.03


def test_detection_metrics_with_ties_are_exact():
    # pairs (out, in): (1,0) 1, (1,1) 1/2, (2,0) 1, (2,1) 1 -> 3.5 / 4
    assert detection_metrics(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]))["auroc"] == 0.875
    g = torch.Generator().manual_seed(1)
    inl, out = torch.randint(0, 6, (300,), generator=g).float(), torch.randint(2, 9, (200,), generator=g).float()
    labels, scores = [0] * 300 + [1] * 200, torch.cat([inl, out]).numpy()
    m = detection_metrics(inl, out)
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert m["auprc"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)


def test_roc_curve_area_is_the_auroc():
    from genlight.evaluation import roc_curve

    g = torch.Generator().manual_seed(2)
    inl, out = torch.randint(0, 5, (80,), generator=g).float(), torch.randint(1, 7, (60,), generator=g).float()
    fpr, tpr, thresholds = roc_curve(inl, out)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1 and len(thresholds) == len(torch.cat([inl, out]).unique()) + 1
    area = float(((fpr[1:] - fpr[:-1]) * (tpr[1:] + tpr[:-1]) / 2).sum())
    assert area == pytest.approx(detection_metrics(inl, out)["auroc"], abs=1e-12)


def test_fpr_at_95_tpr():
    inliers, outliers = torch.arange(100.0), torch.arange(100.0) + 90  # 95 outliers are >= 95, so are 5 inliers
    assert detection_metrics(inliers, outliers)["fpr_at_95_tpr"] == pytest.approx(0.05)
    with pytest.raises(ValueError, match="finite"):
        detection_metrics(torch.tensor([0.0, float("inf")]), torch.ones(2))


# ------------------------------------------------------------------ scores
def test_exact_model_separates_what_it_cannot_produce(data, model):
    inliers, _ = data.inliers()
    scores_in = outlier_scores(model, inliers)
    for name in ("inverted", "uniform_noise"):
        scores_out = outlier_scores(model, data.outlier_set(name))
        assert detection_metrics(scores_in["nll"], scores_out["nll"]) == {"auroc": 1.0, "auprc": 1.0, "fpr_at_95_tpr": 0.0}
    shuffled = outlier_scores(model, data.outlier_set("pixel_shuffled"))
    assert detection_metrics(scores_in["nll"], shuffled["nll"])["auroc"] > 0.999
    # a held-out split of the training distribution: validation against test
    val = stack_images(data.reference_dataset("val"))[0]
    auroc = detection_metrics(scores_in["nll"], outlier_scores(model, val)["nll"])["auroc"]
    assert 0.4 < auroc < 0.6


def test_scores_follow_capabilities(model):
    x = torch.randint(0, 17, (6, 1, 8, 8)).float() / 16
    assert set(outlier_scores(model, x)) == {"nll", "complexity"}  # no reference, no background
    assert set(outlier_scores(model, x, reference=1.0, background=model)) == {"nll", "likelihood_ratio", "typicality", "complexity"}
    gan = create_model("gan", image_shape=(1, 8, 8), latent_dim=4, hidden=16, layers=1).eval()
    scores = outlier_scores(gan, x)
    assert set(scores) == {"discriminator"}
    assert torch.allclose(scores["discriminator"], -gan.critic(x * 2 - 1).flatten().double(), atol=1e-6)
    ae = create_model("ae", image_shape=(1, 8, 8)).eval()
    rec = outlier_scores(ae, x)["reconstruction"]
    assert torch.allclose(rec, (ae.decode(ae.encode(x)) - x).pow(2).flatten(1).sum(1).double(), atol=1e-5)


def test_energy_score_of_an_energy_model():
    ebm = create_model("ebm", image_shape=(1, 8, 8), channels=8, hidden=16).eval()
    x = torch.rand(4, 1, 8, 8)
    scores = outlier_scores(ebm, x)
    assert set(scores) == {"energy"} and torch.allclose(scores["energy"], ebm.energy(x).detach().double())


def test_reconstruction_of_a_conditional_autoencoder_takes_the_best_class():
    cvae = create_model("cvae", image_shape=(1, 8, 8), num_classes=10, hidden_channels=8, latent_dim=4).eval()
    x = torch.randint(0, 17, (3, 1, 8, 8)).float() / 16
    with torch.no_grad():
        per_class = torch.stack([(cvae.decode(cvae.encode(x, y=torch.full((3,), c)), y=torch.full((3,), c)) - x)
                                 .pow(2).flatten(1).sum(1) for c in range(10)], 1)  # fmt: skip
    assert torch.allclose(outlier_scores(cvae, x)["reconstruction"], per_class.amin(1).double(), atol=1e-5)


def test_likelihood_ratio_is_a_difference_of_exact_log_likelihoods(data, model):
    x, y = stack_images(data.reference_dataset("train"))
    noisy = perturb(x, 0.3, 17, torch.Generator().manual_seed(0))
    background = fitted_categorical(noisy, y)
    test = data.inliers()[0][:50]
    ratio = outlier_scores(model, test, background=background)["likelihood_ratio"]
    expected = (-model.log_prob(test) + background.log_prob(test)).double()
    assert torch.allclose(ratio, expected, atol=1e-4)


def test_typicality_and_complexity_on_constructed_inputs(model):
    x = torch.randint(0, 17, (5, 1, 8, 8), generator=torch.Generator().manual_seed(3)).float() / 16
    nll = -model.log_prob(x).detach().double()
    typ = outlier_scores(model, x, reference=float(nll[2]))["typicality"]
    assert typ[2] == pytest.approx(0.0, abs=1e-6) and torch.allclose(typ, (nll - nll[2]).abs())
    # the reference may be the training -log p values themselves: their mean is used
    assert torch.allclose(outlier_scores(model, x, reference=nll)["typicality"], (nll - nll.mean()).abs())
    complexity = outlier_scores(model, x)["complexity"]
    assert torch.allclose(complexity, nll / math.log(2) - compressed_bits(x, 17), atol=1e-6)
    constant, noise = torch.zeros(1, 1, 8, 8), x[:1]
    assert compressed_bits(constant, 17) < compressed_bits(noise, 17)  # a simpler image compresses better
    assert compressed_bits(x, 17).shape == (5,)


def test_perturb_replaces_a_fraction_of_values_by_levels():
    x = torch.full((200, 1, 8, 8), 0.5)
    noisy = perturb(x, 0.2, 17, torch.Generator().manual_seed(0))
    changed = (noisy != x).double().mean()
    assert 0.17 < changed < 0.2  # 20% replaced, 1 in 17 of those by the same level
    assert torch.equal((noisy * 16).round() / 16, noisy)
    assert torch.equal(perturb(x, 0.0, 17), x)
    with pytest.raises(ValueError, match="mu"):
        perturb(x, 1.5, 17)


def test_train_background_fits_on_perturbed_digits():
    dm = DigitOutliersDataModule(batch_size=64, subset=256)
    bg = train_background("nade", {"hidden_units": 16}, dm, mu=0.2, weight_decay=1e-3, trainer_kwargs={"max_steps": 5})
    assert bg.hparams.weight_decay == 1e-3 and not bg.training
    assert torch.isfinite(bg.log_prob(dm.inliers()[0][:8])).all()
    with pytest.raises(ValueError, match="weight_decay"):
        train_background("ae", {}, dm)


def test_background_from_an_example_config(tmp_path):
    from genlight import load_model
    from genlight.evaluation import background_from_config

    dm = DigitOutliersDataModule(batch_size=64, subset=128)
    config = Path(__file__).parents[1] / "examples/digits/pixelcnn.yaml"
    bg = background_from_config(config, mu=0.1, weight_decay=1e-3, datamodule=dm, save_path=tmp_path / "bg.ckpt",
                                trainer_kwargs={"max_steps": 2, "max_epochs": 1})  # fmt: skip
    assert type(bg).__name__ == "PixelCNN" and bg.hparams.weight_decay == 1e-3 and bg.hparams.hidden_channels == 64
    x = dm.inliers()[0][:4]
    assert torch.isfinite(bg.log_prob(x)).all()
    assert torch.allclose(load_model(tmp_path / "bg.ckpt").log_prob(x), bg.log_prob(x))


# ------------------------------------------------------------------ digit_outliers
def test_outlier_sets_are_deterministic_and_on_the_grid():
    a, b = DigitOutliersDataModule(seed=1), DigitOutliersDataModule(seed=1)
    a.setup("fit"), b.setup("fit")
    sets = a.outlier_sets()
    assert list(sets) == ["inverted", "uniform_noise", "constant", "blurred", "pixel_shuffled"]
    inliers = a.inliers()[0]
    for name, images in sets.items():
        assert torch.equal(images, b.outlier_set(name)), name
        assert images.shape == inliers.shape and torch.equal((images * 16).round() / 16, images), name
    assert torch.equal(sets["inverted"], 1 - inliers)
    flat = sets["pixel_shuffled"].flatten(1)
    assert torch.equal(flat.sort(1).values, inliers.flatten(1).sort(1).values)  # same histograms
    assert (sets["constant"].flatten(1).std(1) == 0).all()
    with pytest.raises(ValueError, match="held_out_class"):
        a.outlier_set("held_out_class")


def test_held_out_class_leaves_every_split():
    dm = DigitOutliersDataModule(held_out_class=7)
    dm.setup("fit")
    for split in ("train", "val", "test"):
        assert not (stack_images(dm.reference_dataset(split))[1] == 7).any()
    held = dm.outlier_set("held_out_class")
    total = sum(len(dm.reference_dataset(s)) for s in ("train", "val", "test")) + len(held)
    assert total == 1797 and len(held) == 179
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape[1:] == (1, 8, 8)


def test_fashion_outliers_offers_the_mnist_test_images(tmp_path):
    from tests.fakedata import write_mnist

    mnist = write_mnist(tmp_path, "MNIST", n_train=30, n_test=12, seed=1)
    write_mnist(tmp_path, "FashionMNIST", n_train=40, n_test=10, gz=True)
    dm = genlight.create_datamodule("fashion_outliers", data_dir=str(tmp_path), batch_size=8)
    dm.setup("fit")
    assert dm.outlier_set_names[-1] == "mnist" and dm.inliers()[0].shape == (10, 1, 28, 28)
    assert torch.equal((dm.outlier_set("mnist") * 255).round().to(torch.uint8)[:, 0], mnist["test_x"])
    blurred = dm.outlier_set("blurred")
    assert blurred.shape == (10, 1, 28, 28) and torch.equal((blurred * 255).round() / 255, blurred)


# ------------------------------------------------------------------ classification with rejection
def test_bayes_decision_and_coverage_are_exact():
    log_lik = torch.tensor([[-1.0, -2.0], [-3.0, -1.0], [-2.0, -2.5], [-10.0, -9.0]]).double()
    out = bayes_decision(log_lik)
    assert out["prediction"].tolist() == [0, 1, 0, 1]
    assert torch.allclose(out["log_px"], torch.logsumexp(log_lik, 1) - math.log(2))
    assert torch.allclose(out["posterior"].sum(1), torch.ones(4, dtype=torch.float64))
    skewed = bayes_decision(log_lik, prior=torch.tensor([0.1, 0.9]))  # log 9 > 1, > 0.5: class 1 wins twice more
    assert skewed["prediction"].tolist() == [1, 1, 1, 1]
    correct = torch.tensor([True, True, False, False, True])
    confidence = torch.tensor([0.9, 0.8, 0.8, 0.1, 0.95])
    coverage, accuracy = accuracy_coverage(correct, confidence)
    # kept: {0.95} 1/1, {0.95, 0.9} 2/2, + both 0.8 (tied, together) 3/4, + 0.1 3/5
    assert coverage.tolist() == [0.2, 0.4, 0.8, 1.0]
    assert accuracy.tolist() == [1.0, 1.0, 0.75, 0.6]
    assert accuracy_at_coverage(correct, confidence, 0.5) == 0.75
    assert accuracy_at_coverage(correct, confidence, 1.0) == 0.6
    with pytest.raises(ValueError, match="prior"):
        bayes_decision(log_lik, prior=torch.tensor([0.5, 0.6]))


def test_conditional_density_predicts_the_bayes_class(data, model):
    x, y = data.inliers()
    log_lik = class_log_likelihoods(model, x[:40])
    assert torch.allclose(log_lik, model.class_log_probs(x[:40]).double(), atol=1e-5)
    out = predict_with_rejection(model, x)
    assert torch.equal(out["prediction"], model.class_log_probs(x).argmax(1))
    assert torch.allclose(out["log_px"], model.log_prob(x).double(), atol=1e-4)  # uniform prior: the model's marginal
    assert (out["prediction"] == y).double().mean() > 0.85
    with pytest.raises(TypeError, match="class-conditional"):
        class_log_likelihoods(create_model("nade", image_shape=(1, 8, 8), hidden_units=8), x[:2])


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [("cvae", {"hidden_channels": 8, "latent_dim": 4}),
     ("gated_pixelcnn", {"conditional": True, "hidden_channels": 8, "num_layers": 2})],
)
def test_conditional_families_give_log_p_x_given_y(name, kwargs):
    model = create_model(name, image_shape=(1, 8, 8), num_levels=17, num_classes=10, **kwargs).eval()
    x = torch.randint(0, 17, (3, 1, 8, 8)).float() / 16
    log_lik = class_log_likelihoods(model, x)
    assert log_lik.shape == (3, 10) and torch.isfinite(log_lik).all()
    y = torch.tensor([4, 0, 9])
    if model.log_prob_is_exact:  # the cvae's bound draws z at random
        with torch.no_grad():
            assert torch.allclose(log_lik[torch.arange(3), y], model.log_prob(x, y=y).double(), atol=1e-4)


def test_unconditional_models_are_not_classifiers():
    from genlight.evaluation import is_class_conditional_density

    assert not is_class_conditional_density(create_model("gated_pixelcnn", image_shape=(1, 8, 8), num_levels=17,
                                                         num_classes=10, hidden_channels=8))  # fmt: skip


def test_conditional_ddpm_bounds_every_class():
    ddpm = create_model("ddpm", image_shape=(1, 8, 8), num_levels=17, num_classes=10, conditional=True, channels=8, timesteps=10,
                        bound_timesteps=3).eval()  # fmt: skip
    x = torch.randint(0, 17, (3, 1, 8, 8)).float() / 16
    log_lik = class_log_likelihoods(ddpm, x)
    assert log_lik.shape == (3, 10) and torch.isfinite(log_lik).all()
    assert not torch.allclose(log_lik[:, 0], log_lik[:, 1])  # the label reaches the network
    with pytest.raises(ValueError, match="conditional"):
        create_model("ddpm", image_shape=(1, 8, 8), num_levels=17, channels=8, timesteps=10).log_prob(x, y=torch.zeros(3).long())


# ------------------------------------------------------------------ linear probes
def test_linear_probe_separable_and_random_labels():
    g = torch.Generator().manual_seed(0)
    def split(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 3, (n,), generator=g)
        return torch.randn(n, 5, generator=g) + 4.0 * torch.nn.functional.one_hot(y, 5).float(), y
    train, val, test = split(300), split(100), split(300)
    result = linear_probe(*train, *val, *test)
    assert result["test_accuracy"] > 0.97 and result["num_train"] == 300 and result["num_features"] == 5
    few = linear_probe(*train, *val, *test, labels_per_class=2)
    assert few["num_train"] == 6
    noise = [(torch.randn(n, 20, generator=g), torch.randint(0, 2, (n,), generator=g)) for n in (300, 100, 2000)]
    chance = linear_probe(*noise[0], *noise[1], *noise[2])["test_accuracy"]
    assert 0.45 < chance < 0.55


def test_few_labels_is_seeded_per_class():
    labels = torch.arange(100) % 4
    picks = few_labels(labels, 3, seed=5)
    assert torch.equal(picks, few_labels(labels, 3, seed=5)) and not torch.equal(picks, few_labels(labels, 3, seed=6))
    assert (labels[picks].bincount() == 3).all()


def test_features_of_a_featurizer():
    clf = create_model("mlp_classifier", image_shape=(1, 8, 8), num_classes=10)
    assert isinstance(clf, Featurizer) and clf.training
    feats = features_of(clf, torch.rand(5, 1, 8, 8))
    assert feats.shape == (5, clf.num_features) and clf.training  # mode restored
    with pytest.raises(TypeError, match="Featurizer"):
        features_of(torch.nn.Linear(2, 2), torch.rand(2, 2))
