"""Latent priors ``p(z)`` for VAEs: the isotropic Gaussian, a mixture of Gaussians, the VampPrior.

Each prior module, called with the model's posterior function, returns a
:class:`DiagonalGaussianMixture` ``p(z) = sum_k w_k N(z; mu_k, diag(exp(logvar_k)))``: one standard
component (``N(0, I)``, whose KL to a Gaussian posterior has a closed form), ``K`` learned components
(``mog``), or the VampPrior of Tomczak & Welling (2018), ``p(z) = 1/K sum_k q(z | u_k)`` with ``K``
learned pseudo-inputs ``u_k`` passed through the encoder. Without a closed form the KL is estimated by
Monte Carlo at the sampled ``z``: ``log q(z|x) - log p(z)`` (:func:`kl_monte_carlo`), unbiased, so the
ELBO stays a true lower bound in expectation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
import torch
from torch import Tensor, nn

__all__ = [
    "DiagonalGaussianMixture",
    "GaussianPrior",
    "LOGVAR_RANGE",
    "MixturePrior",
    "VampPrior",
    "gaussian_log_prob",
    "kl_monte_carlo",
    "kl_standard_normal",
    "make_prior",
]

#: the range log-variances are clamped to (posterior and prior alike): keeps ``exp(logvar)`` finite
#: and a KL from exploding (AntixK/PyTorch-VAE#92 reports log-variances of 50-60 without it)
LOGVAR_RANGE = (-12.0, 8.0)
_LOG_2PI = math.log(2 * math.pi)

#: ``posterior(x) -> (mu, logvar)``, the model's encoder, which the VampPrior applies to its pseudo-inputs
PosteriorFn = Callable[[Tensor], tuple[Tensor, Tensor]]


def gaussian_log_prob(z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
    """``log N(z; mu, diag(exp(logvar)))`` summed over the last dimension (float32), broadcasting."""
    z, mu, logvar = z.float(), mu.float(), logvar.float()
    return -0.5 * ((z - mu).pow(2) * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


def kl_standard_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I)) = 1/2 sum(mu^2 + exp(logvar) - 1 - logvar)``, per example."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)


def kl_monte_carlo(z: Tensor, mu: Tensor, logvar: Tensor, prior: DiagonalGaussianMixture) -> Tensor:
    """One-sample estimate ``log q(z|x) - log p(z)`` of ``KL(q(z|x) || p(z))`` at ``z ~ q(z|x)``."""
    return gaussian_log_prob(z, mu, logvar) - prior.log_prob(z)


class DiagonalGaussianMixture:
    """``p(z) = sum_k softmax(logits)_k N(z; means_k, diag(exp(logvars_k)))``; ``means`` ``(K, D)``."""

    def __init__(self, means: Tensor, logvars: Tensor, logits: Tensor | None = None, standard: bool = False) -> None:
        self.means, self.logvars = means.float(), logvars.float()
        k = means.shape[0]
        logits = torch.zeros(k, device=means.device) if logits is None else logits.float()
        self.log_weights = logits.log_softmax(0)
        self.standard = standard  # N(0, I): the KL to a Gaussian has a closed form

    @property
    def num_components(self) -> int:
        return self.means.shape[0]

    def log_prob(self, z: Tensor) -> Tensor:
        """``log p(z)`` for ``z`` of shape ``(..., D)`` -> ``(...)``, by a logsumexp over components."""
        if self.standard:
            return -0.5 * (z.float().pow(2) + _LOG_2PI).sum(-1)
        per_component = gaussian_log_prob(z.unsqueeze(-2), self.means, self.logvars)  # (..., K)
        return torch.logsumexp(per_component + self.log_weights, dim=-1)

    def sample(self, n: int) -> Tensor:
        """``n`` draws ``(n, D)``: a component from the weights, then its Gaussian."""
        k = torch.multinomial(self.log_weights.exp(), n, replacement=True)
        eps = torch.randn(n, self.means.shape[1], device=self.means.device)
        return self.means[k] + eps * torch.exp(0.5 * self.logvars[k])

    def kl(self, z: Tensor, mu: Tensor, logvar: Tensor) -> Tensor:
        """``KL(q || p)`` per example: closed form for ``N(0, I)``, else :func:`kl_monte_carlo` at ``z``."""
        return kl_standard_normal(mu, logvar) if self.standard else kl_monte_carlo(z, mu, logvar, self)


class GaussianPrior(nn.Module):
    """``p(z) = N(0, I)``; no parameters."""

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        self.register_buffer("zeros", torch.zeros(1, latent_dim), persistent=False)  # follows .to(device)

    def forward(self, posterior: PosteriorFn | None = None) -> DiagonalGaussianMixture:
        return DiagonalGaussianMixture(self.zeros, self.zeros, standard=True)


class MixturePrior(nn.Module):
    """A learned mixture of ``K`` diagonal Gaussians with learned weights; means start ``N(0, I)``,
    variances at 1, so the prior starts near the standard Gaussian's scale."""

    def __init__(self, latent_dim: int, components: int) -> None:
        super().__init__()
        self.means = nn.Parameter(torch.randn(components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(components))

    def forward(self, posterior: PosteriorFn | None = None) -> DiagonalGaussianMixture:
        return DiagonalGaussianMixture(self.means, self.logvars.clamp(*LOGVAR_RANGE), self.logits)


class VampPrior(nn.Module):
    """VampPrior (Tomczak & Welling 2018): ``p(z) = 1/K sum_k q(z | u_k)``.

    ``K`` pseudo-inputs ``u_k = hardtanh(raw_k, 0, 1)`` of the image shape, passed through the
    model's encoder on every call (so the prior moves with the encoder). ``raw`` starts at
    ``0.5 + 0.05 N(0, 1)``: grey images that the encoder maps near its average posterior.
    """

    def __init__(self, image_shape: Sequence[int], components: int) -> None:
        super().__init__()
        self.pseudo_inputs = nn.Parameter(0.5 + 0.05 * torch.randn(components, *image_shape))

    def inputs(self) -> Tensor:
        """The pseudo-inputs in [0, 1], ``(K, C, H, W)``."""
        return self.pseudo_inputs.clamp(0.0, 1.0)

    def forward(self, posterior: PosteriorFn | None = None) -> DiagonalGaussianMixture:
        if posterior is None:
            raise ValueError("the VampPrior needs the model's posterior q(z|x) to encode its pseudo-inputs")
        mu, logvar = posterior(self.inputs())
        return DiagonalGaussianMixture(mu, logvar)


def make_prior(name: str, latent_dim: int, components: int, image_shape: Sequence[int]) -> nn.Module:
    """The prior module named ``gaussian``, ``vamp`` (``components`` pseudo-inputs) or ``mog``."""
    if name == "gaussian":
        return GaussianPrior(latent_dim)
    if components < 1:
        raise ValueError(f"prior_components must be >= 1 for the {name} prior, got {components}")
    if name == "mog":
        return MixturePrior(latent_dim, components)
    if name == "vamp":
        return VampPrior(image_shape, components)
    raise ValueError(f"unknown prior {name!r}; choose one of: gaussian, vamp, mog")
