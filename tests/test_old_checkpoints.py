"""Checkpoints written by genlight 0.1.0 before the package was restructured (``tests/data/checkpoints_v0_1``,
one per family and one from ``genlight fit``) still load as the right class, with the same weights, and
density models still score (sampling from the same weights is covered by the registry-wide tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlight import get_model_class, list_models, load_model
from genlight.types import DensityModel

OLD = Path(__file__).parent / "data" / "checkpoints_v0_1"
FAMILIES = sorted(p.stem for p in OLD.glob("*.ckpt") if not p.stem.startswith("cli_"))


def test_every_family_of_that_release_has_a_checkpoint():
    assert set(FAMILIES) <= set(list_models()) and len(FAMILIES) == 22


@pytest.mark.parametrize("name", FAMILIES)
def test_old_checkpoint_loads_with_its_weights(name):
    path = OLD / f"{name}.ckpt"
    saved = torch.load(path, map_location="cpu", weights_only=False)
    model = load_model(path)
    assert type(model) is get_model_class(name)
    state = model.state_dict()
    assert state.keys() == saved["state_dict"].keys()
    for key, value in saved["state_dict"].items():
        assert torch.equal(state[key], value), key
    torch.manual_seed(0)
    if isinstance(model, DensityModel) and len(model.hparams["image_shape"]) == 3:
        levels = int(model.hparams.get("num_levels", 256) or 256)
        x = torch.randint(levels, (2, *model.hparams["image_shape"])).float() / (levels - 1)
        with torch.no_grad():
            assert torch.isfinite(model.log_prob(x)).all()


def test_old_cli_checkpoint_loads():
    model = load_model(OLD / "cli_vae.ckpt")
    assert type(model) is get_model_class("vae") and model.hparams["hidden_channels"] == 4
