"""The exact-likelihood autoregressive families: every registered family with ``autoregressive = True``
(NADE, PixelCNN, Gated PixelCNN, and PixelRNN the moment it registers) through the same checks.

Contract (genlight.nn.autoregressive): ``conditional_logits(x)`` ``(B, C*P, H, W)`` gives every
sub-pixel's conditional; sub-pixel ``(c, i, j)`` may depend only on sub-pixels before it in raster order
(rows, columns, then channels R -> G -> B). Families are built from their ``smoke_kwargs`` (plus the
``DEEP`` overrides for the deep-network checks), with randomised weights so nothing is trivially uniform.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from genlight import create_datamodule, get_model_class, list_models
from genlight.nn.masked import MaskedConv2d, channel_groups
from genlight.testing.meaning import dependence as kit_dependence

AR_FAMILIES = [n for n in list_models() if getattr(get_model_class(n), "autoregressive", False)]
#: deeper settings for the receptive-field checks (families not named here use their smoke_kwargs)
DEEP = {
    "pixelcnn": {"num_blocks": 3, "hidden_channels": 12, "head_channels": 12},
    "gated_pixelcnn": {"num_layers": 4, "kernel_size": 3, "hidden_channels": 12, "head_channels": 12},
    "nade": {"hidden_units": 24},
}


def build(
    name: str, image_shape: tuple[int, ...], num_levels: int, deep: bool = False, seed: int = 0, noise: float = 0.3, **kw
):
    """A family on ``image_shape`` with weights perturbed by N(0, noise^2), in float64, eval mode."""
    import inspect

    cls = get_model_class(name)
    kwargs = {**cls.smoke_kwargs, **(DEEP.get(name, {}) if deep else {}), **kw}
    if "num_classes" in inspect.signature(cls.__init__).parameters:
        kwargs.setdefault("num_classes", 3)
    torch.manual_seed(seed)
    model = cls(image_shape=image_shape, num_levels=num_levels, **kwargs)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(noise * torch.randn_like(p))
    return model.double().eval()


def all_images(shape: tuple[int, ...], levels: int) -> torch.Tensor:
    """Every image of ``shape`` with ``levels`` levels, ``(L^D, *shape)`` in [0, 1]."""
    grid = torch.tensor(list(itertools.product(range(levels), repeat=math.prod(shape))), dtype=torch.float64)
    return (grid / (levels - 1)).view(-1, *shape)


def raster_rank(shape: tuple[int, ...]) -> torch.Tensor:
    """``(C, H, W)``: each sub-pixel's position in raster order (rows, columns, channels)."""
    c, h, w = shape
    return torch.arange(c * h * w).view(h, w, c).permute(2, 0, 1)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny ops: one thread avoids OpenMP spinning on a shared machine (a 20x slowdown seen here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_families_are_discovered():
    assert {"nade", "pixelcnn", "gated_pixelcnn"} <= set(AR_FAMILIES)


# ---------------------------------------------------------------------------- probabilities sum to one
def output_kwargs(name: str, output: str) -> dict:
    import inspect

    if output == "softmax":
        return {}
    if "output" not in inspect.signature(get_model_class(name)).parameters:
        pytest.skip(f"{name} has no {output} output")
    return {"output": output, "components": 2}


@pytest.mark.parametrize("name", AR_FAMILIES)
@pytest.mark.parametrize("shape,levels", [((1, 2, 2), 2), ((1, 2, 2), 3), ((3, 1, 1), 2), ((3, 1, 1), 3)])
@pytest.mark.parametrize("output", ["softmax", "logistic_mixture"])
def test_probabilities_sum_to_one(name, shape, levels, output):
    if output != "softmax" and levels == 2:
        pytest.skip("binary data use a Bernoulli output")
    model = build(name, shape, levels, **output_kwargs(name, output))
    x = all_images(shape, levels)
    with torch.no_grad():
        lp = model.log_prob(x)
    assert lp.shape == (len(x),) and (lp < 0).all()
    assert abs(lp.exp().sum().item() - 1.0) < 1e-5
    assert lp.exp().std() > 1e-3, "the randomised model should not be uniform"


@pytest.mark.parametrize("shape,levels", [((1, 2, 2), 3), ((3, 1, 1), 4)])
@pytest.mark.parametrize("log_scale_bias", [-12.0, 7.0, 12.0])
def test_mixture_head_sums_to_one_at_extreme_scales(shape, levels, log_scale_bias):
    """A PixelCNN whose mixture head puts every log-scale at (or past) the ends of its clamp: still
    normalised over all images (the outer bins used to end at +-1000, and summed to 0.033 here)."""
    model = build("pixelcnn", shape, levels, **output_kwargs("pixelcnn", "logistic_mixture"))
    last = model.head[-1]
    p, m = model.params_per_channel, model.likelihood.components
    with torch.no_grad():
        for c in range(shape[0]):
            last.bias[c * p + 2 * m : (c + 1) * p] += log_scale_bias  # the log-scale features of channel c
    x = all_images(shape, levels)
    with torch.no_grad():
        total = model.log_prob(x).exp().sum().item()
    assert abs(total - 1.0) < 1e-9


def test_logistic_mixture_levels():
    """Normalised over the levels, equal to plain sigmoid differences where those are accurate, finite far out."""
    from genlight.nn import logistic_mixture_log_probs

    torch.manual_seed(0)
    params = torch.randn(50, 9, dtype=torch.float64)  # 3 components
    lp = logistic_mixture_log_probs(params, 17)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(50, dtype=torch.float64), atol=1e-12)
    logits, mean, log_scale = params.chunk(3, -1)
    edges = torch.cat([torch.tensor([-torch.inf]), (torch.arange(1, 17) - 0.5) / 16, torch.tensor([torch.inf])])
    cdf = torch.sigmoid((edges - mean[..., None]) / log_scale.exp()[..., None])  # (50, 3, 18)
    direct = (logits.softmax(-1)[..., None] * (cdf[..., 1:] - cdf[..., :-1])).sum(-2)
    assert torch.allclose(lp.exp(), direct, atol=1e-12)
    far = logistic_mixture_log_probs(torch.tensor([[0.0, 40.0, -7.0]], requires_grad=True), 17)
    assert torch.isfinite(far).all() and far[0, -1] > -1e-6


def test_nade_every_ordering_sums_to_one():
    model = build("nade", (1, 2, 2), 3, order_agnostic=True, num_orderings=5)
    assert len({tuple(o.tolist()) for o in model.orders}) == 5
    x = model.quantize(all_images((1, 2, 2), 3))
    with torch.no_grad():
        per_order = [model.log_prob_per_dim(x, order).exp() for order in model.orders]
    for probs in per_order:
        assert abs(probs.sum().item() - 1.0) < 1e-6
    assert not torch.allclose(per_order[0], per_order[1]), "orderings should give different models"
    mixture = torch.stack(per_order).mean(0)
    assert torch.allclose(model.log_prob(x).exp(), mixture)


# ---------------------------------------------------------------------------- causality by autograd
def dependence(model, shape: tuple[int, ...]) -> torch.Tensor:
    """The kit's :func:`genlight.testing.meaning.dependence`, in float64 with 16 draws per sub-pixel."""
    return kit_dependence(model, shape, draws=16, dtype=torch.float64)


@pytest.mark.parametrize("name", AR_FAMILIES)
@pytest.mark.parametrize("shape", [(1, 5, 5), (3, 4, 4)])
@pytest.mark.parametrize("deep", [False, True], ids=["smoke", "deep"])
def test_conditionals_are_causal(name, shape, deep):
    model = build(name, shape, 4, deep=deep, **(output_kwargs(name, "logistic_mixture") if deep and shape[0] == 1 else {}))
    dep = dependence(model, shape)
    rank = raster_rank(shape)
    later = rank[None, None, None] >= rank[..., None, None, None]  # input d' at or after output d
    assert not (dep & later).any(), "a conditional sees its own sub-pixel or a later one"
    assert dep[..., 0, 0, 0].flatten()[1:].any(), "conditionals should see the first sub-pixel"
    if shape[0] == 3:  # inside a pixel: G sees R, B sees R and G
        assert dep[1, 2, 2, 0, 2, 2] and dep[2, 2, 2, 0, 2, 2] and dep[2, 2, 2, 1, 2, 2]


def test_gated_pixelcnn_has_no_blind_spot():
    """Every earlier pixel reaches every conditional (PixelCNN's masked 3x3 stack misses the upper right)."""
    shape = (1, 5, 5)
    gated = dependence(build("gated_pixelcnn", shape, 4, deep=True), shape)
    rank = raster_rank(shape)
    earlier = rank[None, None, None] < rank[..., None, None, None]
    assert torch.equal(gated, earlier)
    plain = dependence(build("pixelcnn", shape, 4, num_blocks=4, first_kernel=3, hidden_channels=12), shape)
    assert not plain[0, 4, 0, 0, 3, 4], "a stack of masked 3x3 convolutions has a blind spot (upper right)"


@pytest.mark.parametrize("mask_type", ["A", "B"])
@pytest.mark.parametrize("kernel", [1, 3, (1, 3)])
def test_masked_conv_channel_groups(mask_type, kernel):
    """First (A) and later (B) layers, 1x1 included: feature group g at (i, j) sees earlier pixels and,
    at (i, j), the input groups < g (A) or <= g (B); the two halves of a gate are grouped alike."""
    conv = MaskedConv2d(6, 12, kernel, channels=3, mask_type=mask_type, out_chunks=2).double()
    torch.manual_seed(0)
    x = torch.randn(1, 6, 3, 3, dtype=torch.float64, requires_grad=True)
    out = conv(x)
    g_in, g_out = channel_groups(6, 3), channel_groups(12, 3, 2)
    for f in range(12):
        (grad,) = torch.autograd.grad(out[0, f, 1, 1], x, retain_graph=True)
        seen = grad[0].abs() > 0  # (6, 3, 3)
        assert not seen[:, 2].any() and not seen[:, 1, 2].any(), "rows below / pixels to the right"
        centre = (g_in < g_out[f]) if mask_type == "A" else (g_in <= g_out[f])
        assert torch.equal(seen[:, 1, 1], centre)


@pytest.mark.parametrize("name", AR_FAMILIES)
def test_sampling_rows_match_the_full_pass(name):
    """Sampling computes only the rows the current one sees (``receptive_rows``): same conditionals."""
    model = build(name, (1, 8, 8), 3, deep=True)
    if getattr(model, "receptive_rows", None) is None:
        pytest.skip(f"{name} sees every earlier row: nothing to crop")
    torch.manual_seed(0)
    x = torch.rand(3, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        full = model.conditional_logits(x)
        for row in range(8):
            assert torch.allclose(model.sample_row_logits(x, row, None), full[:, :, row], atol=1e-10)


# ---------------------------------------------------------------------------- sampling
TARGET = torch.tensor([0.20, 0.01, 0.02, 0.05, 0.01, 0.10, 0.02, 0.03, 0.04, 0.02, 0.15, 0.05, 0.10, 0.05, 0.05, 0.10])


@pytest.mark.parametrize("name", AR_FAMILIES)
def test_trained_family_samples_the_right_distribution(name):
    """Fit a 2x2 binary distribution with a known table (full batch, exact expected NLL); 8000 samples
    then have the table's per-pixel marginals and match the model's own joint probabilities."""
    import inspect

    unconditional = {"conditional": False} if "conditional" in inspect.signature(get_model_class(name)).parameters else {}
    model = build(name, (1, 2, 2), 2, deep=True, noise=0.0, **unconditional).float().train()
    x = all_images((1, 2, 2), 2).float()
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(200):
        loss = -(TARGET * model.log_prob(x)).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        table = model.log_prob(x).exp()
    assert 0.5 * (table - TARGET).abs().sum() < 0.1, f"{name} did not fit the table: {table}"
    torch.manual_seed(0)
    samples = model.sample(8000)
    assert samples.shape == (8000, 1, 2, 2) and set(samples.unique().tolist()) <= {0.0, 1.0}
    target_marginals = (TARGET[:, None] * x.flatten(1)).sum(0)
    assert (samples.flatten(1).mean(0) - target_marginals).abs().max() < 0.04
    index = (samples.flatten(1) * torch.tensor([8.0, 4.0, 2.0, 1.0])).sum(1).long()  # same order as all_images
    freq = torch.bincount(index, minlength=16).float() / 8000
    assert 0.5 * (freq - table).abs().sum() < 0.035, f"{name}: sample frequencies {freq} vs model {table}"


def test_digits_samples_have_the_data_marginals():
    """A NADE trained for a few epochs on digits samples with per-pixel means close to the data's."""
    torch.manual_seed(0)
    dm = create_datamodule("digits", batch_size=128)
    dm.setup("fit")
    data = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    model = get_model_class("nade")(image_shape=(1, 8, 8), num_levels=17, hidden_units=64, lr=0.01)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(150):
        batch = data[torch.randint(len(data), (128,))]
        loss = -model.log_prob(batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    samples = model.sample(2000)
    assert (samples.mean(0) - data.mean(0)).abs().max() < 0.08
    assert (samples.mean(0) - data.mean(0)).abs().mean() < 0.03


def test_conditional_gated_pixelcnn_labels():
    model = build("gated_pixelcnn", (1, 3, 3), 3, conditional=True, num_classes=3)
    assert model.num_classes == 3
    x = all_images((1, 3, 3), 3)[::97]
    with torch.no_grad():
        per_class = torch.stack([model.log_prob(x, torch.full((len(x),), k)) for k in range(3)], 1)
        assert not torch.allclose(per_class[:, 0], per_class[:, 1])
        assert torch.allclose(model.log_prob(x), per_class.logsumexp(1) - math.log(3))
    torch.manual_seed(0)
    assert model.sample(5, y=torch.tensor([0, 1, 2, 0, 1])).shape == (5, 1, 3, 3)
    with pytest.raises(ValueError, match="class ids"):
        model.sample(2, y=torch.tensor([0, 7]))


# ---------------------------------------------------------------------------- RNADE on toy2d
def test_rnade_density_integrates_to_one():
    torch.manual_seed(0)
    dm = create_datamodule("toy2d", dataset="eight_gaussians", num_samples=2000, batch_size=256)
    dm.setup("fit")
    data = torch.stack([dm.train_set[i][0] for i in range(len(dm.train_set))])
    model = get_model_class("nade")(image_shape=(2,), num_levels=0, hidden_units=32, components=8, lr=0.01)
    assert model.continuous and model.density_label == "nll"
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(200):
        loss = -model.log_prob(data[torch.randint(len(data), (256,))]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    lim = data.abs().max().item() + 3.0
    step = 2 * lim / 400
    axis = torch.linspace(-lim + step / 2, lim - step / 2, 400)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        mass = model.log_prob(grid).exp().sum().item() * step * step
        trained = model.log_prob(data).mean().item()
    assert abs(mass - 1.0) < 1e-2
    assert trained > -4.0, f"RNADE should fit eight_gaussians (mean log p {trained:.2f})"
    samples = model.sample(500)
    assert samples.shape == (500, 2) and torch.isfinite(samples).all()


# ---------------------------------------------------------------------------- bad input
def test_bad_input_is_refused_early():
    from genlight.errors import ImageShapeError

    with pytest.raises(ValueError, match="num_levels"):
        get_model_class("pixelcnn")(image_shape=(1, 8, 8), num_levels=1)
    with pytest.raises(ImageShapeError):
        get_model_class("pixelcnn")(image_shape=(2,), num_levels=2)
    with pytest.raises(ValueError, match="labelled data"):
        get_model_class("gated_pixelcnn")(conditional=True, num_classes=0)
    with pytest.raises(ValueError, match="unconditional"):
        get_model_class("pixelcnn")().sample(2, y=torch.zeros(2, dtype=torch.long))


# ---------------------------------------------------------------------------- example configs
CONFIGS = [
    "examples/digits/nade.yaml", "examples/digits/pixelcnn.yaml", "examples/digits/gated_pixelcnn.yaml",
    "examples/binarized_mnist/nade.yaml", "examples/binarized_mnist/pixelcnn.yaml",
    "examples/binarized_mnist/gated_pixelcnn.yaml", "examples/cifar10/pixelcnn.yaml",
    "examples/cifar10/gated_pixelcnn.yaml", "examples/toy2d/nade.yaml",
]  # fmt: skip


@pytest.mark.parametrize("path", CONFIGS)
def test_example_config_instantiates(path, tmp_path):
    """Every example parses and builds its model with the datamodule's shapes linked (no data read)."""
    from pathlib import Path

    from genlight.cli import GenlightCLI

    root = Path(__file__).resolve().parents[1]
    cli = GenlightCLI(args=["-c", str(root / path), "--trainer.logger=false", f"--trainer.default_root_dir={tmp_path}"], run=False)
    assert tuple(cli.model.hparams["image_shape"]) == tuple(cli.datamodule.image_shape)
    assert cli.model.hparams["num_levels"] == cli.datamodule.num_levels
    monitors = [cb.monitor for cb in cli.trainer.callbacks if type(cb).__name__ == "ModelCheckpoint" and cb.monitor]
    assert monitors == [f"val/{cli.model.density_label}"], "checkpoints are selected on the model's validation figure"


def test_nade_trains_on_toy2d_from_the_cli(tmp_path):
    from pathlib import Path

    from genlight.cli import GenlightCLI

    root = Path(__file__).resolve().parents[1]
    cli = GenlightCLI(
        args=[
            "-c", str(root / "examples/toy2d/nade.yaml"), "--data.init_args.num_samples=2000", "--trainer.logger=false",
            "--trainer.max_epochs=2", "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}",
            "--samples.every_n_epochs=0",
        ],
        run=False,
    )  # fmt: skip
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    nll = float(cli.trainer.callback_metrics["val/nll"])
    assert math.isfinite(nll) and nll < 4.5, f"RNADE on eight_gaussians: val/nll {nll:.2f} nats"
