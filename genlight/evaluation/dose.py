"""DoSE, density of states estimation (Morningstar et al. 2021, arXiv 2006.09273): the statistics a
trained model gives of an input (:func:`model_statistics`), a density of those statistics fitted on
held-out INLIERS only (the validation split), and as outlier score that density's negative log.

The density is DoSE_KDE of the paper: one Gaussian kernel density estimate per statistic, combined as
a product (the statistics treated as independent), each statistic's bandwidth chosen by the
leave-one-out log-likelihood of the fitting inliers (:func:`select_bandwidth`):

    score(x) = - sum_j log KDE_j(T_j(x)),   KDE_j(t) = 1/n sum_i N(t; T_j(v_i), h_j^2)

DoSE is two-sided: it flags the inputs a model finds too likely (constant images) but also dilutes the
likelihood's signal on outliers only slightly less likely than the inliers (a held-out class). The
score ``dose_nll`` (:meth:`DoSE.score_with_nll`) keeps the likelihood test and adds DoSE's evidence
only beyond the largest seen among the fitting inliers, both standardised on them:

    dose_nll(x) = (nll(x) - m_nll) / s_nll + max(0, z(x) - max_i z(v_i)),   z = (dose - m_dose) / s_dose

with ``m, s`` the mean and standard deviation over the fitting inliers ``v_i`` (DoSE's leave-one-out
scores for ``z(v_i)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from genlight.evaluation.scores import compressed_bits, reconstruction_error, reconstructs_exactly
from genlight.nn.flows import MultiScaleFlow
from genlight.types import Autoencoder, DensityModel, EnergyModel

__all__ = ["BANDWIDTHS", "DoSE", "dose_scores", "model_statistics", "select_bandwidth"]

#: bandwidth grid, in units of each statistic's standard deviation on the fitting inliers
BANDWIDTHS = tuple(float(h) for h in torch.logspace(-2, 0.5, 26, dtype=torch.float64))


def _chunks(fn: Callable[[Tensor], dict[str, Tensor]], x: Tensor, batch_size: int) -> dict[str, Tensor]:
    parts = [fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return {k: torch.cat([p[k].detach().double().cpu() for p in parts]) for k in parts[0]}


@torch.no_grad()
def model_statistics(
    model: object, x: Tensor, *, num_levels: int | None = None, batch_size: int = 256
) -> dict[str, Tensor]:
    """``{name: (B,) float64}``: every statistic ``model`` can give of images ``x`` (``(B, C, H, W)`` in
    [0, 1]), asked by capability:

    - ``nll`` (``DensityModel``) and ``complexity`` (``nll`` in bits minus the PNG length, with
      ``num_levels``);
    - ``elbo_kl``, ``elbo_reconstruction``: the two ELBO terms (a model with ``elbo_terms(x)``);
    - ``bound_prior``, ``bound_kl``, ``bound_decoder``: the terms of a diffusion bound
      (``bound_terms(x)``; its ``total`` is then ``nll``);
    - ``latent_norm`` (``|eps|^2``), ``log_det`` and ``scale_k_norm`` per scale (a multi-scale flow,
      at the centre of each dequantisation cell);
    - ``energy``, ``discriminator`` (``-D(x)``), ``reconstruction`` (a non-invertible autoencoder).
    """
    device = getattr(model, "device", x.device)
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    try:
        out = _chunks(lambda b: _statistics(model, b.to(device), num_levels), x, batch_size)
    finally:
        if was_training:
            model.train()  # type: ignore[attr-defined]
    return out


def _statistics(model: object, x: Tensor, num_levels: int | None) -> dict[str, Tensor]:
    stats: dict[str, Tensor] = {}
    bound = getattr(model, "bound_terms", None)
    terms = bound(x) if callable(bound) else {}
    if isinstance(model, DensityModel):  # a bound's total is its -log p: one evaluation, not two
        stats["nll"] = terms["total"].double() if "total" in terms else -model.log_prob(x).double()
        levels = num_levels or int((getattr(model, "hparams", None) or {}).get("num_levels") or 0)
        if levels:
            stats["complexity"] = stats["nll"].cpu() / math.log(2) - compressed_bits(x, levels)
    elbo = getattr(model, "elbo_terms", None)
    if callable(elbo) and not int(getattr(model, "num_classes", 0) or 0):
        reconstruction, kl = elbo(x)
        stats["elbo_reconstruction"], stats["elbo_kl"] = reconstruction, kl
    for name in ("prior", "kl", "decoder"):
        if name in terms:
            stats[f"bound_{name}"] = terms[name]
    flow = getattr(model, "flow", None)
    if isinstance(flow, MultiScaleFlow) and len(flow.input_shape) == 3:
        levels = int(getattr(model, "num_levels", 0) or num_levels or 0)
        y = (torch.round(x.float() * (levels - 1)) + 0.5) / levels  # the cell centres, as encode
        eps, log_det = flow(y)  # (B, D), (B,)
        stats["latent_norm"], stats["log_det"] = eps.pow(2).sum(1), log_det
        sizes = [math.prod(s) for s in flow.latent_shapes]
        if len(sizes) > 1:
            for k, piece in enumerate(eps.split(sizes, dim=1)):
                stats[f"scale_{k}_norm"] = piece.pow(2).sum(1) / piece.shape[1]
    if isinstance(model, EnergyModel):
        stats["energy"] = model.energy(x)
    discriminator = getattr(model, "discriminator_score", None)
    if callable(discriminator):
        stats["discriminator"] = discriminator(x)
    if isinstance(model, Autoencoder) and not reconstructs_exactly(model):
        stats["reconstruction"] = reconstruction_error(model, x)
    return {k: v.double().cpu() for k, v in stats.items()}


def _log_kde(points: Tensor, data: Tensor, h: float, leave_one_out: bool = False) -> Tensor:
    """``(M,)`` log of a 1-D Gaussian KDE on ``data`` ``(N,)`` with bandwidth ``h`` at ``points`` ``(M,)``;
    ``leave_one_out`` (points is data): each point's own kernel left out."""
    z = (points[:, None] - data[None, :]) / h  # (M, N)
    log_k = -0.5 * z.pow(2) - math.log(h * math.sqrt(2 * math.pi))
    n = data.numel()
    if leave_one_out:
        log_k = log_k.masked_fill(torch.eye(n, dtype=torch.bool), float("-inf"))
        n -= 1
    return torch.logsumexp(log_k, dim=1) - math.log(n)


def select_bandwidth(values: Tensor, grid: tuple[float, ...] = BANDWIDTHS) -> float:
    """The bandwidth of ``grid`` (absolute units) with the highest leave-one-out log-likelihood
    ``sum_i log KDE_{-i}(v_i)`` of ``values`` ``(N,)``, N >= 2; the first of equals."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() < 2:
        raise ValueError(f"bandwidth selection needs at least 2 values, got {v.numel()}")
    scores = [float(_log_kde(v, v, h, leave_one_out=True).sum()) for h in grid]
    return grid[max(range(len(grid)), key=lambda i: (scores[i], -i))]


@dataclass
class DoSE:
    """The product of per-statistic KDEs fitted on inlier statistics (:meth:`fit`); :meth:`score` is
    its negative log, higher = more unusual."""

    data: dict[str, Tensor]
    bandwidths: dict[str, float]
    scale: dict[str, float]
    #: ``(n,)`` leave-one-out DoSE scores of the fitting inliers
    inlier_scores: Tensor

    @classmethod
    def fit(cls, inlier_statistics: dict[str, Tensor], grid: tuple[float, ...] = BANDWIDTHS) -> DoSE:
        """Fit on ``{name: (N,)}`` statistics of INLIERS (e.g. the validation split): each statistic
        divided by its standard deviation, its bandwidth by :func:`select_bandwidth` over ``grid``."""
        if not inlier_statistics:
            raise ValueError("DoSE needs at least one statistic of the model (model_statistics gave none)")
        data, bandwidths, scale = {}, {}, {}
        for name, values in inlier_statistics.items():
            v = torch.as_tensor(values, dtype=torch.float64).flatten()
            if not torch.isfinite(v).all():
                raise ValueError(f"DoSE: statistic {name!r} is not finite on the inliers; drop it or fix the model")
            s = float(v.std()) if v.numel() > 1 and float(v.std()) > 0 else 1.0
            data[name], scale[name] = v / s, s
            bandwidths[name] = select_bandwidth(data[name], grid)
        loo = sum(-_log_kde(d, d, bandwidths[n], leave_one_out=True) for n, d in data.items())
        return cls(data, bandwidths, scale, torch.as_tensor(loo))

    def score_with_nll(self, statistics: dict[str, Tensor]) -> Tensor:
        """``(M,)`` ``dose_nll`` of the module docstring (needs the statistic ``nll``)."""
        if "nll" not in self.data:
            raise ValueError("dose_nll needs the statistic nll: the model is not a DensityModel")
        nll = torch.as_tensor(statistics["nll"], dtype=torch.float64).flatten() / self.scale["nll"]
        z_nll = (nll - self.data["nll"].mean()) / self.data["nll"].std()
        mean, sd = self.inlier_scores.mean(), self.inlier_scores.std()
        z_dose = (self.score(statistics) - mean) / sd
        return z_nll + (z_dose - (self.inlier_scores.max() - mean) / sd).clamp(min=0)

    def score(self, statistics: dict[str, Tensor]) -> Tensor:
        """``(M,)`` ``-sum_j log KDE_j(T_j)`` of statistics ``{name: (M,)}`` (every fitted name)."""
        missing = set(self.data) - set(statistics)
        if missing:
            raise ValueError(f"DoSE.score: statistics {sorted(missing)} are missing; pass model_statistics(...)")
        total = None
        for name, data in self.data.items():
            points = torch.as_tensor(statistics[name], dtype=torch.float64).flatten() / self.scale[name]
            points = torch.nan_to_num(points, nan=1e12, posinf=1e12, neginf=-1e12)  # far from every inlier
            term = -_log_kde(points, data, self.bandwidths[name])
            total = term if total is None else total + term
        assert total is not None
        return total


def dose_scores(
    model: object, fit_images: Tensor, image_sets: dict[str, Tensor], *, num_levels: int | None = None
) -> tuple[DoSE, dict[str, dict[str, Tensor]]]:
    """:class:`DoSE` fitted on the statistics of ``fit_images`` (held-out INLIERS, e.g. the validation
    split) and ``{set: {"dose": (B,), "dose_nll": (B,)}}`` for each of ``image_sets`` (``{name: (B, C,
    H, W)}``; ``dose_nll`` only for a density model)."""
    dose = DoSE.fit(model_statistics(model, fit_images, num_levels=num_levels))
    out = {}
    for name, x in image_sets.items():
        stats = model_statistics(model, x, num_levels=num_levels)
        out[name] = {"dose": dose.score(stats)}
        if "nll" in stats:
            out[name]["dose_nll"] = dose.score_with_nll(stats)
    return dose, out
