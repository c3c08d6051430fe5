"""Fixed latent priors to *sample* from, by name, for adversarially regularised autoencoders.

An adversarial autoencoder (Makhzani et al. 2016) only needs draws ``z ~ p(z)`` (its discriminator
tells prior draws from codes), never ``log p(z)``, so any distribution one can sample works. Those of
the paper (§2, Fig. 4):

* ``gaussian``: ``N(0, std² I)``;
* ``mixture_of_gaussians``: ``K`` equally weighted isotropic Gaussians whose means lie on a ring of
  radius ``radius`` in the first two latent dimensions (other dimensions centred at 0);
* ``swiss_roll``: a 2-D spiral, ``t = sqrt(u)``, ``u ~ U(0, 1)``, point ``3t (cos 4πt, sin 4πt)`` plus
  Gaussian noise; component ``k`` of ``K`` is the segment ``u ∈ [k/K, (k+1)/K)``.

Priors with components support the label-supervised AAE (Makhzani §2.3): ``sample(n, y)`` draws each
example from the component of its class. :func:`gaussian_mmd` is a two-sample statistic for how well
codes match prior draws (the AAE has no likelihood to report).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = [
    "LATENT_PRIORS",
    "GaussianLatentPrior",
    "LatentPrior",
    "MixtureOfGaussiansLatentPrior",
    "SwissRollLatentPrior",
    "gaussian_mmd",
    "make_latent_prior",
]


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
        u = (torch.arange(self.num_components, dtype=torch.float64, device=self.device)[:, None] + grid) / self.num_components
        return self.roll(u).mean(1).float()


LATENT_PRIORS: dict[str, type[LatentPrior]] = {
    "gaussian": GaussianLatentPrior,
    "mixture_of_gaussians": MixtureOfGaussiansLatentPrior,
    "swiss_roll": SwissRollLatentPrior,
}


def make_latent_prior(name: str, dim: int, num_components: int = 10) -> LatentPrior:
    """The prior ``name`` over ``(dim,)`` codes (``num_components`` for mixture / swiss roll)."""
    if name not in LATENT_PRIORS:
        raise ValueError(f"unknown latent prior {name!r}; choose one of: {', '.join(LATENT_PRIORS)}")
    if name == "gaussian":
        return GaussianLatentPrior(dim)
    return LATENT_PRIORS[name](dim, num_components)


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
