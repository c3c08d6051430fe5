"""The VAE reports a true bound: ELBO <= log p(x) ~= IWAE(k large), checked against quadrature.

With a 1-d latent, ``log p(x) = log \\int p(x|z) N(z; 0, 1) dz`` and the expected ELBO
``\\int q(z|x) log p(x|z) dz - KL(q || p)`` are computed on a dense grid of ``z``.
"""

from __future__ import annotations

import math

import pytest
import torch

from genlight import create_model

GRID = torch.linspace(-10, 10, 4001).unsqueeze(1)
DZ = 20 / 4000


@pytest.fixture
def vae():
    torch.manual_seed(0)
    model = create_model("vae", latent_dim=1, hidden_channels=4, image_shape=(1, 4, 4), num_levels=3).eval()
    with torch.no_grad():  # make p(x|z) depend strongly on z, so the ELBO's gap is visible
        model.decoder.head.weight.mul_(8.0)
    return model


def _log_px_given_grid(vae, x: torch.Tensor) -> torch.Tensor:
    params = vae.decoder(GRID)
    return torch.stack([vae.likelihood.log_prob(params, xi.expand(len(GRID), -1, -1, -1)) for xi in x])


@torch.no_grad()
def test_elbo_below_exact_log_likelihood_and_iwae_tightens(vae):
    torch.manual_seed(1)
    x = torch.randint(0, 3, (4, 1, 4, 4)).float() / 2
    log_px_z = _log_px_given_grid(vae, x)  # (4, grid)
    log_pz = -0.5 * (GRID.squeeze(1) ** 2 + math.log(2 * math.pi))
    exact = torch.logsumexp(log_px_z + log_pz, dim=1) + math.log(DZ)

    mu, logvar = vae.posterior(x)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))  # (4, 1)
    q_density = q.log_prob(GRID.T).exp()  # (4, grid)
    kl = 0.5 * (mu**2 + logvar.exp() - 1 - logvar).squeeze(1)
    expected_elbo = (q_density * log_px_z).sum(1) * DZ - kl

    estimated_elbo = vae.log_prob(x.repeat(2000, 1, 1, 1), num_samples=1).view(2000, 4).mean(0)
    iwae = vae.log_prob(x, num_samples=5000)

    assert (exact - expected_elbo > 0.05).all(), "the test needs a visible gap"
    assert torch.allclose(estimated_elbo, expected_elbo, rtol=0, atol=0.1 + 0.02 * (exact - expected_elbo).max())
    assert (iwae > expected_elbo).all()
    assert torch.allclose(iwae, exact, atol=0.05), (iwae, exact)
