"""One place that turns a batch of images (or 2-D points) into a picture, a PNG in the run folder,
and logger calls.

Every image callback goes through :func:`log_images`, so images reach W&B (``log_image``),
TensorBoard (``add_image``) and, whatever the logger (CSV too), a PNG file under
``<run dir>/images/``. Images ``(N, C, H, W)`` become a grid whose cells are enlarged (nearest) to at
least ``min_cell`` pixels; points ``(N, D)`` (toy2d samples, ``D >= 1``) become a scatter plot of
their first two coordinates over the real data points (:func:`scatter_plot`), drawn with PIL alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image, ImageDraw, ImageFont
from torch import Tensor
from torchvision.utils import make_grid

__all__ = ["MIN_CELL", "image_grid", "label_rows", "log_images", "reference_points", "render", "run_dir", "scatter_plot"]

#: the smallest cell (image) side in pixels in a logged grid: an 8x8 digit is drawn 4x
MIN_CELL = 32


def run_dir(trainer: pl.Trainer) -> Path:
    """The folder of this run: the CSV/TensorBoard version folder, ``<save_dir>/<project>/<id>`` for
    W&B (where Lightning puts its checkpoints), else ``default_root_dir``. Call it on rank 0."""
    for logger in trainer.loggers:
        if isinstance(logger, (CSVLogger, TensorBoardLogger)):
            return Path(logger.log_dir)
        if isinstance(logger, WandbLogger):
            return Path(logger.save_dir or trainer.default_root_dir, str(logger.name), str(logger.version))
    return Path(trainer.default_root_dir)


def image_grid(images: Tensor, nrow: int | None = None, min_width: int = 256, min_cell: int = MIN_CELL) -> Tensor:
    """``(N, C, H, W)`` in [0, 1] -> one ``(3, h, w)`` grid. Each image is enlarged (nearest, by a
    whole factor) so that its smaller side is at least ``min_cell`` pixels and the grid at least
    ``min_width`` wide; the 1-pixel grey separators (visible on black and on white backgrounds) are
    added after enlarging. Points ``(N, D)`` (toy2d samples) are drawn as a :func:`scatter_plot`."""
    if images.dim() == 2:
        return scatter_plot(images)
    images = images.detach().float().clamp(0, 1).cpu()
    if images.dim() != 4:
        raise ValueError(f"expected images (N, C, H, W) or points (N, D), got shape {tuple(images.shape)}")
    nrow = nrow or max(1, math.ceil(math.sqrt(images.shape[0])))
    h, w = images.shape[-2:]
    cols = min(nrow, images.shape[0])
    scale = max(1, math.ceil(min_cell / max(1, min(h, w))), math.ceil((min_width - 1 - cols) / max(1, cols * w)))
    if scale > 1:
        images = torch.nn.functional.interpolate(images, scale_factor=scale, mode="nearest")
    return make_grid(images, nrow=nrow, padding=1, pad_value=0.6)


def _limits(points: Tensor, margin: float = 0.05) -> tuple[float, float, float, float]:
    """Square view ``(x0, x1, y0, y1)`` around ``points`` (equal scale on both axes)."""
    lo, hi = points.min(0).values, points.max(0).values
    centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + 2 * margin)
    half = half if half > 0 else 1.0
    return float(centre[0]) - half, float(centre[0]) + half, float(centre[1]) - half, float(centre[1]) + half


def _as_xy(points: Tensor) -> Tensor:
    points = points.detach().float().cpu().flatten(1)
    if points.shape[1] == 1:
        points = torch.cat([points, torch.zeros_like(points)], 1)
    return points[:, :2]


def scatter_plot(
    points: Tensor,
    reference: Tensor | None = None,
    *,
    size: int = 400,
    limits: tuple[float, float, float, float] | None = None,
    title: str | None = None,
) -> Tensor:
    """Points ``(N, D)`` (the first two coordinates) as a ``(3, size, size)`` scatter plot in [0, 1]:
    ``reference`` (the real data) in grey under ``points`` in blue, axes fixed by ``limits`` (default:
    those of ``reference``, else of ``points``), with the axis ranges, a legend and ``title`` written in.
    Points outside the view are counted in the legend, not drawn."""
    pts = _as_xy(points)
    ref = _as_xy(reference) if reference is not None and len(reference) else None
    finite = pts[torch.isfinite(pts).all(1)]
    if limits is None:
        basis = ref if ref is not None else finite
        limits = _limits(basis) if len(basis) else (-1.0, 1.0, -1.0, 1.0)
    x0, x1, y0, y1 = limits
    pad_l, pad_r, pad_t, pad_b = 44, 12, 34, 26  # room for the tick labels and the legend
    plot_w, plot_h = size - pad_l - pad_r, size - pad_t - pad_b
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=11)

    def to_pixels(p: Tensor) -> Tensor:
        u = pad_l + (p[:, 0] - x0) / (x1 - x0) * plot_w
        v = pad_t + (y1 - p[:, 1]) / (y1 - y0) * plot_h  # y grows upwards
        return torch.stack([u, v], 1)

    def dots(p: Tensor, colour: tuple[int, int, int], r: float) -> int:
        inside = (p[:, 0] >= x0) & (p[:, 0] <= x1) & (p[:, 1] >= y0) & (p[:, 1] <= y1) & torch.isfinite(p).all(1)
        for u, v in to_pixels(p[inside]).tolist():
            draw.ellipse((u - r, v - r, u + r, v + r), fill=colour)
        return int((~inside).sum())

    draw.rectangle((pad_l, pad_t, pad_l + plot_w, pad_t + plot_h), outline=(150, 150, 150))
    if x0 < 0 < x1 and y0 < 0 < y1:  # the axes through the origin, faint
        o = to_pixels(torch.zeros(1, 2))[0].tolist()
        draw.line((pad_l, o[1], pad_l + plot_w, o[1]), fill=(225, 225, 225))
        draw.line((o[0], pad_t, o[0], pad_t + plot_h), fill=(225, 225, 225))
    if ref is not None:
        dots(ref, (175, 175, 175), 1.3)
    outside = dots(pts, (31, 100, 200), 1.6)
    draw.text((pad_l, pad_t + plot_h + 4), f"{x0:.3g}", fill="black", font=font)
    draw.text((pad_l + plot_w, pad_t + plot_h + 4), f"{x1:.3g}", fill="black", font=font, anchor="ra")
    draw.text((pad_l - 4, pad_t + plot_h), f"{y0:.3g}", fill="black", font=font, anchor="rb")
    draw.text((pad_l - 4, pad_t), f"{y1:.3g}", fill="black", font=font, anchor="rt")
    legend = f"{len(pts)} samples (blue)" + (f" over {len(ref)} data points (grey)" if ref is not None else "")
    legend += f"; {outside} outside the view" if outside else ""
    if title:
        draw.text((4, 3), title, fill="black", font=font)
    draw.text((4, 17 if title else 10), legend, fill="black", font=font)
    return torch.from_numpy(np.array(image)).permute(2, 0, 1).float() / 255


def label_rows(grid: Tensor, labels: Sequence[str]) -> Tensor:
    """A ``(3, h, w)`` grid of ``len(labels)`` equal rows with each row's label written to its left
    (PIL's default font, black on white): ``(3, h, w + margin)``."""
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).cpu().numpy()
    font = ImageFont.load_default(size=11)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    margin = 8 + max(int(probe.textlength(text, font=font)) for text in labels) if labels else 0
    picture = Image.new("RGB", (array.shape[1] + margin, array.shape[0]), "white")
    picture.paste(Image.fromarray(array), (margin, 0))
    draw = ImageDraw.Draw(picture)
    row_h = array.shape[0] / max(len(labels), 1)
    for i, text in enumerate(labels):
        draw.text((margin - 4, (i + 0.5) * row_h), text, fill="black", font=font, anchor="rm")
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1).float() / 255


def render(
    images: Tensor, nrow: int | None = None, *, reference: Tensor | None = None, title: str | None = None
) -> Tensor:
    """What :func:`log_images` draws: a grid of images ``(N, C, H, W)``, or a scatter plot of points
    ``(N, D)`` over ``reference`` points."""
    if images.dim() == 2:
        return scatter_plot(images, reference, title=title)
    return image_grid(images, nrow)


def reference_points(trainer: pl.Trainer, n: int = 2000, split: str = "train") -> Tensor | None:
    """The first ``n`` points of the attached data's ``split`` when the data are points ``(N, D)``
    (toy2d), the backdrop of scatter plots; ``None`` for images or when there is no data."""
    from genlight.callbacks.data import first_images

    try:
        points = first_images(trainer, n, split)
    except Exception:  # no datamodule or loaders: plot the samples alone
        return None
    return points if isinstance(points, Tensor) and points.dim() == 2 else None


def log_images(
    trainer: pl.Trainer,
    key: str,
    images: Tensor,
    *,
    nrow: int | None = None,
    caption: str | None = None,
    reference: Tensor | None = None,
    row_labels: Sequence[str] | None = None,
    epoch: int | None = None,
) -> Path | None:
    """Save ``images`` as a grid PNG (points ``(N, D)``: a scatter plot over ``reference``, by default
    the real data points of the train split) in the run folder and hand it to every attached logger.
    ``row_labels``: one per row of the grid (``nrow`` images a row), written into the picture to the
    left of its row. ``epoch``: the epoch in the file name (default ``trainer.current_epoch``; a
    callback that draws at the end of training names the epoch of the last step).

    Returns the PNG's path on rank 0 and ``None`` elsewhere (only rank 0 writes and logs).
    """
    if not trainer.is_global_zero:
        return None
    if images.dim() == 2 and reference is None:
        reference = reference_points(trainer)
    grid = render(images, nrow, reference=reference, title=caption if images.dim() == 2 else None)
    if row_labels and images.dim() == 4:
        grid = label_rows(grid, row_labels)
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    folder = run_dir(trainer) / "images"
    os.makedirs(folder, exist_ok=True)
    stem = key.replace("/", "_")
    epoch = trainer.current_epoch if epoch is None else epoch
    path = folder / f"{stem}_epoch{epoch:03d}_step{trainer.global_step:06d}.png"
    Image.fromarray(array).save(path)
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key, [array], step=trainer.global_step, caption=[caption or path.name])
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=trainer.global_step)
    return path
