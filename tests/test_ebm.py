"""EBM: Langevin lowers the energy, training separates data from noise, the replay buffer survives a
checkpoint, and sampling works inside the image callbacks during a real fit with validation."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image

from genlight import create_datamodule, create_model, load_model
from genlight.callbacks import EnergyLandscape, FIDCallback, SampleGrid
from genlight.datamodules.toy2d import eight_gaussians_centers
from genlight.errors import ImageShapeError
from genlight.callbacks.energy import energy_grid, energy_image, save_energy_png
from genlight.modules.ebm import EBM
from genlight.types import DensityModel, Sampler
from tests.helpers import cpu_trainer

TOY = {"hidden": 64, "langevin_steps": 30, "step_size": 0.05, "noise_std": 0.05, "l2_coeff": 0.1, "lr": 1e-3,
       "buffer_size": 2000, "box": 4.0}  # fmt: skip


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: small tensors, and the machine's cores are shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def toy_ebm() -> tuple[EBM, EBM, torch.Tensor]:
    """(untrained copy, EBM trained 200 steps on eight Gaussians, held-out points)."""
    torch.set_num_threads(1)
    pl.seed_everything(0, verbose=False)
    dm = create_datamodule("toy2d", dataset="eight_gaussians", num_samples=5000, batch_size=128)
    model = create_model("ebm", image_shape=(2,), **TOY)
    untrained = create_model("ebm", image_shape=(2,), **TOY)
    untrained.load_state_dict(model.state_dict())
    cpu_trainer(max_steps=200, limit_val_batches=0).fit(model, datamodule=dm)
    dm.setup("fit")
    held_out = torch.cat([batch[0] for batch in dm.val_dataloader()])[:512]
    return untrained.eval(), model.eval(), held_out


def test_is_an_unnormalised_sampler():
    model = create_model("ebm", image_shape=(1, 8, 8), channels=8, buffer_size=16)
    assert isinstance(model, Sampler) and not isinstance(model, DensityModel)
    assert not hasattr(model, "log_prob")


def test_langevin_moves_toy2d_samples_to_lower_energy(toy_ebm):
    _, model, data = toy_ebm
    torch.manual_seed(0)
    start = model.noise(512)
    end = model.sample(512, init="noise", steps=100)
    with torch.no_grad():
        assert model(end).mean() < model(start).mean() - 0.01
    centres = eight_gaussians_centers().float()
    dist = lambda x: torch.cdist(x, centres).min(1).values.mean()  # noqa: E731
    assert dist(end) < 0.8 * dist(start)  # the chains move towards the modes of the data
    assert end.abs().max() <= model.hparams.box  # clipped to the box


def test_training_separates_data_energy_from_noise_energy(toy_ebm):
    untrained, model, data = toy_ebm
    torch.manual_seed(1)
    noise = model.noise(512)
    with torch.no_grad():
        gap_before = (untrained(noise).mean() - untrained(data).mean()).item()
        gap_after = (model(noise).mean() - model(data).mean()).item()
        assert gap_after > 0.05 and gap_after > 5 * abs(gap_before)
        # most data points score below most noise points
        assert (model(data).median() < model(noise).quantile(0.25)).item()
    energies, grid = energy_grid(model, resolution=50)
    assert energies.shape == (50, 50) and grid.shape == (50, 50, 2) and torch.isfinite(energies).all()


def test_energy_landscape_png(toy_ebm, tmp_path):
    _, model, data = toy_ebm
    path = save_energy_png(model, str(tmp_path / "energy.png"), points=data, resolution=64)
    image = Image.open(path)
    assert image.size == (64, 64)
    pixels = torch.tensor(list(image.getdata()))
    assert ((pixels == torch.tensor([255, 0, 0])).all(1)).any()  # the data points are drawn
    with pytest.raises(ValueError, match="2-D"):
        energy_grid(create_model("ebm", image_shape=(1, 8, 8), channels=8, buffer_size=4))


def test_energy_image_is_the_scaled_energy(toy_ebm):
    """Brightest pixel = lowest energy of the grid, darkest = highest, values in [0, 1]."""
    _, model, _ = toy_ebm
    with torch.no_grad():
        energies, _ = energy_grid(model, resolution=40)
        image = energy_image(model, resolution=40)
    assert image.shape == (3, 40, 40) and image.min() >= 0 and image.max() <= 1
    gray = image[0]
    assert gray.flatten().argmax() == energies.flatten().argmin() and gray.flatten().argmin() == energies.flatten().argmax()


def test_energy_landscape_callback_logs_during_fit_and_skips_image_ebms(tmp_path):
    """The toy2d example's callback: a PNG per due epoch in the run folder, with the data in red; an EBM
    of images is skipped (no 2-D landscape)."""
    torch.set_num_threads(1)
    dm = create_datamodule("toy2d", dataset="eight_gaussians", num_samples=512, batch_size=128)
    callback = EnergyLandscape(resolution=32, num_points=200)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=2, limit_val_batches=0, callbacks=[callback])
    trainer.fit(create_model("ebm", image_shape=(2,), **TOY), datamodule=dm)
    assert callback.last_path is not None and callback.last_path.is_file()
    pixels = torch.tensor(list(Image.open(callback.last_path).convert("RGB").getdata()))
    assert ((pixels == torch.tensor([255, 0, 0])).all(1)).any()
    images = EnergyLandscape(resolution=32)
    trainer = cpu_trainer(str(tmp_path / "img"), max_epochs=1, limit_train_batches=1, limit_val_batches=0, callbacks=[images])
    trainer.fit(create_model("ebm", image_shape=(1, 8, 8), channels=8, buffer_size=16, langevin_steps=2),
                datamodule=create_datamodule("digits", batch_size=16))  # fmt: skip
    assert images.last_path is None


def test_replay_buffer_survives_a_checkpoint_round_trip(digits, tmp_path):
    model = create_model("ebm", image_shape=(1, 8, 8), channels=8, langevin_steps=3, buffer_size=64, spectral_norm=True)
    initial = model.replay.clone()
    trainer = cpu_trainer(str(tmp_path), max_steps=3, limit_val_batches=0)
    trainer.fit(model, datamodule=digits)
    assert not torch.equal(model.replay, initial), "training writes the chains' ends into the buffer"
    assert model.replay.min() >= 0 and model.replay.max() <= 1
    path = tmp_path / "ebm.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_model(path)
    assert torch.equal(loaded.replay, model.replay)
    model.eval()
    torch.manual_seed(0)
    a = model.sample(4, steps=2)
    torch.manual_seed(0)
    b = loaded.sample(4, steps=2)
    assert torch.equal(a, b)
    # resuming a fit continues from the saved chains
    resumed = create_model("ebm", image_shape=(1, 8, 8), channels=8, langevin_steps=3, buffer_size=64, spectral_norm=True)
    cpu_trainer(str(tmp_path), max_steps=3, limit_val_batches=0).fit(resumed, datamodule=digits, ckpt_path=str(path))
    assert not torch.equal(resumed.replay, initial)


def test_sampling_inside_callbacks_during_fit_with_validation(digits, tmp_path):
    """SampleGrid and FIDCallback draw Langevin samples inside a real fit; validation runs under the
    Trainer's default inference mode (the EBM opens gradients itself)."""
    model = create_model("ebm", image_shape=(1, 8, 8), channels=8, langevin_steps=3, buffer_size=128)
    grid = SampleGrid(num_samples=8, every_n_epochs=1)
    fid = FIDCallback(num_samples=64, every_n_epochs=1, batch_size=32, cache_dir=str(tmp_path / "fid"))
    trainer = cpu_trainer(
        str(tmp_path), max_epochs=1, limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0,
        callbacks=[grid, fid],
    )  # fmt: skip
    assert trainer.validate_loop.inference_mode  # the default: no trainer.inference_mode false needed
    trainer.fit(model, datamodule=digits)
    assert grid.last_path is not None and Image.open(grid.last_path).size[0] > 8
    assert math.isfinite(float(trainer.callback_metrics["val/fid_digits"]))
    for key in ("val/energy_data", "val/energy_noise", "val/energy_gap"):
        assert math.isfinite(float(trainer.callback_metrics[key]))
    assert all(p.requires_grad for p in model.parameters()), "parameters are unfrozen after sampling"


def test_bad_configurations_are_refused_early():
    with pytest.raises(ValueError, match="reinit_prob"):
        create_model("ebm", image_shape=(1, 8, 8), reinit_prob=1.5)
    with pytest.raises(ValueError, match="buffer"):
        create_model("ebm", image_shape=(1, 8, 8), buffer_size=0)
    with pytest.raises(ImageShapeError):
        create_model("ebm", image_shape=(8, 8))
    model = create_model("ebm", image_shape=(1, 8, 8), buffer_size=0, sample_init="noise", channels=8, langevin_steps=2)
    assert model.sample(3).shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="unconditional"):
        model.sample(2, y=torch.zeros(2, dtype=torch.long))
