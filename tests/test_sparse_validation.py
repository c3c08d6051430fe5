"""Nothing lost between validations: ``last.ckpt`` is written at the end of every training epoch whatever
``check_val_every_n_epoch`` is, ``--ckpt_path last`` continues after it, a resumed fit names a
checkpoint "best" only when it beats the best of the run it resumed, and ``genlight fit`` ends with one
line naming the run folder and its ``last.ckpt``.

Lightning's ``epoch`` key in a checkpoint is the index of the epoch it was written in, counted from 0:
after ``--trainer.max_epochs 7`` the seventh epoch has index 6."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from genlight.modules.vae import VAE
from tests.test_cli_errors import QUICK, TINY_VAE, run

BATCHES = 2  # training batches an epoch (--trainer.limit_train_batches)
FEW = ["--data.batch_size", "16", "--trainer.limit_train_batches", str(BATCHES),"--trainer.limit_val_batches", "1",
       "--trainer.num_sanity_val_steps", "0", "--samples.every_n_epochs", "0"]  # fmt: skip
SPARSE = [*TINY_VAE, *QUICK, *FEW, "--trainer.check_val_every_n_epoch", "5"]


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=False)


def epochs_logged(folder: Path) -> set[int]:
    with open(folder / "metrics.csv") as f:
        return {int(r["epoch"]) for r in csv.DictReader(f) if r.get("epoch")}


def closing_line(out: str) -> str:
    lines = out.strip().splitlines()
    assert lines, "genlight fit printed nothing on stdout"
    return lines[-1]


def test_last_ckpt_holds_the_last_epoch_between_validations_and_resume_continues(tmp_path, monkeypatch, capsys):
    """7 epochs, validation every 5 (after the fifth, index 4): ``last.ckpt`` is the seventh epoch (index
    6, step 7 x 2), the best is the fifth; ``--ckpt_path last`` trains the eighth only and writes its own
    ``last.ckpt``, which the next ``last`` then finds."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "fit", *SPARSE, "--trainer.max_epochs", "7")
    assert code == 0, err
    run0 = Path("runs/vae/version_0")
    last = load(run0 / "checkpoints/last.ckpt")
    assert (last["epoch"], last["global_step"]) == (6, 7 * BATCHES)
    best = sorted(p.name for p in (run0 / "checkpoints").glob("best-*.ckpt"))
    assert best == [f"best-epoch=4-step={5 * BATCHES}.ckpt"], best
    assert closing_line(out) == f"genlight: run folder {run0}, last checkpoint {run0 / 'checkpoints/last.ckpt'}"

    code, out, err = run(capsys, "fit", *SPARSE, "--trainer.max_epochs", "8", "--ckpt_path", "last")
    assert code == 0 and f"resuming from {run0 / 'checkpoints/last.ckpt'}" in err, err
    run1 = Path("runs/vae/version_1")
    resumed = load(run1 / "checkpoints/last.ckpt")
    assert (resumed["epoch"], resumed["global_step"]) == (7, 8 * BATCHES)  # the eighth epoch, nothing replayed
    assert epochs_logged(run1) == {7}
    assert load(run0 / "checkpoints/last.ckpt")["global_step"] == 7 * BATCHES  # the earlier run is untouched
    assert closing_line(out) == f"genlight: run folder {run1}, last checkpoint {run1 / 'checkpoints/last.ckpt'}"

    code, out, err = run(capsys, "sample", "--ckpt_path", "last", "--model", "vae", "-n", "4", "--out", "s.png")
    assert code == 0 and f"using {run1 / 'checkpoints/last.ckpt'}" in err, err


def test_a_fit_shorter_than_the_validation_interval_writes_last_ckpt(tmp_path, monkeypatch, capsys):
    """3 epochs, validation every 5: no validation ran, no best, but ``last.ckpt`` is the third epoch."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "fit", *SPARSE, "--trainer.max_epochs", "3")
    assert code == 0, err
    folder = Path("runs/vae/version_0/checkpoints")
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    last = load(folder / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (2, 3 * BATCHES)
    assert closing_line(out).endswith(f"last checkpoint {folder / 'last.ckpt'}")


class VeeVAE(VAE):
    """A VAE whose monitored metric is ``|epoch - 1|``: best at its second epoch (index 1), worse after
    (test-only; importable for the CLI)."""

    def checkpoint_monitor(self) -> tuple[str, str]:
        return "val/vee", "min"

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        self.log("val/vee", float(abs(self.current_epoch - 1)))


VEE = ["--model", f"{__name__}.VeeVAE", "--model.hidden_channels", "4", "--model.latent_dim", "2",
       "--trainer.logger.init_args.name", "vee", *QUICK, *FEW]  # fmt: skip


def best_state(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The state the best-of-run checkpoint callback saved in ``ckpt``."""
    states = [v for k, v in ckpt["callbacks"].items() if k.startswith("ModelCheckpoint") and v["monitor"] == "val/vee"]
    assert len(states) == 1, list(ckpt["callbacks"])
    return states[0]


def test_resume_compares_with_the_best_of_the_run_it_resumed(tmp_path, monkeypatch, capsys):
    """Epoch 1 of 1 (score 1) is the first best; resumed to epoch 2 (score 0), a better one is written
    in the new folder and the old file kept; resumed again to epochs 3-4 (scores 1, 2), no checkpoint
    is called "best": the restored best (score 0, in the second run's folder) stays the best."""
    monkeypatch.chdir(tmp_path)
    runs = Path("runs/vee")
    code, _, err = run(capsys, "fit", *VEE, "--trainer.max_epochs", "1")
    assert code == 0, err
    first_best = runs / f"version_0/checkpoints/best-epoch=0-step={BATCHES}.ckpt"
    assert first_best.is_file()

    code, _, err = run(capsys, "fit", *VEE, "--trainer.max_epochs", "2", "--ckpt_path", "last")
    assert code == 0 and "resuming from runs/vee/version_0/" in err, err
    second_best = runs / f"version_1/checkpoints/best-epoch=1-step={2 * BATCHES}.ckpt"
    assert sorted((runs / "version_1/checkpoints").glob("best-*.ckpt")) == [second_best]
    assert first_best.is_file()  # another run's file is never removed
    state = best_state(load(runs / "version_1/checkpoints/last.ckpt"))
    assert float(state["best_model_score"]) == 0.0 and Path(state["best_model_path"]).resolve() == second_best.resolve()

    code, _, err = run(capsys, "fit", *VEE, "--trainer.max_epochs", "4", "--ckpt_path", "last")
    assert code == 0 and "resuming from runs/vee/version_1/" in err, err
    folder = runs / "version_2/checkpoints"
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]  # scores 1 and 2: no new "best"
    last = load(folder / "last.ckpt")
    assert (last["epoch"], last["global_step"]) == (3, 4 * BATCHES)
    state = best_state(last)
    assert float(state["best_model_score"]) == 0.0 and Path(state["best_model_path"]).resolve() == second_best.resolve()
    assert second_best.is_file() and first_best.is_file()
