"""Registered datamodules; importing this package registers every built-in one."""

from genlight.datamodules.digits import DigitsDataModule

__all__ = ["DigitsDataModule"]
