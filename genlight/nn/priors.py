"""Latent priors ``p(z)`` by name: one registry for the VAEs and the adversarial autoencoders.

Two kinds, by what the model needs of its prior:

* ``density`` (VAEs: the ELBO's KL needs ``log p(z)``): a module called with the model's posterior
  function that returns a :class:`DiagonalGaussianMixture`
  ``p(z) = sum_k w_k N(z; mu_k, diag(exp(logvar_k)))``: ``gaussian``, the standard ``N(0, I)`` (its KL
  to a Gaussian posterior has a closed form); ``mog``, ``K`` learned components; ``vamp``, the VampPrior
  of Tomczak & Welling (2018), ``p(z) = 1/K sum_k q(z | u_k)`` with ``K`` learned pseudo-inputs ``u_k``
  passed through the encoder. Without a closed form the KL is estimated by Monte Carlo at the sampled
  ``z``: ``log q(z|x) - log p(z)`` (:func:`kl_monte_carlo`), unbiased, so the ELBO stays a true lower
  bound in expectation.
* ``sampler`` (adversarial autoencoders, Makhzani et al. 2016: the discriminator tells prior draws
  from codes, so only draws ``z ~ p(z)`` are needed): a fixed :class:`LatentPrior`, those of the paper
  (§2, Fig. 4): ``gaussian``, ``N(0, std² I)``; ``mixture_of_gaussians``, ``K`` equally weighted
  isotropic Gaussians whose means lie on a ring of radius ``radius`` in the first two latent dimensions;
  ``swiss_roll``, a 2-D spiral, ``t = sqrt(u)``, ``u ~ U(0, 1)``, point ``3t (cos 4πt, sin 4πt)`` plus
  Gaussian noise, component ``k`` of ``K`` the segment ``u ∈ [k/K, (k+1)/K)``. Priors with components
  support the label-supervised AAE (Makhzani §2.3): ``sample(n, y)`` draws each example from the
  component of its class. :func:`gaussian_mmd` is a two-sample statistic for how well codes match prior
  draws (the AAE has no likelihood to report).

:func:`make_prior` builds either kind by name (:data:`PRIORS`); an unknown name gets one error that
lists the names of the kind asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

__all__ = [
    "PRIORS",
    "DiagonalGaussianMixture",
    "GaussianLatentPrior",
    "GaussianPrior",
    "LOGVAR_RANGE",
    "LatentPrior",
    "MixtureOfGaussiansLatentPrior",
    "MixturePrior",
    "PriorKind",
    "SwissRollLatentPrior",
    "VampPrior",
    "check_prior",
    "gaussian_log_prob",
    "gaussian_mmd",
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


# ---------------------------------------------------------------------------------------- with a density (VAE)
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
        if components < 1:
            raise ValueError(f"prior_components must be >= 1 for the mog prior, got {components}")
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
        if components < 1:
            raise ValueError(f"prior_components must be >= 1 for the vamp prior, got {components}")
        self.pseudo_inputs = nn.Parameter(0.5 + 0.05 * torch.randn(components, *image_shape))

    def inputs(self) -> Tensor:
        """The pseudo-inputs in [0, 1], ``(K, C, H, W)``."""
        return self.pseudo_inputs.clamp(0.0, 1.0)

    def forward(self, posterior: PosteriorFn | None = None) -> DiagonalGaussianMixture:
        if posterior is None:
            raise ValueError("the VampPrior needs the model's posterior q(z|x) to encode its pseudo-inputs")
        mu, logvar = posterior(self.inputs())
        return DiagonalGaussianMixture(mu, logvar)


# ---------------------------------------------------------------------------------------- to sample (AAE)
class LatentPrior(nn.Module):
    """A fixed distribution over ``(dim,)`` codes with ``num_components`` labelled parts (0: none).

    Has no parameters and no persistent state (it moves with its module; checkpoints do not change)."""

    num_components: int = 0

    def __init__(self, dim: int) -> None:
        super().__init__()
        if dim < 1:
            raise ValueError(f"the latent dimension must be >= 1, got {dim}")
        self.dim = int(dim)
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)  # the device to sample on

    @property
    def device(self) -> torch.device:
        return self._anchor.device

    def _labels(self, n: int, y: Tensor | None, generator: torch.Generator | None) -> Tensor:
        """``y`` checked as ``(n,)`` component ids, or uniform ids when ``y`` is ``None``."""
        if self.num_components < 1:
            if y is not None:
                raise ValueError(f"the {type(self).__name__} has no components: sample(n) takes no labels y")
            return torch.zeros(n, dtype=torch.long, device=self.device)
        if y is None:
            return torch.randint(self.num_components, (n,), device=self.device, generator=generator)
        y = torch.as_tensor(y, device=self.device).long().view(-1)
        if len(y) != n or (len(y) and (y.min() < 0 or y.max() >= self.num_components)):
            raise ValueError(f"labels y must be {n} component ids in [0, {self.num_components}), got {y.tolist()}")
        return y

    def sample(self, n: int, y: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        """``n`` draws ``(n, dim)``; with ``y``, example ``i`` from component ``y[i]``."""
        raise NotImplementedError

    def component_means(self) -> Tensor:
        """``(num_components, dim)``: the mean of each component."""
        raise NotImplementedError(f"the {type(self).__name__} has no components")

    def nearest_component(self, z: Tensor) -> Tensor:
        """The component whose mean is nearest to each code, ``(n,)``."""
        return torch.cdist(z.float(), self.component_means().to(z.device)).argmin(1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_components={self.num_components}"


class GaussianLatentPrior(LatentPrior):
    """``N(0, std² I)`` (Makhzani Fig. 2); no components."""

    def __init__(self, dim: int, std: float = 1.0) -> None:
        super().__init__(dim)
        self.std = float(std)

    def sample(self, n: int, y: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        self._labels(n, y, generator)
        return self.std * torch.randn(n, self.dim, device=self.device, generator=generator)


class MixtureOfGaussiansLatentPrior(LatentPrior):
    """``1/K Σ_k N(m_k, std² I)``, ``m_k = radius (cos 2πk/K, sin 2πk/K, 0, ..., 0)`` (Makhzani Fig. 4a);
    ``dim >= 2``."""

    def __init__(self, dim: int, num_components: int = 10, radius: float = 4.0, std: float = 0.5) -> None:
        super().__init__(dim)
        if dim < 2:
            raise ValueError(f"mixture_of_gaussians puts its means on a 2-D ring: latent_dim must be >= 2, got {dim}")
        if num_components < 2:
            raise ValueError(f"mixture_of_gaussians needs >= 2 components, got {num_components}")
        self.num_components = int(num_components)
        self.radius, self.std = float(radius), float(std)
        angle = 2 * math.pi * torch.arange(self.num_components, dtype=torch.float64) / self.num_components
        means = torch.zeros(self.num_components, dim, dtype=torch.float64)
        means[:, 0], means[:, 1] = self.radius * angle.cos(), self.radius * angle.sin()
        self.register_buffer("means", means.float(), persistent=False)

    def component_means(self) -> Tensor:
        return self.means

    def sample(self, n: int, y: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        k = self._labels(n, y, generator)
        return self.means[k] + self.std * torch.randn(n, self.dim, device=self.device, generator=generator)


class SwissRollLatentPrior(LatentPrior):
    """A 2-D swiss roll (Makhzani Fig. 4c): ``t = sqrt(u)``, ``z = 3t (cos 4πt, sin 4πt) + N(0, noise² I)``,
    ``u ~ U(0, 1)``; component ``k`` of ``K`` is ``u ∈ [k/K, (k+1)/K)`` (equal mass per segment)."""

    def __init__(self, dim: int = 2, num_components: int = 10, noise: float = 0.05) -> None:
        super().__init__(dim)
        if dim != 2:
            raise ValueError(f"swiss_roll is a 2-D prior: set latent_dim=2, got {dim}")
        if num_components < 1:
            raise ValueError(f"swiss_roll needs >= 1 segment, got {num_components}")
        self.num_components = int(num_components)
        self.noise = float(noise)

    @staticmethod
    def roll(u: Tensor) -> Tensor:
        """The noiseless roll at positions ``u ∈ [0, 1]``, ``(n, 2)``."""
        t = u.sqrt()
        angle = 4 * math.pi * t
        return torch.stack([3 * t * angle.cos(), 3 * t * angle.sin()], -1)

    def _positions(self, k: Tensor, generator: torch.Generator | None) -> Tensor:
        u = torch.rand(len(k), device=self.device, generator=generator)
        return (k.float() + u) / self.num_components

    def sample(self, n: int, y: Tensor | None = None, *, generator: torch.Generator | None = None) -> Tensor:
        k = self._labels(n, y, generator)
        z = self.roll(self._positions(k, generator))
        return z + self.noise * torch.randn(n, 2, device=self.device, generator=generator)

    def component_means(self) -> Tensor:
        """The mean of each segment, by the midpoint rule on 256 positions per segment."""
        grid = (torch.arange(256, dtype=torch.float64, device=self.device) + 0.5) / 256
        u = (
            torch.arange(self.num_components, dtype=torch.float64, device=self.device)[:, None] + grid
        ) / self.num_components
        return self.roll(u).mean(1).float()


# ---------------------------------------------------------------------------------------- by name
#: ``density``: ``log p(z)`` for a VAE's KL; ``sampler``: draws only, for an adversarial autoencoder
PriorKind = Literal["density", "sampler"]
_PURPOSE = {"density": "priors with a density, for VAEs", "sampler": "priors to sample, for adversarial autoencoders"}

#: every prior, by kind and name: ``build(latent_dim, components, image_shape) -> nn.Module``
PRIORS: dict[str, dict[str, Callable[[int, int, Sequence[int] | None], nn.Module]]] = {
    "density": {
        "gaussian": lambda dim, k, shape: GaussianPrior(dim),
        "vamp": lambda dim, k, shape: VampPrior(_image_shape(shape), k),
        "mog": lambda dim, k, shape: MixturePrior(dim, k),
    },
    "sampler": {
        "gaussian": lambda dim, k, shape: GaussianLatentPrior(dim),
        "mixture_of_gaussians": lambda dim, k, shape: MixtureOfGaussiansLatentPrior(dim, k),
        "swiss_roll": lambda dim, k, shape: SwissRollLatentPrior(dim, k),
    },
}


def _image_shape(shape: Sequence[int] | None) -> Sequence[int]:
    if shape is None:
        raise ValueError("the vamp prior needs image_shape (its pseudo-inputs are images)")
    return shape


def check_prior(name: str, kind: PriorKind = "density") -> None:
    """Raise the one unknown-name error (listing the names of ``kind``) unless ``name`` is a prior of ``kind``."""
    if kind not in PRIORS:
        raise ValueError(f"unknown prior kind {kind!r}; choose one of: {', '.join(PRIORS)}")
    if name not in PRIORS[kind]:
        raise ValueError(f"unknown prior {name!r}; choose one of: {', '.join(PRIORS[kind])} ({_PURPOSE[kind]})")


def make_prior(
    name: str,
    latent_dim: int,
    components: int = 10,
    image_shape: Sequence[int] | None = None,
    kind: PriorKind = "density",
) -> nn.Module:
    """The prior ``name`` of ``kind`` over ``(latent_dim,)`` codes; ``components``: mixture components,
    VampPrior pseudo-inputs or swiss-roll segments (unused by ``gaussian``); ``image_shape``: the
    VampPrior's pseudo-input shape."""
    check_prior(name, kind)
    return PRIORS[kind][name](latent_dim, components, image_shape)


def gaussian_mmd(x: Tensor, y: Tensor, bandwidths: tuple[float, ...] | None = None) -> Tensor:
    """Squared maximum mean discrepancy (Gretton et al. 2012), unbiased estimate, between samples ``x``
    ``(n, d)`` and ``y`` ``(m, d)`` with a sum of Gaussian kernels ``exp(-‖a-b‖² / (2 h²))``.

    ``bandwidths`` default to the median pairwise distance of the pooled samples times (0.5, 1, 2).
    0 in expectation when both come from one distribution; computed in float64."""
    x, y = x.detach().double().flatten(1), y.detach().double().flatten(1)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        raise ValueError(f"MMD needs >= 2 samples on each side, got {n} and {m}")
    pooled = torch.cat([x, y])
    d2 = torch.cdist(pooled, pooled).pow(2)
    if bandwidths is None:
        median = d2[torch.triu_indices(n + m, n + m, 1, device=d2.device).unbind()].median().sqrt().item()
        bandwidths = tuple(f * max(median, 1e-6) for f in (0.5, 1.0, 2.0))
    k = sum(torch.exp(-d2 / (2 * h * h)) for h in bandwidths)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    sum_xx = (kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1))
    sum_yy = (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return sum_xx + sum_yy - 2 * kxy.mean()
