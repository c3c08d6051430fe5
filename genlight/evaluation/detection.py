"""Outlier-detection metrics from per-example scores: AUROC, AUPRC and FPR at 95% TPR.

Convention everywhere in :mod:`genlight.evaluation`: a HIGHER score means MORE unusual, and outliers
are the positive class (the protocol of Hendrycks & Gimpel 2017 and Nalisnick et al. 2019).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["detection_metrics", "roc_curve"]


def _scores(inlier_scores: Tensor, outlier_scores: Tensor) -> tuple[Tensor, Tensor]:
    inl = torch.as_tensor(inlier_scores).detach().double().flatten().cpu()
    out = torch.as_tensor(outlier_scores).detach().double().flatten().cpu()
    if inl.numel() == 0 or out.numel() == 0:
        raise ValueError(f"detection needs inlier and outlier scores, got {inl.numel()} and {out.numel()}")
    if not (torch.isfinite(inl).all() and torch.isfinite(out).all()):
        raise ValueError("scores must be finite: replace inf/NaN scores (e.g. log 0) by a large finite value")
    return inl, out


def roc_curve(inlier_scores: Tensor, outlier_scores: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(fpr, tpr, thresholds)`` of the rule "outlier when score >= threshold", one point per distinct
    score from the highest down (tied scores form one point), preceded by ``(0, 0)`` at ``+inf``."""
    inl, out = _scores(inlier_scores, outlier_scores)
    thresholds = torch.cat([inl, out]).unique(sorted=True).flip(0)  # (T,) descending
    # counts of scores >= each threshold: searchsorted on the ascending copies
    inl_sorted, out_sorted = inl.sort().values, out.sort().values
    fp = inl.numel() - torch.searchsorted(inl_sorted, thresholds, side="left")
    tp = out.numel() - torch.searchsorted(out_sorted, thresholds, side="left")
    zero = torch.zeros(1, dtype=torch.float64)
    fpr = torch.cat([zero, fp.double() / inl.numel()])
    tpr = torch.cat([zero, tp.double() / out.numel()])
    return fpr, tpr, torch.cat([torch.tensor([float("inf")], dtype=torch.float64), thresholds])


def detection_metrics(inlier_scores: Tensor, outlier_scores: Tensor) -> dict[str, float]:
    """AUROC, AUPRC (outliers positive) and FPR at 95% TPR of scores where higher means more unusual.

    - ``auroc``: the Mann-Whitney statistic P(s_out > s_in) + P(s_out = s_in) / 2, exact under ties
      (equal to the trapezoidal area under :func:`roc_curve`).
    - ``auprc``: average precision, sum over distinct thresholds of (R_k - R_{k-1}) P_k (tied scores
      enter together; the definition of scikit-learn's ``average_precision_score``).
    - ``fpr_at_95_tpr``: the smallest false-positive rate among thresholds that flag at least 95% of
      the outliers.
    """
    inl, out = _scores(inlier_scores, outlier_scores)
    # Mann-Whitney with midranks: U = sum of outlier ranks - n_out (n_out + 1) / 2
    pooled = torch.cat([out, inl])
    _, inverse, counts = pooled.unique(sorted=True, return_inverse=True, return_counts=True)
    ends = counts.cumsum(0).double()
    midranks = ends - (counts.double() - 1) / 2  # 1-based average rank of each distinct value
    n_out, n_in = out.numel(), inl.numel()
    u = midranks[inverse[:n_out]].sum() - n_out * (n_out + 1) / 2
    auroc = float(u / (n_out * n_in))
    fpr, tpr, _ = roc_curve(inl, out)
    tp, fp = tpr[1:] * n_out, fpr[1:] * n_in
    precision = tp / (tp + fp)
    auprc = float(((tpr[1:] - tpr[:-1]) * precision).sum())
    fpr95 = float(fpr[tpr >= 0.95 - 1e-12].min())
    return {"auroc": auroc, "auprc": auprc, "fpr_at_95_tpr": fpr95}
