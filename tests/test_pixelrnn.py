"""PixelRNN (Row LSTM, Diagonal BiLSTM): exact normalisation, causality and receptive fields by autograd,
skew/unskew, the incremental sampler against the full forward pass, sampled marginals after training."""

from __future__ import annotations

import itertools

import pytest
import torch

from genlight import create_model
from genlight.errors import IncompatibleDataError
from genlight.nn.masked import MaskedConv2d
from genlight.nn.recurrent import skew, unskew

FAMILIES = ["pixelrnn_row", "pixelrnn_diag"]


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models are all Python-loop overhead: one thread is faster on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(name: str, shape: tuple[int, ...], levels: int, sharpen: float = 1.0, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    args = {"hidden_channels": 2 * shape[0] * 3, "head_channels": 16 * shape[0], "num_layers": 2, "first_kernel_size": 3}
    model = create_model(name, image_shape=shape, num_levels=levels, **{**args, **kw}).eval()
    with torch.no_grad():  # sharper conditionals than the initialisation, so a wrong normaliser shows
        for p in model.parameters():
            p.mul_(sharpen)
    return model


def _all_images(shape: tuple[int, ...], levels: int) -> torch.Tensor:
    grid = torch.tensor(list(itertools.product(range(levels), repeat=int(torch.tensor(shape).prod()))))
    return grid.view(-1, *shape).float() / (levels - 1)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape,levels", [((1, 2, 2), 2), ((1, 2, 2), 3), ((3, 1, 1), 2)])
def test_probabilities_sum_to_one(name, shape, levels):
    model = _model(name, shape, levels, sharpen=3.0)
    x = _all_images(shape, levels)
    with torch.no_grad():
        p = model.log_prob(x).double().exp()
    assert abs(p.sum().item() - 1.0) < 1e-5
    assert p.max() > 2 * p.min(), "a uniform distribution would pass trivially"


def _raster_index(c: int, i: int, j: int, channels: int, width: int) -> int:
    return (i * width + j) * channels + c  # R, G, B inside each pixel


def _input_gradients(
    model, shape: tuple[int, ...], levels: int, draws: int = 4
) -> dict[tuple[int, int, int], torch.Tensor]:
    """|d logits(c, i, j) / d input| for every sub-pixel (c, i, j), summed over ``draws`` random inputs
    (so a ReLU that happens to be off for one input hides nothing), each ``(C, H, W)``: one backward
    pass over a batch in which copy ``k`` differentiates the conditional of sub-pixel ``k``."""
    c, h, w = shape
    positions = list(itertools.product(range(c), range(h), range(w)))
    d = len(positions)
    inputs = (torch.rand(draws, 1, *shape) * 2 - 1).expand(-1, d, -1, -1, -1).reshape(draws * d, *shape)
    inputs.requires_grad_(True)
    logits = model.network(inputs).view(draws, d, c, levels, h, w)
    proj = torch.randn(levels)
    picked = torch.stack([logits[:, k, ch, :, i, j] for k, (ch, i, j) in enumerate(positions)], 1)  # (draws, D, L)
    (grad,) = torch.autograd.grad((picked * proj).sum(), inputs)
    grad = grad.view(draws, d, *shape).abs().sum(0)
    return {pos: grad[k] for k, pos in enumerate(positions)}


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 4, 4)])
def test_causality_by_autograd(name, shape):
    """The conditional of a sub-pixel has zero gradient w.r.t. that sub-pixel and every later one."""
    model = _model(name, shape, 4)
    c, _, w = shape
    for (ch, i, j), g in _input_gradients(model, shape, 4).items():
        here = _raster_index(ch, i, j, c, w)
        for (c2, i2, j2) in itertools.product(*(range(s) for s in shape)):
            if _raster_index(c2, i2, j2, c, w) >= here:
                assert g[c2, i2, j2] == 0, f"{name}: output {(ch, i, j)} depends on input {(c2, i2, j2)}"


def test_diagonal_bilstm_sees_the_whole_context():
    """Diagonal BiLSTM (one layer): every earlier sub-pixel (rows above, left of the row, earlier colours)."""
    for shape in [(1, 5, 5), (3, 4, 4)]:
        model = _model("pixelrnn_diag", shape, 4, num_layers=1)
        c, _, w = shape
        for (ch, i, j), g in _input_gradients(model, shape, 4).items():
            here = _raster_index(ch, i, j, c, w)
            for (c2, i2, j2) in itertools.product(*(range(s) for s in shape)):
                if _raster_index(c2, i2, j2, c, w) < here:
                    assert g[c2, i2, j2] > 0, f"output {(ch, i, j)} misses input {(c2, i2, j2)}"


def test_row_lstm_field_is_the_triangle_above():
    """Row LSTM (one layer, 3-wide kernels): row ``i - r`` is seen at least over columns ``j-r .. j+r``
    (the state-to-state recurrence), but pixels outside that triangle are missed, e.g. ``(i-1, j+2)``."""
    shape = (1, 6, 6)
    model = _model("pixelrnn_row", shape, 3, num_layers=1)
    grads = _input_gradients(model, shape, 3)
    missed = 0
    for (_, i, j), g in grads.items():
        for r in range(1, i + 1):
            for j2 in range(max(0, j - r), min(shape[2], j + r + 1)):
                assert g[0, i - r, j2] > 0, f"({i}, {j}) misses ({i - r}, {j2}) inside its triangle"
        if i >= 1 and j + 2 < shape[2]:
            assert g[0, i - 1, j + 2] == 0, f"({i}, {j}) sees ({i - 1}, {j + 2}), outside the Row LSTM's field"
            missed += 1
    assert missed > 0


def test_skew_unskew_round_trip():
    x = torch.randn(2, 3, 4, 5)
    s = skew(x)
    assert s.shape == (2, 3, 4, 5 + 4 - 1)
    for i, j in itertools.product(range(4), range(5)):
        assert torch.equal(s[..., i, i + j], x[..., i, j])
    assert s.abs().sum() == pytest.approx(x.abs().sum().item(), rel=1e-6)  # zeros everywhere else
    assert torch.equal(unskew(s), x)


def test_masked_conv_keeps_its_weights():
    """Masks are applied functionally: the stored weights are untouched, the output causal."""
    conv = MaskedConv2d(2, 4, 3, 2, "A")
    before = conv.weight.detach().clone()
    conv(torch.randn(1, 2, 3, 3)).sum().backward()
    assert torch.equal(conv.weight, before)
    assert conv.weight.grad[:, :, 2].abs().sum() == 0 and conv.weight.grad[:, :, 1, 2].abs().sum() == 0
    assert conv.weight.grad[:2, :, 1, 1].abs().sum() == 0  # group R sees no channel of its own pixel
    assert conv.weight.grad[2:, 0, 1, 1].abs().sum() > 0 and conv.weight.grad[2:, 1, 1, 1].abs().sum() == 0


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 5, 6), (3, 4, 3)])
def test_incremental_generation_matches_forward(name, shape):
    """The sampler's one-pixel-at-a-time pass, fed the data, gives the full pass's logits."""
    levels = 5
    model = _model(name, shape, levels, first_kernel_size=5 if shape[0] == 1 else 3)
    x = torch.randint(levels, (3, *shape))
    with torch.no_grad():
        full = model(x.float() / (levels - 1)).view(3, shape[0], levels, *shape[1:])
        got, logits = model.generate(3, teacher=x)
    assert torch.equal(got, x)
    torch.testing.assert_close(logits, full, atol=1e-5, rtol=1e-5)


def _naive_sample(model: torch.nn.Module, n: int) -> torch.Tensor:
    """Re-run the whole network over the whole image for every sub-pixel, drawing with the family's draw."""
    c, h, w = model.shape
    levels = torch.zeros(n, c, h, w, dtype=torch.long)
    with torch.inference_mode():
        for i in range(h):
            for j in range(w):
                for ch in range(c):
                    logits = model.network(model.scale(levels)).view(n, c, -1, h, w)[:, ch, :, i, j]  # (n, L)
                    levels[:, ch, i, j] = model._draw(logits, None, (ch, i, j))
    return levels.float() / (model.hparams.num_levels - 1)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 3, 4)])
def test_incremental_sampler_draws_what_a_naive_rerun_draws(name, shape):
    """Same seed, same images: the incremental samplers against one full forward pass per sub-pixel."""
    model = _model(name, shape, 9, sharpen=2.0)
    for seed in range(2):
        torch.manual_seed(seed)
        fast = model.sample(4)
        torch.manual_seed(seed)
        assert torch.equal(fast, _naive_sample(model, 4)), f"seed {seed}"
        assert len(fast.unique()) > 2


def _toy_data(shape: tuple[int, ...], n: int = 512) -> torch.Tensor:
    """Binary images: the first sub-pixel ~ Bernoulli(0.75), the second a copy, the third its negation,
    the rest ~ Bernoulli(0.25) independently."""
    g = torch.Generator().manual_seed(0)
    d = int(torch.tensor(shape).prod())
    first = (torch.rand(n, generator=g) < 0.75).float()
    x = (torch.rand(n, d, generator=g) < 0.25).float()
    x[:, 0], x[:, 1], x[:, 2] = first, first, 1 - first
    return x.view(n, *shape)  # sub-pixels in raster order, R -> G -> B inside a pixel


def _to_raster(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).flatten(1)


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("shape", [(1, 2, 2), (3, 1, 2)])
def test_samples_have_the_data_marginals(name, shape):
    torch.manual_seed(0)
    data = _toy_data((shape[1], shape[2], shape[0])).permute(0, 3, 1, 2).contiguous()  # raster order = R,G,B,...
    model = create_model(name, image_shape=shape, num_levels=2, hidden_channels=6 * shape[0],
                         head_channels=32 * shape[0], num_layers=1, first_kernel_size=3, lr=1e-2, lr_schedule="constant")
    opt = model.configure_optimizers()
    for _ in range(150):
        opt.zero_grad()
        loss = -model.log_prob(data).mean()
        loss.backward()
        opt.step()
    model.eval()
    samples = _to_raster(model.sample(2000))
    target = _to_raster(data)
    assert torch.allclose(samples.mean(0), target.mean(0), atol=0.05), (samples.mean(0), target.mean(0))
    assert (samples[:, 1] == samples[:, 0]).float().mean() > 0.97  # copies of the first sub-pixel
    assert (samples[:, 2] != samples[:, 0]).float().mean() > 0.97


@pytest.mark.parametrize("name", FAMILIES)
def test_bad_arguments_fail_early_with_the_fix(name):
    with pytest.raises(IncompatibleDataError, match="multiple of the 3 image channels"):
        create_model(name, image_shape=(3, 8, 8), num_levels=256, hidden_channels=16)
    with pytest.raises(ValueError, match="odd"):
        create_model(name, image_shape=(1, 8, 8), first_kernel_size=4)
    with pytest.raises(ValueError, match="unconditional"):
        create_model(name, hidden_channels=4, head_channels=4, num_layers=1).sample(2, y=torch.zeros(2).long())


@pytest.mark.parametrize("config", ["digits/pixelrnn_row", "digits/pixelrnn_diag", "binarized_mnist/pixelrnn_row",
                                    "binarized_mnist/pixelrnn_diag"])
def test_example_configs_instantiate(config):
    """The example configs build through the CLI (no training, no data files): family, linked shapes,
    checkpoints selected on validation bits/dim."""
    from pathlib import Path

    from genlight.cli import GenlightCLI
    from genlight.types import DensityModel

    path = Path(__file__).parent.parent / "examples" / f"{config}.yaml"
    cli = GenlightCLI(args=["-c", str(path), "--trainer.logger", "false"], run=False)
    assert type(cli.model).__name__ == ("RowLSTMPixelRNN" if config.endswith("row") else "DiagonalBiLSTMPixelRNN")
    assert isinstance(cli.model, DensityModel) and cli.model.log_prob_is_exact
    assert tuple(cli.model.hparams.image_shape) == tuple(cli.datamodule.image_shape)
    assert cli.model.hparams.num_levels == cli.datamodule.num_levels == (2 if "binarized" in config else 17)
    monitors = [getattr(cb, "monitor", None) for cb in cli.trainer.callbacks]
    assert "val/bpd" in monitors and cli.model.checkpoint_monitor() == ("val/bpd", "min")
