"""GenerativeModule.log_train: cheap per-step training logs, exact epoch means."""

from __future__ import annotations

import csv

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.utils.data import DataLoader, TensorDataset

from genlight.datamodules.digits import load_digits_tensors
from genlight.modules.classifier import MLPClassifier
from genlight.modules.vae import VAE


class RecordingVAE(VAE):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seen: list[tuple[int, int, float]] = []  # (epoch, batch size, loss) of every step
        self.log_calls = 0
        self.step_log_calls: list[int] = []  # self.log calls made by each training_step

    def log(self, *args, **kwargs) -> None:
        self.log_calls += 1
        super().log(*args, **kwargs)

    def training_step(self, batch, batch_idx):
        calls = self.log_calls
        loss = super().training_step(batch, batch_idx)
        self.step_log_calls.append(self.log_calls - calls)
        self.seen.append((self.current_epoch, len(batch[0]), float(loss.detach())))
        return loss


def _loader(n: int = 70, batch_size: int = 32) -> DataLoader:
    x, y = load_digits_tensors()
    return DataLoader(TensorDataset(x[:n], y[:n]), batch_size=batch_size)  # 32, 32, 6: unequal batches


def _fit(model: pl.LightningModule, tmp_path, epochs: int = 2, log_every_n_steps: int = 2) -> list[dict[str, str]]:
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=epochs, logger=CSVLogger(tmp_path, name="", version=""),
        log_every_n_steps=log_every_n_steps, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=_loader())
    model.trainer_ref = trainer
    with open(tmp_path / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_epoch_means_are_batch_weighted_means_of_step_losses(tmp_path):
    model = RecordingVAE(latent_dim=4, hidden_channels=8)
    rows = _fit(model, tmp_path)
    epoch_rows = [r for r in rows if r.get("train/loss_epoch")]
    assert len(epoch_rows) == 2
    for epoch, row in enumerate(epoch_rows):
        steps = [(b, loss) for e, b, loss in model.seen if e == epoch]
        assert [b for b, _ in steps] == [32, 32, 6]
        expected = sum(b * loss for b, loss in steps) / sum(b for b, _ in steps)
        assert float(row["train/loss_epoch"]) == pytest.approx(expected, rel=1e-5)
        assert float(row["train/recon_epoch"]) > 0 and float(row["train/kl_epoch"]) >= 0
    # at the end, callback_metrics["train/loss"] is the last epoch's mean (as Lightning's on_epoch=True gave)
    assert float(model.trainer_ref.callback_metrics["train/loss"]) == pytest.approx(
        float(epoch_rows[-1]["train/loss_epoch"]), rel=1e-5
    )


def test_step_values_only_on_logging_steps(tmp_path):
    model = RecordingVAE(latent_dim=4, hidden_channels=8)
    rows = _fit(model, tmp_path, epochs=2, log_every_n_steps=2)  # 6 steps: logs written at steps 1, 3, 5
    step_rows = [r for r in rows if r.get("train/loss")]
    assert [int(r["step"]) for r in step_rows] == [1, 3, 5]
    for row in step_rows:
        assert float(row["train/loss"]) == pytest.approx(model.seen[int(row["step"])][2], rel=1e-5)
        assert row["train/recon"] and row["train/kl"]
    # no self.log at all on the other steps; one log_dict of loss (+ one of recon, kl) on logging steps
    assert model.step_log_calls == [0, 3, 0, 3, 0, 3]


def test_classifier_logs_train_loss_and_acc(tmp_path):
    model = MLPClassifier(hidden=(16, 8))
    rows = _fit(model, tmp_path, epochs=1, log_every_n_steps=1)
    assert all(r["train/loss"] and r["train/acc"] for r in rows if r.get("step") and not r.get("train/loss_epoch"))
    epoch = [r for r in rows if r.get("train/loss_epoch")]
    assert len(epoch) == 1 and 0.0 <= float(epoch[0]["train/acc_epoch"]) <= 1.0
    assert torch.isfinite(model.trainer_ref.callback_metrics["train/loss"])


class EpochHookVAE(RecordingVAE):
    """Overrides ``on_train_epoch_end`` and ``setup`` without ``super()``: genlight's parts still run."""

    def on_train_epoch_end(self) -> None:
        self.epoch_hook_calls = getattr(self, "epoch_hook_calls", 0) + 1

    def setup(self, stage: str) -> None:
        self.setup_calls = getattr(self, "setup_calls", 0) + 1


def test_overridden_hooks_keep_genlights_part(tmp_path):
    model = EpochHookVAE(latent_dim=4, hidden_channels=8)
    rows = _fit(model, tmp_path)
    assert model.epoch_hook_calls == 2 and model.setup_calls == 1
    epoch_rows = [r for r in rows if r.get("train/loss_epoch")]
    assert len(epoch_rows) == 2  # the epoch means of log_train are still logged
