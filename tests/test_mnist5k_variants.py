"""``source: mnist5k`` of digit_domains, digit_captions and digit_outliers: the 28x28 images and split of
mnist5k, thick/thin as grey dilation/erosion by the 3x3 cross (checked against an unfold oracle), the
256 levels kept, caption measures and thresholds from the 28x28 training images."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from genlight import create_datamodule
from genlight.datamodules.digit_domains import MNIST5K_DOMAIN_OPS

CROSS = [1, 3, 4, 5, 7]  # positions of the 3x3 cross in a row-major 3x3 window


def _setup(name: str, **kwargs):
    dm = create_datamodule(name, batch_size=50, source="mnist5k", **kwargs)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def plain():
    dm = create_datamodule("mnist5k")
    dm.setup("fit")
    return dm


def _window(x: torch.Tensor, outside: float) -> torch.Tensor:
    """``(n, 1, H, W)`` -> ``(n, 5, H, W)``: each pixel's cross neighbourhood, ``outside`` beyond the border."""
    n, _, h, w = x.shape
    cols = F.unfold(F.pad(x, (1, 1, 1, 1), value=outside), 3)  # (n, 9, H*W)
    return cols[:, CROSS].view(n, 5, h, w)


def test_domains_at_28x28_are_cross_morphology_on_the_mnist5k_split(plain):
    dm = _setup("digit_domains", domains=["plain", "thick", "thin", "inverted", "shifted"])
    assert dm.image_shape == (1, 28, 28) and dm.num_levels == 256
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (4000, 500, 500)
    every = torch.stack([dm.test_set[i][3] for i in range(100)])  # (100, 5, 1, 28, 28)
    x0 = torch.stack([plain.test_set[i][0] for i in range(100)])
    assert torch.equal(every[:, 0], x0)  # the plain domain is mnist5k's test split
    assert torch.equal(every[:, 1], _window(x0, 0.0).amax(1, keepdim=True))  # dilation
    assert torch.equal(every[:, 2], _window(x0, 1.0).amin(1, keepdim=True))  # erosion, outside ignored
    assert torch.equal(every[:, 4, ..., 3:], x0[..., :-3]) and every[:, 4, ..., :3].sum() == 0
    assert every[:, 1].mean() > x0.mean() > every[:, 2].mean() > 0
    scaled = every * 255
    assert (scaled - scaled.round()).abs().max() < 1e-4  # 256 levels kept in every domain (1 - x: up to rounding)
    assert torch.isin(every[:, :3], torch.unique(x0)).all()  # maxima and minima of grid values: exactly
    for i in range(40):  # training items: one domain each, the op applied to the mnist5k training image
        x, y, d = dm.train_set[i]
        x_plain, y_plain = plain.train_set[i]
        assert int(y) == int(y_plain)
        assert torch.equal(x, MNIST5K_DOMAIN_OPS[dm.domain_names[int(d)]](x_plain[None])[0])


def test_captions_measure_the_28x28_training_images(plain):
    dm = _setup("digit_captions")
    assert dm.image_shape == (1, 28, 28) and dm.thresholds.shape == (10, 3, 2)
    x, y, tokens, levels = (torch.stack(t) for t in zip(*(dm.train_set[i] for i in range(len(dm.train_set)))))
    assert x.shape[1:] == (1, 28, 28) and tokens.shape[1] == dm.caption_length
    assert torch.equal(dm.levels_of(x, y), levels)  # recomputed from the pixels with the split's thresholds
    # per-class tertiles of the training part: every level is near a third of the training images (the
    # held-out combinations took some of them out)
    share = torch.bincount(levels[:, 1], minlength=3).float() / len(levels)
    assert ((share - 1 / 3).abs() < 0.06).all(), share
    held = dm.reference_dataset("held_out")
    assert len(held) > 50 and len(dm.train_set) + len(dm.val_set) + len(held) == 4500
    assert len(dm.test_set) == 500


def test_outliers_at_28x28_use_the_mnist5k_test_split(plain):
    dm = _setup("digit_outliers", held_out_class=3)
    assert dm.num_levels == 256
    x, y = dm.inliers()
    assert len(x) == 450 and 3 not in y.tolist()
    sets = dm.outlier_sets()
    assert sets["held_out_class"].shape == (500, 1, 28, 28)
    noise = sets["uniform_noise"] * 255
    assert sets["uniform_noise"].shape == (450, 1, 28, 28) and torch.equal(noise, noise.round())
    every = _setup("digit_outliers")
    assert torch.equal(every.inliers()[0], torch.stack([plain.test_set[i][0] for i in range(500)]))


def test_puzzlegan_cuts_28x28_patches_and_trains_a_step(tmp_path):
    """Patches of 10 pixels (the 3-of-8 of the digits, scaled to 28) from a plain mnist5k batch: the
    squares of the image at their positions, most of them with ink; one fit step on 100 images."""

    from genlight import create_model
    from tests.helpers import cpu_trainer

    dm = create_datamodule("mnist5k", batch_size=20, subset=100)
    model = create_model("puzzlegan", image_shape=dm.image_shape, patch_size=10,
                         embed_dim=16, width=8, width_d=8, latent_dim=2)  # fmt: skip
    dm.setup("fit")
    x, _ = next(iter(dm.val_dataloader()))
    patches, mask = model.cut_patches(x, torch.Generator().manual_seed(0))
    assert patches.shape == (20, 3, 1, 10, 10) and mask.shape == (20, 1, 28, 28)
    assert ((mask.sum((1, 2, 3)) >= 100) & (mask.sum((1, 2, 3)) <= 300)).all()
    assert torch.isin(patches, x).all()
    assert (patches.amax((2, 3, 4)) > 0.5).float().mean() > 0.5  # most patches show part of the digit
    cpu_trainer(str(tmp_path), max_steps=2, limit_val_batches=1).fit(model, datamodule=dm)
    assert model.global_step >= 2
