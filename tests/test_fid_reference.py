"""FID reference statistics come from un-augmented data: one key, one cache file and one pass over the
real images, however many evaluations, runs or ranks, and the global RNG is left alone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from genlight import create_model
from genlight.callbacks import FIDCallback
from genlight.datamodules.binarized_mnist import BinarizedMNISTDataModule
from genlight.datamodules.cifar10 import CIFAR10DataModule
from genlight.metrics.extractors import FeatureExtractor
from tests.fakedata import write_cifar10, write_mnist
from tests.helpers import cpu_trainer


class PoolExtractor(FeatureExtractor):
    """A cheap stand-in extractor for 3x32x32 tests: 4x4 average-pooled pixels (48 features)."""

    num_features = 48
    weights_id = "pool4"

    def extract(self, x: Tensor) -> tuple[Tensor, Tensor]:
        features = F.adaptive_avg_pool2d(x, 4).flatten(1)
        return features, features[:, :10]


def _callback(cache_dir) -> FIDCallback:
    callback = FIDCallback(metrics=["fid"], num_samples=16, batch_size=8, every_n_epochs=1, cache_dir=str(cache_dir),
                            max_time_fraction=None)  # fmt: skip
    callback._extractor = PoolExtractor()
    return callback


def test_random_flip_does_not_change_the_reference(tmp_path):
    write_cifar10(tmp_path, n_per_batch=8)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), check_md5=False, random_flip=True, batch_size=8)
    callback = _callback(tmp_path / "cache")
    keys: list[str] = []
    cache_key = callback.cache_key
    callback.cache_key = lambda *args: keys.append(cache_key(*args)) or keys[-1]  # type: ignore[method-assign]
    model = create_model("vae", image_shape=(3, 32, 32), num_levels=256, latent_dim=4, hidden_channels=8)
    trainer = cpu_trainer(str(tmp_path), max_epochs=5, limit_train_batches=1, limit_val_batches=1, callbacks=[callback])
    trainer.fit(model, datamodule=dm)

    assert len(keys) == 5 and len(set(keys)) == 1, keys  # five evaluations, one key
    assert callback.reference_passes == 1  # one pass over the reference data
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 1  # one cache file
    assert len(callback.last_results) == 1

    for cache in ("cache", "fresh_cache"):  # read from the cache, then computed afresh: the RNG is untouched
        again = _callback(tmp_path / cache)
        state = torch.get_rng_state()
        for _ in range(3):
            again.reference(trainer, again.extractor(torch.device("cpu")))
        assert torch.equal(state, torch.get_rng_state())
        assert again.reference_passes == (0 if cache == "cache" else 1)
        assert again._reference_key == keys[0]


def test_stochastic_binarisation_has_a_fixed_reference(tmp_path):
    write_mnist(tmp_path, "MNIST", n_train=40, n_test=10)
    dm = BinarizedMNISTDataModule(data_dir=str(tmp_path), binarization="stochastic", batch_size=8)
    dm.setup("fit")
    first = torch.stack([dm.reference_dataset("train")[i][0] for i in range(len(dm.train_set))])
    state = torch.get_rng_state()
    second = torch.stack([dm.reference_dataset("train")[i][0] for i in range(len(dm.train_set))])
    assert torch.equal(state, torch.get_rng_state()) and torch.equal(first, second)
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    draws = torch.stack([dm.train_set[0][0] for _ in range(20)])  # training reads stay stochastic
    assert not all(torch.equal(draws[0], d) for d in draws[1:])


def test_node_local_cache_is_filled_by_each_nodes_first_process(tmp_path):
    """On a second node whose cache folder is its own (``~/.cache`` on most clusters), global rank 0's
    file is not there after the barrier: the node's first process computes and writes its copy,
    instead of every process there failing to read a file that does not exist."""
    from types import SimpleNamespace

    from genlight.datamodules.digits import DigitsDataModule

    dm = DigitsDataModule(batch_size=64)
    dm.setup("fit")
    barriers: list[str] = []
    node1 = SimpleNamespace(datamodule=dm, is_global_zero=False, local_rank=0, num_nodes=2, loggers=[],
                            strategy=SimpleNamespace(barrier=barriers.append))  # fmt: skip
    callback = FIDCallback(metrics=["fid"], num_samples=16, batch_size=64, every_n_epochs=1,
                           cache_dir=str(tmp_path / "node1"), max_reference=128)  # fmt: skip
    reference = callback.reference(node1, callback.extractor(torch.device("cpu")))
    assert callback.reference_passes == 1 and reference["num_images"] == 128
    assert [p.suffix for p in (tmp_path / "node1").iterdir()] == [".pt"]  # no temporary file left
    assert barriers == ["genlight_fid_reference", "genlight_fid_reference_node"]

    other = FIDCallback(metrics=["fid"], num_samples=16, batch_size=64, every_n_epochs=1,
                        cache_dir=str(tmp_path / "node1"), max_reference=128)  # fmt: skip
    second = SimpleNamespace(**{**vars(node1), "local_rank": 1})  # a later process of that node reads it
    other.reference(second, other.extractor(torch.device("cpu")))
    assert other.reference_passes == 0
