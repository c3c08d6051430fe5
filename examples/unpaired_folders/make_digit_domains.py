"""Write two unpaired image domains made from the bundled 8x8 digits (no download), in CycleGAN's layout:

    <out>/trainA, <out>/trainB, <out>/testA, <out>/testB     (8-bit grey PNGs, 8x8)

Domain A holds digits, domain B the other half of the digits transformed: ``invert`` (``1 - x``, the
default) or ``thicken`` (3x3 max-pool dilation). The halves are disjoint (even / odd positions of the
digits datamodule's seed-0 split), so no digit appears in both domains: the data are unpaired. The
train folders come from the digits train + validation pool (1438 images: 719 per domain), the test
folders from the digits test split (359: 180 A / 179 B), so ``test*`` stays held out as it is for
``--data digits``. Then train with ``genlight fit -c examples/unpaired_folders/cyclegan.yaml``.
``--source mnist5k`` writes the same layout from the 28x28 ``mnist5k`` digits (train + val pool 4,500
images, test 500; ``examples/mnist5k/cyclegan.yaml``).

    python examples/unpaired_folders/make_digit_domains.py --out data/digit_domains [--domain_b thicken]
    python examples/unpaired_folders/make_digit_domains.py --source mnist5k --out data/mnist5k_domains
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSFORMS = ("invert", "thicken")


def transform_b(x: Tensor, kind: str) -> Tensor:
    """Domain B's images from digits ``x`` in [0, 1], ``(N, 1, 8, 8)``."""
    if kind == "invert":
        return 1.0 - x
    if kind == "thicken":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    raise ValueError(f"unknown domain B transform {kind!r}; choose one of {', '.join(TRANSFORMS)}")


def digit_splits(source: str = "digits") -> dict[str, Tensor]:
    """The ``source`` datamodule's (``digits`` or ``mnist5k``) seed-0 ``train + val`` pool and ``test``
    split, as ``(N, 1, S, S)`` tensors."""
    from genlight import create_datamodule

    dm = create_datamodule(source)
    dm.setup("fit")

    def stack(split: str) -> Tensor:
        return torch.stack([dm.reference_dataset(split)[i][0] for i in range(len(dm.reference_dataset(split)))])

    return {"train": torch.cat([stack("train"), stack("val")]), "test": stack("test")}


def write_domains(out: str | Path, domain_b: str = "invert", source: str = "digits") -> dict[str, int]:
    """Write the four folders under ``out``; returns the number of images in each."""
    from PIL import Image

    counts = {}
    for split, x in digit_splits(source).items():
        domains = {"A": x[0::2], "B": transform_b(x[1::2], domain_b)}
        for name, images in domains.items():
            folder = Path(out) / f"{split}{name}"
            folder.mkdir(parents=True, exist_ok=True)
            arrays = (images[:, 0] * 255.0).round().clamp(0, 255).to(torch.uint8).numpy()
            for i, array in enumerate(arrays):
                Image.fromarray(array).save(folder / f"{i:04d}.png")
            counts[folder.name] = len(arrays)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/digit_domains", help="output folder (default: data/digit_domains)")
    parser.add_argument("--domain_b", choices=TRANSFORMS, default="invert", help="domain B transform (default: invert)")
    parser.add_argument("--source", choices=("digits", "mnist5k"), default="digits", help="the digits (default: digits)")
    args = parser.parse_args()
    counts = write_domains(args.out, args.domain_b, args.source)
    print(", ".join(f"{k}: {v}" for k, v in counts.items()), f"images written under {args.out}")


if __name__ == "__main__":
    main()
