"""Linear probes of frozen representations: standardise the features, fit a logistic regression on
train (its inverse regularisation ``C`` chosen on validation from a small grid), score test once.
Few-label variants keep ``labels_per_class`` training examples of each class, drawn with a fixed seed."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from genlight.types import Featurizer

__all__ = ["C_GRID", "features_of", "few_labels", "linear_probe"]

#: inverse L2 strengths tried on the validation split
C_GRID = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)


@torch.no_grad()
def features_of(model: Featurizer, x: Tensor, batch_size: int = 256) -> Tensor:
    """``(B, F)`` float32 features ``model.features(x)`` on CPU, in eval mode, in batches."""
    if not isinstance(model, Featurizer):
        raise TypeError(f"{type(model).__name__} has no features(x) method: linear probes need a Featurizer")
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    device = getattr(model, "device", x.device)
    try:
        parts = [
            model.features(x[i : i + batch_size].to(device)).flatten(1).float().cpu()
            for i in range(0, len(x), batch_size)
        ]
    finally:
        if was_training:
            model.train()  # type: ignore[attr-defined]
    return torch.cat(parts)


def few_labels(labels: Tensor, labels_per_class: int, seed: int = 0) -> Tensor:
    """Indices of ``labels_per_class`` examples of each class (all of a smaller class), drawn by a
    generator seeded with ``seed + class``: the same picks for every model compared."""
    labels = torch.as_tensor(labels).flatten()
    picks = []
    for c in labels.unique(sorted=True).tolist():
        idx = (labels == c).nonzero().flatten()
        perm = torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed + int(c)))
        picks.append(idx[perm[:labels_per_class]])
    return torch.cat(picks).sort().values


def linear_probe(
    train_features: Tensor,
    train_labels: Tensor,
    val_features: Tensor,
    val_labels: Tensor,
    test_features: Tensor,
    test_labels: Tensor,
    labels_per_class: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Fit scikit-learn's ``LogisticRegression`` on standardised training features for every ``C`` in
    :data:`C_GRID`, keep the best on validation accuracy (the smallest ``C`` among ties), score test once.

    Returns ``test_accuracy``, ``val_accuracy``, ``C``, ``num_train`` and ``num_features``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    def arrays(f: Tensor, y: Tensor) -> tuple[np.ndarray, np.ndarray]:
        return torch.as_tensor(f).detach().flatten(1).double().cpu().numpy(), torch.as_tensor(y).flatten().cpu().numpy()

    xtr, ytr = arrays(train_features, train_labels)
    xva, yva = arrays(val_features, val_labels)
    xte, yte = arrays(test_features, test_labels)
    if labels_per_class is not None:
        keep = few_labels(torch.from_numpy(ytr), labels_per_class, seed).numpy()
        xtr, ytr = xtr[keep], ytr[keep]
    if len(np.unique(ytr)) < 2:
        raise ValueError("a linear probe needs training examples of at least 2 classes")
    scaler = StandardScaler().fit(xtr)
    xtr, xva, xte = scaler.transform(xtr), scaler.transform(xva), scaler.transform(xte)
    best: tuple[float, float, LogisticRegression] | None = None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(xtr, ytr)
        acc = float((clf.predict(xva) == yva).mean())
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    assert best is not None
    val_acc, c, clf = best
    return {
        "test_accuracy": float((clf.predict(xte) == yte).mean()),
        "val_accuracy": val_acc,
        "C": c,
        "num_train": float(len(ytr)),
        "num_features": float(xtr.shape[1]),
    }
