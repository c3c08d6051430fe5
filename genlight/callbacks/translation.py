"""Translation grids for any :class:`~genlight.types.Translator` (CycleGAN-style domain transfer) and
any :class:`~genlight.types.MultiDomainTranslator` (StarGAN: every domain, beside the true answer)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import Tensor

from genlight.callbacks.base import EpochImageCallback, first_batch
from genlight.callbacks.image_logging import log_images
from genlight.ranges import Decay, NonNegativeInt, PositiveInt, check_arguments
from genlight.types import MultiDomainTranslator, Translator

__all__ = ["TranslationGrid", "domain_rows", "translation_rows"]


def translation_rows(pl_module: Translator, x: Tensor, direction: str = "a2b") -> Tensor:
    """Three rows, ``x``, ``translate(x, direction)`` and the round trip back, as ``(3*n, C, H, W)``."""
    back = "b2a" if direction == "a2b" else "a2b"
    fake = pl_module.translate(x, direction).to(x.dtype)
    cycle = pl_module.translate(fake, back).to(x.dtype)
    return torch.cat([x, fake, cycle])


def domain_rows(pl_module: MultiDomainTranslator, x: Tensor, every: Tensor | None = None) -> Tensor:
    """``x`` then, for every domain ``t``, ``translate(x, t)`` and (given ``every``, ``(n, N, C, H, W)``,
    the same images in every domain) the true ``every[:, t]`` below it: ``((1 + 2N) * n, C, H, W)``
    (``(1 + N) * n`` without ``every``)."""
    rows = [x]
    for t in range(pl_module.num_domains):
        rows.append(pl_module.translate(x, t).to(x.dtype))
        if every is not None:
            rows.append(every[:, t].to(x))
    return torch.cat(rows)


class TranslationGrid(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log the first ``num_images`` domain-A images of ``split`` as
    three rows (as ``translations``): ``x``, ``a2b(x)``, ``b2a(a2b(x))``; when the batches are unpaired
    ``(x_a, x_b)`` pairs, three more rows follow for domain B: ``x_b``, ``b2a(x_b)``, ``a2b(b2a(x_b))``.

    A :class:`~genlight.types.MultiDomainTranslator` gets :func:`domain_rows` instead: ``x``, then
    each domain's translation with, when the split's batches carry every domain's copy
    (``(x, y, domain, every)``: ``digit_domains``), the true image below it.

    Models without ``translate`` are skipped with one log line. ``every_n_epochs=0`` turns it off.
    """

    capability = Translator
    needs = "translate(x, direction)"

    def __init__(
        self,
        num_images: PositiveInt = 8,
        every_n_epochs: NonNegativeInt = 1,
        split: str = "val",
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        super().__init__(every_n_epochs, max_time_fraction)
        self.num_images = num_images
        self.split = split
        self.last_path = None

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if isinstance(pl_module, MultiDomainTranslator):
            self.log_domains(trainer, pl_module)
            return
        x_a, x_b = first_batch(trainer, self.num_images, self.split)
        grid = self.draw(pl_module, x_a.to(pl_module.device), x_b)
        rows = "x_a, a2b, b2a(a2b)" + (", x_b, b2a, a2b(b2a)" if len(grid) > 3 * len(x_a) else "")
        self.last_path = log_images(
            trainer,
            "translations",
            grid,
            nrow=len(x_a),
            row_labels=rows.split(", "),
            caption=f"rows: {rows}; epoch {trainer.current_epoch}",
        )

    def draw(self, pl_module: Translator, x_a: Tensor, x_b: object = None) -> Tensor:
        """The grid's images, row by row (3 rows, or 6 when ``x_b`` are images of domain B)."""
        rows = [translation_rows(pl_module, x_a, "a2b")]
        if isinstance(x_b, Tensor) and x_b.is_floating_point() and x_b.shape == x_a.shape:
            rows.append(translation_rows(pl_module, x_b.to(x_a.device), "b2a"))
        return torch.cat(rows)

    def log_domains(self, trainer: pl.Trainer, pl_module: MultiDomainTranslator) -> None:
        """The grid of :func:`domain_rows` for the first ``num_images`` images of ``split``."""
        from genlight.callbacks.data import ordered_loader, split_dataset_of

        dataset = split_dataset_of(trainer, self.split)
        batch = next(iter(ordered_loader(dataset, min(self.num_images, len(dataset)))))
        x = batch[0].to(pl_module.device)  # type: ignore[attr-defined]
        every = batch[3] if len(batch) > 3 else None
        grid = domain_rows(pl_module, x, every.to(x.device) if every is not None else None)
        names = pl_module.domain_names
        labels = ["x"] + [
            label for d in names for label in ([f"to {d}"] + ([f"true {d}"] if every is not None else []))
        ]
        self.last_path = log_images(
            trainer,
            "translations",
            grid,
            nrow=len(x),
            row_labels=labels,
            caption=f"rows: {', '.join(labels)}; epoch {trainer.current_epoch}",
        )
