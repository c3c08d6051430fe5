"""Code-traversal grids of models with structured latent codes (InfoGAN): rows are the values of a
categorical code, columns sweep one continuous code, with one fixed noise vector."""

from __future__ import annotations

import lightning.pytorch as pl
from torch import Tensor

from genlight.callbacks.base import EpochImageCallback, evaluating
from genlight.callbacks.image_logging import image_grid, log_images
from genlight.ranges import Decay, NonNegativeInt, PositiveFloat, PositiveInt, Seed, check_arguments
from genlight.types import CodeTraversable

__all__ = ["CodeTraversal", "traversal_grid"]


class CodeTraversal(EpochImageCallback):
    """Every ``every_n_epochs`` epochs, log one grid per continuous code (``traversal_c<j>``): each row
    a value of categorical code ``categorical``, the columns the sweep of continuous code ``j`` over
    ``[-span, span]`` in ``num_steps`` steps, one noise vector seeded by ``seed`` (the same every epoch),
    eval mode and EMA weights. Models without ``code_traversal`` are skipped with one log line."""

    capability = CodeTraversable
    needs = "code_traversal (structured latent codes)"

    def __init__(
        self,
        num_steps: PositiveInt = 10,
        span: PositiveFloat = 1.0,
        categorical: NonNegativeInt = 0,
        every_n_epochs: NonNegativeInt = 1,
        seed: Seed = 0,
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        super().__init__(every_n_epochs, max_time_fraction)
        self.num_steps, self.span, self.categorical, self.seed = num_steps, span, categorical, seed
        self.last_paths: dict[str, object] = {}

    def log_epoch(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for j in range(int(pl_module.num_continuous)):
            cells = pl_module.code_traversal(j, self.categorical, self.num_steps, self.span, self.seed)
            key = f"traversal_c{j}"
            self.last_paths[key] = log_images(
                trainer,
                key,
                cells.flatten(0, 1),
                nrow=self.num_steps,
                caption=f"rows: categorical code {self.categorical}; columns: continuous code {j} in "
                f"[-{self.span}, {self.span}]; epoch {trainer.current_epoch}",
            )


def traversal_grid(
    model: CodeTraversable,
    continuous: int = 0,
    categorical: int = 0,
    num_steps: int = 10,
    span: float = 1.0,
    seed: int = 0,
) -> Tensor:
    """:meth:`~genlight.types.CodeTraversable.code_traversal` as one ``(3, h, w)`` picture in [0, 1] (rows: categorical values,
    columns: the continuous sweep), drawn in eval mode with the EMA weights where an EMA callback is
    attached; the model's mode is restored after."""
    with evaluating(model):  # type: ignore[arg-type]
        cells = model.code_traversal(continuous, categorical, num_steps, span, seed)
    return image_grid(cells.flatten(0, 1), nrow=num_steps)
