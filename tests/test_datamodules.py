"""Datamodules on tiny files written in the exact on-disk formats (see tests/fakedata.py)."""

from __future__ import annotations

import inspect
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DistributedSampler, RandomSampler, SequentialSampler

import genlight
from genlight.datamodules import (
    BinarizedMNISTDataModule,
    CelebADataModule,
    CIFAR10DataModule,
    DataFilesError,
    FashionMNISTDataModule,
    ImageFolderDataModule,
    MNISTDataModule,
    Toy2DDataModule,
    UnpairedFoldersDataModule,
)
from genlight.datamodules.toy2d import EIGHT_GAUSSIANS_STD, eight_gaussians_centers, log_prob, sample_toy2d
from tests.fakedata import (
    MNIST_FILES,
    write_amat,
    write_celeba,
    write_cifar10,
    write_image_folder,
    write_mnist,
    truncate,
)
from genlight.errors import ImageShapeError, IncompatibleDataError
from tests.helpers import build_model, tiny_trainer


def all_items(dataset) -> list:
    return [dataset[i] for i in range(len(dataset))]


def stack_x(dataset) -> torch.Tensor:
    return torch.stack([item[0] for item in all_items(dataset)])


# ---------------------------------------------------------------------------------------------- MNIST family
@pytest.mark.parametrize("cls,folder", [(MNISTDataModule, "MNIST"), (FashionMNISTDataModule, "FashionMNIST")])
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_family_loads_idx_files(tmp_path: Path, cls, folder: str, gz: bool) -> None:
    src = write_mnist(tmp_path, folder, n_train=40, n_test=10, gz=gz)
    dm = cls(data_dir=str(tmp_path), batch_size=8, val_fraction=0.25, seed=3)
    dm.prepare_data()
    dm.setup("fit")
    assert dm.image_shape == (1, 28, 28) and dm.num_classes == 10 and dm.num_levels == 256
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 10)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (8, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.long
    assert 0.0 <= x.min() and x.max() <= 1.0
    # the test split is the t10k file, pixel for pixel, labels included
    test_x = stack_x(dm.test_set)
    assert torch.equal((test_x * 255).round().to(torch.uint8).squeeze(1), src["test_x"])
    assert torch.equal(torch.stack([y for _, y in all_items(dm.test_set)]), src["test_y"].long())
    # train + val is a partition of the training file
    pool = torch.cat([stack_x(dm.train_set), stack_x(dm.val_set)])
    assert sorted(map(tuple, (pool * 255).round().flatten(1).tolist())) == sorted(
        map(tuple, src["train_x"].flatten(1).float().tolist())
    )
    assert set(x.unique().tolist()) >= {0.0, 1.0}  # 0 and 255 both map to the ends of [0, 1]


def test_mnist_fake_files_are_what_torchvision_reads(tmp_path: Path) -> None:
    """torchvision's own MNIST class reads the fake files to the same tensors: the format is the real one."""
    from torchvision.datasets import MNIST

    src = write_mnist(tmp_path, n_train=40, n_test=10)
    for train, key in ((True, "train"), (False, "test")):
        tv = MNIST(str(tmp_path), train=train)
        assert torch.equal(tv.data, src[f"{key}_x"]) and torch.equal(tv.targets, src[f"{key}_y"].long())
    dm = MNISTDataModule(data_dir=str(tmp_path))
    dm.setup()
    tv = MNIST(str(tmp_path), train=False)
    assert torch.equal((stack_x(dm.test_set) * 255).round().to(torch.uint8).squeeze(1), tv.data)


def test_mnist_split_is_deterministic_by_seed(tmp_path: Path) -> None:
    write_mnist(tmp_path)

    def val_x(seed: int) -> torch.Tensor:
        dm = MNISTDataModule(data_dir=str(tmp_path), val_fraction=0.25, seed=seed)
        dm.setup()
        return stack_x(dm.val_set)

    assert torch.equal(val_x(1), val_x(1))
    assert not torch.equal(val_x(1), val_x(2))


def test_mnist_subset_keeps_first_training_examples(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    dm = MNISTDataModule(data_dir=str(tmp_path), subset=5)
    dm.setup()
    assert len(dm.train_set) == 5


def test_mnist_missing_files_say_what_and_how(tmp_path: Path) -> None:
    dm = MNISTDataModule(data_dir=str(tmp_path))
    dm.prepare_data()  # download is off: nothing happens here
    with pytest.raises(DataFilesError) as info:
        dm.setup()
    msg = str(info.value)
    assert str(tmp_path / "MNIST" / "raw") in msg and "train-images-idx3-ubyte" in msg
    assert "--data.download true" in msg


def test_mnist_one_missing_file_is_named(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    (tmp_path / "MNIST" / "raw" / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataFilesError, match="t10k-labels-idx1-ubyte"):
        MNISTDataModule(data_dir=str(tmp_path)).setup()


@pytest.mark.parametrize("name", MNIST_FILES)
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_mnist_truncated_file_is_refused(tmp_path: Path, name: str, gz: bool) -> None:
    write_mnist(tmp_path, gz=gz)
    truncate(tmp_path / "MNIST" / "raw" / (name + (".gz" if gz else "")), keep=0.6)
    with pytest.raises(DataFilesError, match="truncated or corrupted"):
        MNISTDataModule(data_dir=str(tmp_path)).setup()


def test_mnist_wrong_magic_is_refused(tmp_path: Path) -> None:
    write_mnist(tmp_path)
    path = tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte"
    data = bytearray(path.read_bytes())
    data[3] = 1  # says 1-d
    path.write_bytes(bytes(data))
    with pytest.raises(DataFilesError, match="IDX header"):
        MNISTDataModule(data_dir=str(tmp_path)).setup()


def test_mnist_failed_download_explains(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(self) -> None:
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz: <urlopen error no network>")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    dm = MNISTDataModule(data_dir=str(tmp_path), download=True)
    with pytest.raises(DataFilesError) as info:
        dm.prepare_data()
    assert "download failed" in str(info.value) and "no network" in str(info.value)
    assert "train-images-idx3-ubyte" in str(info.value)


# ---------------------------------------------------------------------------------------------- binarised MNIST
def test_binarized_mnist_stochastic(tmp_path: Path) -> None:
    write_mnist(tmp_path, n_train=40, n_test=10)
    dm = BinarizedMNISTDataModule(data_dir=str(tmp_path), val_fraction=0.25, seed=0)
    assert dm.binarization == "stochastic" and dm.num_levels == 2 and dm.num_classes == 10
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 10)
    for split in (dm.train_set, dm.val_set, dm.test_set):
        assert set(stack_x(split).unique().tolist()) <= {0.0, 1.0}
    torch.manual_seed(0)
    first, second = stack_x(dm.train_set), stack_x(dm.train_set)
    assert not torch.equal(first, second)  # a fresh binarisation on every read (every epoch)
    assert torch.equal(stack_x(dm.val_set), stack_x(dm.val_set))  # evaluation data is fixed
    # same train/val partition of the MNIST training file as the grey-level mnist module
    grey = MNISTDataModule(data_dir=str(tmp_path), val_fraction=0.25, seed=0)
    grey.setup()
    assert [y for _, y in all_items(dm.val_set)] == [y for _, y in all_items(grey.val_set)]


def test_binarized_mnist_stochastic_mean_follows_intensity(tmp_path: Path) -> None:
    src = write_mnist(tmp_path, n_train=40, n_test=10)
    dm = BinarizedMNISTDataModule(data_dir=str(tmp_path), binarization="stochastic")
    dm.setup()
    torch.manual_seed(0)
    mean = torch.stack([stack_x(dm.test_set)]).mean()
    assert abs(mean.item() - src["test_x"].float().mean().item() / 255) < 0.02


def test_binarized_mnist_fixed_larochelle_split(tmp_path: Path) -> None:
    src = write_amat(tmp_path, sizes=(30, 10, 12))
    dm = BinarizedMNISTDataModule(data_dir=str(tmp_path))
    assert dm.binarization == "fixed" and dm.num_classes == 0
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 12)
    x, y = dm.test_set[3]
    assert x.shape == (1, 28, 28) and torch.equal(x.flatten().to(torch.uint8), src["test"][3]) and y.item() == -1
    assert torch.equal(stack_x(dm.val_set).flatten(1).to(torch.uint8), src["valid"])


def test_binarized_mnist_corrupted_amat(tmp_path: Path) -> None:
    write_amat(tmp_path)
    path = tmp_path / "BinarizedMNIST" / "binarized_mnist_valid.amat"
    truncate(path, keep=0.55)  # cuts a line in the middle
    with pytest.raises(DataFilesError, match="binarized_mnist_valid.amat is truncated or corrupted"):
        BinarizedMNISTDataModule(data_dir=str(tmp_path)).setup()


def test_binarized_mnist_fixed_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataFilesError, match="binarized_mnist_train.amat") as info:
        BinarizedMNISTDataModule(data_dir=str(tmp_path), binarization="fixed").setup()
    assert "--data.download true" in str(info.value)


# ---------------------------------------------------------------------------------------------- CIFAR-10
def test_cifar10_loads_pickled_batches(tmp_path: Path) -> None:
    src = write_cifar10(tmp_path, n_per_batch=8)
    # the md5 sums of the real files cannot match fake files: skipping them is deliberate here and
    # the md5 check itself is tested below
    dm = CIFAR10DataModule(data_dir=str(tmp_path), check_md5=False, batch_size=4, val_fraction=0.25, seed=1)
    dm.setup()
    assert dm.image_shape == (3, 32, 32) and dm.num_classes == 10 and dm.num_levels == 256
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (30, 10, 8)
    x, y = dm.test_set[2]
    expected = torch.from_numpy(src["test_batch"][2].reshape(3, 32, 32))  # channel-major rows
    assert torch.equal((x * 255).round().to(torch.uint8), expected) and y.item() == src["test_batch_labels"][2]
    xb, yb = next(iter(dm.train_dataloader()))
    assert xb.shape == (4, 3, 32, 32) and yb.dtype == torch.long and 0 <= xb.min() and xb.max() <= 1


def test_cifar10_reader_agrees_with_torchvision(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's CIFAR10 reads the fake pickles (its md5 check deliberately bypassed, as the sums
    of the real files cannot match) to the same pixels and labels as genlight's reader."""
    from torchvision.datasets import CIFAR10

    write_cifar10(tmp_path)
    monkeypatch.setattr(CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr("torchvision.datasets.cifar.check_integrity", lambda path, md5=None: True)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), check_md5=False)
    dm.setup()
    tv = CIFAR10(str(tmp_path), train=False)
    ours = (stack_x(dm.test_set) * 255).round().to(torch.uint8)
    assert torch.equal(ours, torch.from_numpy(tv.data).permute(0, 3, 1, 2))  # torchvision keeps HWC
    assert [int(y) for _, y in all_items(dm.test_set)] == list(tv.targets)


def test_cifar10_md5_check_refuses_other_files(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(DataFilesError, match="md5") as info:
        CIFAR10DataModule(data_dir=str(tmp_path)).setup()
    assert "check_md5 false" in str(info.value)


def test_cifar10_truncated_batch_is_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    truncate(tmp_path / "cifar-10-batches-py" / "data_batch_3", keep=0.7)
    with pytest.raises(DataFilesError, match="data_batch_3 is truncated or corrupted"):
        CIFAR10DataModule(data_dir=str(tmp_path), check_md5=False).setup()


def test_cifar10_missing_files(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(DataFilesError, match="test_batch") as info:
        CIFAR10DataModule(data_dir=str(tmp_path)).setup()
    assert "--data.download true" in str(info.value) and "cifar-10-batches-py" in str(info.value)


def test_cifar10_random_flip_on_training_split_only(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), check_md5=False, random_flip=True)
    plain = CIFAR10DataModule(data_dir=str(tmp_path), check_md5=False)
    dm.setup()
    plain.setup()
    torch.manual_seed(0)
    flipped = stack_x(dm.train_set)
    original = stack_x(plain.train_set)
    is_flip = (flipped == original.flip(-1)).flatten(1).all(1)
    is_same = (flipped == original).flatten(1).all(1)
    assert bool((is_flip | is_same).all()) and 0 < int(is_flip.sum()) < len(flipped)
    assert torch.equal(stack_x(dm.val_set), stack_x(plain.val_set))
    assert torch.equal(stack_x(dm.test_set), stack_x(plain.test_set))


# ---------------------------------------------------------------------------------------------- CelebA
def test_celeba_official_partition_crop_and_resize(tmp_path: Path) -> None:
    src = write_celeba(tmp_path, n=12, size=(18, 22))
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, crop_size=16, batch_size=3)
    assert dm.image_shape == (3, 8, 8) and dm.num_classes == 0 and dm.num_levels == 256
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (6, 3, 3)
    assert [p.name for p in dm.test_set.paths] == [n for n, s in zip(src["names"], src["partition"]) if s == 2]
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (3, 3, 8, 8) and 0 <= x.min() and x.max() <= 1 and (y == -1).all()


def test_celeba_image_size_is_per_instance() -> None:
    assert CelebADataModule(image_size=32).image_shape == (3, 32, 32)
    assert CelebADataModule().image_shape == (3, 64, 64)


def test_celeba_center_crop_takes_the_middle(tmp_path: Path) -> None:
    from PIL import Image

    write_celeba(tmp_path, n=4)
    path = tmp_path / "celeba" / "img_align_celeba" / "000001.png"
    # a 10x14 image: white 6x6 centre square on black; cropping 6 and not resizing keeps only white
    array = np.zeros((14, 10, 3), dtype=np.uint8)
    array[4:10, 2:8] = 255
    Image.fromarray(array).save(path)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("000001.png 0\n000002.jpg 1\n000003.jpg 2\n")
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=6, crop_size=6)
    dm.setup()
    assert torch.equal(dm.train_set[0][0], torch.ones(3, 6, 6))


def test_celeba_attribute_labels(tmp_path: Path) -> None:
    src = write_celeba(tmp_path, n=12)
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, attribute="Smiling")
    assert dm.num_classes == 2
    dm.setup()
    by_name = dict(zip(src["names"], src["smiling"]))
    assert [int(y) for _, y in all_items(dm.train_set)] == [by_name[p.name] for p in dm.train_set.paths]
    with pytest.raises(ValueError, match="no attribute 'Smilling'"):
        CelebADataModule(data_dir=str(tmp_path), attribute="Smilling").setup()


def test_celeba_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataFilesError) as info:
        CelebADataModule(data_dir=str(tmp_path)).setup()
    assert "img_align_celeba" in str(info.value) and "list_eval_partition.txt" in str(info.value)
    assert "--data.download true" in str(info.value)
    write_celeba(tmp_path, n=8)
    (tmp_path / "celeba" / "img_align_celeba" / "000005.jpg").unlink()
    with pytest.raises(DataFilesError, match="1 of the 8 images .* are missing .*000005.jpg"):
        CelebADataModule(data_dir=str(tmp_path)).setup()


def test_celeba_truncated_image_and_partition(tmp_path: Path) -> None:
    write_celeba(tmp_path, n=8)
    truncate(tmp_path / "celeba" / "img_align_celeba" / "000002.jpg", keep=0.3)
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8)
    dm.setup()  # images are read lazily, so the bad one is found when it is read
    with pytest.raises(DataFilesError, match="000002.jpg is truncated or corrupted"):
        all_items(dm.train_set)
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.j")
    with pytest.raises(DataFilesError, match="list_eval_partition.txt is truncated or corrupted"):
        CelebADataModule(data_dir=str(tmp_path)).setup()


def test_celeba_random_flip(tmp_path: Path) -> None:
    write_celeba(tmp_path, n=12)
    dm = CelebADataModule(data_dir=str(tmp_path), image_size=8, random_flip=True)
    dm.setup()
    torch.manual_seed(0)
    base = stack_x(dm.train_set.dataset)
    seen = [stack_x(dm.train_set) for _ in range(4)]
    assert all(bool(((s == base) | (s == base.flip(-1))).flatten(1).all(1).all()) for s in seen)
    assert any(not torch.equal(s, base) for s in seen)


# ---------------------------------------------------------------------------------------------- folders
def test_image_folder_with_classes(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "pets", classes=["cat", "dog"], per_class=10)
    dm = ImageFolderDataModule(data_dir=str(tmp_path / "pets"), image_size=8, test_fraction=0.1, val_fraction=0.2)
    assert dm.num_classes == 2 and dm.classes == ["cat", "dog"] and dm.image_shape == (3, 8, 8)
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (14, 4, 2)
    labels = [int(y) for _, y in all_items(dm.train_set)] + [int(y) for _, y in all_items(dm.val_set)]
    assert set(labels) <= {0, 1}
    x, _ = dm.train_set[0]
    assert x.shape == (3, 8, 8) and 0 <= x.min() and x.max() <= 1


def test_image_folder_flat_grey_and_jpeg(tmp_path: Path) -> None:
    write_image_folder(tmp_path, classes=None, per_class=12, suffix=".jpg")
    dm = ImageFolderDataModule(data_dir=str(tmp_path), image_size=4, channels=1, seed=5)
    assert dm.num_classes == 0 and dm.image_shape == (1, 4, 4)
    dm.setup()
    assert all(int(y) == -1 for _, y in all_items(dm.train_set))
    assert stack_x(dm.train_set).shape[1:] == (1, 4, 4)


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFilesError, match="does not exist"):
        ImageFolderDataModule(data_dir=str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images")
    with pytest.raises(DataFilesError, match="no images"):
        ImageFolderDataModule(data_dir=str(tmp_path / "empty"))
    write_image_folder(tmp_path / "bad", classes=None, per_class=10)
    (tmp_path / "bad" / "img_003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    dm = ImageFolderDataModule(data_dir=str(tmp_path / "bad"), image_size=4)
    with pytest.raises(DataFilesError, match=r"img_003.png is not a readable image .*--data.skip_bad true"):
        dm.setup()  # found at setup, every header checked, not when an epoch reaches it
    dm = ImageFolderDataModule(data_dir=str(tmp_path / "bad"), image_size=4, skip_bad=True)
    dm.setup()
    assert sum(len(part) for part in (dm.train_set, dm.val_set, dm.test_set)) == 9
    (tmp_path / "bad" / "img_004.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")  # broken after setup
    with pytest.raises(DataFilesError, match="img_004.png is truncated or corrupted"):
        for split in (dm.train_set, dm.val_set, dm.test_set):
            all_items(split)


def test_unpaired_folders(tmp_path: Path) -> None:
    write_image_folder(tmp_path / "A", classes=None, per_class=10, size=(12, 12))
    write_image_folder(tmp_path / "B", classes=None, per_class=20, size=(16, 10), suffix=".jpg")
    dm = UnpairedFoldersDataModule(
        dir_a=str(tmp_path / "A"), dir_b=str(tmp_path / "B"), image_size=8, batch_size=2, val_fraction=0.2
    )
    assert dm.image_shape == (3, 8, 8) and dm.num_classes == 0
    dm.setup()
    x_a, x_b = next(iter(dm.train_dataloader()))
    assert x_a.shape == x_b.shape == (2, 3, 8, 8)
    # each domain is split on its own: no image in two splits
    for domain in ("a", "b"):
        names = [{path.name for path in _paths(getattr(part, domain))} for part in (dm.train_set, dm.val_set, dm.test_set)]
        assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert len(dm.train_set) == max(len(dm.train_set.a), len(dm.train_set.b))
    with_test = UnpairedFoldersDataModule(
        dir_a=str(tmp_path / "A"), dir_b=str(tmp_path / "B"),
        test_dir_a=str(tmp_path / "A"), test_dir_b=str(tmp_path / "B"), image_size=8,
    )
    with_test.setup()
    assert len(with_test.test_set) == 20


def _paths(dataset) -> list[Path]:
    """The image files behind a (nested) Subset of an ImageFileDataset."""
    indices = list(range(len(dataset)))
    while hasattr(dataset, "indices"):
        indices = [dataset.indices[i] for i in indices]
        dataset = dataset.dataset
    return [dataset.paths[i] for i in indices]


# ---------------------------------------------------------------------------------------------- toy2d
def test_eight_gaussians_sample_statistics() -> None:
    x = sample_toy2d("eight_gaussians", 40_000, torch.Generator().manual_seed(0)).double()
    centers = eight_gaussians_centers()
    k = torch.cdist(x, centers).argmin(1)
    weights = torch.bincount(k, minlength=8).double() / len(x)
    assert torch.allclose(weights, torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.01)
    for j in range(8):
        part = x[k == j]
        assert torch.allclose(part.mean(0), centers[j], atol=0.02)
        assert torch.allclose(part.std(0), torch.full((2,), EIGHT_GAUSSIANS_STD, dtype=torch.float64), rtol=0.05)


def test_checkerboard_support_and_uniformity() -> None:
    x = sample_toy2d("checkerboard", 40_000, torch.Generator().manual_seed(0))
    assert torch.isfinite(log_prob("checkerboard", x)).all()  # every sample on the support
    cells = torch.floor((x.double() + 4) / 2).long()
    assert ((cells.sum(1) % 2) == 0).all() and (cells >= 0).all() and (cells <= 3).all()
    counts = torch.bincount(cells[:, 0] * 4 + cells[:, 1], minlength=16).double() / len(x)
    black = torch.tensor([(i + j) % 2 == 0 for i in range(4) for j in range(4)])
    assert torch.allclose(counts[black], torch.full((8,), 1 / 8, dtype=torch.float64), atol=0.01)
    assert (counts[~black] == 0).all()
    off = torch.tensor([[-3.0, -1.0], [0.5, 0.5 + 2.0], [4.5, 0.0]])  # a white cell, a white cell, outside
    assert torch.isinf(log_prob("checkerboard", off)).all()


@pytest.mark.parametrize("name", ["eight_gaussians", "checkerboard"])
def test_toy_log_prob_integrates_to_one(name: str) -> None:
    n, lim = 600, 6.0  # cells of 0.02 so the checkerboard's cell edges fall on cell edges
    h = 2 * lim / n
    grid = torch.linspace(-lim + h / 2, lim - h / 2, n, dtype=torch.float64)  # cell midpoints
    xx, yy = torch.meshgrid(grid, grid, indexing="ij")
    points = torch.stack([xx.flatten(), yy.flatten()], 1)
    total = log_prob(name, points).exp().sum().item() * h * h
    assert abs(total - 1.0) < 2e-3


def test_eight_gaussians_log_prob_matches_monte_carlo_entropy() -> None:
    """E[-log p(x)] over samples equals the entropy of one well-separated Gaussian plus log 8."""
    x = sample_toy2d("eight_gaussians", 20_000, torch.Generator().manual_seed(1))
    nll = -log_prob("eight_gaussians", x).mean().item()
    entropy = math.log(2 * math.pi * math.e * EIGHT_GAUSSIANS_STD**2) + math.log(8)
    assert abs(nll - entropy) < 0.03


def test_two_moons_and_pinwheel_statistics() -> None:
    g = torch.Generator().manual_seed(0)
    moons = sample_toy2d("two_moons", 20_000, g).double()
    assert torch.allclose(moons.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.05)  # centred
    upper = moons[:, 1] > moons[:, 1].median()
    assert abs(upper.double().mean().item() - 0.5) < 0.01
    pin = sample_toy2d("pinwheel", 20_000, g).double()
    assert torch.allclose(pin.mean(0), torch.zeros(2, dtype=torch.float64), atol=0.05)  # 5-fold symmetric
    angles = torch.atan2(pin[:, 1], pin[:, 0])
    hist = torch.histc(angles, bins=5, min=-math.pi, max=math.pi) / len(pin)
    assert hist.min() > 0.15  # mass in every fifth of the circle
    with pytest.raises(NotImplementedError, match="no closed-form density"):
        log_prob("pinwheel", pin[:3])


def test_toy2d_datamodule() -> None:
    dm = Toy2DDataModule(dataset="checkerboard", num_samples=1000, batch_size=50, seed=4)
    assert dm.image_shape == (2,) and dm.num_levels == 0 and dm.num_classes == 0 and dm.has_log_prob
    dm.setup()
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (810, 90, 100)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 2) and (y == -1).all() and torch.isfinite(dm.log_prob(x)).all()
    again = Toy2DDataModule(dataset="checkerboard", num_samples=1000, seed=4)
    again.setup()
    assert torch.equal(stack_x(again.test_set), stack_x(dm.test_set))
    assert not Toy2DDataModule(dataset="two_moons").has_log_prob


# ---------------------------------------------------------------------------------------------- every model x data
def _image_datamodules(root: Path) -> dict[str, object]:
    """Builders of every image datamodule on tiny fake files under ``root`` (written once)."""
    write_mnist(root, "MNIST", n_train=40, n_test=10)
    write_mnist(root, "FashionMNIST", n_train=40, n_test=10, gz=True)
    write_cifar10(root, n_per_batch=8)
    write_celeba(root, n=24)
    write_image_folder(root / "folder", per_class=10)
    write_image_folder(root / "A", classes=None, per_class=16)
    write_image_folder(root / "B", classes=None, per_class=12)
    d, common = str(root), {"batch_size": 4}
    return {
        "digits": lambda: genlight.create_datamodule("digits", **common),
        "digit_captions": lambda: genlight.create_datamodule("digit_captions", **common),
        "digit_outliers": lambda: genlight.create_datamodule("digit_outliers", held_out_class=3, **common),
        "mnist": lambda: MNISTDataModule(data_dir=d, **common),
        "fashion_mnist": lambda: FashionMNISTDataModule(data_dir=d, **common),
        "fashion_outliers": lambda: genlight.create_datamodule("fashion_outliers", data_dir=d, **common),
        "binarized_mnist": lambda: BinarizedMNISTDataModule(data_dir=d, **common),
        "cifar10": lambda: CIFAR10DataModule(data_dir=d, check_md5=False, random_flip=True, **common),
        "celeba": lambda: CelebADataModule(data_dir=d, image_size=16, crop_size=16, **common),
        "image_folder": lambda: ImageFolderDataModule(data_dir=f"{d}/folder", image_size=12, **common),
        "unpaired_folders": lambda: UnpairedFoldersDataModule(
            dir_a=f"{d}/A", dir_b=f"{d}/B", image_size=8, val_fraction=0.25, test_fraction=0.25, **common
        ),
        "toy2d": lambda: Toy2DDataModule(num_samples=200, **common),
        "digit_domains": lambda: genlight.create_datamodule("digit_domains", **common),
    }


DATA_NAMES = ["digits", "digit_captions", "digit_domains", "digit_outliers", "mnist", "fashion_mnist", "fashion_outliers",
              "binarized_mnist", "cifar10", "celeba", "image_folder", "unpaired_folders", "toy2d"]


#: datamodules whose batches have the form of one in DATA_NAMES (shape, levels, classes, kind), so the
#: every-model test on that one covers them; their own tests are named
SAME_BATCHES = {"mnist5k": ("mnist", "tests/test_mnist5k.py")}


def test_every_registered_datamodule_is_covered() -> None:
    covered = set(DATA_NAMES) | set(SAME_BATCHES)
    assert set(genlight.list_datamodules()) <= covered, "add the new datamodule to DATA_NAMES"
    for name, (like, _) in SAME_BATCHES.items():
        ours, theirs = genlight.DATAMODULES.get(name), genlight.DATAMODULES.get(like)
        assert (ours.image_shape, ours.num_levels, ours.num_classes, ours.batch_kind) == (
            theirs.image_shape, theirs.num_levels, theirs.num_classes, theirs.batch_kind
        ), name


@pytest.fixture(scope="module")
def fake_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    return _image_datamodules(tmp_path_factory.mktemp("fake_data"))


@pytest.mark.parametrize("data_name", DATA_NAMES)
@pytest.mark.parametrize("model_name", genlight.list_models())
def test_every_model_trains_on_every_datamodule_or_refuses(model_name: str, data_name: str, fake_data) -> None:
    torch.manual_seed(0)
    dm = fake_data[data_name]()
    own_data = genlight.get_model_class(model_name).smoke_data == data_name
    try:
        model = build_model(model_name, dm)
    except ImageShapeError as err:  # a family may refuse a shape, but must say which shape it got
        shape = tuple(dm.image_shape)
        assert str(shape) in str(err) or (len(shape) == 3 and f"{shape[1]}x{shape[2]}" in str(err)), str(err)
        assert not own_data, "every family must take the shape of its own smoke data"
        return
    except IncompatibleDataError as err:  # ... or data without the labels it needs
        assert dm.num_classes < 2 and "labelled" in str(err), str(err)
        return
    trainer = tiny_trainer()
    try:
        trainer.fit(model, datamodule=dm)
    except IncompatibleDataError as err:  # refused at setup, before any step: batches of another kind
        assert dm.batch_kind in str(err) and type(dm).__name__ in str(err), str(err)
        assert trainer.global_step == 0 and not own_data
        return
    assert trainer.state.finished and trainer.global_step >= 1  # two optimizers step twice per batch
    assert any(k.startswith("train/") for k in trainer.callback_metrics)
    for key, value in trainer.callback_metrics.items():
        assert torch.isfinite(value), f"{model_name} on {data_name}: {key} = {value}"


@pytest.mark.parametrize("model_name", genlight.list_models())
def test_image_families_refuse_toy2d_with_a_clear_message(model_name: str) -> None:
    cls = genlight.get_model_class(model_name)
    if "image_shape" not in inspect.signature(cls.__init__).parameters:
        pytest.skip(f"{model_name} takes no image_shape")
    default = inspect.signature(cls.__init__).parameters["image_shape"].default
    if len(tuple(default)) != 3:
        pytest.skip(f"{model_name} is not an image family")
    if "points" in (cls.batch_kinds or ()):
        pytest.skip(f"{model_name} declares batch_kinds with points: it models 2-D points too")
    with pytest.raises(ValueError, match=r"image_shape=\(2,\)"):
        build_model(model_name, Toy2DDataModule(num_samples=100))


# ---------------------------------------------------------------------------------------------- DDP
@pytest.mark.parametrize("data_name", ["mnist", "celeba", "unpaired_folders", "toy2d"])
def test_loaders_take_lightnings_distributed_sampler(data_name: str, fake_data) -> None:
    """Lightning swaps our plain samplers for a DistributedSampler under DDP; two ranks then see
    disjoint halves of the training set."""
    from lightning.pytorch.utilities.data import _update_dataloader

    dm = fake_data[data_name]()
    dm.setup()
    loader = dm.train_dataloader()
    assert isinstance(loader.sampler, RandomSampler)
    assert isinstance(dm.val_dataloader().sampler, SequentialSampler)
    seen = []
    for rank in (0, 1):
        sampler = DistributedSampler(loader.dataset, num_replicas=2, rank=rank, shuffle=True, seed=0)
        seen.append(list(iter(sampler)))
        ranked = _update_dataloader(loader, sampler)
        assert ranked.sampler is sampler and ranked.batch_size == dm.batch_size
        sizes = [batch[0].shape[0] for batch in ranked]
        assert sizes and all(size == dm.batch_size for size in sizes)  # drop_last kept for training
    n = len(loader.dataset)
    assert set(seen[0]) | set(seen[1]) == set(range(n)) and (n % 2 or not set(seen[0]) & set(seen[1]))


# ---------------------------------------------------------------------------------------------- CLI
CLI_QUIET = [
    "--trainer.logger", "false", "--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false",
    "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu", "--samples.every_n_epochs", "0",
    "--seed_everything", "0",
]


def test_cli_trains_on_mnist_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from genlight.cli import main

    write_mnist(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    main(args=[
        "fit", "--model", "vae", "--data", "mnist", "--data.data_dir", str(tmp_path / "data"),
        "--data.batch_size", "8", "--model.latent_dim", "4", "--model.hidden_channels", "8",
        "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1",
        "--trainer.default_root_dir", str(tmp_path / "run"), *CLI_QUIET,
    ])
    config = (tmp_path / "run" / "config.yaml").read_text()
    assert "MNISTDataModule" in config and f"data_dir: {tmp_path / 'data'}" in config


def test_cli_links_shapes_from_the_datamodule(tmp_path: Path) -> None:
    from genlight.cli import GenlightCLI, rewrite_registry_names

    write_celeba(tmp_path, n=12)
    args = ["--model", "vae", "--data", "celeba", "--data.data_dir", str(tmp_path), "--data.image_size", "16",
            "--model.latent_dim", "4", "--trainer.default_root_dir", str(tmp_path / "run"), *CLI_QUIET]
    cli = GenlightCLI(args=rewrite_registry_names(args), run=False)
    assert tuple(cli.model.hparams.image_shape) == (3, 16, 16) and cli.model.hparams.num_levels == 256


@pytest.mark.parametrize(
    "data_args,expected",
    [
        (["--data", "mnist"], "train-images-idx3-ubyte"),
        (["--data", "cifar10"], "data_batch_1"),
        (["--data", "celeba"], "list_eval_partition.txt"),
        (["--data", "binarized_mnist", "--data.binarization", "fixed"], "binarized_mnist_train.amat"),
    ],
)
def test_cli_missing_files_exit_nonzero_with_the_expected_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, data_args: list[str], expected: str
) -> None:
    from genlight.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(args=["fit", "--model", "vae", *data_args, "--data.data_dir", str(tmp_path / "empty"),
                   "--trainer.max_steps", "1", "--trainer.default_root_dir", str(tmp_path / "run"), *CLI_QUIET])
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("genlight: error:") and expected in err and "--data.download true" in err
    assert str(tmp_path / "empty") in err


def test_cli_missing_image_folder_exits_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from genlight.cli import main

    with pytest.raises(SystemExit) as info:
        main(args=["fit", "--model", "ae", "--data", "image_folder", "--data.data_dir", str(tmp_path / "none"),
                   "--trainer.default_root_dir", str(tmp_path / "run"), *CLI_QUIET])
    assert info.value.code not in (0, None)
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_subprocess_prints_the_message(tmp_path: Path) -> None:
    """The console entry point, as a user runs it (slow: a fresh interpreter imports torch)."""
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "genlight.cli", "fit", "--model", "vae", "--data", "cifar10",
         "--data.data_dir", str(tmp_path), *CLI_QUIET],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    assert proc.returncode == 1 and "cifar-10-batches-py" in proc.stderr and "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------------------------- examples
EXAMPLES = sorted(p for p in (Path(__file__).parents[1] / "examples").glob("*/*.yaml") if p.parent.name != "loggers")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_example_configs_name_real_arguments(path: Path) -> None:
    import importlib

    import yaml

    config = yaml.safe_load(path.read_text())
    assert "data" in config, f"{path} has no data section"
    for key in ("model", "data"):
        if key not in config:
            continue
        module, _, name = config[key]["class_path"].rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        registry = genlight.MODELS if key == "model" else genlight.DATAMODULES
        assert registry.name_of(cls) is not None, f"{cls} is not registered"
        params = set()
        for klass in cls.__mro__:  # the class's arguments and, through **kwargs, its parents'
            init = inspect.signature(vars(klass)["__init__"]).parameters if "__init__" in vars(klass) else None
            if init is None:
                continue
            params |= set(init)
            if not any(p.kind is p.VAR_KEYWORD for p in init.values()):
                break
        unknown = set(config[key].get("init_args", {})) - params
        assert not unknown, f"{path}: {key} has no arguments {unknown}"
        linked = {"image_shape", "num_classes", "num_levels"} & set(config[key].get("init_args", {}))
        assert not linked, f"{path}: {linked} are linked from the datamodule, do not write them"


@pytest.mark.parametrize("example", ["mnist/vae.yaml", "cifar10/vae.yaml", "celeba/vae.yaml", "image_folder/ae.yaml"])
def test_example_configs_instantiate(example: str, tmp_path: Path) -> None:
    from genlight.cli import GenlightCLI

    write_image_folder(tmp_path / "images", per_class=2)
    args = ["--config", str(Path(__file__).parents[1] / "examples" / example),
            "--trainer.default_root_dir", str(tmp_path / "run"), "--trainer.logger", "false"]
    if example.startswith("image_folder"):
        args += ["--data.data_dir", str(tmp_path / "images")]
    cli = GenlightCLI(args=args, run=False)
    assert tuple(cli.model.hparams.image_shape) == tuple(cli.datamodule.image_shape)


def test_binarized_mnist_refuses_an_unknown_binarization_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="binarization must be one of .auto., .fixed., .stochastic., got .dynamic."):
        BinarizedMNISTDataModule(data_dir=str(tmp_path), binarization="dynamic")  # type: ignore[arg-type]
