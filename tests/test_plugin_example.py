"""The shipped downstream example (examples/plugin_example) subclasses and trains, its checkpoint
loads back as the subclass, and its own test (genlight.testing.check_family) passes.
(Entry-point discovery itself is tested in test_registry.py.)"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tomllib

from genlight import load_model
from tests.helpers import linked_kwargs, tiny_trainer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "plugin_example"


def test_plugin_example_subclass_trains_and_reloads(digits, tmp_path, monkeypatch):
    entry = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())["project"]["entry-points"]["genlight.models"]
    assert entry == {"free_bits_vae": "genlight_freebits.models:FreeBitsVAE"}
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from genlight_freebits.models import FreeBitsVAE

    model = FreeBitsVAE(**linked_kwargs(FreeBitsVAE, digits), hidden_channels=4, free_bits=0.5)
    trainer = tiny_trainer()
    trainer.fit(model, datamodule=digits)
    assert model.hparams.free_bits == 0.5 and model.hparams.num_levels == 17
    trainer.save_checkpoint(tmp_path / "fb.ckpt")
    loaded = load_model(tmp_path / "fb.ckpt")
    assert type(loaded).__name__ == "FreeBitsVAE" and loaded.hparams.free_bits == 0.5


def test_plugin_example_own_test_runs_the_family_contract(tmp_path, monkeypatch):
    """examples/plugin_example/tests/test_family.py, called here: check_family(FreeBitsVAE) passes."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    spec = importlib.util.spec_from_file_location("plugin_example_test_family", EXAMPLE / "tests" / "test_family.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.test_free_bits_vae_meets_the_family_contract(tmp_path)
    assert (tmp_path / "check_fit_and_capabilities" / "model.ckpt").is_file()  # the kit really fitted and saved


@pytest.mark.slow  # ~10-20 s: a fresh interpreter imports torch and Lightning
def test_pytest_in_the_plugin_example_folder_passes(tmp_path):
    """What the downstream package's developer runs: `pytest` in its folder, genlight importable."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]), "WANDB_MODE": "offline"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t")],
        cwd=EXAMPLE, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "1 passed" in result.stdout
