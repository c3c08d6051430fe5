"""Writers of tiny data files in the exact on-disk layouts torchvision (and genlight) read.

Each returns what it wrote, so tests can compare loaded tensors with the source values.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genlight.datamodules.idx import write_idx

MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_mnist(root: Path, folder: str = "MNIST", n_train: int = 40, n_test: int = 10, gz: bool = False,
                seed: int = 0) -> dict[str, torch.Tensor]:
    """IDX files ``<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]`` of random 28x28 images."""
    g = torch.Generator().manual_seed(seed)
    out = {
        "train_x": torch.randint(0, 256, (n_train, 28, 28), generator=g, dtype=torch.uint8),
        "train_y": torch.arange(n_train, dtype=torch.uint8) % 10,
        "test_x": torch.randint(0, 256, (n_test, 28, 28), generator=g, dtype=torch.uint8),
        "test_y": torch.arange(n_test, dtype=torch.uint8) % 10,
    }
    out["train_x"][:, 0, 0], out["train_x"][:, 0, 1] = 0, 255  # both ends of the range present
    raw = root / folder / "raw"
    suffix = ".gz" if gz else ""
    for name, key in zip(MNIST_FILES, ("train_x", "train_y", "test_x", "test_y")):
        write_idx(raw / f"{name}{suffix}", out[key])
    return out


def write_cifar10(root: Path, n_per_batch: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """``<root>/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}`` as the original pickles
    (dicts with ``data`` uint8 N x 3072, channel-major, and ``labels``; protocol 2 as the originals)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n_per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data, "filenames": []}, f, protocol=2)
        written[name] = data
        written[f"{name}_labels"] = np.array(labels)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"num_cases_per_batch": n_per_batch, "label_names": names, "num_vis": 3072}, f, protocol=2)
    return written


def write_image(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> None:
    """A random image of ``size = (width, height)``; the format follows the suffix."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    array = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array.squeeze(-1) if channels == 1 else array, mode).save(path)


CELEBA_ATTRS = ["5_o_Clock_Shadow", "Arched_Eyebrows", "Smiling", "Young"]


def write_celeba(root: Path, n: int = 12, size: tuple[int, int] = (18, 22)) -> dict[str, list]:
    """``<root>/celeba/img_align_celeba/000001.jpg ...`` (aligned-crop aspect 178x218, scaled down),
    ``list_eval_partition.txt`` and ``list_attr_celeba.txt`` in the official formats. Split: the first
    half train, then a quarter valid, a quarter test."""
    folder = root / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, n + 1)]
    parts = [0 if i < n // 2 else 1 if i < 3 * n // 4 else 2 for i in range(n)]
    smiling = [i % 2 for i in range(n)]
    for i, name in enumerate(names):
        write_image(folder / "img_align_celeba" / name, size, seed=i)
    (folder / "list_eval_partition.txt").write_text("".join(f"{nm} {p}\n" for nm, p in zip(names, parts)))
    rows = []
    for i, name in enumerate(names):
        values = [1 if i % 3 == 0 else -1, -1, 1 if smiling[i] else -1, 1]
        rows.append(name + "  " + " ".join(f"{v:2d}" for v in values))
    header = " ".join(CELEBA_ATTRS)
    (folder / "list_attr_celeba.txt").write_text(f"{n}\n{header} \n" + "\n".join(rows) + "\n")
    return {"names": names, "partition": parts, "smiling": smiling}


def write_image_folder(root: Path, classes: list[str] | None = ("cat", "dog"), per_class: int = 10,
                       size: tuple[int, int] = (20, 16), suffix: str = ".png") -> int:
    """Images under ``root/<class>/`` (or directly in ``root`` when ``classes`` is None); returns the count."""
    count = 0
    for k, cls in enumerate(classes or [None]):
        folder = root / cls if cls else root
        for i in range(per_class):
            write_image(folder / f"img_{i:03d}{suffix}", size, seed=100 * k + i)
            count += 1
    return count


def write_amat(root: Path, sizes: tuple[int, int, int] = (30, 10, 10), seed: int = 0) -> dict[str, torch.Tensor]:
    """``<root>/BinarizedMNIST/binarized_mnist_{train,valid,test}.amat``: one image per line, 784 0/1 values."""
    g = torch.Generator().manual_seed(seed)
    folder = root / "BinarizedMNIST"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in zip(("train", "valid", "test"), sizes):
        x = (torch.rand(n, 784, generator=g) < 0.3).to(torch.uint8)
        (folder / f"binarized_mnist_{split}.amat").write_text(
            "".join(" ".join(str(int(v)) for v in row) + "\n" for row in x.tolist())
        )
        out[split] = x
    return out


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut ``path`` to a fraction of its bytes, as an interrupted download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
