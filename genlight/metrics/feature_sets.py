"""Metrics that need the feature vectors themselves: KID, IS, precision/recall, density/coverage.

They share :class:`FeatureSetMetric`: list states of features and of their global sample indices
(``dist_reduce_fx="cat"``). ``compute`` sorts by index, so after a DDP gather the set is in the
same order as in one process and seeded subsets (KID) or splits (IS) agree exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from genlight.metrics.functional import density_coverage, inception_score, kernel_distance, precision_recall

__all__ = ["DensityCoverage", "FeatureSetMetric", "InceptionScore", "KernelDistance", "PrecisionRecall"]


class FeatureSetMetric(Metric):
    """Collects ``(n, d)`` features with their sample indices; subclasses compute on :meth:`gathered`."""

    is_differentiable = False
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("features", [], dist_reduce_fx="cat")
        self.add_state("indices", [], dist_reduce_fx="cat")
        self._seen = 0
        self.reference: Tensor | None = None

    def set_reference(self, features: Tensor) -> None:
        """Reference (real-data) features, kept on the CPU in float64."""
        self.reference = features.detach().double().cpu()

    def update(self, features: Tensor, indices: Tensor | None = None) -> None:
        if indices is None:
            indices = torch.arange(self._seen, self._seen + len(features), device=features.device)
        self._seen += len(features)
        self.features.append(features.detach().double().flatten(1))
        self.indices.append(indices.long())

    def gathered(self) -> Tensor:
        """All features (across processes after sync), ordered by sample index, on the CPU."""
        features, indices = dim_zero_cat(self.features).cpu(), dim_zero_cat(self.indices).cpu()
        return features[indices.argsort()]

    def _require_reference(self) -> Tensor:
        if self.reference is None:
            raise RuntimeError(f"{type(self).__name__} has no reference features; call set_reference(features) first")
        return self.reference


class KernelDistance(FeatureSetMetric):
    """KID (Binkowski et al. 2018): mean and std of the unbiased MMD^2, cubic kernel, over random subsets."""

    higher_is_better = False

    def __init__(self, subsets: int = 100, subset_size: int = 1000, seed: int = 2020) -> None:
        super().__init__()
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed

    def compute(self) -> tuple[Tensor, Tensor]:
        ref, fake = self._require_reference(), self.gathered()
        size = min(self.subset_size, len(ref), len(fake))
        return kernel_distance(ref, fake, self.subsets, size, seed=self.seed)


class InceptionScore(FeatureSetMetric):
    """IS (Salimans et al. 2016) of classifier logits passed to ``update``: mean and std over splits."""

    higher_is_better = True

    def __init__(self, splits: int = 10) -> None:
        super().__init__()
        self.splits = splits

    def compute(self) -> tuple[Tensor, Tensor]:
        return inception_score(self.gathered(), self.splits)


class PrecisionRecall(FeatureSetMetric):
    """Improved precision and recall (Kynkaanniemi et al. 2019) against the reference features."""

    higher_is_better = True

    def __init__(self, k: int = 3) -> None:
        super().__init__()
        self.k = k

    def compute(self) -> tuple[Tensor, Tensor]:
        return precision_recall(self._require_reference(), self.gathered(), self.k)


class DensityCoverage(FeatureSetMetric):
    """Density and coverage (Naeem et al. 2020) against the reference features, ``k``-NN balls of the
    reference (k = 5 as in the paper); see :func:`~genlight.metrics.functional.density_coverage`."""

    higher_is_better = True

    def __init__(self, k: int = 5) -> None:
        super().__init__()
        self.k = k

    def compute(self) -> tuple[Tensor, Tensor]:
        return density_coverage(self._require_reference(), self.gathered(), self.k)
