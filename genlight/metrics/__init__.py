"""torchmetrics-style metrics (FID, KID, IS, precision/recall, density/coverage, intra-class FID, CAS, bits/dim)
and their feature extractors."""

from genlight.metrics.bpd import BitsPerDim
from genlight.metrics.cas import ClassificationAccuracyScore
from genlight.metrics.extractors import (
    EXTRACTORS,
    FeatureExtractor,
    create_extractor,
    list_extractors,
    register_extractor,
)
from genlight.metrics.feature_sets import (
    DensityCoverage,
    FeatureSetMetric,
    InceptionScore,
    KernelDistance,
    PrecisionRecall,
)
from genlight.metrics.fid import FrechetDistance
from genlight.metrics.intra_fid import IntraClassFID
from genlight.metrics.memorisation import MemorisationResult, memorisation, nearest_neighbour_distances

__all__ = [
    "EXTRACTORS",
    "BitsPerDim",
    "ClassificationAccuracyScore",
    "DensityCoverage",
    "FeatureExtractor",
    "FeatureSetMetric",
    "FrechetDistance",
    "InceptionScore",
    "IntraClassFID",
    "KernelDistance",
    "MemorisationResult",
    "PrecisionRecall",
    "create_extractor",
    "list_extractors",
    "memorisation",
    "nearest_neighbour_distances",
    "register_extractor",
]
