"""Data that does not fit a model is refused in one line that says what fits: an image family on 2-D
points, a conditional family on unlabelled data, a toy2d checkpoint tested on another distribution."""

from __future__ import annotations

import pytest

from genlight import create_model
from genlight.cli import main
from genlight.datamodules.toy2d import Toy2DDataModule
from genlight.errors import IncompatibleDataError
from genlight.data_fit import data_mismatch
from genlight.modules.cgan import CGAN
from genlight.modules.gan import GAN
from tests.helpers import cpu_trainer, tiny_trainer


def test_cgan_on_points_says_it_needs_labelled_images_and_names_what_fits():
    message = data_mismatch(CGAN, Toy2DDataModule)  # classes only: the CLI can ask before building anything
    assert message is not None and "\n" not in message
    assert message.startswith("cgan needs labelled images") and "toy2d" in message and "2-D points" in message
    fits = message.split("such as ", 1)[1].split(", ")
    assert {"digits", "mnist", "cifar10"} <= set(fits) and "toy2d" not in fits and "image_folder" not in fits
    assert data_mismatch(GAN, Toy2DDataModule) is None  # gan models points too


def test_cgan_fit_on_points_is_refused_before_any_step():
    model = create_model("cgan", latent_dim=4, width=4)
    trainer = tiny_trainer()
    with pytest.raises(IncompatibleDataError, match="cgan needs labelled images") as info:
        trainer.fit(model, datamodule=Toy2DDataModule(num_samples=100, batch_size=16))
    assert trainer.global_step == 0 and "\n" not in str(info.value)


def _toy_checkpoint(tmp_path, dataset: str = "eight_gaussians"):
    dm = Toy2DDataModule(dataset=dataset, num_samples=200, batch_size=32)
    model = create_model("gan", image_shape=(2,), latent_dim=2, hidden=8, layers=1)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    path = tmp_path / "toy.ckpt"
    trainer.save_checkpoint(path)
    return model, path


def test_a_toy2d_checkpoint_tested_on_another_distribution_is_refused(tmp_path):
    model, path = _toy_checkpoint(tmp_path)
    other = Toy2DDataModule(dataset="two_moons", num_samples=200, batch_size=32)
    with pytest.raises(IncompatibleDataError) as info:
        cpu_trainer(str(tmp_path)).test(model, datamodule=other, ckpt_path=str(path), verbose=False)
    message = str(info.value)
    assert "\n" not in message and "trained on toy2d dataset 'eight_gaussians', not 'two_moons'" in message
    assert "--data.dataset eight_gaussians" in message
    same = Toy2DDataModule(dataset="eight_gaussians", num_samples=200, batch_size=32)
    (results,) = cpu_trainer(str(tmp_path)).test(model, datamodule=same, ckpt_path=str(path), verbose=False)
    assert "test/fid" in results


def test_the_command_refuses_it_in_one_line(tmp_path, monkeypatch, capsys):
    _, path = _toy_checkpoint(tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["test", "--ckpt_path", str(path), "--data", "toy2d", "--data.dataset", "two_moons",
              "--data.num_samples", "200", "--trainer.logger", "false"])  # fmt: skip
    assert exit_info.value.code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("genlight: error")]
    assert len(err) == 1 and "'eight_gaussians', not 'two_moons'" in err[0] and "--data.dataset eight_gaussians" in err[0]


def test_the_command_refuses_cgan_on_points_before_building_anything(tmp_path, monkeypatch, capsys):
    """``genlight fit --model cgan --data toy2d``: exit 1, one line naming the need and datamodules that
    fit, no run folder (the check runs on the parsed config, before any class is built)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "cgan", "--data", "toy2d", "--trainer.max_epochs", "1"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cgan needs labelled images" in err[0] and "digits" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("*.ckpt"))
