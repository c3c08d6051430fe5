"""The worked example of docs/write-a-datamodule.md (docs/examples/stripes.py, included into the page as
written) is a real datamodule: it registers, its batches are what the page says, and a family is built
on it through the CLI with the shapes linked."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genlight.registry import DATAMODULES

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture
def stripes(monkeypatch):
    """Import the docs' datamodule, registered for this test only (the registry is restored afterwards)."""
    DATAMODULES.load_plugins()
    monkeypatch.setattr(DATAMODULES, "_entries", dict(DATAMODULES._entries))
    monkeypatch.setattr(DATAMODULES, "_tags", dict(DATAMODULES._tags))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import stripes

    DATAMODULES.add(stripes.StripesDataModule, "stripes")  # as its decorator did at first import
    return stripes.StripesDataModule


def test_the_page_includes_the_checked_file():
    assert '--8<-- "docs/examples/stripes.py"' in (ROOT / "docs" / "write-a-datamodule.md").read_text()


def test_batches_are_binary_stripes_labelled_by_orientation(stripes):
    dm = stripes(num_examples=500, batch_size=50, seed=3)
    dm.setup("fit")
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (360, 40, 100)  # 20% test, then 10% val
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (50, 1, 8, 8) and set(x.unique().tolist()) <= {0.0, 1.0} and set(y.tolist()) == {0, 1}
    horizontal = (x == x[..., :1]).flatten(1).all(1)  # every row constant
    vertical = (x == x[..., :1, :]).flatten(1).all(1)  # every column constant
    assert torch.equal(horizontal & ~vertical, y == 0) and torch.equal(vertical & ~horizontal, y == 1)
    again = stripes(num_examples=500, batch_size=50, seed=3)
    again.setup("fit")
    assert torch.equal(again.train_set[0][0], dm.train_set[0][0])  # drawn from the seeds


def test_a_family_is_built_on_it_through_the_cli(stripes):
    from genlight.cli import GenlightCLI

    cli = GenlightCLI(args=["--model", "nade", "--data", "stripes", "--data.num_examples", "100", "--trainer.logger", "false"], run=False)
    assert type(cli.datamodule) is stripes
    assert tuple(cli.model.hparams["image_shape"]) == (1, 8, 8) and cli.model.hparams["num_levels"] == 2


def test_a_range_is_refused_in_one_line(stripes):
    from genlight.errors import ConfigError

    with pytest.raises(ConfigError, match="num_examples") as error:
        stripes(num_examples=3)
    assert "\n" not in str(error.value)
