"""The package version, in one place (``genlight.__version__``, checkpoint metadata)."""

__version__ = "0.1.0"
