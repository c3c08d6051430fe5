"""cvae's label-free figure is a lower bound on ``log p(x)`` in expectation, on a model whose ``log p(x)``
is known in closed form.

The test double keeps cvae's estimators (``log_prob``, ``log_weights``, ``class_bounds``) and replaces
its networks by a linear-Gaussian model: ``p(z) = N(0, I)``, ``p(x|z,y) = N(W_y z + b_y, s^2 I)``, so
``p(x|y) = N(b_y, W_y W_y^T + s^2 I)`` and, with orthogonal columns in ``W_y``, the exact posterior is a
diagonal Gaussian. With the exact posterior every importance weight equals ``p(x|y)``: the estimator
over classes and draws is ``log p(x)`` exactly, while a logsumexp over classes of one-sample ELBOs
(closed-form KL) is noisy, and its expectation lies above ``log p(x)`` (logsumexp is convex).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from genlight.modules.cvae import CVAE

LATENT, CLASSES, NOISE, SHAPE = 2, 3, 0.3, (1, 8, 8)
D = math.prod(SHAPE)


class _GaussianPixels:
    """``N(params, NOISE^2)`` per pixel: a continuous stand-in for the pixel likelihood."""

    params_per_channel = 1

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        return torch.distributions.Normal(params, NOISE).log_prob(x).flatten(1).sum(1)


class _LinearGaussianCVAE(CVAE):
    """cvae with ``p(x|z,y) = N(W_y z + b_y, NOISE^2 I)`` and ``q(z|x,y)`` the exact posterior, its mean
    shifted by ``shift`` and its log-variance by ``widen`` (0, 0: exact)."""

    def __init__(self, shift: float = 0.0, widen: float = 0.0) -> None:
        super().__init__(image_shape=SHAPE, num_classes=CLASSES, latent_dim=LATENT, hidden_channels=4)
        g = torch.Generator().manual_seed(0)
        q = torch.linalg.qr(torch.randn(D, LATENT, generator=g))[0]  # orthonormal columns, shared
        self.scales = torch.tensor([[1.5, 0.8], [1.2, 1.0], [0.9, 1.4]])  # (K, latent): classes that overlap
        self.weights = q * self.scales[:, None, :]  # (K, D, latent), W_y^T W_y = diag(scales^2)
        self.biases = (0.5 + 0.1 * torch.randn(D, generator=g)).expand(CLASSES, D)  # (K, D)
        self.likelihood = _GaussianPixels()
        self.shift, self.widen = shift, widen

    def check_log_prob_input(self, x: Tensor) -> None:  # continuous test data
        pass

    def posterior(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        y = self._labels(y, len(x))
        precision = 1 + self.scales[y] ** 2 / NOISE**2  # (B, latent): diagonal, by the orthogonal columns
        residual = x.flatten(1) - self.biases[y]  # (B, D)
        mu = torch.einsum("bdl,bd->bl", self.weights[y], residual) / NOISE**2 / precision
        return mu + self.shift, -precision.log() + self.widen

    def decoder_given(self, y: Tensor):
        def decode_params(z: Tensor) -> Tensor:
            labels = y.repeat(len(z) // len(y))  # z stacks copies of the batch
            return (torch.einsum("bdl,bl->bd", self.weights[labels], z) + self.biases[labels]).view(-1, *SHAPE)

        return decode_params

    def exact_log_prob(self, x: Tensor) -> Tensor:
        """``log (1/K) sum_y N(x; b_y, W_y W_y^T + s^2 I)``, in float64."""
        w, b = self.weights.double(), self.biases.double()
        cov = w @ w.transpose(1, 2) + NOISE**2 * torch.eye(D, dtype=torch.float64)  # (K, D, D)
        per_class = torch.distributions.MultivariateNormal(b, cov).log_prob(x.flatten(1).double()[:, None])  # (B, K)
        return torch.logsumexp(per_class, 1) - math.log(CLASSES)

    def draw(self, n: int, seed: int) -> Tensor:
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(n) % CLASSES
        z = torch.randn(n, LATENT, generator=g)
        return self.decoder_given(y)(z) + NOISE * torch.randn(n, *SHAPE, generator=g)


def _draws(estimate, x: Tensor, n: int) -> Tensor:
    """``(n, B)``: ``n`` independent draws of an estimator, one batched call."""
    return estimate(x.repeat(n, 1, 1, 1)).view(n, len(x)).double()


@torch.no_grad()
def test_label_free_bound_is_below_log_p_x_where_the_class_logsumexp_of_elbos_is_not():
    model = _LinearGaussianCVAE().eval()
    x = model.draw(6, seed=1)
    exact = model.exact_log_prob(x)
    torch.manual_seed(0)
    bound = _draws(model.log_prob, x, 2000)
    # exact posterior: every importance weight is p(x|y), so the estimator is log p(x) at every draw
    assert (bound - exact).abs().max() < 2e-3, (bound - exact).abs().max()
    old = _draws(lambda v: torch.logsumexp(model.class_bounds(v), 1) - math.log(CLASSES), x, 2000)
    sem = old.std(0) / math.sqrt(len(old))
    assert (old.mean(0) > exact + 0.1 + 3 * sem).all(), (old.mean(0) - exact, sem)  # the old figure: not a bound


@pytest.mark.parametrize("shift,widen", [(0.3, 0.0), (0.0, 1.0), (-0.4, -1.0)])
@torch.no_grad()
def test_label_free_bound_with_an_inexact_posterior(shift, widen):
    """Below ``log p(x)`` in expectation (one draw and IWAE), tighter with more draws per class."""
    model = _LinearGaussianCVAE(shift, widen).eval()
    x = model.draw(6, seed=2)
    exact = model.exact_log_prob(x)
    torch.manual_seed(0)
    one = _draws(model.log_prob, x, 2000)
    many = _draws(lambda v: model.log_prob(v, num_samples=20), x, 200)
    for figures in (one, many):
        sem = figures.std(0) / math.sqrt(len(figures))
        assert (figures.mean(0) < exact + 3 * sem).all(), (figures.mean(0) - exact, sem)
    assert (many.mean(0) > one.mean(0)).all() and (exact - one.mean(0)).min() > 0.02
