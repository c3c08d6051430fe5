"""Digits example configs with command-line overrides (the way the likelihood benchmark trains them)
parse into the right family with the overridden arguments."""

from __future__ import annotations

from pathlib import Path

import pytest

from genlight import get_model_class
from genlight.callbacks import FIDCallback
from genlight.cli import GenlightCLI

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "digits"
NO_CALLBACKS = ["--trainer.callbacks=[]"]


@pytest.mark.parametrize(
    ("config", "overrides", "family", "hparams"),
    [
        ("vae.yaml", NO_CALLBACKS, "vae", {}),
        ("beta_vae.yaml", NO_CALLBACKS, "beta_vae", {}),
        ("cvae.yaml", NO_CALLBACKS, "cvae", {}),
        ("vae_vamp.yaml", NO_CALLBACKS, "vae", {"prior": "vamp"}),
        ("vae_vamp.yaml", [*NO_CALLBACKS, "--model.prior=mog", "--model.prior_components=10"], "vae",
         {"prior": "mog", "prior_components": 10}),
        ("ddpm.yaml", NO_CALLBACKS, "ddpm", {}),
    ],
    ids=["vae", "beta_vae", "cvae", "vae_vamp", "vae_mog", "ddpm"],
)  # fmt: skip
def test_example_config_with_overrides(config: str, overrides: list[str], family: str, hparams: dict) -> None:
    cli = GenlightCLI(args=["-c", str(EXAMPLES / config), *overrides, "--trainer.logger=false"], run=False)
    assert type(cli.model) is get_model_class(family)
    assert {k: cli.model.hparams[k] for k in hparams} == hparams
    assert not any(isinstance(c, FIDCallback) for c in cli.trainer.callbacks)  # the config's list is replaced


def test_without_the_override_the_config_callbacks_stay() -> None:
    cli = GenlightCLI(args=["-c", str(EXAMPLES / "vae.yaml"), "--trainer.logger=false"], run=False)
    assert any(isinstance(c, FIDCallback) for c in cli.trainer.callbacks)
