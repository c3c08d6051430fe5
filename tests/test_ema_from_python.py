"""A family's ``ema_decay`` from Python: a plain ``Trainer(...).fit(model)`` without the EMA callback warns
that nothing is averaged, with the callback it does not; loading a checkpoint imports no callback."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

from genlight.callbacks import EMA
from genlight.identity import EMA_KEY

from tests.helpers import build_model, cpu_trainer, digits_datamodule

ROOT = Path(__file__).resolve().parents[1]


def _fit_warnings(callbacks: list, tmp_path: Path, **overrides) -> list[str]:
    dm = digits_datamodule(batch_size=16)
    model = build_model("dcgan", dm)  # ema_decay = 0.999
    for name, value in overrides.items():
        setattr(model, name, value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cpu_trainer(str(tmp_path), max_steps=1, limit_val_batches=0, callbacks=callbacks).fit(model, datamodule=dm)
    return [str(w.message) for w in caught if "ema_decay" in str(w.message)]


def test_a_plain_fit_of_an_ema_family_warns_that_nothing_is_averaged(tmp_path: Path) -> None:
    (message,) = _fit_warnings([], tmp_path)
    assert message.startswith("dcgan sets ema_decay=0.999 but no EMA callback is attached")
    assert "callbacks=[genlight.callbacks.EMA()]" in message


def test_no_warning_with_the_ema_callback_or_without_a_decay(tmp_path: Path) -> None:
    assert _fit_warnings([EMA()], tmp_path / "ema") == []
    assert _fit_warnings([], tmp_path / "off", ema_decay=0.0) == []


def test_loading_a_checkpoint_imports_no_callback_module(tmp_path: Path) -> None:
    dm = digits_datamodule(batch_size=16)
    trainer = cpu_trainer(str(tmp_path), max_steps=1, limit_val_batches=0, callbacks=[EMA()])
    trainer.fit(build_model("dcgan", dm), datamodule=dm)
    path = tmp_path / "model.ckpt"
    trainer.save_checkpoint(path)
    code = (
        "import sys, genlight\n"
        f"model = genlight.load_model({str(path)!r}, ema=False)\n"
        "print(type(model).__name__, sorted(m for m in sys.modules if m.startswith('genlight.callbacks')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[-2] == "DCGAN []"
    assert EMA_KEY == "genlight_ema"  # the key old checkpoints hold, now in genlight.identity
