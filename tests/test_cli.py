"""The `genlight` command: fit/test/validate by registry name, YAML configs, errors, list, sample, W&B."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from genlight import MODELS, list_models, load_model
from genlight.cli import GenlightCLI, main, rewrite_registry_names
from genlight.modules.vae import VAE

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--data.subset", "128", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_fit_writes_samples_metrics_config_and_checkpoint(in_tmp, capsys):
    main(["fit", "--model", "vae", "--data", "digits", "--trainer.max_epochs", "2", "--model.hidden_channels", "8",
          *QUICK])  # fmt: skip
    run = in_tmp / "runs" / "vae" / "version_0"
    pngs = sorted((run / "images").glob("samples_*.png"))
    assert [p.name[:19] for p in pngs] == ["samples_epoch000_st", "samples_epoch001_st"]
    with open(run / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val/nelbo")]
    assert len(rows) == 2 and all(float(r["val/nelbo"]) > 0 for r in rows)
    assert {"val/bpd_bound", "val/kl", "train/loss_epoch"} <= set(rows[0])
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["class_path"] == "genlight.modules.vae.VAE"
    ckpt = next((run / "checkpoints").glob("*.ckpt"))
    model = load_model(ckpt)
    assert type(model) is VAE and tuple(model.hparams.image_shape) == (1, 8, 8)  # linked from the datamodule

    main(["test", "--model", "vae", "--data", "digits", "--ckpt_path", str(ckpt), "--model.hidden_channels", "8",
          "--trainer.logger", "false", *QUICK])  # fmt: skip
    assert "test/nelbo" in capsys.readouterr().out

    with pytest.raises(SystemExit) as exit_info:
        main(["sample", "--ckpt_path", str(ckpt), "-n", "16", "--out", "grid.png"])
    assert exit_info.value.code == 0 and (in_tmp / "grid.png").stat().st_size > 100


def test_unknown_model_exits_with_close_match(in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "vea", "--data", "digits"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "unknown model 'vea'" in err and "Did you mean: vae" in err  # cvae may follow: "vae, cvae?"
    with pytest.raises(SystemExit):
        main(["fit", "--model", "vae", "--data=digts"])
    assert "Did you mean: digits" in capsys.readouterr().err  # digit_outliers, digit_domains may follow


@pytest.mark.parametrize("spelling", [["--model", "vae"], ["--model=vae"], ["--model", "VAE"],
                                      ["--model", "genlight.modules.vae.VAE"]])  # fmt: skip
def test_model_by_name_class_name_or_path(spelling):
    cli = GenlightCLI(args=[*spelling, "--data", "digits", "--model.latent_dim", "3"], run=False)
    assert type(cli.model) is VAE and cli.model.hparams.latent_dim == 3
    assert cli.model.hparams.num_levels == 17  # linked from digits


def test_rewrite_leaves_other_values_alone():
    args = ["fit", "--model", "my.pkg.Model", "--data", "cfg.yaml", "--model.lr", "0.1", "--data.help", "digits"]
    out = rewrite_registry_names(args)
    assert out[:6] == args[:6] and out[-1] == "genlight.datamodules.digits.DigitsDataModule"


def test_yaml_config_with_overrides():
    cli = GenlightCLI(args=["-c", str(ROOT / "examples/digits/vae.yaml"), "--model.latent_dim", "5"], run=False)
    assert type(cli.model) is VAE
    assert cli.model.hparams.latent_dim == 5 and cli.model.hparams.lr == 0.002
    assert cli.datamodule.batch_size == 64


def test_print_config_parses_back(in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "vae", "--data", "digits", "--model.latent_dim", "7", "--print_config"])
    assert exit_info.value.code == 0
    (in_tmp / "printed.yaml").write_text(capsys.readouterr().out)
    cli = GenlightCLI(args=["fit", "-c", "printed.yaml", "--trainer.fast_dev_run", "1", *QUICK])
    assert type(cli.model) is VAE and cli.model.hparams.latent_dim == 7
    assert cli.trainer.state.finished


def test_list_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["list", "models"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "vae" in out and "genlight.modules.vae.VAE" in out and "genlight.modules.autoencoder.AE" in out
    with pytest.raises(SystemExit):
        main(["list", "datamodules", "digits*"])  # "dig*" matches digit_domains too
    assert capsys.readouterr().out.startswith("digits")


def test_ae_trains_from_its_example(in_tmp):
    main(["fit", "-c", str(ROOT / "examples/digits/ae.yaml"), "--trainer.max_epochs", "1", *QUICK])
    run = in_tmp / "runs" / "ae" / "version_0"
    assert (run / "metrics.csv").read_text().count("val/loss") == 1
    assert not (run / "images").exists()  # an AE cannot sample: no grid, one log line instead


def test_wandb_offline_run_gets_config_and_images(in_tmp):
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    cli = GenlightCLI(
        args=["fit", "--model", "vae", "--data", "digits", "-c", str(ROOT / "examples/loggers/wandb_offline.yaml"),
              "--trainer.max_epochs", "1", "--model.hidden_channels", "4", *QUICK]  # fmt: skip
    )
    try:
        logger = next(lg for lg in cli.trainer.loggers if isinstance(lg, WandbLogger))
        assert logger.experiment.config["model"]["class_path"] == "genlight.modules.vae.VAE"
        assert logger.experiment.config["model"]["init_args"]["latent_dim"] == 16
        run_dirs = list((in_tmp / "runs" / "wandb").glob("offline-run-*"))
        assert len(run_dirs) == 1
        assert list(run_dirs[0].glob("files/media/images/samples_*.png"))
        assert (in_tmp / "runs" / "vae" / "version_0" / "metrics.csv").exists()  # CSV beside W&B
    finally:
        wandb.finish()


def test_digits_is_the_default_datamodule():
    cli = GenlightCLI(args=["--model", "vae", "--data.batch_size", "7"], run=False)
    assert type(cli.datamodule).__name__ == "DigitsDataModule" and cli.datamodule.batch_size == 7


def test_wrong_data_shape_exits_with_a_clear_message(in_tmp, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", "--model", "vae", "--data", "toy2d", "--trainer.logger", "false"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "VAE works on (C, H, W) images, got image_shape=(2,)" in err and "Traceback" not in err


@pytest.mark.parametrize("name", sorted(set(list_models()) - set(list_models(tag="test"))))
def test_every_family_has_a_digits_example_that_instantiates(name):
    path = ROOT / "examples" / "digits" / f"{name}.yaml"
    assert path.is_file(), f"add {path.relative_to(ROOT)}"
    cli = GenlightCLI(args=["-c", str(path), "--trainer.logger", "false"], run=False)
    assert MODELS.name_of(cli.model) == name
    assert tuple(cli.model.hparams["image_shape"]) == (1, 8, 8)
