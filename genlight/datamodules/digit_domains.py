"""``digit_domains``: the bundled 8x8 digits rendered in named domains by deterministic image operations,
for multi-domain translation (StarGAN, Choi et al. 2018) with a known true translation.

Domains (``DOMAIN_OPS``), each a map of ``(n, C, H, W)`` images in [0, 1] to the same shape:

* ``plain``: the digit as it is;
* ``thick``: grey dilation by a horizontal 2-pixel element: the maximum of the pixel and its right
  neighbour (zero outside the image);
* ``thin``: grey erosion by the same element: the minimum of the pixel and its right neighbour (the
  4-neighbour cross erodes the 8x8 strokes to almost nothing: mean intensity 0.04 against 0.31 plain;
  this element keeps 0.17, and dilation brings it to 0.44);
* ``inverted``: ``1 - x``;
* ``rotated``: a quarter turn counter-clockwise (``torch.rot90``, a permutation of the pixels);
* ``shifted``: one pixel to the right, the left column filled with 0;
* ``flipped``: mirrored left-right.

Every operation is a maximum, a minimum, ``1 - x`` or a permutation of grid values (plus zeros), so the
17 grey levels ``{0, 1/16, ..., 1}`` of the digits are kept exactly: ``num_levels = 17`` in every domain,
no quantisation back to the grid is needed.

Batches (``batch_kind = "domains"``):

* training: ``(x, y, d)``: ``x`` ``(B, C, H, W)`` in [0, 1], ``y`` ``(B,)`` the digit class, ``d``
  ``(B,)`` the domain index of ``x`` (``(x, y)`` first, so a family that reads ``(x, y)`` batches
  trains on these as on ``digits``). Each training digit appears in exactly ONE domain: the training
  digits are dealt to the domains by a permutation seeded with ``seed + 2`` (disjoint, balanced), so a
  model never sees the same digit in two domains (no pairs);
* validation and test: ``(x, y, d, every)``: as above plus ``every`` ``(B, N, C, H, W)``, the same digit
  in all ``N`` domains (``every[:, d] == x``), the true answer of every translation. Item ``i`` of
  these splits is in domain ``i mod N``, so each source domain has the same share (up to one).

The train/validation/test split of the digits is that of the ``digits`` datamodule (20% test, then
``val_fraction`` of the rest, seeded by ``seed``), so no test digit is ever trained on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from genlight.datamodules.base import GenerativeDataModule
from genlight.datamodules.digits import load_digits_tensors
from genlight.ranges import PositiveInt
from genlight.registry import register_datamodule

__all__ = ["DEFAULT_DOMAINS", "DOMAIN_OPS", "DigitDomainsDataModule", "DomainDataset", "check_domains", "render"]


def _right_neighbour(x: Tensor) -> Tensor:
    """Each pixel's right neighbour, 0 beyond the last column."""
    return F.pad(x, (0, 1, 0, 0))[..., 1:]


def _shift_right(x: Tensor) -> Tensor:
    return F.pad(x, (1, 0, 0, 0))[..., :-1]


DOMAIN_OPS: dict[str, Callable[[Tensor], Tensor]] = {
    "plain": lambda x: x,
    "thick": lambda x: torch.maximum(x, _right_neighbour(x)),
    "thin": lambda x: torch.minimum(x, _right_neighbour(x)),
    "inverted": lambda x: 1.0 - x,
    "rotated": lambda x: torch.rot90(x, 1, dims=(-2, -1)),
    "shifted": _shift_right,
    "flipped": lambda x: torch.flip(x, dims=(-1,)),
}
DEFAULT_DOMAINS: tuple[str, ...] = ("plain", "thick", "thin", "inverted")


def check_domains(domains: Sequence[str], owner: str = "digit_domains") -> tuple[str, ...]:
    """The names as a tuple, or a one-line ``ValueError``: unknown names (listing the known ones),
    repeated names, fewer than two."""
    names = tuple(str(d) for d in domains)
    unknown = [d for d in names if d not in DOMAIN_OPS]
    if unknown:
        raise ValueError(f"{owner}: unknown domain(s) {', '.join(map(repr, unknown))}; known: {', '.join(DOMAIN_OPS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"{owner}: domains repeat a name: {list(names)}; list each domain once")
    if len(names) < 2:
        raise ValueError(f"{owner}: needs at least two domains, got {list(names)}; e.g. {list(DEFAULT_DOMAINS)}")
    return names


def render(x: Tensor, domains: Sequence[str]) -> Tensor:
    """``x`` ``(n, C, H, W)`` in every domain: ``(n, N, C, H, W)``."""
    return torch.stack([DOMAIN_OPS[d](x) for d in domains], dim=1)


class DomainDataset(Dataset):
    """Digits ``(x, y)`` of ``base`` in the domain ``assign[i]`` each: items ``(x_d, y, d)``, or
    ``(x_d, y, d, every)`` with ``paired`` (``every``: ``(N, C, H, W)``, the digit in all domains).
    The images of every domain are rendered once, here."""

    def __init__(self, base: Dataset, domains: Sequence[str], assign: Tensor, paired: bool) -> None:
        items = [base[i] for i in range(len(base))]
        x = torch.stack([item[0] for item in items]) if items else torch.zeros(0, 1, 8, 8)
        self.y = torch.tensor([int(item[1]) for item in items], dtype=torch.long)
        self.every = render(x, domains)  # (n, N, C, H, W)
        self.assign = assign.long()
        self.paired = paired

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, index: int) -> tuple[Tensor, ...]:
        d = self.assign[index]
        item = (self.every[index, d], self.y[index], d)
        return (*item, self.every[index]) if self.paired else item


@register_datamodule("digit_domains")
class DigitDomainsDataModule(GenerativeDataModule):
    """The 8x8 digits in ``domains`` (see the module docstring for the operations and the batch layout).

    Args:
        domains: the domain names, in the order of their indices (at least two; ``plain``, ``thick``,
            ``thin``, ``inverted``, ``rotated``, ``shifted``, ``flipped``).
        batch_size: examples per batch.
    """

    image_shape = (1, 8, 8)
    num_classes = 10
    num_levels = 17
    test_fraction = 0.2
    batch_kind = "domains"

    def __init__(self, domains: Sequence[str] = DEFAULT_DOMAINS, batch_size: PositiveInt = 64, **kwargs: Any) -> None:
        names = check_domains(domains)  # before anything is built
        super().__init__(batch_size=batch_size, **kwargs)
        self.domain_names: tuple[str, ...] = names
        self.num_domains = len(names)

    def load_datasets(self) -> tuple[Dataset, Dataset, Dataset]:
        train, val, test = self.split_pool(TensorDataset(*load_digits_tensors()))
        n = self.num_domains
        perm = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.seed + 2))
        assign = torch.empty(len(train), dtype=torch.long)
        assign[perm] = torch.arange(len(train)) % n  # dealt like cards: disjoint, balanced
        return (
            DomainDataset(train, self.domain_names, assign, paired=False),
            DomainDataset(val, self.domain_names, torch.arange(len(val)) % n, paired=True),
            DomainDataset(test, self.domain_names, torch.arange(len(test)) % n, paired=True),
        )
