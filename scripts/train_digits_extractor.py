"""Train the CNN feature extractor used for ``val/fid_digits`` (or ``fid_mnist5k``, ``fid_mnist``), reproducibly.

    python scripts/train_digits_extractor.py                       # -> genlight/assets/digits_cnn.pt
    OMP_NUM_THREADS=1 python scripts/train_digits_extractor.py --dataset mnist5k   # -> genlight/assets/mnist5k_cnn.pt
    python scripts/train_digits_extractor.py --dataset mnist --data_dir ~/data/mnist \
        --out ~/.cache/genlight/extractors/mnist_cnn.pt             # needs the 4 MNIST IDX files

Trains Foster's CNN (genlight.nn.CNNNet) on the TRAIN split only (digits: the DigitsDataModule
split with seed 0; mnist5k: the MNIST5kDataModule split with seed 0, 4,000 images; MNIST: the
official 60k training images), seeded, with a plain loop, and reports accuracy on the held-out
split(s). The saved file is ``{"config", "state_dict", "meta"}``. At 28x28 the net is narrower
(``CONFIGS``) so that the shipped mnist5k file stays under 1 MB.
"""

from __future__ import annotations

import argparse
import gzip
import struct
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from genlight.nn.classifier_nets import CNNNet

ASSETS = Path(__file__).resolve().parent.parent / "genlight" / "assets"


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file (``.gz`` or raw) as a uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        _, _, dtype, ndim = struct.unpack(">HBBB", f.read(4))
        shape = struct.unpack(f">{ndim}I", f.read(4 * ndim))
        return torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).reshape(shape)


def find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        for p in (data_dir / name, data_dir / "MNIST" / "raw" / name):
            if p.exists():
                return p
    raise SystemExit(f"MNIST file {stem}[.gz] not found under {data_dir}")


#: the net per data set (channels of the four convolutions, width of the feature layer)
CONFIGS = {
    "digits": {"channels": (32, 32, 64, 64), "hidden": 128},
    "mnist5k": {"channels": (32, 32, 64, 32), "hidden": 64},
    "mnist": {"channels": (32, 32, 64, 64), "hidden": 128},
}
EPOCHS = {"digits": 40, "mnist5k": 20, "mnist": 5}


def load_splits(dataset: str, data_dir: Path | None) -> tuple[Dataset, dict[str, Dataset], tuple[int, int, int]]:
    if dataset in ("digits", "mnist5k"):
        from genlight.datamodules import DigitsDataModule, MNIST5kDataModule

        dm = (DigitsDataModule if dataset == "digits" else MNIST5kDataModule)(seed=0)
        dm.setup()
        return dm.train_set, {"val": dm.val_set, "test": dm.test_set}, dm.image_shape
    if data_dir is None:
        raise SystemExit("--data_dir is required for MNIST (the folder with the IDX files)")

    def pair(prefix: str) -> TensorDataset:
        x = read_idx(find(data_dir, f"{prefix}-images-idx3-ubyte")).float().div(255).unsqueeze(1)
        y = read_idx(find(data_dir, f"{prefix}-labels-idx1-ubyte")).long()
        return TensorDataset(x, y)

    return pair("train"), {"test": pair("t10k")}, (1, 28, 28)


@torch.no_grad()
def accuracy(net: CNNNet, dataset: Dataset) -> float:
    net.eval()
    correct = total = 0
    for x, y in DataLoader(dataset, batch_size=512):
        correct += (net(x).argmax(1) == y).sum().item()
        total += len(y)
    return correct / total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["digits", "mnist5k", "mnist"], default="digits")
    parser.add_argument("--data_dir", type=Path)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    epochs = args.epochs or EPOCHS[args.dataset]
    out = args.out or ASSETS / f"{args.dataset}_cnn.pt"

    torch.manual_seed(args.seed)
    train, held_out, shape = load_splits(args.dataset, args.data_dir)
    config = {"image_shape": tuple(shape), "num_classes": 10, **CONFIGS[args.dataset]}
    net = CNNNet(**config, batch_norm=True, dropout=0.5)
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    loader = DataLoader(train, batch_size=args.batch_size, shuffle=True, generator=torch.Generator().manual_seed(args.seed))
    for epoch in range(epochs):
        net.train()
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        if (epoch + 1) % max(1, epochs // 5) == 0:
            print(f"epoch {epoch + 1}: " + ", ".join(f"{k} acc {accuracy(net, d):.4f}" for k, d in held_out.items()))
    meta = {
        "dataset": args.dataset,
        "trained_on": "train split" + {"digits": " (DigitsDataModule seed=0)", "mnist5k": " (MNIST5kDataModule seed=0)"}.get(args.dataset, ""),
        "epochs": epochs,
        "seed": args.seed,
        **{f"{k}_acc": accuracy(net, d) for k, d in held_out.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    torch.save({"config": {**config, "batch_norm": True, "dropout": 0.5}, "state_dict": state, "meta": meta}, out)
    print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB): {meta}")


if __name__ == "__main__":
    main()
