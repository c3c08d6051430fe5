"""Errors caused by a user's input or files. Their messages name the problem and the fix, so the
``genlight`` command prints them without a traceback and exits with code 1."""

from __future__ import annotations

__all__ = [
    "CheckpointError",
    "CheckpointNotFoundError",
    "ConfigError",
    "DataFilesError",
    "GenlightError",
    "ImageShapeError",
    "IncompatibleDataError",
    "NonFiniteLossError",
    "one_line",
    "root_cause",
    "user_error",
]


class GenlightError(Exception):
    """Base of the errors whose message is all a user needs (no traceback)."""


class DataFilesError(GenlightError, RuntimeError):
    """Data files are missing, truncated or corrupted. The message says which files were expected
    where and how to get them."""


class IncompatibleDataError(GenlightError, ValueError):
    """A family cannot work on this data (its shape, its labels). The message says what fits."""


class ImageShapeError(IncompatibleDataError):
    """A family cannot work on the data's shape. The message names the shapes that fit."""


class ConfigError(GenlightError, ValueError):
    """A setting is out of range or does not fit the rest of the run (a batch size, a fraction, an
    extractor for the wrong image size). The message names the setting and the values that fit."""


class CheckpointError(GenlightError, ValueError):
    """A checkpoint file is missing, truncated, not genlight's, of another family, or contradicted by
    the given model arguments. The message names the file and what is wrong."""


class NonFiniteLossError(GenlightError, FloatingPointError):
    """A training loss became NaN or Inf. The message names the step, the loss term and the last good
    checkpoint (which is kept)."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No checkpoint file where one was asked for."""


def one_line(err: BaseException) -> str:
    """A user error's message on one line (at most 1000 characters)."""
    text = " ".join(str(err).split())
    if isinstance(err, KeyError) and text.startswith(("'", '"')) and text.endswith(("'", '"')):
        text = text[1:-1]  # KeyError's repr quotes
    return text if len(text) <= 1000 else text[:997] + "..."


def root_cause(err: BaseException) -> BaseException:
    """The innermost exception of ``err``'s chain (jsonargparse wraps what an ``__init__`` raised)."""
    seen = {id(err)}
    while (err.__cause__ or err.__context__) is not None and id(err.__cause__ or err.__context__) not in seen:
        err = err.__cause__ or err.__context__  # type: ignore[assignment]
        seen.add(id(err))
    return err


def user_error(err: BaseException | None) -> BaseException | None:
    """The :class:`~genlight.errors.GenlightError` behind ``err``, if any (jsonargparse wraps errors
    raised while it instantiates a class in a ``ValueError``)."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, GenlightError):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
