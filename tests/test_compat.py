"""The upstream behaviour that ``genlight/_compat.py`` relies on, pinned: when a Lightning or jsonargparse
release changes one of these private attributes, these tests fail here, loudly. And the house rule:
no hidden machinery and no private upstream attribute anywhere else in ``genlight/``."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy

from genlight import _compat
from tests.helpers import cpu_trainer

PACKAGE = Path(__file__).resolve().parents[1] / "genlight"


def test_should_update_logs_follows_log_every_n_steps():
    seen: list[bool] = []

    class Probe(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            seen.append(_compat.should_update_logs(self.trainer))
            return (self.w - batch[0]).pow(2).mean()

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(8, 1)), batch_size=1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    cpu_trainer(max_epochs=1, log_every_n_steps=3, logger=True).fit(Probe())
    assert seen == [(i + 1) % 3 == 0 for i in range(8)]


def test_enable_find_unused_parameters_reaches_the_ddp_wrapper_kwargs():
    strategy = DDPStrategy()
    assert _compat.enable_find_unused_parameters(strategy)
    assert strategy._ddp_kwargs["find_unused_parameters"] is True
    assert not _compat.enable_find_unused_parameters(object())


def test_logged_step_values_sees_this_steps_self_log():
    seen: list[dict[str, float]] = []

    class Probe(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            loss = (self.w - batch[0]).pow(2).mean()
            self.log("train/probe", loss * 0 + batch_idx)
            return loss

        def on_train_batch_end(self, outputs, batch, batch_idx):
            seen.append({k: float(v) for k, v in _compat.logged_step_values(self.trainer)})

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(3, 1)), batch_size=1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    cpu_trainer(max_epochs=1).fit(Probe())
    assert [s["train/probe"] for s in seen] == [0.0, 1.0, 2.0]


def test_jsonargparse_debug_mode_reads_the_environment(monkeypatch):
    monkeypatch.delenv("JSONARGPARSE_DEBUG", raising=False)
    assert _compat.jsonargparse_debug_mode() is False
    monkeypatch.setenv("JSONARGPARSE_DEBUG", "true")
    assert _compat.jsonargparse_debug_mode() is True


def test_no_hidden_machinery_or_private_upstream_api_outside_compat():
    pattern = re.compile(
        r"__init_subclass__|currentframe|sys\._getframe|\._logger_connector|\._ddp_kwargs|\._results\b|"
        r"jsonargparse\._|_set_seed|__dict__\[|__dict__\.(get|setdefault|pop)\(|\._trainer\b|\"_trainer\""
    )
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{i}: {line.strip()}"
        for path in PACKAGE.rglob("*.py") if path.name != "_compat.py"
        for i, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)
    ]  # fmt: skip
    assert not found, "\n".join(found)


def test_set_initial_hparams_replaces_what_loggers_record():
    from genlight._compat import set_initial_hparams

    class Module(pl.LightningModule):
        def __init__(self, width: int = 3) -> None:
            super().__init__()
            self.save_hyperparameters()

    module = Module(width=5)
    assert module.hparams_initial == {"width": 5}
    assert set_initial_hparams(module, {"width": 7})
    assert module.hparams_initial == {"width": 7} and module.hparams == {"width": 5}
def test_help_formatter_rewrites_one_options_help_text():
    """jsonargparse appends "known subclasses" in the formatter's ``_get_help_string``; the rewrite sees it."""
    from jsonargparse import ArgumentParser

    seen: dict[str, str] = {}

    def rewrite(action, text):
        seen[action.dest] = text
        return text.replace("known subclasses", "registered names") if action.dest == "model" else text

    parser = ArgumentParser(formatter_class=_compat.help_formatter(rewrite), exit_on_error=False)
    parser.add_subclass_arguments(pl.Callback, "model", required=False)
    text = " ".join(parser.format_help().split())
    assert "known subclasses: " in seen["model"] and "lightning.pytorch.callbacks.ModelCheckpoint" in seen["model"]
    assert "registered names: " in text and "known subclasses" not in text


def test_attached_trainer_is_none_until_a_trainer_runs_the_module():
    seen: list[object] = []

    class Probe(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1))

        def training_step(self, batch, batch_idx):
            seen.append(_compat.attached_trainer(self))
            return (self.w - batch[0]).pow(2).mean()

        def train_dataloader(self):
            return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(2, 1)), batch_size=1)

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    probe = Probe()
    assert _compat.attached_trainer(probe) is None
    trainer = cpu_trainer(max_epochs=1)
    trainer.fit(probe)
    assert seen and all(t is trainer for t in seen)


def test_quiet_run_drops_lightnings_seed_line_and_keeps_other_records(caplog):
    """``quiet_run`` filters Lightning's seed logger by its internal name: the "Seed set to" line goes, a
    line of another logger stays."""
    import logging

    with caplog.at_level(logging.INFO), _compat.quiet_run():
        pl.seed_everything(3)
        logging.getLogger("genlight.test").info("kept")
    assert "kept" in caplog.text and "Seed set to" not in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        pl.seed_everything(3)
    assert "Seed set to" in caplog.text  # the filter is removed after the run
