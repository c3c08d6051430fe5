"""The only place genlight touches private attributes of Lightning or jsonargparse, or relies on the names of
their internal loggers and the words of their messages (:func:`quiet_run`).

Each function reads or sets one private attribute and says why no public API does the job.
``tests/test_compat.py`` pins the upstream behaviour each relies on, so an upgrade that changes it
fails there, loudly, and not somewhere in a training run.
"""

from __future__ import annotations

import contextlib
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from typing import Any

__all__ = [
    "attached_trainer",
    "enable_find_unused_parameters",
    "help_formatter",
    "jsonargparse_debug_mode",
    "logged_step_values",
    "quiet_run",
    "set_initial_hparams",
    "should_update_logs",
]


def attached_trainer(module: Any) -> Any:
    """The Trainer ``module`` is attached to, or ``None``: ``LightningModule.trainer`` raises when there is
    none, and Lightning offers no public test of being attached (it keeps the Trainer in ``_trainer``)."""
    return getattr(module, "_trainer", None)


def should_update_logs(trainer: Any) -> bool:
    """Whether the Trainer writes this step's logs (every ``log_every_n_steps``); Lightning keeps this on
    its private logger connector. :meth:`GenerativeModule.log_train` skips all logging cost otherwise."""
    connector = getattr(trainer, "_logger_connector", None)
    return bool(getattr(connector, "should_update_logs", True))


def enable_find_unused_parameters(strategy: Any) -> bool:
    """Set ``find_unused_parameters=True`` on a DDP strategy before it wraps the model. DDPStrategy takes
    it only as a constructor keyword and keeps it in ``_ddp_kwargs``; returns whether it was set."""
    kwargs = getattr(strategy, "_ddp_kwargs", None)
    if not isinstance(kwargs, dict):
        return False
    kwargs["find_unused_parameters"] = True
    return True


def logged_step_values(trainer: Any) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of what ``self.log`` recorded in the current step (Lightning's private result
    collection; nothing public exposes a step's values before the loggers see them)."""
    try:
        results = trainer._results
        items = list(results.valid_items()) if results is not None else []
    except Exception:  # noqa: BLE001 - a Lightning change must not stop training; the compat test catches it
        return
    for _, metric in items:
        name = getattr(metric.meta, "name", "")
        if metric.is_tensor:
            yield name, metric._forward_cache if metric.meta.on_step else metric.value


def jsonargparse_debug_mode() -> bool:
    """Whether jsonargparse's debug mode (``JSONARGPARSE_DEBUG``) is on: then parse errors keep their
    full text. jsonargparse exposes the check only privately."""
    from jsonargparse._common import debug_mode_active

    return bool(debug_mode_active())


def help_formatter(rewrite: Callable[[Any, str], str]) -> type:
    """jsonargparse's help formatter with each option's help text passed through ``rewrite(action, text)``
    (``genlight fit --help`` shows registry names instead of every imported subclass). argparse has no
    public hook for one option's text; ``_get_help_string`` is the method its own
    ``ArgumentDefaultsHelpFormatter`` overrides, and jsonargparse appends "known subclasses" there."""
    from jsonargparse import DefaultHelpFormatter

    class HelpFormatter(DefaultHelpFormatter):
        def _get_help_string(self, action: Any) -> str:
            return rewrite(action, super()._get_help_string(action))

    return HelpFormatter


def set_initial_hparams(obj: Any, values: dict[str, Any]) -> bool:
    """Replace what ``obj.hparams_initial`` returns (what loggers write to ``hparams.yaml``) by ``values``.
    ``save_hyperparameters`` copies the arguments once into the private ``_hparams_initial`` and nothing
    public updates it; genlight replaces the CLI's restricted-number instances there by plain numbers
    (:func:`genlight.ranges.check_arguments`). Returns whether it was set."""
    if not hasattr(obj, "_hparams_initial"):
        return False
    from lightning.fabric.utilities.data import AttributeDict

    obj._hparams_initial = AttributeDict(values)
    return True


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
