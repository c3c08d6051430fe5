"""Feature extractors for FID / KID / IS / precision-recall, behind one small registry.

- ``inception``: torch-fidelity's ``inception-v3-compat`` (the standard FID network, bit-compatible
  with the TensorFlow original); 2048-d pool features and 1008 logits. Weights are looked up at
  ``weights_path``, ``$GENLIGHT_INCEPTION_WEIGHTS``, then torch hub's checkpoint folder, and
  downloaded there when online.
- ``digits``: the penultimate layer (128-d) of a small CNN trained on the 8x8 digits TRAIN split by
  ``scripts/train_digits_extractor.py``; its weights ship in ``genlight/assets/digits_cnn.pt``.
- ``mnist5k``: the penultimate layer (64-d) of a narrower CNN trained on the ``mnist5k`` TRAIN split
  (4,000 real 28x28 MNIST digits, seed 0) by ``scripts/train_digits_extractor.py --dataset mnist5k``;
  its weights ship in ``genlight/assets/mnist5k_cnn.pt`` (591 KiB, sha256 ``5c233f31...``; accuracy
  0.978 on the mnist5k val split, 0.984 on its test split, 500 images each). ``mnist5k_pad2`` is the
  same network for the 32x32 images of ``mnist5k`` with ``pad: 2``: it crops the 2 pixels of
  background off each side first.
- ``mnist``: the same CNN as ``digits`` for 28x28 MNIST; no weights ship, produce them with
  ``python scripts/train_digits_extractor.py --dataset mnist --data_dir DIR`` (see that script).

Every extractor maps float images in [0, 1], ``(N, C, H, W)``, to ``(features, logits)`` in float32,
with autocast disabled, so metrics agree whatever precision training uses.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import ClassVar

import torch
from torch import Tensor, nn

from genlight.nn.classifier_nets import CNNNet
from genlight.registry import Registry

__all__ = [
    "EXTRACTORS",
    "DigitsExtractor",
    "FeatureExtractor",
    "InceptionExtractor",
    "MNIST5kExtractor",
    "MNIST5kPad2Extractor",
    "MNISTExtractor",
    "cache_root",
    "create_extractor",
    "default_inception_path",
    "extractor_for",
    "list_extractors",
    "register_extractor",
]

ASSETS = Path(__file__).resolve().parent.parent / "assets"
INCEPTION_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth"
)


def file_digest(path: str | Path, length: int = 12) -> str:
    """Short SHA-256 of a file: names the weights in cache keys and logged protocols."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:length]


def state_digest(state_dict: dict[str, Tensor], length: int = 12) -> str:
    """Short SHA-256 of a state dict's names and values (independent of how the file was written)."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        h.update(key.encode())
        h.update(state_dict[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:length]


class FeatureExtractor(nn.Module):
    """Base of the extractors: ``forward(x)`` -> ``(features (N, d), logits (N, k))``, float32, no grad.

    Subclasses set ``num_features``, ``weights_id`` (a digest of the weights, for cache keys) and
    ``image_shape`` (``None`` when any size works), and implement :meth:`extract`.
    """

    image_shape: ClassVar[tuple[int, int, int] | None] = None
    num_features: int
    weights_id: str

    @property
    def name(self) -> str:
        return EXTRACTORS.name_of(self) or type(self).__name__

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if self.image_shape is not None and tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"the {self.name!r} extractor takes images of shape {self.image_shape}, got {tuple(x.shape[1:])}; "
                f"use an extractor for this data (inception takes any size; `list_extractors()`)"
            )
        with torch.autocast(device_type=x.device.type, enabled=False):
            features, logits = self.extract(x.float())
        return features.float(), logits.float()


EXTRACTORS: Registry = Registry(
    "extractor", "genlight.metrics.extractors.FeatureExtractor", "genlight.extractors", "genlight.metrics.extractors"
)
register_extractor = EXTRACTORS.register
list_extractors = EXTRACTORS.list


def create_extractor(name: str, weights_path: str | None = None) -> FeatureExtractor:
    """Build a registered extractor in eval mode, e.g. ``create_extractor("digits")``; the global RNG
    is left as it was (the throw-away random initialisation does not advance it)."""
    with torch.random.fork_rng(devices=[]):
        return EXTRACTORS.create(name, weights_path=weights_path).eval()


# ---------------------------------------------------------------------------------------- Inception
def default_inception_path() -> Path:
    """Where torch-fidelity's download lands (and where to copy the file by hand when offline)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_URL.rsplit("/", 1)[-1]


def _resolve_inception_weights(weights_path: str | None, download: bool) -> Path:
    path = weights_path or os.environ.get("GENLIGHT_INCEPTION_WEIGHTS")
    if path:
        if not Path(path).is_file():
            raise FileNotFoundError(
                f"Inception-v3 weights not found at {path} (weights_path / $GENLIGHT_INCEPTION_WEIGHTS)"
            )
        return Path(path)
    target = default_inception_path()
    if target.is_file():
        return target
    error: Exception | None = None
    if download:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(INCEPTION_URL, str(target), progress=False)
            return target
        except Exception as err:  # noqa: BLE001 - offline: explain where the file goes
            error = err
    raise FileNotFoundError(
        f"Inception-v3 (torch-fidelity inception-v3-compat) weights are missing and could not be downloaded"
        f"{f' ({type(error).__name__}: {error})' if error else ''}. Download {INCEPTION_URL} on a machine with "
        f"network access and put the file at {target} (torch hub's checkpoint folder, $TORCH_HOME), or pass "
        f"weights_path=/path/to/weights-inception-2015-12-05-6726825d.pth (or set $GENLIGHT_INCEPTION_WEIGHTS)."
    )


@register_extractor("inception")
class InceptionExtractor(FeatureExtractor):
    """torch-fidelity's Inception-v3 (``inception-v3-compat``): 2048-d pool3 features, unbiased logits.

    Images are quantised to uint8 (``round(255 x)``), grey ones repeated to RGB, and resized to 299x299
    with TF1-compatible bilinear interpolation inside the network.
    """

    def __init__(self, weights_path: str | None = None, download: bool = True) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        path = _resolve_inception_weights(weights_path, download)
        self.net = FeatureExtractorInceptionV3(
            "inception-v3-compat", ["2048", "logits_unbiased"], feature_extractor_weights_path=str(path)
        )
        self.num_features = 2048
        self.weights_id = file_digest(path)

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        images = (x.clamp(0, 1) * 255).round().to(torch.uint8)
        return self.net(images)


# ---------------------------------------------------------------------------------------- domain CNNs
class CNNExtractor(FeatureExtractor):
    """Penultimate layer of a :class:`~genlight.nn.CNNNet` saved by ``scripts/train_digits_extractor.py``
    as ``{"config": {...CNNNet kwargs}, "state_dict": ...}``; logits from its head (for IS)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        blob = torch.load(path, map_location="cpu", weights_only=True)
        self.net = CNNNet(**blob["config"])
        self.net.load_state_dict(blob["state_dict"])
        self.net.eval().requires_grad_(False)
        self.num_features = self.net.num_features
        self.weights_id = state_digest(blob["state_dict"])

    def train(self, mode: bool = True) -> CNNExtractor:
        return super().train(False)  # batch norm and dropout always in inference mode

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = self.net.body(x)
        return features, self.net.head(features)


@register_extractor("digits")
class DigitsExtractor(CNNExtractor):
    """CNN trained on the 8x8 digits TRAIN split (``genlight/assets/digits_cnn.pt``, shipped)."""

    image_shape = (1, 8, 8)

    def __init__(self, weights_path: str | None = None) -> None:
        path = Path(weights_path) if weights_path else ASSETS / "digits_cnn.pt"
        if not path.is_file():
            raise FileNotFoundError(
                f"digits extractor weights not found at {path}; rebuild them with "
                f"`python scripts/train_digits_extractor.py` (writes genlight/assets/digits_cnn.pt)"
            )
        super().__init__(path)


#: SHA-256 of the shipped ``mnist5k_cnn.pt`` (the file as written by the training script)
MNIST5K_CNN_SHA256 = "5c233f3156aaeaa61df98a8ce96e9732ad5e16a3be9258403bad315a8b910bb5"


@register_extractor("mnist5k")
class MNIST5kExtractor(CNNExtractor):
    """CNN trained on the ``mnist5k`` TRAIN split only (4,000 MNIST training digits; ``genlight/assets/
    mnist5k_cnn.pt``, shipped, sha256 :data:`MNIST5K_CNN_SHA256`); accuracy 0.978 val, 0.984 test (the
    mnist5k splits, seed 0, 500 images each). 64-d features."""

    image_shape = (1, 28, 28)

    def __init__(self, weights_path: str | None = None) -> None:
        path = Path(weights_path) if weights_path else ASSETS / "mnist5k_cnn.pt"
        if not path.is_file():
            raise FileNotFoundError(
                f"mnist5k extractor weights not found at {path}; rebuild them with "
                f"`OMP_NUM_THREADS=1 python scripts/train_digits_extractor.py --dataset mnist5k` "
                f"(writes genlight/assets/mnist5k_cnn.pt)"
            )
        super().__init__(path)


@register_extractor("mnist5k_pad2")
class MNIST5kPad2Extractor(MNIST5kExtractor):
    """The ``mnist5k`` extractor for 1x32x32 images (``mnist5k`` with ``pad: 2``): the 2 pixels of each
    side are cropped off, then the 28x28 network reads the rest."""

    image_shape = (1, 32, 32)

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return super().extract(x[..., 2:-2, 2:-2])  # (N, 1, 32, 32) -> (N, 1, 28, 28)


def cache_root() -> Path:
    """genlight's cache folder: ``$GENLIGHT_CACHE_DIR``, else ``~/.cache/genlight``."""
    return Path(os.environ.get("GENLIGHT_CACHE_DIR", Path.home() / ".cache" / "genlight"))


def default_mnist_path() -> Path:
    return cache_root() / "extractors" / "mnist_cnn.pt"


@register_extractor("mnist")
class MNISTExtractor(CNNExtractor):
    """The same CNN for 28x28 MNIST; weights at ``weights_path`` or ``$GENLIGHT_CACHE_DIR/extractors/mnist_cnn.pt``."""

    image_shape = (1, 28, 28)

    def __init__(self, weights_path: str | None = None) -> None:
        path = Path(weights_path) if weights_path else default_mnist_path()
        if not path.is_file():
            raise FileNotFoundError(
                f"MNIST extractor weights not found at {path}. Train them (TRAIN split only) with "
                f"`python scripts/train_digits_extractor.py --dataset mnist --data_dir DIR --out {path}`, where DIR "
                f"holds the MNIST IDX files (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-*)."
            )
        super().__init__(path)


def extractor_for(image_shape: tuple[int, ...]) -> str | None:
    """The extractor that fits images of ``image_shape``: ``digits`` for 1x8x8; for 1x28x28 ``mnist``
    when its weights are in place, else ``mnist5k`` (shipped; a digit network, as the inception weights
    need a download); else ``inception`` (any size: 1x32x32 too, which ``mnist5k_pad2`` fits when the
    images are padded mnist5k digits, a choice left to the caller); ``None`` for 2-D points
    and other vectors, which are compared as they are."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3:
        return None
    if shape == DigitsExtractor.image_shape:
        return "digits"
    if shape == MNISTExtractor.image_shape:
        return "mnist" if default_mnist_path().is_file() else "mnist5k"
    return "inception"
