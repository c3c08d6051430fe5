"""Normalizing flows: every registered flow family (found by ``is_normalizing_flow``), and every
invertible layer of ``genlight/nn/flows.py``, against autograd and hand computations.

* exact invertibility (``decode(encode(x)) == x``; the continuous bijection within 1e-4);
* log-determinants equal ``log|det J|`` of ``torch.autograd.functional.jacobian`` (per layer type,
  and for whole flows on images and on 2-D points);
* on toy2d, after a short training, the density integrates to 1 on a grid and samples cover the modes;
* ActNorm's data-dependent init (zero mean, unit variance) survives a checkpoint; LU 1x1 conv = plain;
* bits/dim bookkeeping against flows whose density is known in closed form.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn
from torch.autograd.functional import jacobian

from genlight import create_datamodule, get_model_class, list_models, load_model
from genlight.datamodules.toy2d import eight_gaussians_centers
from genlight.errors import ImageShapeError, IncompatibleDataError
from genlight.nn.autoregressive_flows import MaskedAffineAutoregressive, MaskedSplineAutoregressive
from genlight.nn.flows import (
    ActNorm,
    AffineCoupling,
    ConvCouplingNet,
    FlowStep,
    InvConv1x1,
    LogitTransform,
    MLPCouplingNet,
    MultiScaleFlow,
    Shift,
    Split,
    Squeeze,
    StandardNormalTop,
    VariationalDequantization,
)
from genlight.nn.spline_coupling import SplineCoupling
from tests.helpers import cpu_trainer

FLOWS = [n for n in list_models() if getattr(get_model_class(n), "is_normalizing_flow", False)]


def test_flow_families_are_discovered():
    assert {"realnvp", "glow", "maf", "nsf"} <= set(FLOWS)


def _build(name: str, points: bool = False, **kwargs) -> nn.Module:
    cls = get_model_class(name)
    data = {"image_shape": (2,), "num_levels": 0} if points else {"image_shape": (1, 8, 8), "num_levels": 17}
    return cls(**{**cls.smoke_kwargs, **data, **kwargs})


@torch.no_grad()
def _perturb(module: nn.Module, scale: float = 0.05) -> None:
    """Move every parameter off its (often identity-like) initial value, so no layer is trivial."""
    for p in module.parameters():
        p.add_(scale * torch.randn_like(p))


def _digits(n: int = 16) -> Tensor:
    dm = create_datamodule("digits", batch_size=n)
    dm.setup("fit")
    return next(iter(dm.train_dataloader()))[0]


def _randomised(model: nn.Module, x: Tensor) -> nn.Module:
    """ActNorm initialised from ``x`` (one training-mode pass), then every parameter perturbed; eval mode."""
    model.train()
    with torch.no_grad():
        model.log_prob(x)
    _perturb(model)
    return model.eval()


def _points(n: int = 64) -> Tensor:
    return torch.randn(n, 2) * 2.0


def _jacobian_logdet(fn, x: Tensor) -> Tensor:
    """``log|det J|`` of ``fn`` at one example ``x`` (no batch dim), from autograd, in float64."""
    jac = jacobian(lambda v: fn(v.view(1, *x.shape)).flatten(), x.flatten(), vectorize=True)
    return torch.linalg.slogdet(jac.double())[1]


# ------------------------------------------------------------------------------------------ per layer
def _conv_net(c_in: int, c_out: int) -> nn.Module:
    return ConvCouplingNet(c_in, c_out, hidden=8, num_blocks=1)


def _mlp_net(c_in: int, c_out: int) -> nn.Module:
    return MLPCouplingNet(c_in, c_out, hidden=8, num_layers=2)


LAYERS = {
    "coupling_checkerboard_tanh": (lambda: AffineCoupling(2, _conv_net, "checkerboard", 1, "tanh"), (2, 4, 4)),
    "coupling_channel_tanh": (lambda: AffineCoupling(4, _conv_net, "channel", 1, "tanh"), (4, 2, 2)),
    "coupling_channel_sigmoid": (lambda: AffineCoupling(4, _conv_net, "channel", 0, "sigmoid"), (4, 2, 2)),
    "coupling_channel_additive": (lambda: AffineCoupling(3, _conv_net, "channel", 0, "additive"), (3, 2, 2)),
    "coupling_vector": (lambda: AffineCoupling(2, _mlp_net, "channel", 1, "tanh"), (2,)),
    "actnorm_image": (lambda: ActNorm(3), (3, 2, 2)),
    "actnorm_vector": (lambda: ActNorm(2), (2,)),
    "invconv_plain": (lambda: InvConv1x1(3), (3, 2, 2)),
    "invconv_lu": (lambda: InvConv1x1(3, lu=True), (3, 2, 2)),
    "invconv_vector_lu": (lambda: InvConv1x1(2, lu=True), (2,)),
    "squeeze": (lambda: Squeeze(), (2, 4, 4)),
    "logit": (lambda: LogitTransform(0.05), (2, 2, 2)),
    "shift": (lambda: Shift(-0.5), (2, 2, 2)),
    "top_learned": (lambda: StandardNormalTop((2, 2, 2), learned=True), (2, 2, 2)),
    "spline_coupling_checkerboard": (lambda: SplineCoupling(2, _conv_net, "checkerboard", 1, num_bins=4), (2, 4, 4)),
    "spline_coupling_channel": (lambda: SplineCoupling(4, _conv_net, "channel", 0, num_bins=4), (4, 2, 2)),
    "spline_coupling_vector": (lambda: SplineCoupling(2, _mlp_net, "channel", 1, num_bins=4, bound=2.0), (2,)),
    "maf_step": (lambda: MaskedAffineAutoregressive(5, hidden=8, num_layers=2, reverse=True), (5,)),
    "spline_autoregressive_step": (lambda: MaskedSplineAutoregressive(5, hidden=8, num_layers=2, num_bins=4), (5,)),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
def test_layer_logdet_matches_autograd_and_inverts(kind):
    make, shape = LAYERS[kind]
    layer = make()
    # splines: smaller steps, as a float32 inverse loses ~eps / slope where a perturbed spline is near-flat
    # (slopes of e^-11 at 0.3); tests/test_splines.py checks extreme splines in float64
    _perturb(layer, 0.1 if kind.startswith("spline") else 0.3)
    x = torch.rand(3, *shape) if kind == "logit" else torch.randn(3, *shape)
    if isinstance(layer, ActNorm):  # data-dependent init first, then a generic point
        layer.train()(torch.randn(8, *shape) * 3 + 1)
        _perturb(layer, 0.3)
    layer.eval()
    y, logdet = layer(x)
    assert y.shape == (3, *(shape if kind != "squeeze" else (8, 2, 2)))
    for i in range(3):
        expected = _jacobian_logdet(lambda v: layer(v)[0], x[i])
        assert logdet[i].item() == pytest.approx(expected.item(), abs=1e-3, rel=1e-4), kind
    assert torch.allclose(layer.inverse(y), x, atol=1e-5), kind


def test_split_with_learned_prior_logdet_and_inverse():
    split = Split(4, learned_prior=True)
    _perturb(split, 0.3)
    x = torch.randn(2, 4, 2, 2)

    def as_flat(v: Tensor) -> Tensor:
        kept, eps, _ = split(v)
        return torch.cat([kept.flatten(1), eps.flatten(1)], 1)

    kept, eps, logdet = split(x)
    assert kept.shape == eps.shape == (2, 2, 2, 2)
    for i in range(2):
        assert logdet[i].item() == pytest.approx(_jacobian_logdet(as_flat, x[i]).item(), abs=1e-4)
    assert torch.allclose(split.inverse(kept, eps), x, atol=1e-6)


def test_conditional_coupling_and_variational_dequantization_jacobian():
    """Flow++'s ``eps -> u`` given ``x``: its log-determinant (couplings with context + sigmoid) matches autograd,
    ``u`` lies in (0, 1), and ``y`` stays inside the dequantisation cell of ``x``."""
    deq = VariationalDequantization((1, 4, 4), num_levels=17, hidden=8, num_couplings=2)
    _perturb(deq, 0.3)
    x = torch.randint(0, 17, (2, 1, 4, 4)).float() / 16
    eps = torch.randn(2, 1, 4, 4)
    u, logdet = deq.noise_to_u(eps, x)
    assert ((u > 0) & (u < 1)).all()
    for i in range(2):
        expected = _jacobian_logdet(lambda e: deq.noise_to_u(e, x[i : i + 1])[0], eps[i])
        assert logdet[i].item() == pytest.approx(expected.item(), abs=1e-3)
    y, log_q = deq(x)
    assert torch.equal(torch.floor(y * 17), (x * 16).round()) and torch.isfinite(log_q).all()


def test_lu_invconv_equals_plain():
    weight = torch.linalg.qr(torch.randn(4, 4))[0] @ torch.diag(torch.tensor([0.5, 2.0, 1.5, 0.8]))
    plain, lu = InvConv1x1(4, weight=weight), InvConv1x1(4, lu=True, weight=weight)
    assert torch.allclose(lu.matrix(), plain.matrix(), atol=1e-6)
    x = torch.randn(5, 4, 3, 3)
    (y_plain, ld_plain), (y_lu, ld_lu) = plain(x), lu(x)
    assert torch.allclose(y_plain, y_lu, atol=1e-5)
    assert torch.allclose(ld_plain, ld_lu, atol=1e-4)
    assert ld_plain[0].item() == pytest.approx(9 * math.log(0.5 * 2.0 * 1.5 * 0.8), abs=1e-4)
    assert torch.allclose(plain.inverse(y_plain), lu.inverse(y_lu), atol=1e-5)


def test_actnorm_data_init_and_flag_survives_state_dict():
    layer = ActNorm(3)
    x = torch.randn(64, 3, 4, 4) * torch.tensor([0.5, 2.0, 5.0]).view(1, 3, 1, 1) + torch.tensor([1.0, -3.0, 0.0]).view(1, 3, 1, 1)
    y, _ = layer.train()(x)
    assert bool(layer.initialized)
    assert torch.allclose(y.mean((0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(y.std((0, 2, 3), unbiased=False), torch.ones(3), atol=1e-4)
    fresh = ActNorm(3)
    fresh.load_state_dict(layer.state_dict())
    assert bool(fresh.initialized)
    y2, _ = fresh.train()(x * 10)  # a second batch must not re-initialise
    bias, scale = layer.bias.detach().view(1, 3, 1, 1), layer.log_scale.detach().exp().view(1, 3, 1, 1)
    assert torch.allclose(y2, (x * 10 + bias) * scale, atol=1e-4)


@pytest.mark.parametrize("name", FLOWS)
def test_actnorm_init_survives_checkpoint(name, tmp_path):
    """After a fit every ActNorm is initialised; ``load_model`` keeps the flag and the values, so a
    training-mode pass on other data does not re-initialise the loaded model."""
    dm = create_datamodule("digits", batch_size=32)
    model = _build(name)
    trainer = cpu_trainer(str(tmp_path), max_steps=2, limit_val_batches=0)
    trainer.fit(model, datamodule=dm)
    actnorms = [m for m in model.modules() if isinstance(m, ActNorm)]
    assert actnorms and all(bool(m.initialized) for m in actnorms)
    path = tmp_path / "flow.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_model(path)
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    loaded.train()
    with torch.no_grad():
        loaded.log_prob(torch.rand(8, 1, 8, 8))
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, before[key]), key


# ------------------------------------------------------------------------------------------ whole flows
@pytest.mark.parametrize("dequantization", ["uniform", "variational"])
@pytest.mark.parametrize("name", FLOWS)
def test_encode_decode_roundtrip_on_images(name, dequantization):
    x = _digits()
    model = _randomised(_build(name, dequantization=dequantization), x)
    with torch.no_grad():
        z = model.encode(x)
        assert z.shape == (len(x), 64)
        assert torch.equal(model.decode(z), x)  # exact on the level grid
        v = torch.rand(4, 1, 8, 8) * 0.98 + 0.01  # the continuous bijection, anywhere in (0, 1)^D
        assert (model.flow.inverse(model.flow(v)[0]) - v).abs().max() < 1e-4


@pytest.mark.parametrize("name", FLOWS)
def test_encode_decode_roundtrip_on_points(name):
    x = _points()
    model = _randomised(_build(name, points=True), x)
    with torch.no_grad():
        assert (model.decode(model.encode(x)) - x).abs().max() < 1e-4


@pytest.mark.parametrize("points", [False, True], ids=["images", "points"])
@pytest.mark.parametrize("name", FLOWS)
def test_whole_flow_logdet_matches_autograd(name, points):
    data = _points() if points else _digits()
    model = _randomised(_build(name, points=points), data)
    x = data[:2] if points else torch.rand(2, 1, 8, 8) * 0.9 + 0.05
    _, logdet = model.flow(x)
    for i in range(2):
        expected = _jacobian_logdet(lambda v: model.flow(v)[0], x[i])
        assert logdet[i].item() == pytest.approx(expected.item(), abs=2e-3, rel=1e-4)


@pytest.mark.parametrize("name", FLOWS)
def test_likelihood_label_and_exactness_follow_the_data(name):
    images, points = _build(name), _build(name, points=True)
    assert images.log_prob_is_exact is False and images.density_label == "bpd_bound"
    assert points.log_prob_is_exact is True and points.density_label == "nll"
    assert type(images).log_prob_is_exact is False


@pytest.mark.parametrize("name", FLOWS)
def test_bad_data_is_refused_with_a_clear_error(name):
    cls = get_model_class(name)
    try:
        odd = cls(**cls.smoke_kwargs, image_shape=(1, 5, 5), num_levels=17)
    except ImageShapeError as err:  # squeezes need even sides
        assert "multiples of" in str(err)
    else:  # a flow without squeezes (MAF, autoregressive NSF) takes any side
        assert not any(isinstance(m, Squeeze) for m in odd.modules())
        assert odd.log_prob(torch.rand(2, 1, 5, 5)).shape == (2,)
    with pytest.raises(IncompatibleDataError, match="num_levels"):
        cls(**cls.smoke_kwargs, image_shape=(1, 8, 8), num_levels=0)
    with pytest.raises(IncompatibleDataError, match="continuous"):
        cls(**cls.smoke_kwargs, image_shape=(2,), num_levels=17)


# ------------------------------------------------------------------------------------------ bits/dim
class _NormalQuantile(FlowStep):
    """``y in (0, 1) -> Phi^{-1}(y)``: pushes U(0, 1) to N(0, 1), so the flow's density of ``y`` is 1."""

    def forward(self, y: Tensor) -> tuple[Tensor, Tensor]:
        z = math.sqrt(2) * torch.erfinv(2 * y.double() - 1)
        log_phi = -0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)
        return z.float(), (-log_phi).flatten(1).sum(1).float()


class _LogisticToNormal(FlowStep):
    """``v -> Phi^{-1}(sigmoid(v))``: pushes the standard logistic to N(0, 1)."""

    def forward(self, v: Tensor) -> tuple[Tensor, Tensor]:
        s = torch.sigmoid(v.double())
        z, ld = _NormalQuantile()(s)
        return z, ld + (torch.log(s) + torch.log1p(-s)).flatten(1).sum(1).float()


@pytest.mark.parametrize("name", FLOWS)
def test_bits_per_dim_of_a_uniform_flow_is_log2_levels(name, tmp_path):
    """A flow with density 1 on (0, 1)^D gives every dequantised image ``log p = -D log L``: exactly
    ``log2(17)`` bits/dim on digits, through ``validate`` and the ``val/bpd_bound`` figure; with RealNVP's
    logit preprocessing (``a = 0.05``) and a logistic base, ``log2(17) - log2(1 - 2a)``."""
    dm = create_datamodule("digits", batch_size=64)
    for steps, expected in (
        ([_NormalQuantile()], math.log2(17)),
        ([LogitTransform(0.05), _LogisticToNormal()], math.log2(17) - math.log2(0.9)),
    ):
        model = _build(name)
        model.flow = MultiScaleFlow((1, 8, 8), [steps], [None])
        metrics = cpu_trainer(str(tmp_path)).validate(model, datamodule=dm, verbose=False)[0]
        assert metrics["val/bpd_bound"] == pytest.approx(expected, abs=1e-4)


# ------------------------------------------------------------------------------------------ toy2d
_TRAINED: dict[tuple[str, int], nn.Module] = {}
#: the depth argument and value of each family's toy2d fit (NSF's spline couplings cost ~2x an affine one: 4)
_DEPTH = {"realnvp": ("num_couplings", 8), "glow": ("depth", 8), "maf": ("depth", 8), "nsf": ("depth", 4)}


def _trained_on_eight_gaussians(name: str, tmp_path, epochs: int, hidden: int) -> nn.Module:
    """A short fit on eight Gaussians (``epochs`` x 50 steps of 256 points), cached for the session."""
    if (name, epochs) not in _TRAINED:
        torch.manual_seed(0)
        dm = create_datamodule("toy2d", dataset="eight_gaussians", num_samples=14_300, batch_size=256)
        depth = dict([_DEPTH[name]]) if name in _DEPTH else {}
        model = _build(name, points=True, hidden=hidden, num_blocks=2, lr=5e-3, warmup_steps=20, **depth)
        cpu_trainer(str(tmp_path), max_epochs=epochs, limit_val_batches=0).fit(model, datamodule=dm)
        _TRAINED[(name, epochs)] = model.eval()
    return _TRAINED[(name, epochs)]


def _gaussian_fit_log_prob(x: Tensor) -> Tensor:
    """Mean log-density of ``x`` under the maximum-likelihood single Gaussian (what an untrained-ish flow matches)."""
    return torch.distributions.MultivariateNormal(x.mean(0), torch.cov(x.T)).log_prob(x).mean()


@pytest.mark.parametrize("name", FLOWS)
def test_toy2d_density_integrates_to_one(name, tmp_path):
    """After 100 steps (not a Gaussian any more), ``exp(log_prob)`` sums to 1 on a [-7, 7]^2 grid."""
    from genlight.datamodules.toy2d import sample_toy2d

    model = _trained_on_eight_gaussians(name, tmp_path, epochs=2, hidden=32)
    x = sample_toy2d("eight_gaussians", 4000, torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert model.log_prob(x).mean() > _gaussian_fit_log_prob(x) + 0.2
    side = torch.linspace(-7, 7, 401)
    grid = torch.cartesian_prod(side, side)
    with torch.no_grad():
        density = torch.cat([model.log_prob(chunk).exp() for chunk in grid.split(40_000)])
    cell = (side[1] - side[0]).item() ** 2
    assert density.sum().item() * cell == pytest.approx(1.0, abs=1e-2)


@pytest.mark.slow
@pytest.mark.parametrize("name", FLOWS)
def test_toy2d_trained_density_and_samples_cover_every_mode(name, tmp_path):
    """A longer fit: the density is close to the truth and samples put 1/8 of their mass on each mode."""
    from genlight.datamodules.toy2d import log_prob as true_log_prob
    from genlight.datamodules.toy2d import sample_toy2d

    model = _trained_on_eight_gaussians(name, tmp_path, epochs=8, hidden=64)
    x = sample_toy2d("eight_gaussians", 4000, torch.Generator().manual_seed(7))
    with torch.no_grad():
        assert model.log_prob(x).mean() > _gaussian_fit_log_prob(x) + 0.7
        assert model.log_prob(x).mean() > true_log_prob("eight_gaussians", x).mean() - 0.5
    torch.manual_seed(1)
    samples = model.sample(4000)
    assert samples.shape == (4000, 2)
    dist = torch.cdist(samples.double(), eight_gaussians_centers())  # (N, 8)
    share = torch.bincount(dist.argmin(1), minlength=8).double() / len(samples)
    assert share.min() > 0.07 and share.max() < 0.18, share  # 1/8 each
    assert (dist.min(1).values < 1.0).double().mean() > 0.7  # mostly near a centre (std 0.35)
    assert samples.std(0).sub(2.03).abs().max() < 0.25  # marginal std sqrt(r^2 / 2 + sigma^2)
    colder = model.sample(4000, temperature=0.5)
    assert colder.norm(dim=1).std() < samples.norm(dim=1).std()
