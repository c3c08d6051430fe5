"""The EMA callback: the average itself, where it is used (validation, every sampling callback,
whatever the callback order), checkpoints holding both weight sets, resume, load_model."""

from __future__ import annotations

import pytest
import torch

import lightning.pytorch as pl
from genlight import create_model, load_model
from genlight.callbacks import EMA
from genlight.callbacks.base import evaluating
from tests.helpers import cpu_trainer, digits_datamodule


def _vae(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("vae", latent_dim=4, hidden_channels=8)


def _first_weight(model) -> torch.Tensor:
    return next(model.parameters()).detach().clone()


class Probe(pl.Callback):
    """Records the first weight the model holds during validation steps and inside the sampling
    callbacks' ``evaluating`` context, and the live weight around them."""

    def __init__(self) -> None:
        self.in_validation: list[torch.Tensor] = []
        self.in_sampling: list[torch.Tensor] = []
        self.live: list[torch.Tensor] = []

    def on_validation_batch_end(self, trainer, pl_module, *args) -> None:
        self.in_validation.append(_first_weight(pl_module))

    def on_validation_epoch_end(self, trainer, pl_module) -> None:  # where FIDCallback samples
        with evaluating(pl_module):
            self.in_sampling.append(_first_weight(pl_module))

    def on_train_epoch_end(self, trainer, pl_module) -> None:  # where the image callbacks sample
        with evaluating(pl_module):
            self.in_sampling.append(_first_weight(pl_module))
        self.live.append(_first_weight(pl_module))


def test_average_matches_a_hand_computed_ema():
    model = _vae()
    ema = EMA(decay=0.5, warmup=False)
    trainer = cpu_trainer(max_steps=3, limit_val_batches=0, callbacks=[ema])
    weights: list[torch.Tensor] = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, *args) -> None:
            weights.append(_first_weight(pl_module))

    trainer.callbacks.append(Record())
    expected = _first_weight(model)
    trainer.fit(model, datamodule=digits_datamodule())
    for w in weights:
        expected = 0.5 * expected + 0.5 * w
    assert ema.num_updates == 3
    assert torch.allclose(next(iter(ema.shadow.values())), expected, atol=1e-6)
    assert not torch.allclose(expected, weights[-1])  # the average is not the live weight


@pytest.mark.parametrize("ema_first", [True, False])
def test_validation_and_sampling_use_the_average_whatever_the_order(ema_first):
    ema, probe = EMA(decay=0.9), Probe()
    callbacks = [ema, probe] if ema_first else [probe, ema]
    model = _vae()
    trainer = cpu_trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=1, callbacks=callbacks,
                          num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(model, datamodule=digits_datamodule())
    average = next(iter(ema.shadow.values()))
    assert len(probe.in_validation) == 2 and len(probe.in_sampling) == 4
    for seen in probe.in_validation[-1:] + probe.in_sampling[-1:]:
        assert torch.equal(seen, average)
    assert not torch.equal(probe.live[-1], average) and torch.equal(probe.live[-1], _first_weight(model))
    assert not ema.swapped  # the live weights are back in the model after fit


def test_checkpoint_holds_both_and_resume_restores_both(tmp_path):
    ema = EMA(decay=0.8)
    model = _vae()
    trainer = cpu_trainer(str(tmp_path), max_epochs=1, limit_train_batches=4, limit_val_batches=1, callbacks=[ema])
    trainer.fit(model, datamodule=digits_datamodule())
    path = tmp_path / "a.ckpt"
    trainer.save_checkpoint(path)
    average, live = next(iter(ema.shadow.values())).clone(), _first_weight(model)

    checkpoint = torch.load(path, weights_only=False)
    key = next(iter(ema.shadow))
    assert torch.equal(checkpoint["state_dict"][key], average)
    assert torch.equal(checkpoint["genlight_ema"]["live_state_dict"][key], live)
    assert torch.equal(_first_weight(load_model(path)), average)  # genlight sample / test use the average
    assert torch.equal(_first_weight(load_model(path, ema=False)), live)

    resumed_ema, resumed = EMA(decay=0.8), _vae(seed=5)
    restored: dict[str, torch.Tensor] = {}

    class AtStart(pl.Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            restored["live"] = _first_weight(pl_module)
            restored["average"] = next(iter(resumed_ema.shadow.values())).clone()

    trainer = cpu_trainer(str(tmp_path), max_epochs=2, limit_train_batches=4, limit_val_batches=1,
                          callbacks=[resumed_ema, AtStart()])  # fmt: skip
    trainer.fit(resumed, datamodule=digits_datamodule(), ckpt_path=path)
    assert torch.equal(restored["live"], live) and torch.equal(restored["average"], average)
    assert resumed_ema.num_updates == 8


def test_ema_off_by_default_and_bad_settings_refused():
    model = _vae()
    ema = EMA()
    cpu_trainer(max_steps=2, limit_val_batches=0, callbacks=[ema]).fit(model, datamodule=digits_datamodule())
    assert not ema.active and ema.num_updates == 0  # the VAE's ema_decay is 0
    with pytest.raises(ValueError, match="decay"):
        EMA(decay=1.5)
    with pytest.raises(ValueError, match="not a sub-module"):
        cpu_trainer(max_steps=1, callbacks=[EMA(decay=0.9, target="generator")]).fit(
            _vae(), datamodule=digits_datamodule()
        )
