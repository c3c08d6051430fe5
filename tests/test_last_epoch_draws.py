"""The last epoch of a fit always draws its grids and FID: when ``max_epochs`` is below every
``every_n_epochs``, when a stop is requested mid-run (``trainer.should_stop``, what ``max_time``'s Timer
and early stopping set), and when the stop comes after the callbacks' own hook (then at ``on_train_end``)."""

from __future__ import annotations

import csv

import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger

from genlight.callbacks import FIDCallback, SampleGrid
from tests.helpers import cpu_trainer, digits_datamodule, tiny_vae


class StopAt(pl.Callback):
    """Sets ``trainer.should_stop`` in ``epoch`` (after its first training batch, as ``max_time``'s Timer
    does, or at that epoch's end with ``at_epoch_end``): a deterministic stand-in for a time limit."""

    def __init__(self, epoch: int, at_epoch_end: bool = False) -> None:
        self.epoch, self.at_epoch_end = epoch, at_epoch_end

    def on_train_batch_end(self, trainer: pl.Trainer, *args: object) -> None:
        if not self.at_epoch_end and trainer.current_epoch == self.epoch:
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.at_epoch_end and trainer.current_epoch == self.epoch:
            trainer.should_stop = True


def _callbacks(tmp_path):
    grid = SampleGrid(num_samples=4, every_n_epochs=5)
    fid = FIDCallback(metrics=["fid"], num_samples=20, batch_size=20, every_n_epochs=10, cache_dir=str(tmp_path / "c"))
    return grid, fid


def _fit(tmp_path, callbacks, **kwargs):
    settings = dict(max_epochs=2, limit_train_batches=2, limit_val_batches=1, logger=CSVLogger(str(tmp_path)))
    trainer = cpu_trainer(str(tmp_path), callbacks=callbacks, **{**settings, **kwargs})
    trainer.fit(tiny_vae(), digits_datamodule())
    return trainer


def _images(tmp_path) -> list[str]:
    folder = tmp_path / "lightning_logs" / "version_0" / "images"
    return sorted(p.name.split("_")[1] for p in folder.glob("samples_*.png"))


def _logged_fid(tmp_path) -> list[float]:
    with open(tmp_path / "lightning_logs" / "version_0" / "metrics.csv") as f:
        return [float(r["val/fid_digits"]) for r in csv.DictReader(f) if r.get("val/fid_digits")]


def test_max_epochs_below_every_n_epochs_draws_the_last_epoch(tmp_path):
    grid, fid = _callbacks(tmp_path)
    trainer = _fit(tmp_path, [grid, fid])
    assert _images(tmp_path) == ["epoch001"]  # every 5 epochs, 2 epochs: the last one only
    assert "val/fid_digits" in trainer.callback_metrics and fid.last_results
    assert len(_logged_fid(tmp_path)) == 1


def test_a_stop_mid_run_draws_the_epoch_it_stops_in(tmp_path):
    """``should_stop`` set after a training batch of epoch 1 of 20 (what the Timer of max_time does)."""
    grid, fid = _callbacks(tmp_path)
    trainer = _fit(tmp_path, [StopAt(1), grid, fid], max_epochs=20)
    assert trainer.current_epoch == 2  # stopped after epoch 1
    assert _images(tmp_path) == ["epoch001"]
    assert len(_logged_fid(tmp_path)) == 1 and fid.skipped_epochs == []


def test_a_stop_decided_after_the_callbacks_hook_draws_at_train_end(tmp_path):
    """The stopping callback runs after the grid and FID in the epoch's end hooks (and after validation):
    they see no stop at their own hook, so they draw once more in ``on_train_end``."""
    grid, fid = _callbacks(tmp_path)
    _fit(tmp_path, [grid, fid, StopAt(1, at_epoch_end=True)], max_epochs=20)
    assert len(_images(tmp_path)) == 1  # drawn after training (named by the epochs completed)
    assert len(_logged_fid(tmp_path)) == 1 and fid.last_results


def test_no_validation_in_the_last_epoch_still_gives_its_fid(tmp_path):
    grid, fid = _callbacks(tmp_path)
    _fit(tmp_path, [grid, fid], limit_val_batches=0)
    assert _images(tmp_path) == ["epoch001"]
    assert len(_logged_fid(tmp_path)) == 1


def test_off_stays_off_and_validate_does_not_count_as_a_last_epoch(tmp_path):
    grid = SampleGrid(num_samples=4, every_n_epochs=0)
    fid = FIDCallback(metrics=["fid"], num_samples=20, batch_size=20, every_n_epochs=10, cache_dir=str(tmp_path / "c"))
    _fit(tmp_path, [grid], max_epochs=1)
    assert _images(tmp_path) == []
    trainer = cpu_trainer(str(tmp_path), limit_val_batches=1, max_epochs=1, callbacks=[fid])
    trainer.validate(tiny_vae(), digits_datamodule(), verbose=False)
    assert not fid.last_results  # epoch 0 of validate is not a due epoch of every 10
