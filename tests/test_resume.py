"""Exact resume, for every registered family: a fit stopped and resumed equals one that never stopped."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import pytest
import torch

from genlight import list_models
from genlight.callbacks import default_fit_callbacks
from genlight.callbacks.nan_guard import NaNGuard
from tests.helpers import smoke_setup


class LossRecorder(pl.Callback):
    """Every training batch's returned loss and ``train/...`` values (running sums), as floats."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, *args: Any) -> None:
        terms = NaNGuard()._terms(trainer, pl_module, outputs)  # returned loss, log_train sums, logged values
        row = {name: float(value) for name, value in terms if isinstance(value, torch.Tensor) and value.numel() == 1}
        self.rows.append({"epoch": trainer.current_epoch, **row})


def _fit(name: str, root, epochs: int, ckpt_path: str | None = None) -> tuple[pl.LightningModule, pl.Trainer, LossRecorder]:
    pl.seed_everything(0, workers=True)
    model, dm, trainer_kwargs = smoke_setup(name, root / "data")
    recorder = LossRecorder()
    kwargs: dict[str, Any] = dict(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        limit_train_batches=4, limit_val_batches=2, num_sanity_val_steps=0, **trainer_kwargs,
    )  # fmt: skip
    kwargs.update(deterministic=True, max_epochs=epochs, max_steps=-1, default_root_dir=str(root / "run"))
    trainer = pl.Trainer(callbacks=[recorder, *default_fit_callbacks(model)], **kwargs)
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model, trainer, recorder


@pytest.mark.parametrize("name", list_models())
def test_resume_is_exact(name, tmp_path):
    """Fit one epoch and save (the CLI's default callbacks: checkpoints, NaN guard, RNG state), resume
    to two epochs in a new Trainer; weights, optimizer and scheduler state and every logged training
    loss of the second epoch equal a two-epoch run that never stopped (same seed, deterministic mode).
    The resume is at an epoch boundary: a DataLoader's shuffling is drawn when an epoch starts, so a
    mid-epoch resume would replay that epoch's order only with a resumable sampler."""
    full_model, full_trainer, full_rec = _fit(name, tmp_path / "full", epochs=2)
    _fit(name, tmp_path / "part", epochs=1)
    last = tmp_path / "part" / "run" / "checkpoints" / "last.ckpt"
    assert last.is_file()
    model, trainer, rec = _fit(name, tmp_path / "resumed", epochs=2, ckpt_path=str(last))

    assert trainer.global_step == full_trainer.global_step
    resumed_rows = rec.rows
    full_rows = [r for r in full_rec.rows if r["epoch"] == 1]
    assert resumed_rows and resumed_rows == full_rows
    full_state, state = full_model.state_dict(), model.state_dict()
    assert full_state.keys() == state.keys()
    for key in state:
        assert torch.equal(state[key], full_state[key]), key
    for full_opt, opt in zip(full_trainer.optimizers, trainer.optimizers, strict=True):
        a, b = full_opt.state_dict()["state"], opt.state_dict()["state"]
        assert a.keys() == b.keys()
        for k in a:
            for field, value in a[k].items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b[k][field])), (k, field)
    for full_cfg, cfg in zip(full_trainer.lr_scheduler_configs, trainer.lr_scheduler_configs, strict=True):
        assert full_cfg.scheduler.state_dict() == cfg.scheduler.state_dict()
