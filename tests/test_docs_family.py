"""The worked example of docs/write-a-family.md (docs/examples/pixel_mixture.py, included into the page
as written) is a real family: it registers, passes genlight's whole family contract
(``genlight.testing.check_family``), trains from its YAML through the CLI, and its likelihood is a
normalised distribution."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import torch

from genlight.registry import MODELS
from genlight.testing import check_family

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "docs" / "examples"


@pytest.fixture
def pixel_mixture(monkeypatch):
    """Import the docs' family, registered for this test only (the registry is restored afterwards)."""
    MODELS.load_plugins()  # the built-ins first, so the copy below is the whole registry
    monkeypatch.setattr(MODELS, "_entries", dict(MODELS._entries))
    monkeypatch.setattr(MODELS, "_tags", dict(MODELS._tags))
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import pixel_mixture

    MODELS.add(pixel_mixture.PixelMixture, "pixel_mixture")  # as its decorator did at first import
    return pixel_mixture.PixelMixture


def test_the_page_includes_the_checked_file():
    page = (ROOT / "docs" / "write-a-family.md").read_text()
    assert '--8<-- "docs/examples/pixel_mixture.py"' in page
    assert '--8<-- "docs/examples/pixel_mixture.yaml"' in page


def test_docs_family_passes_the_family_contract(pixel_mixture, tmp_path):
    assert MODELS.get("pixel_mixture") is pixel_mixture
    check_family(pixel_mixture, tmp_path)


def test_docs_family_log_prob_sums_to_one_over_every_tiny_image(pixel_mixture):
    """On 1x2x2 images with 3 levels, exp(log_prob) over all 81 images sums to 1 (an exact likelihood)."""
    model = pixel_mixture(image_shape=(1, 2, 2), num_levels=3, num_components=4)
    images = torch.tensor(list(itertools.product(range(3), repeat=4)), dtype=torch.float32).view(-1, 1, 2, 2) / 2
    with torch.no_grad():
        total = model.log_prob(images).exp().sum()
    assert torch.allclose(total, torch.tensor(1.0), atol=1e-5)


def test_docs_family_yaml_builds_through_the_cli(pixel_mixture):
    from genlight.cli import GenlightCLI

    cli = GenlightCLI(args=["-c", str(EXAMPLES / "pixel_mixture.yaml"), "--trainer.logger", "false"], run=False)
    assert type(cli.model) is pixel_mixture and cli.model.hparams["num_components"] == 10
    assert tuple(cli.model.hparams["image_shape"]) == (1, 8, 8) and cli.model.hparams["num_levels"] == 17
