"""Callbacks: sample grids and the shared image logger (PNG + W&B + TensorBoard)."""

from genlight.callbacks.image_logging import image_grid, log_images, run_dir
from genlight.callbacks.samples import SampleGrid

__all__ = ["SampleGrid", "image_grid", "log_images", "run_dir"]
