"""Quiet runs: no Lightning tips, seed lines or upstream deprecation warnings in front of what matters
(errors, the run's own lines). Standard ``logging`` filters and ``warnings`` filters only, set for
the duration of one ``genlight`` command and removed after it."""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Iterator

__all__ = ["quiet_run"]

#: the loggers Lightning's ``rank_zero_info`` writes through
_LIGHTNING_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning.fabric.utilities.seed",
    "lightning.pytorch.utilities.seed",
)
#: messages that never help a genlight user: advertising tips and the seed lines (the seed is in config.yaml)
_NOISE = ("💡 Tip:", "Seed set to", "No seed found", "litlogger")
#: Lightning warnings about what genlight does on purpose: a resumed fit writes a new run folder,
#: ``test --ckpt_path`` needs none of the fit's callbacks; and the training log of a small data set (fewer
#: batches an epoch than ``log_every_n_steps``) is complete without per-step lines: families log epoch means
_EXPECTED = (
    "The dirpath has changed from",
    "Be aware that when using `ckpt_path`, callbacks used to create",
    "is smaller than the logging interval Trainer(log_every_n_steps",
)


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = str(record.msg)
        return not any(word in message for word in _NOISE)


@contextlib.contextmanager
def quiet_run() -> Iterator[None]:
    """Drop Lightning's tips and seed lines, and deprecation warnings raised inside torch/Lightning code."""
    noise = _DropNoise()
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(noise)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No seed found")
            for message in _EXPECTED:
                warnings.filterwarnings("ignore", message=".*" + re.escape(message))
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category, module=r"(lightning|lightning_fabric|torch)\.")
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(noise)
