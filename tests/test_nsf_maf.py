"""The parts of MAF and the neural spline flows: the rational-quadratic spline (inverse to 1e-5 inside,
at the bin edges and in the identity tails; log-derivative against autograd; the knots where they are
meant to be), MADE's autoregressive masks by autograd, and both NSF variants as whole flows (the
default variant is covered with every flow family by ``tests/test_flows.py``)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian

from genlight import get_model_class
from genlight.nn.autoregressive_flows import MaskedAffineAutoregressive, MaskedSplineAutoregressive
from genlight.nn.made import MADE
from genlight.nn.splines import rational_quadratic_spline

B = 3.0


def _params(n: int, k: int, scale: float, seed: int = 0, dtype: torch.dtype = torch.float64) -> tuple:
    g = torch.Generator().manual_seed(seed)
    return tuple(scale * torch.randn(n, m, generator=g, dtype=dtype) for m in (k, k, k - 1))


def _expected_knots(raw: torch.Tensor, min_share: float = 1e-3) -> torch.Tensor:
    """Knot positions ``(n, K + 1)`` from ``-B`` to ``B``, computed here from the definition (min share + softmax)."""
    k = raw.shape[-1]
    share = min_share + (1 - min_share * k) * torch.softmax(raw, -1)
    return torch.cat([torch.full_like(raw[:, :1], -B), -B + 2 * B * torch.cumsum(share, -1)], -1)


@pytest.mark.parametrize("scale", [0.5, 3.0])
def test_spline_inverse_to_1e5_inside_and_in_the_tails(scale):
    """Float64, parameters of scale 3 (near-flat bins of slope ~e^-11 included) and 0.5: ``g^-1(g(x)) = x``
    within 1e-5 on [-B - 1, B + 1], and the two log-derivatives cancel."""
    n, k = 2001, 6
    w, h, d = _params(n, k, scale)
    x = torch.linspace(-B - 1, B + 1, n, dtype=torch.float64)
    y, ld = rational_quadratic_spline(x, w, h, d, bound=B)
    back, ld_inv = rational_quadratic_spline(y, w, h, d, bound=B, inverse=True)
    assert y.dtype == torch.float64
    assert (back - x).abs().max() < 1e-5
    assert (ld + ld_inv).abs().max() < 1e-5
    w1, h1, d1 = (t[:1].expand(n, -1) for t in (w, h, d))  # one spline over the whole grid: increasing
    assert (torch.diff(rational_quadratic_spline(x, w1, h1, d1, bound=B)[0]) > 0).all()


def test_spline_float32_inverse_to_1e5():
    n, k = 2001, 8
    w, h, d = _params(n, k, 0.5, dtype=torch.float32)
    x = torch.linspace(-B - 1, B + 1, n)
    y, ld = rational_quadratic_spline(x, w, h, d, bound=B)
    back, ld_inv = rational_quadratic_spline(y, w, h, d, bound=B, inverse=True)
    assert y.dtype == torch.float32
    assert (back - x).abs().max() < 1e-5 and (ld + ld_inv).abs().max() < 1e-4


def test_spline_is_the_identity_in_the_tails():
    """Outside [-B, B] the spline and its inverse return the input exactly, with log-derivative 0."""
    n, k = 400, 5
    w, h, d = _params(n, k, 2.0)
    f64 = torch.float64
    x = torch.cat([torch.linspace(-9, -B - 1e-9, n // 2, dtype=f64), torch.linspace(B + 1e-9, 9, n // 2, dtype=f64)])
    for inverse in (False, True):
        y, ld = rational_quadratic_spline(x, w, h, d, bound=B, inverse=inverse)
        assert torch.equal(y, x) and torch.equal(ld, torch.zeros_like(ld))


def test_spline_at_bin_edges_hits_the_knots_with_their_derivatives():
    """At every knot ``x_k`` the spline gives ``y_k`` (knots from widths / heights by the definition) with
    slope ``d_k`` (softplus of the inner derivatives, 1 at -B and B, matching the identity tails); the
    inverse maps each ``y_k`` back to ``x_k`` within 1e-5."""
    n, k = 64, 6
    w, h, d = _params(n, k, 2.0, seed=3)
    xs, ys = _expected_knots(w), _expected_knots(h)  # (n, K + 1)
    inner = 1e-3 + F.softplus(d + math.log(math.expm1(1 - 1e-3)))
    slopes = torch.cat([torch.ones(n, 1, dtype=inner.dtype), inner, torch.ones(n, 1, dtype=inner.dtype)], -1)
    for j in range(k + 1):
        y, ld = rational_quadratic_spline(xs[:, j], w, h, d, bound=B)
        assert (y - ys[:, j]).abs().max() < 1e-9, j
        assert (ld - slopes[:, j].log()).abs().max() < 1e-6, j
        back, _ = rational_quadratic_spline(ys[:, j], w, h, d, bound=B, inverse=True)
        assert (back - xs[:, j]).abs().max() < 1e-5, j


def test_spline_log_derivative_matches_autograd():
    n, k = 500, 7
    w, h, d = _params(n, k, 1.5, seed=1)
    x = torch.linspace(-B - 0.5, B + 0.5, n, dtype=torch.float64).requires_grad_()
    for inverse in (False, True):
        y, ld = rational_quadratic_spline(x, w, h, d, bound=B, inverse=inverse)
        (grad,) = torch.autograd.grad(y.sum(), x)
        assert torch.allclose(grad.log(), ld, atol=1e-8)


def test_zero_parameters_give_the_identity():
    x = torch.linspace(-4, 4, 101)
    y, ld = rational_quadratic_spline(x, torch.zeros(101, 4), torch.zeros(101, 4), torch.zeros(101, 3), bound=B)
    assert torch.allclose(y, x, atol=1e-6) and ld.abs().max() < 1e-6


@pytest.mark.parametrize("reverse", [False, True], ids=["natural", "reversed"])
def test_made_outputs_depend_only_on_earlier_inputs(reverse):
    """Autograd: ``d out[p, d] / d x_j`` is zero unless ``j`` comes before ``d`` in the order, and the
    masks leave every allowed dependence in place (each output depends on every earlier input)."""
    dim = 6
    made = MADE(dim, hidden=32, num_layers=3, params_per_dim=2, reverse=reverse)
    with torch.no_grad():
        for p in made.parameters():
            p.add_(0.3 * torch.randn_like(p))
    jac = jacobian(lambda v: made(v.view(1, dim)).flatten(), torch.randn(dim)).view(2, dim, dim)  # (P, D_out, D_in)
    order = torch.arange(dim - 1, -1, -1) if reverse else torch.arange(dim)
    allowed = order[None, :] < order[:, None]  # (D_out, D_in)
    for p in range(2):
        assert (jac[p][~allowed] == 0).all()
        assert (jac[p][allowed] != 0).all()


@pytest.mark.parametrize("step", ["affine", "spline"])
def test_autoregressive_step_jacobian_is_triangular(step):
    """The step's Jacobian is lower triangular in the MADE's order (reversed here: upper triangular)."""
    torch.manual_seed(0)
    layer = (
        MaskedAffineAutoregressive(5, hidden=16, reverse=True)
        if step == "affine"
        else MaskedSplineAutoregressive(5, hidden=16, reverse=True, num_bins=4)
    )
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.1 * torch.randn_like(p))
    jac = jacobian(lambda v: layer(v.view(1, 5))[0].flatten(), torch.randn(5) * 0.5)
    assert torch.equal(jac, torch.triu(jac)) and (jac.diagonal() > 0).all()


def _nsf(variant: str, points: bool):
    cls = get_model_class("nsf")
    data = {"image_shape": (2,), "num_levels": 0} if points else {"image_shape": (1, 4, 4), "num_levels": 17}
    torch.manual_seed(0)
    model = cls(**{**cls.smoke_kwargs, **data, "variant": variant, "depth": 2})
    model.train()
    with torch.no_grad():  # ActNorm's data-dependent init, then every weight off its init
        model.flow(torch.randn(16, 2) if points else torch.rand(16, 1, 4, 4) * 0.9 + 0.05)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.mark.parametrize("points", [False, True], ids=["images", "points"])
@pytest.mark.parametrize("variant", ["coupling", "autoregressive"])
def test_nsf_variants_logdet_matches_autograd_and_inverts(variant, points):
    model = _nsf(variant, points)
    x = torch.randn(2, 2) * 2 if points else torch.rand(2, 1, 4, 4) * 0.9 + 0.05
    eps, logdet = model.flow(x)
    for i in range(2):
        jac = jacobian(lambda v: model.flow(v.view(1, *x.shape[1:]))[0].flatten(), x[i].flatten())
        assert logdet[i].item() == pytest.approx(torch.linalg.slogdet(jac.double())[1].item(), abs=2e-3, rel=1e-4)
    assert (model.flow.inverse(eps) - x).abs().max() < 1e-4
    kinds = {type(m).__name__ for m in model.modules()}
    assert ("MaskedSplineAutoregressive" in kinds) == (variant == "autoregressive")
    assert ("SplineCoupling" in kinds) == (variant == "coupling")
