"""Checkpoints and runs on fsspec URLs (``s3://``, ``gs://``...), tested with fsspec's in-memory file
system (``memory://``), which goes through the same code as any remote protocol:

* the Python API: a Trainer with ``default_root_dir="memory://..."`` writes its checkpoints there,
  ``fit(ckpt_path="memory://...")`` resumes, ``load_model("memory://...")`` loads;
* the CLI: ``genlight validate --ckpt_path memory://...`` (the class read from the remote checkpoint),
  ``genlight fit`` with ``--trainer.callbacks+=ModelCheckpoint --trainer.callbacks.dirpath memory://...``
  (a local run folder, checkpoints at the URL), and a one-line refusal of ``--trainer.default_root_dir
  memory://...`` for ``fit`` (genlight's run folder, config.yaml and sample grids, is local file I/O).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from genlight import load_model
from genlight.cli import main
from genlight.testing import cpu_trainer, smoke_setup

TINY_VAE = ["--model", "vae", "--model.hidden_channels", "4", "--model.latent_dim", "4", "--data.batch_size", "32",
            "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]  # fmt: skip


@pytest.fixture
def url() -> str:
    """A fresh folder of the in-memory file system (shared by the whole process), removed afterwards."""
    root = f"memory://genlight-test-{uuid.uuid4().hex[:8]}"
    yield root
    fs = fsspec.filesystem("memory")
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_trainer_checkpoints_resume_and_load_model_on_a_url(url: str, tmp_path: Path) -> None:
    fs = fsspec.filesystem("memory")
    model, dm, _ = smoke_setup("vae", tmp_path)
    trainer = cpu_trainer(f"{url}/run", max_epochs=1, limit_train_batches=2, limit_val_batches=1,
                          enable_checkpointing=True, callbacks=[ModelCheckpoint(save_last=True)])  # fmt: skip
    trainer.fit(model, datamodule=dm)
    last = f"{url}/run/checkpoints/last.ckpt"
    assert fs.isfile(last)
    loaded = load_model(last)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())

    again, dm2, _ = smoke_setup("vae", tmp_path)
    resumed = cpu_trainer(f"{url}/run", max_epochs=2, limit_train_batches=2, limit_val_batches=1)
    resumed.fit(again, datamodule=dm2, ckpt_path=last)
    assert resumed.global_step == 4 and resumed.current_epoch == 2  # 2 steps restored, 2 more


def test_cli_fit_with_checkpoints_at_a_url_then_validate_from_it(url: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    main(["fit", *TINY_VAE, "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.dirpath", f"{url}/ckpts",
          "--trainer.callbacks.save_last", "true"])  # fmt: skip
    fs = fsspec.filesystem("memory")
    assert fs.isfile(f"{url}/ckpts/last.ckpt")
    assert (tmp_path / "runs" / "vae" / "version_0" / "config.yaml").is_file()  # the run folder stays local
    assert not list(tmp_path.glob("memory*"))
    main(["validate", "--ckpt_path", f"{url}/ckpts/last.ckpt", "--data.batch_size", "32",
          "--trainer.limit_val_batches", "1", "--trainer.logger", "lightning.pytorch.loggers.CSVLogger",
          "--trainer.logger.save_dir", str(tmp_path / "val")])  # fmt: skip
    (metrics,) = tmp_path.glob("val/**/metrics.csv")
    assert "val/bpd_bound" in metrics.read_text()


def test_cli_fit_refuses_a_url_as_default_root_dir_before_writing(url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["fit", *TINY_VAE, "--trainer.default_root_dir", f"{url}/runs"])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert f"--trainer.default_root_dir {url}/runs is a URL" in err and "--trainer.callbacks.dirpath" in err
    assert list(tmp_path.iterdir()) == [] and not fsspec.filesystem("memory").exists(url)
