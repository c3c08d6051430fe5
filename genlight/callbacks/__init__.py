"""Callbacks: sample grids, reconstructions, latent interpolations, FID/KID/IS, the shared image logger."""

from genlight.callbacks.ema import EMA
from genlight.callbacks.fid import FIDCallback
from genlight.callbacks.image_logging import image_grid, log_images, run_dir
from genlight.callbacks.interpolation import LatentInterpolation
from genlight.callbacks.reconstructions import Reconstructions
from genlight.callbacks.samples import SampleGrid

__all__ = ["EMA", "FIDCallback", "LatentInterpolation", "Reconstructions", "SampleGrid", "image_grid", "log_images", "run_dir"]
