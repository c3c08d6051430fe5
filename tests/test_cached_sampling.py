"""Cached sampling of PixelCNN and Gated PixelCNN (Ramachandran et al. 2017) against the naive sampler.

The cache computes each layer at the new pixel only; the naive sampler re-runs the network over the
rows the current one sees. For the same seed both must draw the same images (same parameters up to
float rounding, same random draws in the same order), for every option of the two families: residual
blocks and gated layers, kernel sizes, RGB channel masks, class conditioning, softmax / Bernoulli /
logistic-mixture heads, at 8x8 and 28x28. A configuration the cache cannot serve falls back to the
naive sampler with a one-line warning.
"""

from __future__ import annotations

import pytest
import torch

from genlight import create_model, get_model_class

TINY = {
    "pixelcnn": {"hidden_channels": 6, "num_blocks": 2, "head_channels": 6},
    "gated_pixelcnn": {"hidden_channels": 6, "num_layers": 3, "head_channels": 6},
}
#: (family, shape, levels, options): every option the two families have, at 8x8
CASES = [
    ("pixelcnn", (1, 8, 8), 17, {}),
    ("pixelcnn", (1, 8, 8), 2, {}),
    ("pixelcnn", (1, 8, 8), 17, {"output": "logistic_mixture", "components": 3}),
    ("pixelcnn", (3, 5, 5), 5, {"first_kernel": 5, "kernel_size": 5}),
    ("pixelcnn", (1, 6, 9), 9, {"first_kernel": 3, "num_blocks": 3}),
    ("gated_pixelcnn", (1, 8, 8), 17, {}),
    ("gated_pixelcnn", (1, 8, 8), 2, {}),
    ("gated_pixelcnn", (1, 8, 8), 17, {"output": "logistic_mixture", "components": 3}),
    ("gated_pixelcnn", (1, 8, 8), 17, {"conditional": True, "num_classes": 4}),
    ("gated_pixelcnn", (3, 5, 5), 5, {"kernel_size": 3, "num_layers": 2, "conditional": True, "num_classes": 3}),
    ("gated_pixelcnn", (1, 6, 9), 9, {"kernel_size": 7, "num_layers": 2}),
]
IDS = [
    f"{f}-{'x'.join(map(str, s))}-L{lv}-{'-'.join(f'{k}={v}' for k, v in o.items()) or 'default'}"
    for f, s, lv, o in CASES
]


@pytest.fixture(autouse=True)
def _one_thread():
    """All Python-loop overhead: one thread is faster on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def build(name: str, shape: tuple[int, ...], levels: int, seed: int = 0, **options) -> torch.nn.Module:
    """A tiny family with its weights perturbed by N(0, 0.3^2) (sharper than the initialisation), eval mode."""
    torch.manual_seed(seed)
    model = create_model(name, image_shape=shape, num_levels=levels, **{**TINY[name], **options}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def draw(model: torch.nn.Module, n: int, seed: int, **kw) -> torch.Tensor:
    torch.manual_seed(seed)
    return model.sample(n, **kw)


@pytest.mark.parametrize(("name", "shape", "levels", "options"), CASES, ids=IDS)
def test_cached_parameters_equal_the_full_pass(name, shape, levels, options):
    """Fed an image sub-pixel by sub-pixel, the cache's conditionals at every sub-pixel equal the
    teacher-forced full pass's (float64: to 1e-10)."""
    model = build(name, shape, levels, **options).double()
    torch.manual_seed(1)
    c, h, w = shape
    target = torch.randint(levels, (3, *shape)).double() / (levels - 1)
    y = torch.tensor([0, 1, 2]) if options.get("conditional") else None
    with torch.no_grad():
        full = model.conditional_logits(target, y)  # (3, C*P, H, W)
        x = torch.zeros_like(target)
        cache = model.pixel_cache(x, y)
        p = model.params_per_channel
        for i in range(h):
            for j in range(w):
                for k in range(c):
                    got = cache.params(i, j)[:, k * p : (k + 1) * p]
                    torch.testing.assert_close(got, full[:, k * p : (k + 1) * p, i, j], atol=1e-10, rtol=1e-10)
                    x[:, k, i, j] = target[:, k, i, j]
            cache.row_done(i)


@pytest.mark.parametrize(("name", "shape", "levels", "options"), CASES, ids=IDS)
def test_cached_and_naive_draw_the_same_images(name, shape, levels, options):
    """Same seed, same images, on several seeds (float32, the default dtype)."""
    model = build(name, shape, levels, **options)
    for seed in range(3):
        cached = draw(model, 6, seed)
        assert torch.equal(cached, draw(model, 6, seed, sampler="naive")), f"seed {seed}"
        assert cached.shape == (6, *shape) and len(cached.unique()) > 1  # not a constant image
    if options.get("conditional"):
        labels = torch.tensor([3, 0, 2, 1, 1, 2]) % options["num_classes"]
        assert torch.equal(draw(model, 6, 7, y=labels), draw(model, 6, 7, y=labels, sampler="naive"))


AT_28 = [
    ("pixelcnn", {"num_blocks": 1}),
    ("gated_pixelcnn", {"num_layers": 2, "kernel_size": 3, "conditional": True, "num_classes": 10}),
]
AT_28_SLOW = [
    ("pixelcnn", {"num_blocks": 2, "output": "logistic_mixture", "components": 2}),
    ("gated_pixelcnn", {"num_layers": 2, "output": "logistic_mixture", "components": 2}),
    ("gated_pixelcnn", {"num_layers": 3}),
]


@pytest.mark.parametrize(
    ("name", "options"),
    [*AT_28, *(pytest.param(*case, marks=pytest.mark.slow) for case in AT_28_SLOW)],
    ids=["pixelcnn", "gated-conditional", "pixelcnn-mixture", "gated-mixture", "gated-3-layers"],
)
def test_cached_and_naive_agree_at_28x28_with_256_levels(name, options):
    """The naive sampler at 28x28 is slow: tiny widths, two images, one seed (more in ``-m slow``)."""
    model = build(name, (1, 28, 28), 256, **options)
    cached = draw(model, 2, 3)
    assert torch.equal(cached, draw(model, 2, 3, sampler="naive"))
    assert len(cached.unique()) > 20


def test_dropout_in_training_mode_falls_back_with_a_notice():
    """Dropout draws random masks over whole maps: the cache cannot repeat them, so it samples naively."""
    model = build("pixelcnn", (1, 5, 5), 5, dropout=0.5).train()
    with pytest.warns(UserWarning, match=r"no cached sampling with dropout active .*call model.eval\(\)"):
        fallback = draw(model, 4, 0)
    assert torch.equal(fallback, draw(model, 4, 0, sampler="naive"))
    model.eval()
    assert torch.equal(draw(model, 4, 0), draw(model, 4, 0, sampler="naive"))


def test_a_subclass_with_its_own_network_falls_back_with_a_notice():
    class Shifted(get_model_class("gated_pixelcnn")):  # a network the cache does not know
        def conditional_logits(self, x, y=None):
            return super().conditional_logits(x, y) + 1.0

    model = Shifted(image_shape=(1, 4, 4), num_levels=5, **TINY["gated_pixelcnn"]).eval()
    with pytest.warns(UserWarning, match="no cached sampling for Shifted: it overrides conditional_logits"):
        fallback = draw(model, 3, 0)
    assert torch.equal(fallback, draw(model, 3, 0, sampler="naive"))


def test_unknown_sampler_is_refused_in_one_line():
    with pytest.raises(ValueError, match=r"^sampler must be cached or naive, got 'fast'$"):
        build("pixelcnn", (1, 4, 4), 5).sample(2, sampler="fast")
