"""Energy landscapes of energy-based models on 2-D points (toy2d): ``E(x)`` on a grid over the box the
chains live in, as a heat map (bright = low energy = likely) with the real data drawn in red."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight.callbacks.base import EpochImageCallback
from genlight.callbacks.image_logging import log_images, reference_points
from genlight.ranges import Decay, NonNegativeInt, PositiveInt, Size, check_arguments
from genlight.types import EnergyModel

__all__ = ["EnergyLandscape", "energy_grid", "energy_image", "save_energy_png"]


class EnergyLandscape(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log the energy landscape (``energy``) of a 2-D :class:`~genlight.types.EnergyModel` at
    ``resolution``² grid points over ``[-box, box]²``, with up to ``num_points`` train points on top.
    Energy models of images and other models are skipped with one log line."""

    capability = EnergyModel
    needs = "2-D energy (an ebm on toy2d points)"

    def __init__(
        self,
        resolution: Size = 128,
        num_points: PositiveInt = 1000,
        every_n_epochs: NonNegativeInt = 1,
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        super().__init__(every_n_epochs, max_time_fraction)
        self.resolution, self.num_points = resolution, num_points
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if pl_module.data_box is None:  # an energy model of images
            return
        image = energy_image(pl_module, reference_points(trainer, self.num_points), resolution=self.resolution)
        self.last_path = log_images(
            trainer,
            "energy",
            image[None],
            nrow=1,
            caption=f"energy (bright = low) and data, epoch {trainer.current_epoch}",
        )


@torch.no_grad()
def energy_grid(model: EnergyModel, box: float | None = None, resolution: int = 200) -> tuple[Tensor, Tensor]:
    """Energies of a 2-D :class:`~genlight.types.EnergyModel` on a ``resolution²`` grid over ``[-box, box]²``: ``(E (R, R),
    coordinates (R, R, 2))``, row ``i`` at ``y = box - 2 box i / (R-1)`` (top row = largest y)."""
    if model.data_box is None:
        raise ValueError(f"energy_grid draws 2-D energies; this {type(model).__name__} models images")
    box = float(box or model.data_box)
    ys = torch.linspace(box, -box, resolution)
    xs = torch.linspace(-box, box, resolution)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (R, R, 2): [i, j] = (xs[j], ys[i])
    energies = torch.cat([model.energy(chunk.to(model.device)).float().cpu() for chunk in grid.view(-1, 2).split(8192)])  # type: ignore[attr-defined]
    return energies.view(resolution, resolution), grid


def energy_image(
    model: EnergyModel, points: Tensor | None = None, box: float | None = None, resolution: int = 256
) -> Tensor:
    """The energy over the grid as a ``(3, R, R)`` picture in [0, 1]: min-max scaled and inverted (bright =
    low energy = likely), with ``points`` (e.g. data) drawn as red dots."""
    box = float(box or model.data_box or 1.0)
    energies, _ = energy_grid(model, box, resolution)
    scaled = (energies.max() - energies) / (energies.max() - energies.min()).clamp(min=1e-12)
    rgb = scaled[None].repeat(3, 1, 1)
    if points is not None:
        points = points.detach().cpu()
        col = ((points[:, 0] + box) / (2 * box) * (resolution - 1)).round().long()
        row = ((box - points[:, 1]) / (2 * box) * (resolution - 1)).round().long()
        keep = (col >= 0) & (col < resolution) & (row >= 0) & (row < resolution)
        rgb[:, row[keep], col[keep]] = torch.tensor([1.0, 0.0, 0.0])[:, None]
    return rgb


def save_energy_png(
    model: EnergyModel, path: str, points: Tensor | None = None, box: float | None = None, resolution: int = 256
) -> str:
    """Write :func:`energy_image` as a PNG. Returns the path."""
    from PIL import Image

    rgb = (energy_image(model, points, box, resolution) * 255).round().to(torch.uint8)
    Image.fromarray(rgb.permute(1, 2, 0).numpy()).save(path)
    return path
