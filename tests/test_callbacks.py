"""FIDCallback (cache, DDP, eval mode, checkpoint), Reconstructions and LatentInterpolation."""

from __future__ import annotations

import logging

import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from tests.helpers import cpu_trainer, digits_datamodule, tiny_vae, validation_ddp
from PIL import Image

from genlight import create_model
from genlight.callbacks import FIDCallback, LatentInterpolation, Reconstructions
from genlight.callbacks.interpolation import lerp, slerp


def fid_callback(cache_dir, **kwargs) -> FIDCallback:
    defaults = dict(
        metrics=["fid", "kid", "is"], num_samples=200, batch_size=50, every_n_epochs=1,
        cache_dir=str(cache_dir), kid_subsets=5, kid_subset_size=100,
    )
    return FIDCallback(**{**defaults, **kwargs})


class CountCalls:
    """Counts the images pushed through the callback's extractor (real and generated)."""

    def __init__(self, callback: FIDCallback) -> None:
        self.images = 0
        extractor = callback.extractor(torch.device("cpu"))
        extractor.register_forward_hook(lambda mod, inp, out: setattr(self, "images", self.images + len(inp[0])))


def test_reference_statistics_are_cached_across_epochs_and_runs(tmp_path):
    dm = digits_datamodule()
    first = fid_callback(tmp_path / "cache")
    calls = CountCalls(first)
    cpu_trainer(str(tmp_path), max_epochs=2, limit_train_batches=2, limit_val_batches=1, callbacks=[first]).fit(
        tiny_vae(), dm
    )
    n_train = len(dm.train_set)
    assert first.reference_passes == 1  # computed once, reused by the second epoch
    assert calls.images == n_train + 2 * 200
    assert len(list((tmp_path / "cache").glob("digits_train_*.pt"))) == 1

    second = fid_callback(tmp_path / "cache")  # a new run: the disk cache must be hit
    calls = CountCalls(second)
    cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=2, limit_val_batches=1, callbacks=[second]).fit(
        tiny_vae(), digits_datamodule()
    )
    assert second.reference_passes == 0
    assert calls.images == 200  # the generated samples only: no pass over the real data
    assert "val/fid_digits" in second.last_results and "DigitsDataModule train split" in second.protocol

    third = fid_callback(tmp_path / "cache", reference_split="test")  # another split: another entry
    cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=1, callbacks=[third]).fit(
        tiny_vae(), digits_datamodule()
    )
    assert third.reference_passes == 1
    assert len(list((tmp_path / "cache").glob("digits_*.pt"))) == 2


def test_evaluation_is_seeded_restores_train_mode_and_stays_out_of_the_checkpoint(tmp_path):
    model, dm = tiny_vae(), digits_datamodule()
    callback = fid_callback(tmp_path / "cache", every_n_epochs=0)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=1, callbacks=[callback])
    trainer.fit(model, dm)
    model.train()
    rng_before = torch.get_rng_state()
    first = callback.evaluate(trainer, model)
    assert model.training  # train mode restored
    assert torch.equal(rng_before, torch.get_rng_state())  # the global RNG is untouched
    assert callback.evaluate(trainer, model) == first  # fixed seed: the same samples, the same FID
    assert first["val/fid_digits"] > 0
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    state = torch.load(tmp_path / "model.ckpt", weights_only=False)["state_dict"]
    assert set(state) == set(model.state_dict())  # no feature-extractor weights in the model checkpoint


def test_fid_falls_as_a_vae_trains(tmp_path):
    callback = fid_callback(tmp_path / "cache", metrics=["fid"], num_samples=300, batch_size=100, every_n_epochs=3)
    trainer = cpu_trainer(str(tmp_path), max_epochs=3, limit_val_batches=1, callbacks=[callback])
    model = tiny_vae()
    trainer.fit(model, digits_datamodule())
    trained = callback.last_results["val/fid_digits"]
    fresh = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=0, limit_val_batches=1, callbacks=[])
    fresh.validate(tiny_vae(seed=1), digits_datamodule(), verbose=False)
    assert trained < callback.evaluate(fresh, tiny_vae(seed=1))["val/fid_digits"]


def _validate_fid(devices: int, cache_dir, root) -> dict[str, float]:
    callback = fid_callback(cache_dir, metrics=["fid", "kid"])
    strategy = validation_ddp() if devices > 1 else "auto"
    trainer = cpu_trainer(str(root), devices=devices, strategy=strategy, limit_val_batches=1, callbacks=[callback])
    (results,) = trainer.validate(tiny_vae(), digits_datamodule(), verbose=False)
    return {k: v for k, v in results.items() if "digits" in k}


def test_ddp_gives_the_fid_of_one_process(tmp_path):
    one = _validate_fid(1, tmp_path / "cache1", tmp_path)
    two = _validate_fid(2, tmp_path / "cache2", tmp_path)  # its own cache: rank 0 writes, rank 1 waits
    assert set(one) == {"val/fid_digits", "val/kid_digits", "val/kid_std_digits"} == set(two)
    for key in one:
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-5), key


# ------------------------------------------------------------------------------------ image callbacks
def test_reconstruction_and_interpolation_grids_are_written(tmp_path):
    recon = Reconstructions(num_images=8)
    interp = LatentInterpolation(num_pairs=3, num_steps=5, traverse_dims=2)
    trainer = cpu_trainer(
        str(tmp_path), max_epochs=1, limit_train_batches=2, limit_val_batches=1,
        logger=CSVLogger(str(tmp_path)), callbacks=[recon, interp],
    )
    trainer.fit(tiny_vae(), digits_datamodule())
    assert recon.last_path.is_file() and interp.last_paths["traversals"].is_file()
    # 2 rows (inputs, reconstructions) x 8 columns; 3 pairs x 5 steps; 2 dims x 5 steps; 8x8 digits
    # enlarged to cells of at least 32 px (and grids at least 256 px wide), 1-px separators
    sizes = {
        "recon": Image.open(recon.last_path).size,
        "interp": Image.open(interp.last_paths["interpolations"]).size,
        "trav": Image.open(interp.last_paths["traversals"]).size,
    }
    for key, cols, rows in (("recon", 8, 2), ("interp", 5, 3), ("trav", 5, 2)):
        width, height = sizes[key]
        cell = (width - 1) // cols - 1
        assert cell >= 32 and cell % 8 == 0, (key, sizes[key])
        assert (width, height) == (cols * (cell + 1) + 1, rows * (cell + 1) + 1), key
        assert width >= 256, key


def test_image_callbacks_skip_models_without_the_capability(tmp_path, caplog):
    callbacks = [Reconstructions(), LatentInterpolation(), FIDCallback(every_n_epochs=1, cache_dir=str(tmp_path))]
    model = create_model("mlp_classifier", hidden=(16, 8))
    with caplog.at_level(logging.INFO):
        cpu_trainer(str(tmp_path), max_epochs=2, limit_train_batches=1, limit_val_batches=1, callbacks=callbacks).fit(
            model, digits_datamodule()
        )
    for name in ("Reconstructions", "LatentInterpolation", "FIDCallback"):
        lines = [r for r in caplog.records if r.getMessage().startswith(name)]
        assert len(lines) == 1, name  # one clear line, not one per epoch
    assert callbacks[0].last_path is None and not callbacks[1].last_paths


def test_lerp_and_slerp():
    z0, z1 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    t = torch.linspace(0, 1, 5)
    for fn in (lerp, slerp):
        path = fn(z0, z1, t)
        assert path.shape == (1, 5, 2)
        assert torch.allclose(path[0, 0], z0[0]) and torch.allclose(path[0, -1], z1[0], atol=1e-6)
    assert torch.allclose(slerp(z0, z1, t).norm(dim=-1), torch.ones(1, 5), atol=1e-6)  # stays on the circle
    assert lerp(z0, z1, t).norm(dim=-1)[0, 2] < 0.8  # the straight line cuts inside it
    assert torch.allclose(slerp(z0, z0, t), z0.expand(1, 5, 2)[:, :, :])  # parallel: no NaN
