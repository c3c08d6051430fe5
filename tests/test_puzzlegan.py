"""Puzzle-GAN: patches cut where the positions say and masks of those squares, mask IoU on constructed
cases, completions that do not depend on the patches' order (the model never gets positions), masks
better than chance after a short training on held-out digits, the figures logged, the completion grid,
bad arguments refused."""

from __future__ import annotations

import logging

import lightning.pytorch as pl
import pytest
import torch
from PIL import Image

from genlight import create_datamodule, create_model
from genlight.callbacks import PatchCompletions, SampleGrid
from genlight.callbacks.completion import completion_rows, patch_strip
from genlight.nn.puzzle import (
    composite, corner_index, coverage, cut_patches, mask_iou, paste_patches, patch_masks, random_positions, union_mask,
)  # fmt: skip
from genlight.types import PatchCompleter, Sampler
from tests.helpers import cpu_trainer

SMALL = {"embed_dim": 16, "width": 8, "width_d": 8, "latent_dim": 2}


def _numbered(n: int = 2, c: int = 2, h: int = 8, w: int = 8) -> torch.Tensor:
    """Images whose every value is distinct: ``x[b, ch, i, j] = ((b * c + ch) * h + i) * w + j``."""
    return torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w)


# ------------------------------------------------------------------------------------ patches and masks
def test_patches_are_the_squares_at_their_positions_and_masks_mark_them():
    x = _numbered()
    positions = torch.tensor([[[0, 0], [5, 2], [3, 4]], [[1, 5], [0, 0], [2, 2]]])  # (2, 3, 2) top-left corners
    patches = cut_patches(x, positions, 3)
    assert patches.shape == (2, 3, 2, 3, 3)
    for b in range(2):
        for k in range(3):
            r, c = positions[b, k].tolist()
            assert torch.equal(patches[b, k], x[b, :, r : r + 3, c : c + 3]), (b, k)
    masks = patch_masks(positions, 3, (8, 8))
    assert masks.shape == (2, 3, 8, 8) and masks.sum((2, 3)).eq(9).all()
    assert masks[0, 1, 5:8, 2:5].eq(1).all() and masks[0, 1, :5].eq(0).all() and masks[0, 1, :, :2].eq(0).all()
    assert torch.equal(union_mask(masks), masks.amax(1, keepdim=True))  # hard masks: their union
    pasted = paste_patches(torch.zeros_like(x), patches, positions)  # the inverse of cutting, on the squares
    assert torch.equal(pasted, x * union_mask(masks))


def test_a_certain_corner_covers_its_patch_and_an_uncertain_one_spreads_the_box():
    positions = torch.tensor([[[0, 0], [5, 2], [3, 4]]])
    flat = corner_index(positions, 8, 3)  # corners on a 6x6 grid
    assert flat.tolist() == [[0, 32, 22]]
    one_hot = torch.zeros(1, 3, 36).scatter_(2, flat[..., None], 1.0).view(1, 3, 6, 6)
    assert torch.equal(coverage(one_hot, 3), patch_masks(positions, 3, (8, 8)))
    spread = torch.softmax(torch.randn(2, 3, 6, 6).flatten(2), 2).view(2, 3, 6, 6)
    covered = coverage(spread, 3)
    assert torch.allclose(covered.sum((2, 3)), torch.full((2, 3), 9.0))  # each corner's box has 9 pixels
    assert covered.min() >= 0 and covered.max() <= 1 + 1e-6


def test_composite_pastes_patches_at_certain_corners_and_blends_uncertain_ones():
    x = torch.rand(2, 1, 8, 8)
    positions = random_positions(2, 3, (8, 8), 3, generator=torch.Generator().manual_seed(0))
    patches, mask = cut_patches(x, positions, 3), union_mask(patch_masks(positions, 3, (8, 8)))
    one_hot = torch.zeros(2, 3, 36).scatter_(2, corner_index(positions, 8, 3)[..., None], 1.0).view(2, 3, 6, 6)
    background = torch.full_like(x, -1.0)
    out = composite(background, patches, one_hot)
    assert torch.allclose(out * mask, x * mask) and torch.equal(out * (1 - mask), background * (1 - mask))
    split = torch.zeros(2, 1, 6, 6)
    split[:, 0, 0, 0] = split[:, 0, 5, 5] = 0.5  # one patch, half at the top-left corner, half at the bottom-right
    out = composite(background, patches[:, :1], split)
    expected = 0.5 * background + 0.5 * paste_patches(background, patches[:, :1], torch.tensor([[[0, 0]], [[0, 0]]]))
    assert torch.allclose(out[:, :, :3, :3], expected[:, :, :3, :3])  # a half-certain box: half patch, half background
    assert torch.equal(out[:, :, 3:5], background[:, :, 3:5])  # rows no box reaches


def test_positions_are_uniform_over_the_corners_that_fit_and_seeded():
    g = torch.Generator().manual_seed(3)
    positions = random_positions(2000, 3, (8, 6), 4, generator=g)
    assert positions.shape == (2000, 3, 2) and positions.dtype == torch.long
    assert set(positions[..., 0].unique().tolist()) == set(range(5))  # rows 0..H-p
    assert set(positions[..., 1].unique().tolist()) == set(range(3))  # cols 0..W-p
    again = random_positions(2000, 3, (8, 6), 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(positions, again)
    with pytest.raises(ValueError, match="does not fit"):
        random_positions(1, 1, (8, 8), 9)


def test_model_cuts_patches_with_the_true_mask_from_its_generator():
    model = create_model("puzzlegan", image_shape=(2, 8, 8), num_patches=2, patch_size=4, **SMALL)
    x = _numbered()
    patches, mask = model.cut_patches(x, torch.Generator().manual_seed(0))
    positions = random_positions(2, 2, (8, 8), 4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(patches, cut_patches(x, positions, 4))
    assert torch.equal(mask, union_mask(patch_masks(positions, 4, (8, 8))))


def test_mask_iou_on_constructed_masks():
    true = torch.zeros(4, 1, 8, 8)
    true[:, :, :4, :4] = 1
    assert torch.equal(mask_iou(true, true), torch.ones(4))  # the true mask
    assert torch.equal(mask_iou(1 - true, true), torch.zeros(4))  # its complement
    half = torch.zeros(4, 1, 8, 8)
    half[:, :, :4, :2] = 0.9  # inside, 8 of the 16 pixels
    assert torch.allclose(mask_iou(half, true), torch.full((4,), 0.5))
    half[:, :, 4:6, :4] = 0.7  # plus 8 pixels outside: 8 / 24
    assert torch.allclose(mask_iou(half, true), torch.full((4,), 1 / 3))
    assert torch.equal(mask_iou(torch.full_like(true, 0.4), true), torch.zeros(4))  # 0.4 < threshold 0.5
    assert torch.equal(mask_iou(torch.zeros(2, 1, 3, 3), torch.zeros(2, 1, 3, 3)), torch.ones(2))  # both empty


# ------------------------------------------------------------------------------------ the model
def test_completion_does_not_depend_on_the_patch_order():
    """The model gets unplaced patches only (``complete(patches)``), and pools their encodings with a mean:
    permuting the patches leaves the image and the union mask unchanged and permutes the per-patch masks."""
    torch.manual_seed(0)
    model = create_model("puzzlegan", image_shape=(1, 8, 8), **SMALL).eval()
    x = torch.rand(5, 1, 8, 8)
    patches, _ = model.cut_patches(x, torch.Generator().manual_seed(1))
    z = torch.randn(5, model.latent_dim)
    order = torch.tensor([2, 0, 1])
    with torch.no_grad():
        image, logits = model.generate(patches, z)
        image_p, logits_p = model.generate(patches[:, order], z)
        torch.manual_seed(4)
        completed = model.complete(patches)
        torch.manual_seed(4)
        completed_p = model.complete(patches[:, order])
    assert torch.allclose(image, image_p, atol=1e-6) and torch.allclose(logits[:, order], logits_p, atol=1e-5)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(completed, completed_p))
    assert not torch.allclose(image, model.generate(torch.rand_like(patches), z)[0])  # ... but on their content


def test_complete_gives_images_and_masks_in_range():
    model = create_model("puzzlegan", image_shape=(3, 16, 16), num_patches=2, patch_size=5, **SMALL)
    assert isinstance(model, PatchCompleter) and not isinstance(model, Sampler)
    patches, mask = model.cut_patches(torch.rand(4, 3, 16, 16))
    assert patches.shape == (4, 2, 3, 5, 5) and mask.shape == (4, 1, 16, 16)
    with torch.no_grad():
        images, masks = model.complete(patches)
    assert images.shape == (4, 3, 16, 16) and masks.shape == (4, 1, 16, 16)
    assert images.min() >= 0 and images.max() <= 1 and masks.min() >= 0 and masks.max() <= 1
    with pytest.raises(ValueError, match=r"patches of shape \(n, k, 3, 5, 5\)"):
        model.complete(torch.rand(4, 2, 3, 4, 4))


def test_composite_completions_show_the_patches_at_the_predicted_positions():
    torch.manual_seed(0)
    model = create_model("puzzlegan", image_shape=(1, 8, 8), composite_patches=True, **SMALL).eval()
    x = torch.rand(4, 1, 8, 8)
    patches, _ = model.cut_patches(x, torch.Generator().manual_seed(1))
    with torch.no_grad():
        images, masks = model.complete(patches, torch.Generator().manual_seed(9))
        logits = model.generate(patches, model.noise(4, torch.Generator().manual_seed(9)))[1]  # the same noise
    corners = logits.flatten(2).argmax(2)  # (4, K) flat indices on the 6x6 grid of corners
    predicted = torch.stack([corners // 6, corners % 6], dim=-1)
    assert torch.equal(masks, union_mask(patch_masks(predicted, 3, (8, 8))))
    for b in range(4):
        for k in range(3):
            r, c = predicted[b, k].tolist()
            alone = patch_masks(predicted[b : b + 1, k : k + 1], 3, (8, 8))[0, 0].bool()
            others = patch_masks(predicted[b : b + 1, [i for i in range(3) if i != k]], 3, (8, 8))[0].amax(0).bool()
            only = alone & ~others  # pixels of patch k alone: its content, exactly
            assert torch.allclose(images[b, 0][only], paste_patches(torch.zeros(1, 1, 8, 8), patches[b : b + 1, k : k + 1],
                                                                   predicted[b : b + 1, k : k + 1])[0, 0][only], atol=1e-6)


def test_bad_arguments_are_refused_before_anything_is_built():
    with pytest.raises(ValueError, match="patch_size 9 does not fit in 8x8"):
        create_model("puzzlegan", image_shape=(1, 8, 8), patch_size=9)
    with pytest.raises(ValueError, match="needs a gradient penalty"):
        create_model("puzzlegan", image_shape=(1, 8, 8), loss="wasserstein_gp")
    with pytest.raises(Exception, match="num_patches"):
        create_model("puzzlegan", image_shape=(1, 8, 8), num_patches=0)


def _held_out(dm, n: int = 300) -> torch.Tensor:
    val = torch.cat([b[0] for b in torch.utils.data.DataLoader(dm.reference_dataset("val"), batch_size=512)])
    test = torch.cat([b[0] for b in torch.utils.data.DataLoader(dm.reference_dataset("test"), batch_size=512)])
    return torch.cat([val, test])[:n]


@pytest.mark.slow  # ~15 s on an idle core (12 epochs)
def test_masks_cover_the_true_positions_better_than_chance_after_a_short_training(tmp_path):
    """12 epochs of a small model on digits: on held-out digits the predicted masks' IoU with the true
    patch positions beats the IoU of a random mask of the same area (K squares at random positions), which
    the untrained model does not; validation logs the figures."""
    pl.seed_everything(0)
    dm = create_datamodule("digits", batch_size=64)
    dm.setup("fit")
    model = create_model("puzzlegan", image_shape=dm.image_shape, embed_dim=32, width=16, width_d=16, latent_dim=4)
    x = _held_out(dm)
    g = torch.Generator().manual_seed(7)

    def iou() -> float:
        patches, true = model.cut_patches(x, torch.Generator().manual_seed(5))
        with torch.no_grad():
            return float(mask_iou(model.complete(patches)[1], true).mean())

    _, true = model.cut_patches(x, torch.Generator().manual_seed(5))
    guess = union_mask(patch_masks(random_positions(len(x), 3, (8, 8), 3, generator=g), 3, (8, 8)))
    chance = float(mask_iou(guess, true).mean())
    model.eval()
    before = iou()
    model.train()
    trainer = cpu_trainer(max_epochs=12, check_val_every_n_epoch=12, num_sanity_val_steps=0)
    trainer.fit(model, datamodule=dm)
    model.eval()
    after = iou()
    assert before < chance + 0.05 < after, (before, chance, after)
    assert {"val/mask_iou", "val/l1", "val/patch_l1"} <= set(trainer.callback_metrics)
    assert 0 <= float(trainer.callback_metrics["val/mask_iou"]) <= 1


def test_validation_figures_are_the_per_image_means(tmp_path):
    """``evaluate`` on a batch equals the figures computed by hand from the same seeded patches and noise."""
    torch.manual_seed(0)
    model = create_model("puzzlegan", image_shape=(1, 8, 8), **SMALL).eval()
    x = torch.rand(6, 1, 8, 8)
    with torch.no_grad():
        scores = model.evaluate(x, batch_idx=2)
        g = torch.Generator().manual_seed(2)  # eval_seed 0 + batch_idx 2
        patches, true = model.cut_patches(x, g)
        images, masks = model.complete(patches, g)
    assert torch.allclose(scores["mask_iou"], mask_iou(masks, true))
    assert torch.allclose(scores["l1"], (images - x).abs().mean((1, 2, 3)))
    inside = ((images - x).abs() * true).sum((1, 2, 3)) / true.sum((1, 2, 3))
    assert torch.allclose(scores["patch_l1"], inside)


def test_test_split_logs_the_completion_figures(tmp_path):
    dm = create_datamodule("digits", batch_size=128)
    model = create_model("puzzlegan", image_shape=dm.image_shape, **SMALL)
    (out,) = cpu_trainer(limit_test_batches=2).test(model, datamodule=dm, verbose=False)
    assert {"test/mask_iou", "test/l1", "test/patch_l1"} <= set(out)


# ------------------------------------------------------------------------------------ the callback
def test_completion_grid_shows_truth_patches_completion_and_masks(tmp_path):
    dm = create_datamodule("digits", batch_size=64)
    model = create_model("puzzlegan", image_shape=dm.image_shape, **SMALL)
    callback = PatchCompletions(num_images=6)
    trainer = cpu_trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, default_root_dir=str(tmp_path),
                          callbacks=[callback])  # fmt: skip
    trainer.fit(model, datamodule=dm)
    assert callback.last_path is not None and Image.open(callback.last_path).size[0] >= 256
    x = torch.rand(6, 1, 8, 8)
    state = torch.random.get_rng_state()
    with torch.no_grad():
        grid = completion_rows(model, x, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state), "drawing the grid moved the global RNG"
    patches, true = model.cut_patches(x, torch.Generator().manual_seed(3))
    assert grid.shape == (30, 1, 8, 8)
    assert torch.equal(grid[:6], x) and torch.equal(grid[6:12], patch_strip(patches, (8, 8)))
    assert torch.equal(grid[24:], true) and grid[18:24].min() >= 0 and grid[18:24].max() <= 1
    strip = patch_strip(patches, (8, 8))  # three 3x3 patches in slots (0,0), (0,4), (4,0) on grey
    assert torch.equal(strip[:, :, 0:3, 4:7], patches[:, 1]) and torch.equal(strip[:, :, 4:7, 0:3], patches[:, 2])
    assert strip[:, :, 3, :].eq(0.5).all()


def test_completion_grid_skips_models_that_cannot_complete(tmp_path, caplog):
    dm = create_datamodule("digits", batch_size=64)
    model = create_model("dcgan", image_shape=dm.image_shape, width=8, latent_dim=8)
    callback = PatchCompletions()
    trainer = cpu_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1, default_root_dir=str(tmp_path),
                          callbacks=[callback, SampleGrid(every_n_epochs=0)])  # fmt: skip
    with caplog.at_level(logging.INFO):
        trainer.fit(model, datamodule=dm)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("PatchCompletions")]
    assert lines == ["PatchCompletions: DCGAN has no complete(patches) and cut_patches(x); skipped"]
    assert callback.last_path is None

