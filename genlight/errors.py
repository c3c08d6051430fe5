"""Errors caused by a user's input or files. Their messages name the problem and the fix, so the
``genlight`` command prints them without a traceback and exits with code 1."""

from __future__ import annotations


class GenlightError(Exception):
    """Base of the errors whose message is all a user needs (no traceback)."""


class DataFilesError(GenlightError, RuntimeError):
    """Data files are missing, truncated or corrupted. The message says which files were expected
    where and how to get them."""


class IncompatibleDataError(GenlightError, ValueError):
    """A family cannot work on this data (its shape, its labels). The message says what fits."""


class ImageShapeError(IncompatibleDataError):
    """A family cannot work on the data's shape. The message names the shapes that fit."""
