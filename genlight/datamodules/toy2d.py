"""2-D toy densities for flows, GANs and EBMs (as in FFJORD, Grathwohl et al. 2019): ``two_moons``,
``eight_gaussians``, ``checkerboard``, ``pinwheel``. Batches are ``(x, -1)`` with ``x`` of shape
``(B, 2)``, continuous (``num_levels=0``). :func:`log_prob` gives the exact density where one is
known in closed form (``eight_gaussians``, ``checkerboard``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.errors import IncompatibleDataError
from genlight.ranges import DataSize, PositiveInt
from genlight.registry import register_datamodule

__all__ = ["EIGHT_GAUSSIANS_RADIUS", "EIGHT_GAUSSIANS_STD", "Toy2DDataModule", "log_prob", "sample_toy2d"]

Toy = Literal["two_moons", "eight_gaussians", "checkerboard", "pinwheel"]

#: eight isotropic Gaussians of equal weight, centred on a circle (FFJORD's scale 4 / sqrt 2)
EIGHT_GAUSSIANS_RADIUS = 2.0 * math.sqrt(2.0)
EIGHT_GAUSSIANS_STD = 0.5 / math.sqrt(2.0)
#: checkerboard: uniform on the 8 "black" cells (i + j even) of a 4x4 board of side-2 cells on [-4, 4]^2
CHECKER_CELL = 2.0
CHECKER_HALF_WIDTH = 4.0


def eight_gaussians_centers() -> Tensor:
    angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
    return EIGHT_GAUSSIANS_RADIUS * torch.stack([angles.cos(), angles.sin()], dim=1)


def _cell_parity(x: Tensor) -> tuple[Tensor, Tensor]:
    """(inside the board, black cell) for points ``(N, 2)``."""
    inside = (x.abs() < CHECKER_HALF_WIDTH).all(dim=1)
    idx = torch.floor((x + CHECKER_HALF_WIDTH) / CHECKER_CELL).long()
    return inside, (idx.sum(dim=1) % 2 == 0)


def sample_toy2d(name: Toy, n: int, generator: torch.Generator) -> Tensor:
    """``n`` points of the toy distribution ``name`` as float32 ``(n, 2)``, from ``generator``."""
    g = generator
    if name == "eight_gaussians":
        k = torch.randint(8, (n,), generator=g)
        x = eight_gaussians_centers()[k] + EIGHT_GAUSSIANS_STD * torch.randn(n, 2, generator=g, dtype=torch.float64)
    elif name == "checkerboard":
        cells = CHECKER_HALF_WIDTH * 2 / CHECKER_CELL  # 4 per side
        i = torch.randint(int(cells), (n,), generator=g)
        j = 2 * torch.randint(int(cells) // 2, (n,), generator=g) + i % 2  # i + j even: a black cell
        cell = torch.stack([i, j], dim=1).double()
        x = (cell + torch.rand(n, 2, generator=g, dtype=torch.float64)) * CHECKER_CELL - CHECKER_HALF_WIDTH
    elif name == "two_moons":  # scikit-learn's make_moons, noise 0.1, centred and scaled by 2
        upper = torch.rand(n, generator=g) < 0.5
        t = math.pi * torch.rand(n, generator=g, dtype=torch.float64)
        x = torch.where(
            upper[:, None],
            torch.stack([t.cos(), t.sin()], dim=1),
            torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=1),
        )
        x = x + 0.1 * torch.randn(n, 2, generator=g, dtype=torch.float64)
        x = 2.0 * (x - torch.tensor([0.5, 0.25], dtype=torch.float64))
    elif name == "pinwheel":  # FFJORD's pinwheel: 5 arms, radial std 0.3, tangential std 0.1, rate 0.25
        arms, rate = 5, 0.25
        k = torch.randint(arms, (n,), generator=g)
        feats = torch.randn(n, 2, generator=g, dtype=torch.float64) * torch.tensor([0.3, 0.1], dtype=torch.float64)
        feats[:, 0] += 1.0
        angle = k.double() * (2 * math.pi / arms) + rate * feats[:, 0].exp()
        rot = torch.stack([angle.cos(), -angle.sin(), angle.sin(), angle.cos()], dim=1).view(n, 2, 2)
        x = 2.0 * torch.einsum("ni,nji->nj", feats, rot)
    else:
        raise ValueError(
            f"unknown toy distribution {name!r}; choose two_moons, eight_gaussians, checkerboard, pinwheel"
        )
    return x.float()


def log_prob(name: Toy, x: Tensor) -> Tensor:
    """Exact ``log p(x)`` in nats of ``(N, 2)`` points (``-inf`` off the support); only for
    ``eight_gaussians`` and ``checkerboard`` (the others have no closed form)."""
    x = x.double()
    if name == "eight_gaussians":
        var = EIGHT_GAUSSIANS_STD**2
        sq = (x[:, None, :] - eight_gaussians_centers()[None]).pow(2).sum(-1)  # (N, 8)
        comp = -sq / (2 * var) - math.log(2 * math.pi * var)
        return torch.logsumexp(comp, dim=1) - math.log(8)
    if name == "checkerboard":
        inside, black = _cell_parity(x)
        area = 8 * CHECKER_CELL**2
        out = torch.full((len(x),), -math.inf, dtype=torch.float64)
        out[inside & black] = -math.log(area)
        return out
    raise NotImplementedError(
        f"{name} has no closed-form density; log_prob exists for eight_gaussians and checkerboard"
    )


@register_datamodule("toy2d")
class Toy2DDataModule(GenerativeDataModule):
    """A 2-D toy distribution (``dataset``) as ``num_samples`` seeded points, shape ``(2,)``,
    continuous (``num_levels=0``), no classes; 10% test, then ``val_fraction`` of the rest.

    Args:
        dataset: ``two_moons``, ``eight_gaussians``, ``checkerboard`` or ``pinwheel``.
        num_samples: number of points drawn (by ``seed``), 10 or more.
        batch_size: points per batch (256 here).
    """

    image_shape = (2,)
    batch_kind = "points"
    num_classes = 0
    num_levels = 0
    test_fraction = 0.1

    def __init__(
        self,
        dataset: Toy = "eight_gaussians",
        num_samples: DataSize = 50_000,
        batch_size: PositiveInt = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(batch_size=batch_size, **kwargs)
        self.dataset = dataset
        self.num_samples = num_samples

    @classmethod
    def smoke(cls, root: Path, **kwargs: Any) -> Toy2DDataModule:
        return cls(**{"num_samples": 1000, "batch_size": 64, **kwargs})

    @property
    def has_log_prob(self) -> bool:
        return self.dataset in ("eight_gaussians", "checkerboard")

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density of this data set's distribution (see :func:`log_prob`)."""
        return log_prob(self.dataset, x)

    def state_dict(self) -> dict[str, Any]:
        """Which distribution the model was trained on, kept in checkpoints (see :meth:`load_state_dict`)."""
        return {"dataset": self.dataset}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Refuse a checkpoint of a model trained on another toy distribution (``test``, ``validate`` or a
        resumed ``fit`` with ``--ckpt_path`` would score or train it on the wrong data)."""
        trained = state_dict.get("dataset")
        if trained is not None and trained != self.dataset:
            raise IncompatibleDataError(
                f"the checkpoint's model was trained on toy2d dataset '{trained}', not '{self.dataset}': pass "
                f"--data.dataset {trained} (or leave it out of the command), or use a checkpoint trained on {self.dataset}"
            )

    def load_datasets(self) -> tuple[Dataset, Dataset | None]:
        x = sample_toy2d(self.dataset, self.num_samples, torch.Generator().manual_seed(self.seed))
        return TensorDataset(x, torch.full((self.num_samples,), -1, dtype=torch.long)), None
