"""torchmetrics-style metrics (FID, KID, IS, precision/recall, bits/dim) and their feature extractors."""

from genlight.metrics.bpd import BitsPerDim
from genlight.metrics.extractors import (
    EXTRACTORS,
    FeatureExtractor,
    create_extractor,
    list_extractors,
    register_extractor,
)
from genlight.metrics.feature_sets import FeatureSetMetric, InceptionScore, KernelDistance, PrecisionRecall
from genlight.metrics.fid import FrechetDistance
from genlight.metrics.memorisation import MemorisationResult, memorisation, nearest_neighbour_distances

__all__ = [
    "EXTRACTORS",
    "BitsPerDim",
    "FeatureExtractor",
    "FeatureSetMetric",
    "FrechetDistance",
    "InceptionScore",
    "KernelDistance",
    "MemorisationResult",
    "PrecisionRecall",
    "create_extractor",
    "list_extractors",
    "memorisation",
    "nearest_neighbour_distances",
    "register_extractor",
]
