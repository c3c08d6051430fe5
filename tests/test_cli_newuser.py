"""What a new user hit in an hour with the `genlight` command, one test per case: `last` means the last
epoch, help that helps, no noise, no empty run folders, and misleading answers made right. Each error
case asserts the exit code, a message of at most three lines naming the option and the fix, and that
nothing written earlier was removed."""

from __future__ import annotations

import csv
import logging
import shutil
import warnings
from pathlib import Path

import pytest
import torch
import yaml

import genlight
from genlight import MODELS
from genlight.cli import GenlightCLI, main
from genlight.catalog import describe
from genlight.modules.vae import VAE
from tests.test_cli_errors import QUICK, TINY_VAE, assert_kept, assert_user_error, run, snapshot, workdir  # noqa: F401
from tests.test_cli_errors import trained  # noqa: F401 - the module-scoped fixture `workdir` uses

FEW = ["--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1", "--trainer.num_sanity_val_steps", "0"]


class PlateauVAE(VAE):
    """A VAE whose monitored metric improves up to its second epoch (index 1) and then only gets worse
    (test-only; importable for the CLI)."""

    def checkpoint_monitor(self) -> tuple[str, str]:
        return "val/plateau", "min"

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log("val/plateau", float(abs(self.current_epoch - 1)))


PLATEAU = ["--model", f"{__name__}.PlateauVAE", "--model.hidden_channels", "4", "--model.latent_dim", "2",
           "--trainer.logger.init_args.name", "plateau", "--samples.every_n_epochs", "0", *QUICK, *FEW]  # fmt: skip


def epoch_of(path: Path) -> int:
    return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])


# ---------------------------------------------------------------------------- `last` is the last epoch
def test_last_ckpt_holds_the_last_epoch_and_resume_continues_after_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "fit", *PLATEAU, "--trainer.max_epochs", "6")
    assert code == 0, err
    folder = tmp_path / "runs/plateau/version_0/checkpoints"
    assert epoch_of(folder / "last.ckpt") == 5  # epoch 6 of 6, although the best stopped at epoch 2
    best = [p.name for p in folder.glob("best-*.ckpt")]
    assert len(best) == 1 and best[0].startswith("best-epoch=1-"), best
    first = torch.load(folder / "last.ckpt", weights_only=False)

    code, _, err = run(capsys, "fit", *PLATEAU, "--ckpt_path", "last", "--trainer.max_epochs", "7")
    assert code == 0 and "resuming from runs/plateau/version_0/checkpoints/last.ckpt" in err, err
    resumed = torch.load(tmp_path / "runs/plateau/version_1/checkpoints/last.ckpt", weights_only=False)
    assert resumed["epoch"] == 6 and resumed["global_step"] == first["global_step"] * 7 // 6
    with open(tmp_path / "runs/plateau/version_1/metrics.csv") as f:
        epochs = {int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch")}
    assert epochs == {6}  # epoch 7 only: nothing replayed
    assert epoch_of(folder / "last.ckpt") == 5  # the earlier run is untouched


class InterruptedVAE(PlateauVAE):
    """Ctrl+C in the middle of its fourth epoch, after its metric stopped improving (test-only)."""

    def training_step(self, batch, batch_idx):
        if self.current_epoch == 3 and batch_idx == 1:
            raise KeyboardInterrupt
        return super().training_step(batch, batch_idx)


def test_an_interrupt_leaves_last_ckpt_at_the_last_completed_epoch(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [a if a != f"{__name__}.PlateauVAE" else f"{__name__}.InterruptedVAE" for a in PLATEAU]
    code, _, err = run(capsys, "fit", *args, "--data.batch_size", "16", "--trainer.max_epochs", "5")
    assert code == 1, err  # Lightning exits with 1 after a graceful shutdown
    assert epoch_of(tmp_path / "runs/plateau/version_0/checkpoints/last.ckpt") == 2  # epochs 1-3 done, best at 2


def test_a_configured_checkpoint_with_save_last_also_keeps_the_last_epoch(tmp_path, monkeypatch, capsys):
    """The example configs' own `ModelCheckpoint(monitor=..., save_last=true)`: same answer, one last.ckpt."""
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "fit", *PLATEAU, "--trainer.max_epochs", "3", "--trainer.callbacks+=ModelCheckpoint",
                       "--trainer.callbacks.monitor", "val/plateau", "--trainer.callbacks.save_last", "true")  # fmt: skip
    assert code == 0, err
    folder = tmp_path / "runs/plateau/version_0/checkpoints"
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 2 and names[0].startswith("epoch=1-") and names[1] == "last.ckpt", names
    assert epoch_of(folder / "last.ckpt") == 2


def test_fast_dev_run_writes_no_checkpoint_that_last_finds(workdir, capsys):
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", *TINY_VAE, "--trainer.fast_dev_run", "1", *QUICK)
    assert code == 0, err
    assert not list((workdir / "runs/vae").glob("version_1/**/*.ckpt"))
    assert list((workdir / "runs/vae/version_1/images").glob("*.png"))  # the smoke run kept its images
    code, out, err = run(capsys, "sample", "--ckpt_path", "last", "--model", "vae", "-n", "4", "--out", "s.png")
    assert code == 0 and "using runs/vae/version_0/checkpoints/last.ckpt" in err, err
    assert_kept(before, workdir)


def test_fast_dev_run_alone_leaves_last_to_find_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "fit", *TINY_VAE, "--trainer.fast_dev_run", "1", *QUICK)
    assert code == 0, err
    code, _, err = run(capsys, "sample", "--ckpt_path", "last")
    assert_user_error(code, err, "--ckpt_path last: no runs/*/version_*/checkpoints/last.ckpt", "genlight fit --model")


# ---------------------------------------------------------------------------- help that helps
def test_help_does_not_offer_predict_and_fit_help_lists_registry_names(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "{fit,validate,test}" in out and "predict" not in out
    code, out, _ = run(capsys, "fit", "--help")
    text = " ".join(out.split())
    assert code == 0 and "registered names: aae, ae, beta_vae" in text and "`genlight list models` describes" in text
    data_names = ", ".join(sorted(genlight.list_datamodules()))
    assert f"registered names: {data_names}" in text  # --data
    assert "known subclasses: CPUAccelerator, CUDAAccelerator" in text  # other class options: names, not paths
    for noise in ("genlight.module.GenerativeModule", "AdversarialModule", "NormalizingFlow",
                  "AutoregressiveImageModel", "lightning.pytorch.callbacks.ModelCheckpoint"):  # fmt: skip
        assert noise not in text, noise
    code, _, err = run(capsys, "predict", "--model", "vae")  # still refused, with the pointer
    assert_user_error(code, err, "genlight sample --ckpt_path", exit_code=2)


def test_list_models_gives_capabilities_and_whole_descriptions(capsys):
    code, out, _ = run(capsys, "list", "models")
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert code == 0 and set(lines) == set(MODELS.list())
    assert "[Sampler, ConditionalSampler, DensityModel (bound), Autoencoder, LatentGenerator]" in lines["cvae"]
    assert "DensityModel (exact)" in lines["pixelcnn"] and "[Translator]" in lines["cyclegan"]
    assert "(Foster ch. 2): 4 conv layers" in lines["cnn_classifier"]  # cut at "ch" before
    assert "Deep convolutional GAN (Radford et al. 2016)" in lines["dcgan"]  # was just "DCGAN"
    for name, line in lines.items():
        assert line.endswith(describe(MODELS.get(name))) and line.rstrip().endswith((".", ")")), line


# ---------------------------------------------------------------------------- no noise
def test_a_run_shows_no_lightning_tip_nor_upstream_deprecation_warnings(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    rank_zero.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            code, _, err = run(capsys, "fit", *TINY_VAE, "--trainer.max_epochs", "1", *QUICK, *FEW)
    finally:
        rank_zero.removeHandler(handler)
    assert code == 0, err
    assert any("GPU available" in r for r in records)  # the handler sees Lightning's lines...
    assert not [r for r in records if "Tip" in r or "litlogger" in r]  # ...but not the advert
    deprecations = [str(w.message) for w in caught if issubclass(w.category, (DeprecationWarning, FutureWarning))]
    assert not deprecations, deprecations
    assert "LeafSpec" not in err and "Tip" not in err


# ---------------------------------------------------------------------------- run folders
def test_a_failed_fit_removes_the_empty_run_folder_it_created(workdir, monkeypatch):
    import genlight.cli.app

    before = snapshot(workdir)
    args = ["fit", "--model", f"{__name__}.BrokenOptimizerVAE", "--model.hidden_channels", "4",
            "--trainer.logger.init_args.name", "vae", "--trainer.max_epochs", "1", *QUICK]  # fmt: skip
    with monkeypatch.context() as patch:  # without the clean-up, the failed fit leaves version_1 behind
        patch.setattr(genlight.cli.app, "remove_empty_run", lambda *a: None)
        with pytest.raises(RuntimeError, match="no optimizer today"):
            main(args)
    assert "config.yaml" in [p.name for p in (workdir / "runs/vae/version_1").iterdir()]
    shutil.rmtree(workdir / "runs/vae/version_1")
    with pytest.raises(RuntimeError, match="no optimizer today"):
        main(args)
    assert sorted(p.name for p in (workdir / "runs/vae").iterdir()) == ["version_0"]  # version_1 removed
    assert_kept(before, workdir)


class BrokenOptimizerVAE(VAE):
    """A VAE that fails when the fit starts, after its run folder was created (test-only)."""

    def configure_optimizers(self):
        raise RuntimeError("no optimizer today")


def test_a_failed_fit_keeps_a_run_folder_with_a_checkpoint(tmp_path, monkeypatch, capsys):
    from tests.test_cli_errors import NaNAfterFirstEpochVAE

    monkeypatch.chdir(tmp_path)
    code, _, _ = run(capsys, "fit", "--model", f"{NaNAfterFirstEpochVAE.__module__}.NaNAfterFirstEpochVAE",
                     "--model.hidden_channels", "4", "--trainer.max_epochs", "3", "--trainer.logger.init_args.name", "nan",
                     *QUICK, *FEW)  # fmt: skip
    assert code == 1
    assert (tmp_path / "runs/nan/version_0/checkpoints/last.ckpt").is_file()


def test_test_and_sample_write_no_run_folder_unless_a_logger_is_asked_for(workdir, capsys):
    before = snapshot(workdir)
    folders = sorted(p.name for p in (workdir / "runs").rglob("version_*"))
    code, out, err = run(capsys, "test", "--model", "vae", "--ckpt_path", "last", *QUICK)
    assert code == 0 and "test/nelbo" in out, err
    code, _, err = run(capsys, "sample", "--ckpt_path", "last", "--model", "vae", "-n", "4", "--out", "grid.png")
    assert code == 0, err
    assert sorted(p.name for p in (workdir / "runs").rglob("version_*")) == folders
    assert not (workdir / "runs/config.yaml").exists()
    code, out, err = run(capsys, "test", "--model", "vae", "--ckpt_path", "runs/vae/version_0/checkpoints/last.ckpt",
                         "--trainer.logger.init_args.name", "scores", *QUICK)  # fmt: skip
    assert code == 0 and (workdir / "runs/scores/version_0/metrics.csv").is_file(), err  # asked: written
    assert_kept(before, workdir)


# ---------------------------------------------------------------------------- misleading answers made right
@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--trainer.max_epochs", "-2"], ["--trainer.max_epochs must be >= 1 (or -1: no limit), got -2",
                                          "e.g. --trainer.max_epochs 10"]),
        (["--trainer.max_epochs", "0"], ["--trainer.max_epochs 0 trains nothing", "--trainer.max_epochs 1 or more"]),
    ],
)  # fmt: skip
def test_max_epochs_out_of_range(workdir, capsys, args, needles):
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", *TINY_VAE, *QUICK, *args)
    text = assert_user_error(code, err, *needles, exit_code=1)
    assert "devices" not in text and "accelerator" not in text
    assert_kept(before, workdir)
    assert not (workdir / "runs/vae/version_1").exists()


def test_space_separated_negative_number_is_a_value(capsys):
    """The parse is right (``--model.lr_g: expected one argument`` before): the value reaches the range
    check of its type (``PositiveFloat``), which refuses it in one line naming the option and the value;
    a negative value where the range allows one is taken."""
    code, _, err = run(capsys, "fit", "--model", "dcgan", "--model.lr_g", "-1e-3", "--trainer.logger", "false")
    assert_user_error(code, err, "--model.lr_g", "-1e-3")
    assert "expected one argument" not in err
    cli = GenlightCLI(args=["--model", "dcgan", "--model.lr_g", "1e-3", "--model.lr_d", ".5", "--trainer.logger",
                            "false"], run=False)  # fmt: skip
    assert cli.model.hparams.lr_g == 1e-3 and cli.model.hparams.lr_d == 0.5


def test_broken_yaml_names_the_file_and_the_line(workdir, capsys):
    (workdir / "broken.yaml").write_text("model: vae\ntrainer:\n  max_epochs: 1\n  devices: [1, 2\n")
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", "-c", "broken.yaml")
    assert_user_error(code, err, "-c broken.yaml: not valid YAML at line 5", "flow sequence at line 4", "fix that line")
    assert_kept(before, workdir)


def test_unknown_trainer_key_in_yaml_gets_did_you_mean(workdir, capsys):
    (workdir / "typo.yaml").write_text("model: vae\ntrainer:\n  max_epoch: 1\n")
    code, _, err = run(capsys, "fit", "-c", "typo.yaml")
    assert_user_error(code, err, "unknown option --trainer.max_epoch (a key in the config)",
                      "Did you mean: --trainer.max_epochs", exit_code=2)  # fmt: skip


def test_default_root_dir_is_honoured(workdir, capsys):
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", *TINY_VAE, "--trainer.max_epochs", "1", "--trainer.default_root_dir", "elsewhere",
                       *QUICK, *FEW)  # fmt: skip
    assert code == 0, err
    assert (workdir / "elsewhere/vae/version_0/checkpoints/last.ckpt").is_file()
    assert not (workdir / "runs/vae/version_1").exists()
    code, _, err = run(capsys, "test", "--model", "vae", "--ckpt_path", "last", "--trainer.default_root_dir", "elsewhere",
                       *QUICK)  # fmt: skip
    assert code == 0 and "using elsewhere/vae/version_0/checkpoints/last.ckpt" in err, err
    assert_kept(before, workdir)


@pytest.mark.parametrize(
    ("save_dir", "needles"),
    [
        ("afile/runs", ["--trainer.logger.init_args.save_dir afile/runs: afile is a file, not a folder",
                        "--trainer.logger.init_args.save_dir runs"]),
        ("/proc/genlight-runs", ["--trainer.logger.init_args.save_dir /proc/genlight-runs cannot be written",
                                 "pass a folder you can write to"]),
    ],
)  # fmt: skip
def test_unwritable_logger_save_dir(workdir, capsys, save_dir, needles):
    (workdir / "afile").write_text("not a folder")
    before = snapshot(workdir)
    code, _, err = run(capsys, "fit", *TINY_VAE, "--trainer.logger.init_args.save_dir", save_dir, *QUICK)
    assert_user_error(code, err, *needles, exit_code=1)
    assert_kept(before, workdir)


@pytest.mark.parametrize(
    ("out", "needles"),
    [
        ("afile/grid.png", ["--out afile/grid.png: afile is a file, not a folder", "choose another path"]),
        ("grid.gif", ["--out grid.gif: the file name must end in .png or .jpg", ".pt", "--out samples.png"]),
        ("grid", ["--out grid: the file name must end in .png or .jpg"]),
    ],
)
def test_sample_out_that_cannot_be_written(workdir, capsys, out, needles):
    (workdir / "afile").write_text("not a folder")
    before = snapshot(workdir)
    code, _, err = run(capsys, "sample", "--ckpt_path", "runs/vae/version_0/checkpoints/last.ckpt", "--out", out)
    assert_user_error(code, err, *needles, exit_code=1)
    assert_kept(before, workdir)


# ---------------------------------------------------------------------------- registry names in YAML, in memory
def test_registry_names_in_yaml_write_no_temporary_copy(tmp_path, monkeypatch, capsys):
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("a temporary file was written")

    monkeypatch.chdir(tmp_path)
    for name in ("mkdtemp", "mkstemp", "NamedTemporaryFile", "TemporaryDirectory"):
        monkeypatch.setattr(tempfile, name, refuse)
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump({"model": "vae", "data": {"class_path": "digits"}}))
    (tmp_path / "model.yaml").write_text(yaml.safe_dump({"class_path": "beta_vae", "init_args": {"latent_dim": 3}}))
    code, out, err = run(capsys, "fit", "-c", "cfg.yaml", "--print_config")
    assert code == 0, err
    assert yaml.safe_load(out)["model"]["class_path"] == "genlight.modules.vae.VAE"
    cli = GenlightCLI(args=["-c", "cfg.yaml", "--model", "model.yaml", "--trainer.logger", "false"], run=False)
    assert type(cli.model).__name__ == "BetaVAE" and cli.model.hparams.latent_dim == 3
