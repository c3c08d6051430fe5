"""The three tasks of ``genlight score``, on a datamodule: outlier detection (``ood``), classification
with rejection (``classify``) and linear probes (``probe``). Each returns a :class:`TaskResult`
(table rows and a picture); :func:`write_result` saves it as markdown, JSON, CSV and PNG."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch import Tensor

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.outliers import stack_images
from genlight.evaluation.detection import detection_metrics, roc_curve
from genlight.evaluation.dose import dose_scores, model_statistics
from genlight.evaluation.draws import DEFAULT_DRAWS, mc_standard_error, seeded, varying
from genlight.evaluation.ensemble import ensemble_log_probs, waic_score
from genlight.evaluation.outlier_sets import more_outlier_sets
from genlight.evaluation.pictures import bar_chart, line_chart, panels
from genlight.evaluation.probes import features_of, linear_probe
from genlight.evaluation.recommend import recommended_rows
from genlight.evaluation.rejection import (
    accuracy_at_coverage,
    accuracy_coverage,
    bayes_decision,
    class_log_likelihoods,
    is_class_conditional_density,
    softmax_predictions,
)
from genlight.evaluation.scores import outlier_scores, reference_nll
from genlight.modules.classifier import ClassifierModule
from genlight.types import Autoencoder, DensityModel, EnergyModel, Featurizer

__all__ = [
    "TASKS",
    "TaskResult",
    "can_classify",
    "can_run",
    "can_score_outliers",
    "classify_task",
    "markdown_table",
    "ood_task",
    "probe_task",
    "result_paths",
    "run_task",
    "write_result",
]

#: what each task needs of a model, in words (for one-line refusals)
TASKS = {
    "ood": "a DensityModel (log_prob), an EnergyModel (energy), a GAN discriminator (discriminator_score) "
    "or an Autoencoder (encode/decode)",
    "classify": "a class-conditional DensityModel (log_prob(x, y=...) with num_classes >= 2: cvae, "
    "gated_pixelcnn or ddpm with conditional true) or a classifier (mlp_classifier, cnn_classifier)",
    "probe": "a Featurizer (a features(x) method giving a frozen representation)",
}

#: coverages reported by the classify task
COVERAGES = (0.5, 0.8, 0.9)


@dataclass
class TaskResult:
    """The rows of a task's table (dicts with the same keys) and its picture."""

    task: str
    rows: list[dict[str, Any]]
    picture: Image.Image
    notes: list[str] = field(default_factory=list)


def can_score_outliers(model: object) -> bool:
    return isinstance(model, (DensityModel, EnergyModel, Autoencoder)) or hasattr(model, "discriminator_score")


def can_classify(model: object) -> bool:
    return is_class_conditional_density(model) or isinstance(model, ClassifierModule)


def _split(datamodule: GenerativeDataModule, split: str, max_examples: int | None) -> tuple[Tensor, Tensor]:
    x, y = stack_images(datamodule.reference_dataset(split))
    return (x[:max_examples], y[:max_examples]) if max_examples else (x, y)


def ood_task(
    model: object,
    datamodule: GenerativeDataModule,
    *,
    background: DensityModel | None = None,
    max_examples: int | None = None,
    reference_examples: int = 2000,
    seed: int = 0,
    draws: int = DEFAULT_DRAWS,
    more_sets: bool = False,
    ensemble: list[DensityModel] | None = None,
) -> TaskResult:
    """Every score of :func:`outlier_scores` of the inliers (the test split) against every outlier set
    of ``datamodule`` (``outlier_sets()``: ``digit_outliers``, ``fashion_outliers``); typicality's
    reference is the mean ``-log p`` of the first ``reference_examples`` training examples (the
    training split is in a seeded random order). Rows: ``score``, ``outlier_set``, ``auroc``,
    ``auprc``, ``fpr_at_95_tpr``, ``n_inliers``, ``n_outliers``.

    Every random draw comes from ``seed`` (the same call gives the same rows). A score that is a Monte
    Carlo estimate (it differs between two seeds: a VAE's or a DDPM's bound) is the mean of ``draws``
    draws per example, and its rows gain ``auroc_mc_se``, the standard error of one draw's AUROC over
    the draws divided by ``sqrt(draws)`` (:mod:`genlight.evaluation.draws`).

    ``dose`` and ``dose_nll``: DoSE (:mod:`genlight.evaluation.dose`), fitted on the validation split
    (inliers only);
    ``waic``: with ``ensemble`` (other density models: checkpoints or seeds), WAIC over the model and
    them (:mod:`genlight.evaluation.ensemble`); ``more_sets``: also the sets of
    :func:`more_outlier_sets`. The rows start with the recommended score
    (:func:`~genlight.evaluation.recommend.recommended_rows`: chosen leaving each set out)."""
    if not hasattr(datamodule, "outlier_sets"):
        raise ValueError(f"{type(datamodule).__name__} has no outlier sets: use digit_outliers or fashion_outliers")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    datamodule.setup("fit")
    inliers, _ = _split(datamodule, "test", max_examples)
    with seeded(seed):
        reference = None
        if isinstance(model, DensityModel):
            train = _split(datamodule, "train", min(max_examples or reference_examples, reference_examples))[0]
            reference = reference_nll(model, train)
    kwargs: dict[str, Any] = {"reference": reference, "background": background, "num_levels": datamodule.num_levels}
    random = varying(lambda: outlier_scores(model, inliers[:8], **kwargs), seed)
    r = draws if random else 1

    def scored(x: Tensor, offset: int) -> list[dict[str, Tensor]]:
        with seeded(seed + offset):  # each set from its own seed: the sets' order changes no value
            return [outlier_scores(model, x, **kwargs) for _ in range(r)]

    image_sets = dict(datamodule.outlier_sets())
    if more_sets:
        image_sets.update(more_outlier_sets(inliers, datamodule.num_levels, seed))
    image_sets = {k: v[:max_examples] if max_examples else v for k, v in image_sets.items()}
    extra = _extra_scores(model, datamodule, {"inliers": inliers, **image_sets}, ensemble, seed, max_examples)
    inlier_draws = scored(inliers, 0)
    inlier_scores = {**_mean(inlier_draws), **extra["inliers"]}
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[str, Any]] = {name: {} for name in inlier_scores}
    for i, (set_name, outliers) in enumerate(image_sets.items(), start=1):
        outlier_draws = scored(outliers, 1000 * i)
        for score, values in {**_mean(outlier_draws), **extra[set_name]}.items():
            metrics = detection_metrics(inlier_scores[score], values)
            row = {
                "score": score,
                "outlier_set": set_name,
                **{k: round(v, 4) for k, v in metrics.items()},
                "n_inliers": len(inliers),
                "n_outliers": len(outliers),
            }
            if r > 1 and score not in extra[set_name]:
                each = [detection_metrics(a[score], b[score])["auroc"] for a, b in zip(inlier_draws, outlier_draws)]
                row["auroc_mc_se"] = round(mc_standard_error(each), 4)
            elif r > 1:
                row["auroc_mc_se"] = ""
            rows.append(row)
            fpr, tpr, _ = roc_curve(inlier_scores[score], values)
            curves[score][set_name] = (fpr.tolist(), tpr.tolist())
    charts = [
        line_chart(c, f"ROC: {score}", "false-positive rate", "TPR", diagonal=True) for score, c in curves.items()
    ]
    rows, recommendation = recommended_rows(rows)
    notes = [f"seed {seed}: every random draw (the same command gives the same table)", recommendation]
    if "dose" in extra["inliers"]:
        notes.append(
            f"dose: DoSE (Morningstar et al. 2021), per-statistic Gaussian KDEs of {', '.join(extra['statistics'])} "
            f"fitted on the {extra['n_fit']} validation images (inliers only), bandwidths by leave-one-out likelihood"
        )
    if r > 1:
        per_image = _per_image_se(inlier_draws, sorted(random))
        notes.append(
            f"Monte Carlo estimates: {', '.join(sorted(random))}, each the mean of {r} draws per image; "
            f"auroc_mc_se: the standard error of a one-draw AUROC over the draws / sqrt({r}); "
            f"per-image standard error of the mean, averaged over the inliers: {per_image}"
        )
    return TaskResult("ood", rows, panels(charts), notes)


def _extra_scores(
    model: object,
    datamodule: GenerativeDataModule,
    image_sets: dict[str, Tensor],
    ensemble: list[DensityModel] | None,
    seed: int,
    max_examples: int | None,
) -> dict[str, Any]:
    """``{set: {"dose": (B,), "waic": (B,)}}`` for every set of ``image_sets``, plus ``statistics`` and
    ``n_fit`` (what DoSE was fitted on: the validation split, inliers only)."""
    out: dict[str, Any] = {name: {} for name in image_sets}
    out["statistics"], out["n_fit"] = [], 0
    with seeded(seed + 7):
        fit = _split(datamodule, "val", max_examples)[0]
        if len(fit) >= 2 and model_statistics(model, fit[:2], num_levels=datamodule.num_levels):
            dose, scores = dose_scores(model, fit, image_sets, num_levels=datamodule.num_levels)
            out["statistics"], out["n_fit"] = list(dose.data), len(fit)
            for name, values in scores.items():
                out[name].update(values)
    if ensemble:
        if not isinstance(model, DensityModel):
            raise ValueError(f"WAIC needs a density model; {type(model).__name__} has no log_prob")
        with seeded(seed + 11):
            for name, x in image_sets.items():
                out[name]["waic"] = waic_score(ensemble_log_probs([model, *ensemble], x))
    return out


def _mean(draws: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Per-example mean over draws of every score."""
    return {k: torch.stack([d[k] for d in draws]).mean(0) for k in draws[0]}


def _per_image_se(draws: list[dict[str, Tensor]], names: list[str]) -> str:
    """``nll ±0.42`` for each random score: ``sd over draws / sqrt(R)`` per example, averaged."""
    r = len(draws)
    parts = []
    for name in names:
        stack = torch.stack([d[name] for d in draws])  # (R, B)
        parts.append(f"{name} ±{float((stack.std(0) / r**0.5).mean()):.3g}")
    return ", ".join(parts)


def classify_task(
    model: object,
    datamodule: GenerativeDataModule,
    *,
    max_examples: int | None = None,
    seed: int = 0,
    draws: int = DEFAULT_DRAWS,
) -> TaskResult:
    """Accuracy of the test split at full coverage and at :data:`COVERAGES`, keeping the most confident
    inputs. Methods (rows): a class-conditional density model predicts ``argmax_y log p(x|y) + log p(y)``
    (uniform prior) with confidence ``log p(x)`` (``bayes, log p(x)``) or its posterior ``max_y p(y|x)``
    (``bayes, max p(y|x)``); a classifier by its maximum softmax probability (``softmax, max p(y|x)``).
    Random draws come from ``seed``; a density whose ``log p(x|y)`` is a Monte Carlo estimate is
    averaged over ``draws`` draws and its rows gain ``accuracy_mc_se`` (one draw's accuracy)."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    datamodule.setup("fit")
    x, y = _split(datamodule, "test", max_examples)
    methods: dict[str, tuple[Tensor, Tensor]] = {}
    se: dict[str, float] = {}
    notes = [f"seed {seed}: every random draw (the same command gives the same table)"]
    if is_class_conditional_density(model):
        r = draws if varying(lambda: {"ll": class_log_likelihoods(model, x[:8])}, seed) else 1  # type: ignore[arg-type]
        with seeded(seed):
            each = [class_log_likelihoods(model, x) for _ in range(r)]  # type: ignore[arg-type]
        out = bayes_decision(torch.stack(each).mean(0))
        correct = out["prediction"] == y
        methods["bayes, log p(x)"] = (correct, out["log_px"])
        methods["bayes, max p(y|x)"] = (correct, out["posterior"].max(1).values)
        if r > 1:
            accuracies = [float((bayes_decision(e)["prediction"] == y).double().mean()) for e in each]
            se = dict.fromkeys(methods, mc_standard_error(accuracies))
            notes.append(
                f"Monte Carlo estimate: log p(x|y), the mean of {r} draws per image; accuracy_mc_se: "
                f"the standard error of a one-draw accuracy over the draws / sqrt({r})"
            )
    elif isinstance(model, ClassifierModule):
        out = softmax_predictions(model, x)
        methods["softmax, max p(y|x)"] = (out["prediction"] == y, out["confidence"])
    else:
        raise TypeError(f"{type(model).__name__} cannot classify: --task classify needs {TASKS['classify']}")
    rows, curves = [], {}
    for name, (correct, confidence) in methods.items():
        row: dict[str, Any] = {"method": name, "accuracy": round(float(correct.double().mean()), 4)}
        for c in COVERAGES:
            row[f"accuracy_at_{int(c * 100)}"] = round(accuracy_at_coverage(correct, confidence, c), 4)
        row["n"] = len(x)
        if name in se:
            row["accuracy_mc_se"] = round(se[name], 4)
        rows.append(row)
        cov, acc = accuracy_coverage(correct, confidence)
        curves[name] = (cov.tolist(), acc.tolist())
    low = min(min(a) for _, a in curves.values())
    picture = line_chart(curves, "accuracy-coverage", "coverage", "accuracy", ylim=(min(low, 0.9) - 0.02, 1.0))
    return TaskResult("classify", rows, picture, notes)


def probe_task(
    model: object,
    datamodule: GenerativeDataModule,
    *,
    labels_per_class: tuple[int | None, ...] = (None, 10, 1),
    seed: int = 0,
    max_examples: int | None = None,
) -> TaskResult:
    """Linear probes of ``model.features`` (train/val/test splits of ``datamodule``), with all training
    labels and with ``labels_per_class`` labels of each class (seeded picks)."""
    if not isinstance(model, Featurizer):
        raise TypeError(f"{type(model).__name__} has no features: --task probe needs {TASKS['probe']}")
    datamodule.setup("fit")
    splits = {s: _split(datamodule, s, max_examples) for s in ("train", "val", "test")}
    with seeded(seed):
        feats = {s: (features_of(model, x), y) for s, (x, y) in splits.items()}
    rows = []
    for k in labels_per_class:
        result = linear_probe(*feats["train"], *feats["val"], *feats["test"], labels_per_class=k, seed=seed)
        rows.append({"labels_per_class": "all" if k is None else k, **{n: round(v, 4) for n, v in result.items()}})
    names = [f"{r['labels_per_class']}/class" if r["labels_per_class"] != "all" else "all labels" for r in rows]
    bars = {name: r["test_accuracy"] for name, r in zip(names, rows)}
    return TaskResult("probe", rows, bar_chart(bars, "linear probe, test", "accuracy"))  # type: ignore[arg-type]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a GitHub markdown table (columns of the first row)."""
    if not rows:
        return "(no rows)\n"
    cols = list(rows[0])

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|")

    lines = ["| " + " | ".join(map(cell, cols)) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def result_paths(out_dir: Path, task: str, *, replace: bool = False) -> dict[str, Path]:
    """``{ext: out_dir/TASK.ext}`` for md, json, csv and png; unless ``replace``, the first free
    numbered set (``TASK_2.*``, ``TASK_3.*``, ...) when any of them exists: an earlier run is kept."""
    exts = ("md", "json", "csv", "png")
    stem, n = task, 1
    while not replace and any((out_dir / f"{stem}.{ext}").exists() for ext in exts):
        n += 1
        stem = f"{task}_{n}"
    return {ext: out_dir / f"{stem}.{ext}" for ext in exts}


def write_result(result: TaskResult, out_dir: Path, header: str = "", *, replace: bool = True) -> dict[str, Path]:
    """``{task}.md``, ``{task}.json``, ``{task}.csv`` and ``{task}.png`` in ``out_dir`` (numbered names
    instead of replacing earlier ones unless ``replace``, :func:`result_paths`); their paths. The
    notes (seed, Monte Carlo standard errors) follow the table in the markdown and are in the JSON."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = result_paths(out_dir, result.task, replace=replace)
    notes = "".join(f"- {note}\n" for note in result.notes)
    paths["md"].write_text(
        (header + "\n\n" if header else "") + markdown_table(result.rows) + ("\n" + notes if notes else "")
    )
    record = {"task": result.task, "header": header, "notes": result.notes, "rows": result.rows}
    paths["json"].write_text(json.dumps(record, indent=1) + "\n")
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(result.rows[0]) if result.rows else [])
        writer.writeheader()
        writer.writerows(result.rows)
    result.picture.save(paths["png"])
    return paths


def can_run(task: str, model: object) -> bool:
    """Whether ``model`` can be scored by ``task`` (what each task needs: :data:`TASKS`)."""
    able = {"ood": can_score_outliers, "classify": can_classify, "probe": lambda m: isinstance(m, Featurizer)}
    return able[task](model)


def run_task(
    task: str,
    model: object,
    datamodule: GenerativeDataModule,
    *,
    background: DensityModel | None = None,
    seed: int = 0,
    draws: int = DEFAULT_DRAWS,
    max_examples: int | None = None,
    more_sets: bool = False,
    ensemble: list[DensityModel] | None = None,
) -> TaskResult:
    """``task`` (``ood``, ``classify`` or ``probe``) of ``model`` on ``datamodule``, every random draw from
    ``seed``; a probe's from the data seed (``datamodule.seed``), which its notes say."""
    if task == "ood":
        return ood_task(
            model,
            datamodule,
            background=background,
            max_examples=max_examples,
            seed=seed,
            draws=draws,
            more_sets=more_sets,
            ensemble=ensemble,
        )
    if task == "classify":
        return classify_task(model, datamodule, max_examples=max_examples, seed=seed, draws=draws)
    data_seed = datamodule.seed
    result = probe_task(model, datamodule, seed=data_seed, max_examples=max_examples)
    result.notes.append(f"seed {data_seed} (the data seed): the label picks and any random draw of the features")
    return result
