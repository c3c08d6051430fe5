"""``log_prob`` of every density family checks its input outside training: the wrong shape, values
outside [0, 1] or off the level grid are refused in one line; real batches score, under
``torch.no_grad()`` without a graph, and in training with one (training losses are built on it)."""

from __future__ import annotations

import pytest
import torch

import genlight
from genlight.functional import check_discrete_images
from genlight.types import DensityModel
from tests.helpers import smoke_setup

DENSITY_FAMILIES = genlight.list_models(capability=DensityModel)


@pytest.mark.parametrize("name", DENSITY_FAMILIES)
def test_log_prob_checks_its_input_outside_training(name: str, tmp_path) -> None:
    torch.manual_seed(0)
    model, dm, _ = smoke_setup(name, tmp_path)
    x = next(iter(dm.val_dataloader()))[0][:4]
    model.eval()
    with torch.no_grad():
        scores = model.log_prob(x)
    assert scores.shape == (4,) and torch.isfinite(scores).all() and not scores.requires_grad
    bad_shape = x[..., :-1] if x.dim() == 4 else x[:, :1]
    with pytest.raises(ValueError, match=r"log_prob: x must have shape \(B, ") as info:
        model.log_prob(bad_shape)
    assert "\n" not in str(info.value)
    if model.data_is_discrete:
        levels = int(model.hparams.num_levels)
        for bad, needle in ((x - 0.5, "got values in [-0.5"), (x * 0.5 + 0.3 / (levels - 1), "values between the levels")):
            with pytest.raises(ValueError, match=f"on the {levels}-level grid") as info:
                model.log_prob(bad)
            assert needle in str(info.value) and "\n" not in str(info.value)
    model.train()
    assert model.log_prob(x).requires_grad  # differentiable: training losses are built on it


def test_check_discrete_images_accepts_the_grid_and_refuses_the_rest() -> None:
    grid = torch.randint(0, 17, (3, 1, 8, 8)).float() / 16
    check_discrete_images(grid, 17, (1, 8, 8))
    check_discrete_images(torch.randn(3, 2), 0, (2,))  # continuous points: the shape only
    with pytest.raises(ValueError, match=r"x must have shape \(B, 1, 8, 8\), got \(3, 1, 28, 28\)"):
        check_discrete_images(torch.zeros(3, 1, 28, 28), 17, (1, 8, 8))
    with pytest.raises(ValueError, match=r"got values in \[0, 1.5\]"):
        check_discrete_images(grid * 1.5, 17, (1, 8, 8))
    with pytest.raises(ValueError, match="values between the levels"):
        check_discrete_images(grid * 0.9, 17, (1, 8, 8))
