"""The shipped downstream example (examples/plugin_example) subclasses and trains, and its checkpoint
loads back as the subclass. (Entry-point discovery itself is tested in test_registry.py.)"""

from __future__ import annotations

from pathlib import Path

import tomllib

from genlight import load_model
from tests.helpers import linked_kwargs, tiny_trainer

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "plugin_example"


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
