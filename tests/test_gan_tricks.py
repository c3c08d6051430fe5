"""The small-data options of the adversarial base (``augment``, ``ada_target``, ``lecam_weight``, ``r1_gamma``,
``r1_every``): their pieces equal their formulas, they train and do what they say, and they are in the
command line's help and printed config."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from genlight import create_model, list_models
from genlight.cli import main
from genlight.errors import ConfigError
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.augment import ADA_MAX_P, AdaptiveProbability, ada_augment, diff_augment, parse_policy, translate
from genlight.nn.gan_regularizers import LeCamAnchors, lecam_penalty, r1_penalty
from genlight.registry import MODELS
from genlight.testing import cpu_trainer
from tests.helpers import digits_datamodule

OPTIONS = ("augment", "augment_policy", "ada_target", "lecam_weight", "r1_gamma", "r1_every", "accumulate")


# ---------------------------------------------------------------------------- the pieces
def test_translate_shifts_with_zeros_or_reflection() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    down_right = translate(x, torch.tensor([1]), torch.tensor([2]), reflect=False)[0, 0]
    assert torch.equal(down_right[1:, 2:], x[0, 0, :3, :2]) and down_right[0].abs().sum() == 0
    assert down_right[:, :2].abs().sum() == 0
    up = translate(x, torch.tensor([-1]), torch.tensor([0]), reflect=True)[0, 0]
    assert torch.equal(up[:3], x[0, 0, 1:]) and torch.equal(up[3], x[0, 0, 3])  # row 4 mirrors row 3


def test_augmentations_keep_shape_and_gradient_and_ada_at_p0_is_identity() -> None:
    x = torch.rand(6, 3, 8, 8, requires_grad=True) * 2 - 1
    for out in (diff_augment(x, parse_policy("color,translation,cutout")), ada_augment(x, AUGMENT_ALL, 0.7)):
        assert out.shape == x.shape
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert grad.abs().sum() > 0  # differentiable: G's gradient flows through them
    assert ada_augment(x, AUGMENT_ALL, 0.0) is x


AUGMENT_ALL = ("xflip", "rot90", "translation", "color", "cutout")


def test_ada_applies_each_operation_with_probability_p() -> None:
    """xflip alone at p: an image is flipped with probability p/2 (a flip with probability 1/2 when chosen)."""
    torch.manual_seed(0)
    x = torch.randn(4000, 1, 4, 4)
    flipped = (ada_augment(x, ("xflip",), 0.5) == x.flip(3)).flatten(1).all(1).float().mean()
    assert abs(float(flipped) - 0.25) < 0.03


def test_one_channel_colour_is_brightness_and_contrast() -> None:
    """On a grey image DiffAugment's saturation is the identity: colour is brightness then contrast."""
    x = torch.rand(5, 1, 4, 4) * 2 - 1
    torch.manual_seed(0)
    out = diff_augment(x, ("color",))
    torch.manual_seed(0)
    u1, _, u3 = torch.rand(5, 1, 1, 1), torch.rand(5, 1, 1, 1), torch.rand(5, 1, 1, 1)
    bright = x + (u1 - 0.5)
    mean = bright.mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(out, (bright - mean) * (u3 + 0.5) + mean)


def test_unknown_policy_is_one_line_naming_the_operations() -> None:
    with pytest.raises(ConfigError, match=r"unknown operations hflip; use a comma-separated list of color, "):
        create_model("dcgan", latent_dim=4, width=4, augment="diffaugment", augment_policy="color,hflip")
    with pytest.raises(ConfigError, match=r"points of shape .*set --model\.augment none"):
        create_model("gan", image_shape=(2,), augment="ada")


def test_ada_controller_follows_the_sign_of_r_t_and_is_capped() -> None:
    ada = AdaptiveProbability(target=0.6, interval=4, kimg=1.0)  # p may move 1 per 1000 images
    for _ in range(4):
        ada.observe(sign_sum=30.0, count=32.0)  # r_t = 0.94 > 0.6: D overfits, augment more
    assert ada.p == pytest.approx(128 / 1000)
    for _ in range(4 * 100):
        ada.observe(32.0, 32.0)
    assert ada.p == ADA_MAX_P
    for _ in range(8):
        ada.observe(-32.0, 32.0)  # r_t = -1 < 0.6: less
    assert ada.p == pytest.approx(ADA_MAX_P - 2 * 128 / 1000)


def test_r1_equals_its_formula_on_a_tiny_critic() -> None:
    """D(x) = <w, x> + sum(x²): ∇D = w + 2x, so R1 = mean_x ||w + 2x||²."""
    w = torch.randn(1, 2, 3, 3)
    x = torch.randn(5, 2, 3, 3)

    def critic(v: Tensor) -> Tensor:
        return (v * w).flatten(1).sum(1) + v.pow(2).flatten(1).sum(1)

    expected = (w + 2 * x).flatten(1).pow(2).sum(1).mean()
    torch.testing.assert_close(r1_penalty(critic, x), expected)


def test_the_base_adds_lazy_r1_every_r1_every_steps_scaled_by_it() -> None:
    model = create_model("dcgan", latent_dim=4, width=4, r1_gamma=2.0, r1_every=3)
    x = torch.randn(4, 1, 8, 8)
    w = torch.randn(1, 1, 8, 8)

    def critic(v: Tensor) -> Tensor:
        return (v * w).flatten(1).sum(1)

    d = critic(x)
    terms = model.regularizer_terms(x, d, d, critic)
    torch.testing.assert_close(terms["r1"], 0.5 * 2.0 * 3 * w.pow(2).sum())  # γ/2 · r1_every · ||w||²
    for _ in range(2):
        model.accumulation.advance()
        assert "r1" not in model.regularizer_terms(x, d, d, critic)  # D steps 1 and 2: no penalty
    model.accumulation.advance()
    assert "r1" in model.regularizer_terms(x, d, d, critic)


def test_lecam_equals_its_formula_and_its_anchors_average() -> None:
    real, fake = torch.tensor([0.5, -1.0, 2.0]), torch.tensor([-2.0, 0.3, 1.0])
    a_r, a_f = 0.4, -0.2
    expected = torch.clamp(real - a_f, min=0).pow(2).mean() + torch.clamp(a_r - fake, min=0).pow(2).mean()
    torch.testing.assert_close(lecam_penalty(real, fake, a_r, a_f), expected)
    anchors = LeCamAnchors(decay=0.99)
    anchors.update(1.0, -1.0)
    assert (anchors.real, anchors.fake) == (1.0, -1.0)  # the first step sets them
    anchors.update(2.0, 0.0)
    assert anchors.real == pytest.approx(0.99 + 0.02) and anchors.fake == pytest.approx(-0.99)


# ---------------------------------------------------------------------------- in training
class Recorder(nn.Module):
    """A discriminator that records what it sees and returns a fixed logit (plus a trainable 0)."""

    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit = logit
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[Tensor] = []

    def forward(self, x: Tensor) -> Tensor:
        self.seen.append(x.detach().clone())
        return self.w * x.flatten(1).mean(1) + self.logit


def _fit(model: AdversarialModule, batches: int) -> None:
    trainer = cpu_trainer(max_epochs=1, limit_train_batches=batches, limit_val_batches=0)
    trainer.fit(model, datamodule=digits_datamodule(batch_size=16))


def _has_zero_square(images: Tensor, size: int) -> Tensor:
    """``(B,)``: whether each image has a ``size`` x ``size`` square of exact zeros."""
    zero = (images == 0).all(1, keepdim=True).float()  # (B, 1, H, W)
    return (nn.functional.avg_pool2d(zero, size, stride=1) == 1).flatten(1).any(1)


def test_diffaugment_is_applied_to_both_players_on_reals_and_fakes() -> None:
    """policy cutout on 8x8 digits: every image D sees, real or fake, in D's step and in G's, has a hole (a
    4x4 square at a uniform centre, at least 2x2 of it inside the image); without augment few digits have one."""
    seen = {}
    for augment in ("diffaugment", "none"):
        model = create_model("dcgan", latent_dim=4, width=4, augment=augment, augment_policy="cutout")
        model.discriminator = Recorder(0.0)
        _fit(model, batches=2)
        seen[augment] = model.discriminator.seen
    assert len(seen["diffaugment"]) == 2 * 3  # per batch: D on reals, D on fakes, G's pass on fakes
    assert all(bool(_has_zero_square(x, 2).all()) for x in seen["diffaugment"])
    assert _has_zero_square(seen["none"][0], 2).float().mean() < 0.5  # the reals of the first D pass


@pytest.mark.parametrize("logit", [5.0, -5.0])
def test_ada_p_moves_with_the_sign_of_d_on_reals(logit: float) -> None:
    """A D that calls every real image real (r_t = 1 > 0.6) raises p from 0; one that calls them fake
    (r_t = -1) lowers it from 0.5; each adjustment after 4 D steps of 16 images, by 64 / (kimg·1000)."""
    model = create_model("dcgan", latent_dim=4, width=4, augment="ada")
    model.discriminator = Recorder(logit)
    start = 0.0 if logit > 0 else 0.5
    model.ada.p = start
    _fit(model, batches=8)
    step = 64 / (model.ada.kimg * 1000)
    assert model.ada.p == pytest.approx(start + (2 if logit > 0 else -2) * step)


def test_every_option_trains_one_step_on_every_family_built_on_the_base() -> None:
    """Found by capability (the base's options in the family's ``__init__``): one short fit with all of them."""
    families = [n for n in list_models() if set(OPTIONS) <= set(inspect.signature(MODELS.get(n).__init__).parameters)]
    assert {"dcgan", "cgan", "wgan_gp", "infogan", "progan", "text2image", "gan"} <= set(families)
    model = create_model(
        "dcgan", latent_dim=4, width=4, augment="ada", lecam_weight=0.3, r1_gamma=1.0, r1_every=2, accumulate=2
    )
    model.ada.p = 0.5
    _fit(model, batches=4)
    assert model.accumulation.seen == 4 and model.lecam_anchors.updates == 2 and model.ada.steps == 2


def test_options_are_in_the_help_and_the_printed_config(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["fit", "--model.help", "cgan"])
    help_text = capsys.readouterr().out
    for option in OPTIONS:
        assert f"--model.{option}" in help_text
    with pytest.raises(SystemExit):
        main(["fit", "--model", "cgan", "--data", "digits", "--model.augment", "diffaugment", "--print_config"])
    printed = capsys.readouterr().out
    assert "augment: diffaugment" in printed and "accumulate: 1" in printed and "r1_every: 1" in printed
