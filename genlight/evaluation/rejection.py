"""Classification with rejection by a conditional density model, and the softmax baseline.

The Bayes classifier of a class-conditional generative model predicts ``argmax_y log p(x|y) + log p(y)``
and rejects the inputs whose marginal ``log p(x) = logsumexp_y [log p(x|y) + log p(y)]`` is low
(Bishop 1994; Nalisnick et al. 2019, "Hybrid models"). A discriminative classifier rejects by its
maximum softmax probability (Hendrycks & Gimpel 2017). Both are compared on accuracy-coverage curves:
keep the most confident fraction of the inputs, report accuracy on those.
"""

from __future__ import annotations

import inspect
import math

import torch
from torch import Tensor

from genlight.types import DensityModel

__all__ = [
    "accuracy_at_coverage",
    "accuracy_coverage",
    "bayes_decision",
    "class_log_likelihoods",
    "is_class_conditional_density",
    "predict_with_rejection",
    "softmax_predictions",
]


def is_class_conditional_density(model: object) -> bool:
    """Whether ``model`` scores ``log p(x|y)``: a :class:`~genlight.types.DensityModel` with
    ``num_classes >= 2`` whose ``log_prob`` takes labels ``y`` (cvae, a conditional gated_pixelcnn,
    a conditional ddpm through its bound)."""
    if not isinstance(model, DensityModel) or int(getattr(model, "num_classes", 0) or 0) < 2:
        return False
    return "y" in inspect.signature(model.log_prob).parameters


@torch.no_grad()
def class_log_likelihoods(model: DensityModel, x: Tensor, batch_size: int = 256) -> Tensor:
    """``(B, K)``: ``log p(x | y=k)`` in nats for every class ``k`` (exact or a bound, as ``log_prob``)."""
    if not is_class_conditional_density(model):
        raise TypeError(
            f"{type(model).__name__} is not a class-conditional density model: classification by "
            "log p(x|y) needs a DensityModel with num_classes >= 2 whose log_prob takes y "
            "(cvae, gated_pixelcnn --model.conditional true, ddpm --model.conditional true)"
        )
    if hasattr(model, "eval"):
        model.eval()
    device = getattr(model, "device", x.device)
    k = int(model.num_classes)  # type: ignore[attr-defined]
    rows = []
    for start in range(0, len(x), batch_size):
        b = x[start : start + batch_size].to(device)
        cols = [model.log_prob(b, y=torch.full((len(b),), c, dtype=torch.long, device=device)) for c in range(k)]  # type: ignore[call-arg]
        rows.append(torch.stack(cols, 1).double().cpu())  # (b, K)
    return torch.cat(rows)


def bayes_decision(class_log_lik: Tensor, prior: Tensor | None = None) -> dict[str, Tensor]:
    """From ``(B, K)`` ``log p(x|y)``: ``prediction`` ``argmax_y log p(x|y) + log p(y)``, ``log_px``
    ``logsumexp_y`` of the same (the confidence: reject when low), ``posterior`` ``(B, K)`` ``p(y|x)``
    and ``log_joint``. ``prior`` is ``p(y)`` (``(K,)``, sums to 1); ``None`` is uniform."""
    k = class_log_lik.shape[1]
    if prior is None:
        log_prior = torch.full((k,), -math.log(k), dtype=torch.float64)
    else:
        prior = torch.as_tensor(prior, dtype=torch.float64)
        if prior.shape != (k,) or (prior < 0).any() or abs(float(prior.sum()) - 1.0) > 1e-6:
            raise ValueError(f"prior must be {k} non-negative class probabilities summing to 1, got {prior.tolist()}")
        log_prior = prior.log()
    log_joint = class_log_lik.double() + log_prior.to(class_log_lik.device)  # (B, K)
    log_px = torch.logsumexp(log_joint, 1)  # (B,)
    return {
        "prediction": log_joint.argmax(1),
        "log_px": log_px,
        "posterior": (log_joint - log_px[:, None]).exp(),
        "log_joint": log_joint,
    }


def predict_with_rejection(model: DensityModel, x: Tensor, prior: Tensor | None = None) -> dict[str, Tensor]:
    """Bayes predictions of a class-conditional density model and ``log p(x)`` to reject on:
    :func:`bayes_decision` of :func:`class_log_likelihoods`."""
    return bayes_decision(class_log_likelihoods(model, x), prior)


@torch.no_grad()
def softmax_predictions(model: torch.nn.Module, x: Tensor, batch_size: int = 256) -> dict[str, Tensor]:
    """A classifier's ``prediction`` (argmax of its logits, ``model(x)`` -> ``(B, K)``) and ``confidence``,
    the maximum softmax probability (Hendrycks & Gimpel 2017)."""
    model.eval()
    device = getattr(model, "device", x.device)
    logits = torch.cat([model(x[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(x), batch_size)])
    probs = logits.softmax(1)
    confidence, prediction = probs.max(1)
    return {"prediction": prediction, "confidence": confidence}


def accuracy_coverage(correct: Tensor, confidence: Tensor) -> tuple[Tensor, Tensor]:
    """``(coverage, accuracy)``: for every distinct confidence threshold from the highest down, the
    fraction of inputs kept (confidence >= threshold; tied inputs are kept or rejected together) and
    the accuracy on them. Both ``(T,)`` float64, coverage increasing to 1."""
    correct = torch.as_tensor(correct).detach().flatten().double().cpu()
    confidence = torch.as_tensor(confidence).detach().flatten().double().cpu()
    if correct.numel() != confidence.numel() or correct.numel() == 0:
        raise ValueError(
            f"correct and confidence need the same non-zero length, got {correct.numel()}, {confidence.numel()}"
        )
    order = confidence.argsort(descending=True, stable=True)
    conf, hits = confidence[order], correct[order].cumsum(0)
    # the last index of each group of equal confidences
    last = torch.cat([(conf[1:] != conf[:-1]).nonzero().flatten(), torch.tensor([len(conf) - 1])])
    kept = (last + 1).double()
    return kept / len(conf), hits[last] / kept


def accuracy_at_coverage(correct: Tensor, confidence: Tensor, coverage: float = 0.9) -> float:
    """Accuracy on the most confident inputs at the first point of :func:`accuracy_coverage` whose
    coverage reaches ``coverage`` (in (0, 1])."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    cov, acc = accuracy_coverage(correct, confidence)
    return float(acc[(cov >= coverage - 1e-12).nonzero()[0, 0]])
