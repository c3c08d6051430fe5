"""`genlight score`: outlier detection, classification with rejection and linear probes of tiny
trained checkpoints, written as md/json/csv/png; one-line refusals for a model without the capability."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genlight.cli import main
from tests.test_cli_errors import run

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.logger", "false"]


def fit(root: Path, *args: str) -> str:
    main(["fit", *args, "--trainer.default_root_dir", str(root), *QUIET])
    return str(next(root.rglob("last.ckpt")))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, str]:
    """An exact class-conditional categorical trained on 9 digit classes (3 held out) and an MLP classifier."""
    root = tmp_path_factory.mktemp("score")
    density = fit(root / "density", "--model", "test_conditional_categorical", "--data", "digit_outliers",
                  "--data.held_out_class", "3", "--trainer.max_epochs", "2")  # fmt: skip
    classifier = fit(root / "classifier", "--model", "mlp_classifier", "--data", "digits", "--model.hidden", "[32]",
                     "--trainer.max_epochs", "3")  # fmt: skip
    return {"density": density, "classifier": classifier}


def test_ood_writes_the_table_and_picture(checkpoints, tmp_path, capsys):
    code, out, err = run(capsys, "score", "--ckpt_path", checkpoints["density"], "--task", "ood", "--out", str(tmp_path))
    assert code == 0, err
    assert {p.name for p in tmp_path.iterdir()} == {"ood.md", "ood.json", "ood.csv", "ood.png"}
    assert "| nll | inverted |" in out and "held_out_class=3" in out  # the checkpoint's datamodule arguments
    rows = json.loads((tmp_path / "ood.json").read_text())["rows"]
    by = {(r["score"], r["outlier_set"]): r for r in rows}
    assert {r["outlier_set"] for r in rows} == {"inverted", "uniform_noise", "constant", "blurred", "pixel_shuffled",
                                                "held_out_class"}  # fmt: skip
    assert {r["score"] for r in rows} == {"recommended", "nll", "typicality", "complexity", "dose", "dose_nll"}
    assert by["nll", "inverted"]["auroc"] == 1.0 and by["nll", "uniform_noise"]["auroc"] == 1.0
    assert 0.5 < by["nll", "held_out_class"]["auroc"] < 1.0 and by["nll", "held_out_class"]["n_outliers"] == 183
    assert (tmp_path / "ood.csv").read_text().startswith("score,outlier_set,auroc,auprc,fpr_at_95_tpr")


def test_the_recommended_score_comes_first_and_is_marked(checkpoints, tmp_path, capsys):
    """DoSE and the leave-one-set-out recommended score (genlight.evaluation.recommend) in the table."""
    from genlight.evaluation.outlier_sets import MORE_SETS

    ckpt = checkpoints["density"]
    code, out, err = run(capsys, "score", "--ckpt_path", ckpt, "--task", "ood", "--max_examples", "40",
                         "--out", str(tmp_path / "s"), "--more_sets")  # fmt: skip
    assert code == 0, err
    rows = json.loads((tmp_path / "s" / "ood.json").read_text())["rows"]
    sets = {r["outlier_set"] for r in rows}
    assert len(sets) == 6 + len(MORE_SETS)
    first = rows[: len(sets)]
    assert all(r["score"] == "recommended" and r["recommended"] == "leave one set out" for r in first)
    assert {r["score"] for r in rows} >= {"nll", "dose", "dose_nll", "recommended"}
    marked = {r["score"] for r in rows if r["recommended"] == "for new data"}
    assert len(marked) == 1 and f"recommended for new data: {marked.pop()}" in out
    table = out.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("| score |"))
    assert table[header + 2].startswith("| recommended |")
    assert 0.0 <= first[0]["auroc"] <= 1.0


def test_a_background_equal_to_the_model_cancels_the_likelihood(checkpoints, tmp_path, capsys):
    ckpt = checkpoints["density"]
    code, _, err = run(capsys, "score", "--ckpt_path", ckpt, "--task", "ood", "--background", ckpt, "--out", str(tmp_path))
    assert code == 0, err
    rows = json.loads((tmp_path / "ood.json").read_text())["rows"]
    ratio = [r for r in rows if r["score"] == "likelihood_ratio"]
    assert len(ratio) == 6 and all(r["auroc"] == 0.5 for r in ratio)  # every ratio is 0: all tied


def test_classify_with_a_density_and_with_a_classifier(checkpoints, tmp_path, capsys):
    code, out, err = run(capsys, "score", "--ckpt_path", checkpoints["density"], "--task", "classify", "--out", str(tmp_path))
    assert code == 0, err
    rows = json.loads((tmp_path / "classify.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["bayes, log p(x)", "bayes, max p(y|x)"]
    assert rows[0]["accuracy"] > 0.8 and rows[1]["accuracy_at_50"] >= rows[1]["accuracy"]
    code, out, err = run(capsys, "score", "--ckpt_path", checkpoints["classifier"], "--data", "digits", "--task",
                         "classify", "--out", str(tmp_path))  # fmt: skip
    assert code == 0, err
    rows = json.loads((tmp_path / "classify.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["softmax, max p(y|x)"] and 0.0 < rows[0]["accuracy"] <= 1.0


def test_probe_of_classifier_features(checkpoints, tmp_path, capsys):
    code, out, err = run(capsys, "score", "--ckpt_path", checkpoints["classifier"], "--data", "digits", "--task", "probe",
                         "--out", str(tmp_path))  # fmt: skip
    assert code == 0, err
    rows = json.loads((tmp_path / "probe.json").read_text())["rows"]
    assert [r["labels_per_class"] for r in rows] == ["all", 10, 1]
    assert rows[0]["num_train"] > rows[1]["num_train"] == 100 > rows[2]["num_train"] == 10
    assert rows[0]["test_accuracy"] > 0.5 and (tmp_path / "probe.png").stat().st_size > 500


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--task", "probe"], ["cannot be scored by --task probe", "Featurizer"]),
        (["--task", "ood", "--data", "digits"], ["--data digits has none", "--data digit_outliers"]),
        (["--task", "classify", "--data", "digits", "--held_out_class", "2"], ["--held_out_class", "digits takes no"]),
        (["--task", "classify", "--background", "x.ckpt"], ["--background is for --task ood"]),
        (["--task", "ood", "--data", "digitz"], ["unknown datamodule 'digitz'"]),
        (["--task", "ood", "--data", "mnist"], ["--task ood needs data with outlier sets"]),
    ],
)
def test_one_line_refusals(checkpoints, tmp_path, capsys, args, needles):
    code, out, err = run(capsys, "score", "--ckpt_path", checkpoints["density"], "--out", str(tmp_path), *args)
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1 and lines[0].startswith("genlight: error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert not list(tmp_path.iterdir())  # nothing written


def test_classifier_refused_for_ood(checkpoints, tmp_path, capsys):
    code, _, err = run(capsys, "score", "--ckpt_path", checkpoints["classifier"], "--task", "ood", "--out", str(tmp_path))
    assert code == 1 and "needs a DensityModel (log_prob), an EnergyModel" in err and "Traceback" not in err
