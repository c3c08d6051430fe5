"""A loaded checkpoint cannot run code (issue 23), and the CLI resolves a checkpoint once (issue 24).

A checkpoint whose pickle would write a marker file is refused by ``load_model`` and by every command's
``--ckpt_path`` in one line naming ``--trust_checkpoint`` / ``trust=True``, and the marker is never written;
with trust it loads. Every checkpoint genlight writes still loads with ``weights_only=True``.
``genlight test`` reads its checkpoint once, refuses to run without one, and tests on the checkpoint's data.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

import genlight.checkpoint
from genlight import list_models, load_model
from genlight.callbacks import EMA, default_fit_callbacks
from genlight.cli import GenlightCLI, main
from genlight.datamodules.digit_outliers import DigitOutliersDataModule
from genlight.errors import CheckpointError
from genlight.modules.vae import VAE
from genlight.testing import cpu_trainer, smoke_setup
from tests.test_cli_errors import QUICK, TINY_VAE, assert_user_error, run

VAE_LAST = "runs/vae/version_0/checkpoints/last.ckpt"


def write_marker(marker: str) -> None:
    Path(marker).write_text("ran")


class WritesMarker:
    """Unpickling this calls :func:`write_marker`: it stands for any code a file could run (``os.system``)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return write_marker, (str(self.marker),)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder after a one-epoch `genlight fit --model vae` on `digit_outliers --data.held_out_class 3`."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        main(["fit", *TINY_VAE, "--data", "digit_outliers", "--data.held_out_class", "3", "--trainer.max_epochs", "1",
              *QUICK])  # fmt: skip
    return root


@pytest.fixture
def workdir(trained, tmp_path, monkeypatch) -> Path:
    work = tmp_path / "work"
    shutil.copytree(trained, work)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def evil(workdir) -> tuple[Path, Path]:
    """``(checkpoint, marker)``: genlight's VAE checkpoint with a payload that writes ``marker`` when unpickled."""
    checkpoint = torch.load(VAE_LAST, weights_only=True)
    marker = workdir / "marker.txt"
    checkpoint["payload"] = WritesMarker(marker)
    path = workdir / "evil.ckpt"
    torch.save(checkpoint, path)
    return path, marker


# ---------------------------------------------------------------------------- a checkpoint that runs code
def test_load_model_refuses_a_checkpoint_that_would_run_code(evil):
    path, marker = evil
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    text = str(info.value)
    assert "\n" not in text and "tests.test_safe_loading.write_marker" in text and "trust=True" in text, text
    assert not marker.exists()
    model = load_model(path, trust=True)  # the user vouches for it: it loads (and its code runs)
    assert type(model) is VAE and marker.read_text() == "ran"


@pytest.mark.parametrize(
    "command",
    [["fit", *TINY_VAE, "--trainer.max_epochs", "2"], ["test"], ["validate"], ["sample", "-n", "4"],
     ["score", "--task", "ood", "--max_examples", "10"]],
    ids=["fit", "test", "validate", "sample", "score"],
)  # fmt: skip
def test_every_command_refuses_it_and_runs_nothing(evil, capsys, command):
    path, marker = evil
    extra = QUICK if command[0] in ("fit", "test", "validate") else []
    code, _, err = run(capsys, command[0], "--ckpt_path", str(path), *command[1:], *extra)
    assert_user_error(code, err, "evil.ckpt was refused", "tests.test_safe_loading.write_marker", "--trust_checkpoint", exit_code=1)
    assert not marker.exists()


def test_trusted_it_is_tested_and_sampled(evil, capsys):
    path, marker = evil
    code, out, _ = run(capsys, "test", "--ckpt_path", str(path), "--trust_checkpoint", *QUICK)
    assert code == 0 and "test/nelbo" in out and marker.exists()
    marker.unlink()
    code, out, _ = run(capsys, "sample", "--ckpt_path", str(path), "--trust_checkpoint", "-n", "4", "--out", "s.png")
    assert code == 0 and Path("s.png").is_file() and marker.exists()


# ---------------------------------------------------------------------------- what genlight writes loads safely
@pytest.mark.parametrize("name", list_models())
def test_every_family_checkpoint_loads_weights_only_and_resumes(name, tmp_path):
    """A short fit with everything `genlight fit` adds (last/best checkpoints, NaN guard, RNG state) and
    EMA: the checkpoint names no class outside torch's weights-only set, ``load_model`` loads it, and a
    fit resumes from it with ``weights_only=True`` (as ``genlight fit --ckpt_path`` does)."""

    def fit(steps: int, ckpt_path: Path | None = None):
        model, dm, kwargs = smoke_setup(name, tmp_path)
        callbacks = [*default_fit_callbacks(model, ema=False), EMA(), *kwargs.pop("callbacks", [])]
        trainer = cpu_trainer(str(tmp_path), max_steps=steps, limit_train_batches=2, limit_val_batches=1,
                              enable_checkpointing=True, callbacks=callbacks, **kwargs)  # fmt: skip
        trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
        return model, trainer

    model, trainer = fit(2)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    assert torch.serialization.get_unsafe_globals_in_checkpoint(path) == []
    assert type(load_model(path)) is type(model)
    _, resumed = fit(2 * trainer.global_step, path)
    assert resumed.global_step == 2 * trainer.global_step > 0


def test_a_path_in_the_hyper_parameters_is_allowed(tmp_path):
    """``data_dir=Path(...)`` pickles a ``PosixPath``: one of the few classes genlight allows."""
    checkpoint = {"state_dict": {}, "datamodule_hyper_parameters": {"data_dir": Path("data")}}
    torch.save(checkpoint, tmp_path / "p.ckpt")
    assert torch.serialization.get_unsafe_globals_in_checkpoint(tmp_path / "p.ckpt") == []  # allow-listed
    assert genlight.checkpoint.read_checkpoint(tmp_path / "p.ckpt")["datamodule_hyper_parameters"]["data_dir"] == Path("data")


# ---------------------------------------------------------------------------- the CLI resolves a checkpoint once
def test_test_ckpt_path_last_reads_the_file_once(workdir, monkeypatch, capsys):
    """genlight reads the checkpoint once (``read_checkpoint``); the only other ``torch.load`` is Lightning's
    own, when ``Trainer.test(ckpt_path=...)`` restores the weights (LightningCLI's hyper-parameter merge,
    which would read it a third time, never sees the path)."""
    loads: list[object] = []
    reads: list[object] = []
    real_load, real_read = torch.load, genlight.checkpoint.read_checkpoint

    def counting_load(f, *args, **kwargs):
        loads.append(kwargs.get("weights_only"))
        return real_load(f, *args, **kwargs)

    def counting_read(path, **kwargs):
        reads.append(path)
        return real_read(path, **kwargs)

    monkeypatch.setattr(torch, "load", counting_load)
    monkeypatch.setattr("genlight.checkpoint_config.read_checkpoint", counting_read)
    code, out, err = run(capsys, "test", "--ckpt_path", "last", *QUICK)
    assert code == 0 and "test/nelbo" in out and f"using {VAE_LAST}" in err
    assert reads == [VAE_LAST]
    assert loads == [True, True]  # genlight's read, then Lightning's restore: both weights_only


def test_test_without_a_checkpoint_refuses(workdir, capsys):
    code, out, err = run(capsys, "test", "--model", "vae", *QUICK)
    assert_user_error(code, err, "genlight test needs --ckpt_path", "untrained", "--ckpt_path last", exit_code=1)
    assert "test/" not in out


def test_test_uses_the_checkpoints_datamodule_unless_data_names_another(workdir, capsys):
    cli = GenlightCLI(args=["test", "--ckpt_path", VAE_LAST, *QUICK])
    assert type(cli.datamodule) is DigitOutliersDataModule and cli.datamodule.hparams.held_out_class == 3
    assert cli.datamodule.hparams.subset == 64
    cli = GenlightCLI(args=["test", "--ckpt_path", VAE_LAST, "--data", "digit_domains", *QUICK])
    assert type(cli.datamodule).__name__ == "DigitDomainsDataModule"


def test_a_planted_fid_reference_cache_runs_nothing(tmp_path):
    """The FID reference cache is read ``weights_only``: a cache file replaced by one that would run code is
    refused in one line naming the file and the fix (delete it), and the marker is not written."""
    from genlight import create_model
    from genlight.datamodules.cifar10 import CIFAR10DataModule
    from genlight.errors import DataFilesError
    from tests.fakedata import write_cifar10
    from tests.test_fid_reference import _callback

    write_cifar10(tmp_path, n_per_batch=8)
    dm = CIFAR10DataModule(data_dir=str(tmp_path), check_md5=False, batch_size=8)
    model = create_model("vae", image_shape=(3, 32, 32), num_levels=256, latent_dim=4, hidden_channels=8)
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                          callbacks=[_callback(tmp_path / "cache")])  # fmt: skip
    trainer.fit(model, datamodule=dm)
    (cache,) = (tmp_path / "cache").glob("*.pt")
    marker = tmp_path / "marker.txt"
    torch.save({"mu": torch.zeros(2), "payload": WritesMarker(marker)}, cache)
    again = _callback(tmp_path / "cache")
    with pytest.raises(DataFilesError, match="refused.*delete it") as info:
        again.reference(trainer, again.extractor(torch.device("cpu")))
    assert str(cache) in str(info.value) and "\n" not in str(info.value)
    assert not marker.exists()
