"""ProGAN's mechanisms (Karras et al. 2018): the fade-in of G and D, equalized learning rate, pixel norm,
the minibatch standard deviation, the growth schedule, blended real images, a resume in the middle of
a fade, the per-stage sample grids and the refusals."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F

from genlight import create_model, load_model
from genlight.callbacks import EMA, StageSamples, default_fit_callbacks
from genlight.errors import ConfigError, ImageShapeError
from genlight.modules.progan import (
    ProgressiveDiscriminator, ProgressiveGenerator, growth_schedule, real_at_stage, resize_to,
)  # fmt: skip
from genlight.nn.progressive import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm, group_size_for
from genlight.types import GrowingSampler
from tests.helpers import cpu_trainer, smoke_setup

SHAPE = (1, 16, 16)  # three stages: 4x4, 8x8, 16x16


def up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


# ---------------------------------------------------------------------------------------- fade-in
def test_generator_fade_is_the_old_network_at_alpha_0_and_the_new_one_at_alpha_1():
    torch.manual_seed(0)
    g = ProgressiveGenerator(8, SHAPE, 16)
    z = torch.randn(5, 8)
    with torch.no_grad():
        for stage in (1, 2):
            old = up(g(z, stage - 1, 1.0))  # the previous stage's full output, upsampled
            h = g.blocks[0](g.latent_norm(z))
            for s in range(1, stage + 1):
                h = g.blocks[s](h)
            new = g.to_rgb[stage](h)  # the new block's toRGB alone
            assert new.shape == (5, 1, 4 * 2**stage, 4 * 2**stage)
            torch.testing.assert_close(g(z, stage, 0.0), old)
            torch.testing.assert_close(g(z, stage, 1.0), new)
            torch.testing.assert_close(g(z, stage, 0.3), 0.7 * old + 0.3 * new)
            assert not torch.allclose(old, new)


def test_discriminator_fade_is_the_old_network_at_alpha_0_and_the_new_one_at_alpha_1():
    torch.manual_seed(0)
    d = ProgressiveDiscriminator(SHAPE, 16)
    x = torch.randn(4, 1, 16, 16)
    with torch.no_grad():
        old = d(F.avg_pool2d(x, 2), 1, 1.0)  # the 8x8 critic on the downsampled input
        h = d.blocks[2](F.leaky_relu(d.from_rgb[2](x), 0.2))  # fromRGB of the new size, the new block...
        new = d.blocks[0](d.blocks[1](h))  # ... then the old blocks
        assert torch.allclose(d(x, 2, 0.0), old, atol=1e-5)
        assert torch.allclose(d(x, 2, 1.0), new, atol=1e-5)
        mid = d(x, 2, 0.5)
        assert not torch.allclose(mid, old) and not torch.allclose(mid, new)
        assert d(x[:, :, :4, :4], 0).shape == (4,)  # stage 0 reads 4x4 images


def test_real_images_are_pooled_to_the_stage_and_blended_during_a_fade():
    x = torch.rand(3, 1, 16, 16)
    x8 = F.avg_pool2d(x, 2)
    torch.testing.assert_close(real_at_stage(x, 1, 1.0), x8)
    torch.testing.assert_close(real_at_stage(x, 1, 0.0), up(F.avg_pool2d(x8, 2)))
    torch.testing.assert_close(real_at_stage(x, 1, 0.25), 0.75 * up(F.avg_pool2d(x8, 2)) + 0.25 * x8)
    torch.testing.assert_close(real_at_stage(x, 2, 1.0), x)
    assert resize_to(x, 4).shape == (3, 1, 4, 4) and resize_to(x8, 16).shape == (3, 1, 16, 16)


# ---------------------------------------------------------------------------------------- layers
def test_equalized_learning_rate_scales_at_run_time():
    torch.manual_seed(0)
    conv = EqualizedConv2d(128, 256, 3)
    fan_in = 128 * 9
    he = math.sqrt(2.0 / fan_in)
    assert abs(conv.weight.std().item() - 1.0) < 0.01  # stored N(0, 1)
    assert abs((conv.weight * conv.scale).std().item() - he) < 0.01 * he  # effective std: He's constant
    assert conv.scale == pytest.approx(he)
    x = torch.randn(2, 128, 5, 5)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight * he, conv.bias, padding=1))
    # the scale is applied in every forward: the gradient of the stored weight is he * that of the effective one
    weight = (conv.weight.detach() * he).requires_grad_(True)
    F.conv2d(x, weight, conv.bias, padding=1).square().sum().backward()
    conv(x).square().sum().backward()
    torch.testing.assert_close(conv.weight.grad, he * weight.grad)
    with torch.no_grad():
        conv.weight.mul_(2.0)  # doubling the stored weights doubles the effective ones (no baked-in scale)
    torch.testing.assert_close(conv(x) - conv.bias[:, None, None], 2.0 * F.conv2d(x, weight.detach(), padding=1))
    dense = EqualizedLinear(400, 300, gain=1.0)
    assert abs(dense.weight.std().item() - 1.0) < 0.01 and dense.scale == pytest.approx(1 / 20)
    assert abs((dense.weight * dense.scale).std().item() - 1 / 20) < 0.001
    assert torch.equal(dense.bias, torch.zeros(300))


def test_pixel_norm_gives_unit_mean_square_per_pixel_and_ignores_scale():
    x = torch.randn(3, 16, 4, 4) * torch.rand(3, 1, 4, 4) * 10
    y = PixelNorm()(x)
    torch.testing.assert_close(y.pow(2).mean(dim=1), torch.ones(3, 4, 4), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(PixelNorm()(7.0 * x), y, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(y / y.norm(dim=1, keepdim=True), x / x.norm(dim=1, keepdim=True))  # direction kept
    z = torch.randn(5, 8)
    torch.testing.assert_close(PixelNorm()(z).pow(2).mean(1), torch.ones(5))  # latents (B, C)


def test_minibatch_std_adds_one_channel_with_the_group_deviation():
    # groups of 2 in a batch of 4: examples {0, 2} and {1, 3} (Karras' reshape to (group, B / group, ...))
    x = torch.zeros(4, 3, 2, 2)
    x[0], x[2] = 0.0, 2.0  # biased std over {0, 2} of every feature and pixel: 1
    x[1], x[3] = 5.0, 5.0  # std 0
    x[2, 0, 0, 0] = 4.0  # one feature of that group: values {0, 4}, std 2 -> mean over 12 values: 13/12
    y = MinibatchStdDev(group_size=2)(x)
    assert y.shape == (4, 4, 2, 2)
    torch.testing.assert_close(y[:, :3], x)
    expected = torch.tensor([13 / 12, 1e-4, 13 / 12, 1e-4])
    torch.testing.assert_close(y[:, 3], expected[:, None, None].expand(4, 2, 2), rtol=1e-4, atol=1e-6)
    # one group of 4: std over all four examples
    whole = MinibatchStdDev(group_size=4)(x)[:, 3]
    assert torch.allclose(whole, whole[0, 0, 0]) and whole[0, 0, 0] > 1


def test_minibatch_std_falls_back_to_a_divisor_of_the_batch():
    assert [group_size_for(b, 4) for b in (8, 4, 6, 3, 2, 7, 1)] == [4, 4, 3, 3, 2, 1, 1]
    x = torch.randn(6, 2, 4, 4)
    y = MinibatchStdDev(group_size=4)(x)  # groups of 3: {0, 2, 4}, {1, 3, 5}
    expected = (x.view(3, 2, 2, 4, 4).var(0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    torch.testing.assert_close(y[:, 2, 0, 0], expected.repeat(3))


# ---------------------------------------------------------------------------------------- schedule
def test_growth_schedule_values():
    values = {s: growth_schedule(s, 3, 10, 4) for s in (0, 9, 10, 11, 13, 14, 23, 24, 27, 28, 10_000)}
    assert values == {
        0: (0, 1.0), 9: (0, 1.0),  # stage 0 for 10 steps
        10: (1, 0.2), 11: (1, 0.4), 13: (1, 0.8),  # the fade into 8x8: alpha = (t + 1) / 5
        14: (1, 1.0), 23: (1, 1.0),  # 8x8 at full weight for 10 steps
        24: (2, 0.2), 27: (2, 0.8), 28: (2, 1.0), 10_000: (2, 1.0),  # the last stage continues
    }  # fmt: skip
    assert growth_schedule(5, 3, 0, 0) == (2, 1.0)  # no fade, no steps: fully grown at once
    assert growth_schedule(3, 3, 3, 0) == (1, 1.0)  # no fade: abrupt switch
    assert growth_schedule(10**6, 1, 5, 5) == (0, 1.0)  # 4x4 data: one stage


def test_sample_is_at_the_trained_stage_upsampled_to_the_data_size():
    torch.manual_seed(0)
    model = create_model("progan", image_shape=SHAPE, latent_dim=8, width=16, steps_per_stage=3, fade_steps=2)
    assert isinstance(model, GrowingSampler) and model.num_stages == 3
    images = model.eval().sample(4)
    assert images.shape == (4, *SHAPE) and images.min() >= 0 and images.max() <= 1
    blocks = images.view(4, 1, 4, 4, 4, 4)  # 4x4 draws upsampled x4: constant 4x4 blocks
    assert torch.equal(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))
    model.growth_steps.count = 8  # steps 0-2 stage 0, 3-4 fade, 5-7 8x8: the last step taken is stage 1
    assert model.growth() == (1, 1.0) and model.resolution == 8
    model.growth_steps.count = 100
    assert model.growth() == (2, 1.0) and model.resolution == 16


# ---------------------------------------------------------------------------------------- training
def _fit(root, steps: int, ckpt_path: str | None = None, **overrides):
    pl.seed_everything(0, workers=True)
    model, dm, _ = smoke_setup("progan", root / "data", **overrides)
    trainer = cpu_trainer(
        str(root / "run"), callbacks=default_fit_callbacks(model), max_steps=-1, max_epochs=steps // 3,
        limit_train_batches=3, limit_val_batches=1, num_sanity_val_steps=0, deterministic=True, enable_checkpointing=True,
    )  # fmt: skip
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model, trainer


def test_resume_in_the_middle_of_a_fade_is_exact(tmp_path):
    """Smoke settings: the 4x4 -> 8x8 fade takes steps 0-4. Stop after 3 steps (alpha 0.5 at the last),
    resume to 6: the stage and alpha in the checkpoint, the weights and Adam's moments equal a run
    that never stopped."""
    full, full_trainer = _fit(tmp_path / "full", 6)
    part, _ = _fit(tmp_path / "part", 3)
    last = tmp_path / "part" / "run" / "checkpoints" / "last.ckpt"
    assert part.steps_taken == 3 and part.growth() == (1, 0.5) and part.growth(3) == (1, 4 / 6)
    assert load_model(last).growth() == (1, 0.5)  # the checkpoint knows where the fade was
    resumed, trainer = _fit(tmp_path / "resumed", 6, ckpt_path=str(last))
    assert resumed.steps_taken == full.steps_taken == 6 and resumed.growth() == (1, 1.0)
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    for a, b in zip(full_trainer.optimizers, trainer.optimizers, strict=True):
        sa, sb = a.state_dict()["state"], b.state_dict()["state"]
        assert sa.keys() == sb.keys()
        for k in sa:
            assert all(torch.equal(torch.as_tensor(sa[k][f]), torch.as_tensor(sb[k][f])) for f in sa[k])


def test_training_logs_the_drift_term_and_grows(tmp_path):
    model, trainer = _fit(tmp_path, 6)
    assert {"train/drift_epoch", "train/gp_epoch", "train/d_adv_epoch"} <= set(trainer.callback_metrics), set(trainer.callback_metrics)
    assert model.steps_taken == 6 and model.growth() == (1, 1.0)


def test_stage_samples_draws_one_grid_per_stage(tmp_path):
    pl.seed_everything(0)
    model, dm, _ = smoke_setup("progan", tmp_path / "data", steps_per_stage=2, fade_steps=2)
    grids = StageSamples(num_samples=8)
    trainer = cpu_trainer(str(tmp_path / "run"), callbacks=[EMA(), grids], max_steps=-1, max_epochs=2,
                          limit_train_batches=4, limit_val_batches=0)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    # steps 0-1 at 4x4, 2-3 fading in 8x8, 4-7 at 8x8: the 4x4 stage ends before step 2
    assert grids.logged == ["samples_stage0_4x4", "samples_stage1_8x8"]
    names = sorted(p.name for p in (tmp_path / "run" / "images").iterdir())
    assert len(names) == 2 and names[0].startswith("samples_stage0_4x4_") and names[1].startswith("samples_stage1_8x8_")


# ---------------------------------------------------------------------------------------- refusals
@pytest.mark.parametrize("shape", [(1, 12, 12), (1, 8, 16), (1, 2, 2)])
def test_shapes_that_do_not_grow_from_4x4_are_refused(shape):
    with pytest.raises(ImageShapeError, match="square images of side 4 \\* 2\\^k") as err:
        create_model("progan", image_shape=shape)
    assert "\n" not in str(err.value)


def test_negative_schedule_lengths_are_refused():
    with pytest.raises(ConfigError, match="steps_per_stage must be an integer >= 0"):
        create_model("progan", steps_per_stage=-1)
