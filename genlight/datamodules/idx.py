"""Reader of the IDX format of MNIST and Fashion-MNIST (LeCun et al. 1998), checked strictly.

An IDX file is a big-endian header ``0x00 0x00 <type> <ndim>``, ``ndim`` int32 sizes, then the
data. The files sit where torchvision puts them, ``<data_dir>/<Folder>/raw/<name>`` (extracted)
or ``<name>.gz`` beside it. A short, long or malformed file raises :class:`DataFilesError`.
"""

from __future__ import annotations

import gzip
import math
import struct
from pathlib import Path

import torch
from torch import Tensor

from genlight.datamodules.common import DataFilesError, corrupted

__all__ = ["find_idx", "read_idx", "write_idx"]

_UINT8 = 0x08


def find_idx(raw: Path, name: str) -> Path | None:
    """``raw/name`` if it exists, else ``raw/name.gz`` if that exists, else None."""
    for path in (raw / name, raw / f"{name}.gz"):
        if path.exists():
            return path
    return None


def read_idx(path: Path, ndim: int, dataset: str = "IDX", how: str = "") -> Tensor:
    """The ``uint8`` tensor stored in an IDX file (raw or gzipped) with ``ndim`` dimensions."""
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise corrupted(dataset, path, f"cannot read it: {err}", how) from err
    if len(data) < 4 + 4 * ndim:
        raise corrupted(dataset, path, f"{len(data)} bytes, shorter than an IDX header", how)
    zero, dtype, nd = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != _UINT8 or nd != ndim:
        raise corrupted(
            dataset, path, f"IDX header says type {dtype:#x} with {nd} dims, expected uint8 with {ndim}", how
        )
    sizes = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = len(data) - 4 - 4 * ndim
    if body != math.prod(sizes):
        raise corrupted(dataset, path, f"header says shape {sizes} = {math.prod(sizes)} bytes, file has {body}", how)
    if math.prod(sizes) == 0:
        raise DataFilesError(f"{dataset}: {path} holds no examples (shape {sizes})")
    return torch.frombuffer(bytearray(data), dtype=torch.uint8, offset=4 + 4 * ndim).view(*sizes).clone()


def write_idx(path: Path, array: Tensor) -> None:
    """Write a ``uint8`` tensor as an IDX file (gzipped when ``path`` ends in ``.gz``); for tests and tools."""
    array = array.to(torch.uint8).contiguous()
    header = struct.pack(">HBB", 0, _UINT8, array.dim()) + struct.pack(f">{array.dim()}I", *array.shape)
    data = header + array.numpy().tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
