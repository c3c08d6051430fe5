"""The likelihood benchmark's rows: unique keys, configs and overrides the CLI accepts, table cells."""

from __future__ import annotations

import re

import pytest

from benchmarks.likelihood_digits import ROWS, Row, fmt_row
from genlight.cli import GenlightCLI
from genlight.registry import MODELS


def test_row_keys_are_unique_and_default_to_the_family() -> None:
    keys = [row.key for row in ROWS]
    assert len(keys) == len(set(keys)), keys
    assert Row("x", "vae", "examples/digits/vae.yaml").key == "vae"
    assert {"vae", "vae_vamp", "vae_mog", "beta_vae", "cvae", "ddpm"} <= set(keys)


@pytest.mark.parametrize("row", [r for r in ROWS if r.family in ("vae", "beta_vae", "cvae", "ddpm")], ids=lambda r: r.key)
def test_row_config_and_overrides_instantiate(row: Row) -> None:
    """The example config plus the row's overrides parse (real argument names) into the row's family."""
    cli = GenlightCLI(args=["-c", row.config, *row.overrides, "--trainer.logger=false"], run=False)
    assert type(cli.model) is MODELS.get(row.family)
    if row.key == "vae_mog":
        assert cli.model.hparams.prior == "mog" and cli.model.hparams.prior_components == 10
    if row.key == "vae_vamp":
        assert cli.model.hparams.prior == "vamp"
    assert cli.trainer.callbacks is not None


def test_table_cell_names_both_cvae_bounds_and_the_key() -> None:
    r = {"status": "ok", "kind": "bound", "test_bpd": 1.9, "test_iwae_bpd": 1.8, "test_bpd_y": 1.85,
         "test_iwae_bpd_y": 1.75, "val_bpd": 1.91, "epochs": "3 / 4", "train_s": 1.0, "params": 10, "samples_per_s": 5.0}  # fmt: skip
    line = fmt_row("CVAE", "cvae", r)
    assert "-log p(x): 1.900" in line and "-log p(x|y): 1.850" in line and "1.750" in line
    assert re.match(r"\| .*? \| `([a-z0-9_]+)` \|", line).group(1) == "cvae"  # the key the script re-reads rows by
    assert "failed" in fmt_row("DDPM", "ddpm", {"status": "failed: boom"})
