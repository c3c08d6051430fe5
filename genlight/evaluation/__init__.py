"""Scores of trained models: outlier detection (AUROC/AUPRC/FPR@95 of likelihood, likelihood-ratio,
typicality, complexity, energy, discriminator and reconstruction scores; DoSE, WAIC and the score
recommended by leaving each outlier set out), classification with
rejection by a class-conditional density, and linear probes of frozen features. Used by
``genlight score`` (:mod:`genlight.cli.score`) and the benchmarks; see docs/evaluation.md."""

from genlight.evaluation.background import (
    PerturbedImages,
    background_from_config,
    perturb_training_split,
    train_background,
)
from genlight.evaluation.detection import detection_metrics, roc_curve
from genlight.evaluation.dose import DoSE, dose_scores, model_statistics, select_bandwidth
from genlight.evaluation.draws import DEFAULT_DRAWS, mc_standard_error, seeded, varying
from genlight.evaluation.ensemble import ensemble_log_probs, waic_score
from genlight.evaluation.outlier_sets import MORE_SETS, more_outlier_sets
from genlight.evaluation.probes import C_GRID, features_of, few_labels, linear_probe
from genlight.evaluation.recommend import choose_score, leave_one_out, recommended_rows
from genlight.evaluation.rejection import (
    accuracy_at_coverage,
    accuracy_coverage,
    bayes_decision,
    class_log_likelihoods,
    is_class_conditional_density,
    predict_with_rejection,
    softmax_predictions,
)
from genlight.evaluation.scores import (
    SCORES,
    compressed_bits,
    outlier_scores,
    perturb,
    reconstruction_error,
    reconstructs_exactly,
    reference_nll,
    score_label,
)
from genlight.evaluation.tasks import (
    TASKS,
    TaskResult,
    can_classify,
    can_run,
    can_score_outliers,
    classify_task,
    markdown_table,
    ood_task,
    probe_task,
    result_paths,
    run_task,
    write_result,
)

__all__ = [
    "recommended_rows",
    "leave_one_out",
    "choose_score",
    "more_outlier_sets",
    "MORE_SETS",
    "waic_score",
    "ensemble_log_probs",
    "select_bandwidth",
    "model_statistics",
    "dose_scores",
    "DoSE",
    "C_GRID",
    "DEFAULT_DRAWS",
    "PerturbedImages",
    "SCORES",
    "TASKS",
    "TaskResult",
    "accuracy_at_coverage",
    "accuracy_coverage",
    "background_from_config",
    "bayes_decision",
    "can_classify",
    "can_run",
    "can_score_outliers",
    "class_log_likelihoods",
    "classify_task",
    "compressed_bits",
    "detection_metrics",
    "features_of",
    "few_labels",
    "is_class_conditional_density",
    "linear_probe",
    "mc_standard_error",
    "markdown_table",
    "ood_task",
    "outlier_scores",
    "perturb",
    "perturb_training_split",
    "reconstruction_error",
    "reconstructs_exactly",
    "predict_with_rejection",
    "probe_task",
    "result_paths",
    "reference_nll",
    "roc_curve",
    "run_task",
    "score_label",
    "seeded",
    "softmax_predictions",
    "train_background",
    "varying",
    "write_result",
]
