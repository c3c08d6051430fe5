"""Callbacks: what every ``genlight fit`` adds (``last.ckpt``, the best checkpoint, the closing line),
sample grids (scatter plots for 2-D data), reconstructions, latent interpolations, translation grids,
code traversals, energy landscapes, FID/KID/IS, the shared image logger."""

from genlight.callbacks.base import PeriodicCallback, evaluating
from genlight.callbacks.captions import CaptionGrid
from genlight.callbacks.checkpoints import (
    BestCheckpoint,
    LastCheckpoint,
    RunSummary,
    default_fit_callbacks,
    fit_callbacks,
)
from genlight.callbacks.compile import Compile
from genlight.callbacks.completion import PatchCompletions
from genlight.callbacks.ema import EMA
from genlight.callbacks.energy import EnergyLandscape
from genlight.callbacks.fid import FIDCallback
from genlight.callbacks.image_logging import image_grid, log_images, render, run_dir, scatter_plot
from genlight.callbacks.interpolation import LatentInterpolation
from genlight.callbacks.reconstructions import Reconstructions
from genlight.callbacks.samples import SampleGrid
from genlight.callbacks.stages import StageSamples
from genlight.callbacks.translation import TranslationGrid
from genlight.callbacks.traversal import CodeTraversal

__all__ = [
    "BestCheckpoint",
    "CaptionGrid",
    "CodeTraversal",
    "Compile",
    "EMA",
    "EnergyLandscape",
    "FIDCallback",
    "LastCheckpoint",
    "LatentInterpolation",
    "PatchCompletions",
    "PeriodicCallback",
    "Reconstructions",
    "RunSummary",
    "SampleGrid",
    "StageSamples",
    "TranslationGrid",
    "default_fit_callbacks",
    "evaluating",
    "fit_callbacks",
    "image_grid",
    "log_images",
    "render",
    "run_dir",
    "scatter_plot",
]
