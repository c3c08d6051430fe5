"""Running epoch means of training scalars, without a device sync per step (what
:meth:`genlight.module.GenerativeModule.log_train` accumulates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor

__all__ = ["EpochMeans"]


class EpochMeans:
    """Running, batch-size-weighted sums of the training scalars of one epoch (what
    :meth:`GenerativeModule.log_train` accumulates): one detached tensor per group of names, one
    in-place add a step, no ``.item()`` and no device sync."""

    def __init__(self) -> None:
        self.epoch = -1
        self.groups: dict[tuple[str, ...], list[Any]] = {}  # names -> [weighted sums (len(names),), weight]
        self.prog_bar: set[str] = set()

    def add(self, epoch: int, names: tuple[str, ...], values: Tensor, batch_size: int, prog_bar: Sequence[str]) -> None:
        """Add ``values`` (``(len(names),)``) weighted by ``batch_size``; a new ``epoch`` starts afresh."""
        if epoch != self.epoch:
            self.epoch, self.groups, self.prog_bar = epoch, {}, set()
        group = self.groups.get(names)
        if group is None:
            self.groups[names] = [values * batch_size, float(batch_size)]
            self.prog_bar.update(prog_bar)
        else:
            group[0].add_(values, alpha=batch_size)
            group[1] += batch_size

    def sums(self) -> dict[str, Tensor]:
        """``name -> weighted sum`` of this epoch (a NaN/Inf in any step makes its sum non-finite)."""
        return {n: v for names, (total, _) in self.groups.items() for n, v in zip(names, total)}

    def pop_means(self) -> dict[str, Tensor]:
        """``name -> epoch mean``, and forget the epoch."""
        sums: dict[str, Tensor] = {}
        weights: dict[str, float] = {}
        for names, (total, weight) in self.groups.items():
            for name, value in zip(names, total):
                sums[name] = sums[name] + value if name in sums else value
                weights[name] = weights.get(name, 0.0) + weight
        self.groups = {}
        return {name: sums[name] / weights[name] for name in sums}
