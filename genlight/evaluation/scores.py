"""Per-example outlier scores of a trained model, chosen by what it can do (:mod:`genlight.types`).

Higher means more unusual for every score:

- ``nll``: ``-log p(x)`` in nats (exact or a bound, see :func:`score_label`).
- ``likelihood_ratio``: ``-log p(x) + log p_bg(x)``, Ren et al. 2019 (arXiv 1906.02845), ``p_bg`` the
  same family trained on perturbed inputs (:func:`perturb`, :mod:`genlight.evaluation.background`).
- ``typicality``: ``| -log p(x) - mean_train(-log p) |``, Nalisnick et al. 2019 (arXiv 1906.02994),
  the single-example version of their test.
- ``complexity``: ``-log2 p(x) - L(x)``, Serrà et al. 2020 (arXiv 1909.11480), ``L(x)`` the PNG length of
  ``x`` in bits (:func:`compressed_bits`).
- ``energy``: ``E(x)`` of an energy model (``p(x) ∝ exp(-E(x))``).
- ``discriminator``: minus the discriminator's realness logit of a GAN.
- ``reconstruction``: the squared error of ``decode(encode(x))`` summed over pixels (autoencoders;
  the best class for a class-conditional one, :func:`reconstruction_error`). Not given for an
  invertible model (a normalizing flow, ``is_normalizing_flow``): it reconstructs every input
  exactly, so the score is 0 everywhere and ranks nothing (:func:`reconstructs_exactly`).
"""

from __future__ import annotations

import inspect
import io
from collections.abc import Callable

import torch
from torch import Tensor

from genlight.types import Autoencoder, DensityModel, EnergyModel

__all__ = [
    "SCORES",
    "compressed_bits",
    "outlier_scores",
    "perturb",
    "reconstruction_error",
    "reconstructs_exactly",
    "reference_nll",
    "score_label",
]

#: every score :func:`outlier_scores` can give, in the order it reports them
SCORES = ("nll", "likelihood_ratio", "typicality", "complexity", "energy", "discriminator", "reconstruction")


def perturb(x: Tensor, mu: float, num_levels: int, generator: torch.Generator | None = None) -> Tensor:
    """Ren et al. 2019's background data: every value of ``x`` (``(B, C, H, W)`` on the grid of
    ``num_levels`` levels in [0, 1]) is replaced, with probability ``mu``, by a level drawn uniformly."""
    if not 0.0 <= mu <= 1.0:
        raise ValueError(f"mu must be a fraction in [0, 1] (Ren et al. use 0.1-0.3), got {mu}")
    if num_levels < 2:
        raise ValueError(f"num_levels must be >= 2, got {num_levels}")
    device = x.device
    replace = torch.rand(x.shape, generator=generator).to(device) < mu
    levels = torch.randint(num_levels, x.shape, generator=generator).to(device).to(x.dtype) / (num_levels - 1)
    return torch.where(replace, levels, x)


def compressed_bits(x: Tensor, num_levels: int) -> Tensor:
    """``(B,)`` length in bits of each image saved as a PNG by Pillow (compression level 9), the
    complexity estimate ``L(x)`` of Serrà et al. 2020. Values are snapped to the grid of ``num_levels``
    levels and stored as 8-bit grey (1 channel) or RGB (3 channels); other channel counts are stacked
    vertically as one grey image. PNG's fixed overhead (signature, header, chunk framing) is included:
    a constant that shifts every score equally and so changes no ranking."""
    from PIL import Image

    levels = (x.detach().float().clamp(0, 1) * (num_levels - 1)).round() / (num_levels - 1)
    pixels = (levels * 255).round().to(torch.uint8).cpu()  # (B, C, H, W)
    bits = []
    for image in pixels:
        if image.shape[0] == 3:
            picture = Image.fromarray(image.permute(1, 2, 0).numpy(), mode="RGB")
        else:
            picture = Image.fromarray(image.reshape(-1, image.shape[-1]).numpy(), mode="L")
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG", compress_level=9)
        bits.append(8 * buffer.getbuffer().nbytes)
    return torch.tensor(bits, dtype=torch.float64)


def score_label(model: object, name: str) -> str:
    """What a score of :func:`outlier_scores` is for ``model``, e.g. ``-log p(x), exact``."""
    exact = bool(getattr(model, "log_prob_is_exact", False))
    kind = "exact" if exact else "upper bound (from a lower bound on log p)"
    if not exact and getattr(model, "log_prob_is_estimate", False):
        kind = "estimate (neither exact nor a bound)"
    return {
        "nll": f"-log p(x) in nats, {kind}",
        "likelihood_ratio": f"-log p(x) + log p_bg(x) (Ren et al. 2019), {kind}",
        "typicality": f"|-log p(x) - mean train -log p| (Nalisnick et al. 2019), {kind}",
        "complexity": f"-log2 p(x) - PNG bits (Serra et al. 2020), {kind}",
        "energy": "E(x), p(x) ∝ exp(-E(x))",
        "discriminator": "minus the discriminator's realness logit",
        "reconstruction": "squared reconstruction error summed over pixels",
    }[name]


@torch.no_grad()
def reference_nll(model: DensityModel, x: Tensor, batch_size: int = 256) -> float:
    """Mean ``-log p`` of training data ``x``: the reference of the typicality score."""
    return float(_nll(model, x, batch_size).mean())


def _batched(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int) -> Tensor:
    return torch.cat([fn(x[i : i + batch_size]).double().cpu() for i in range(0, len(x), batch_size)])


def _nll(model: DensityModel, x: Tensor, batch_size: int) -> Tensor:
    device = getattr(model, "device", x.device)
    return _batched(lambda b: -model.log_prob(b.to(device)), x, batch_size)


@torch.no_grad()
def outlier_scores(
    model: object,
    x: Tensor,
    *,
    reference: float | Tensor | None = None,
    background: DensityModel | None = None,
    num_levels: int | None = None,
    batch_size: int = 256,
) -> dict[str, Tensor]:
    """``{name: (B,) float64 scores}`` for images ``x`` (``(B, C, H, W)`` in [0, 1]), every score that
    ``model``'s capabilities allow (see the module docstring); higher means more unusual.

    Args:
        reference: the mean training ``-log p`` (or the training ``-log p`` values), for ``typicality``.
        background: a density model of perturbed data (the same family), for ``likelihood_ratio``.
        num_levels: the data's grey levels, for ``complexity`` (default: ``model.hparams.num_levels``).
    """
    was_training = bool(getattr(model, "training", False))
    if hasattr(model, "eval"):
        model.eval()
    try:
        return _scores(model, x, reference, background, num_levels, batch_size)
    finally:
        if was_training:
            model.train()  # type: ignore[attr-defined]


def _scores(
    model: object,
    x: Tensor,
    reference: float | Tensor | None,
    background: DensityModel | None,
    num_levels: int | None,
    batch_size: int,
) -> dict[str, Tensor]:
    device = getattr(model, "device", x.device)
    scores: dict[str, Tensor] = {}
    if isinstance(model, DensityModel):
        nll = _nll(model, x, batch_size)
        scores["nll"] = nll
        if background is not None:
            if hasattr(background, "eval"):
                background.eval()
            scores["likelihood_ratio"] = nll - _nll(background, x, batch_size)
        if reference is not None:
            mean = float(torch.as_tensor(reference, dtype=torch.float64).mean())
            scores["typicality"] = (nll - mean).abs()
        levels = num_levels or _hparam(model, "num_levels")
        if levels:
            scores["complexity"] = nll / torch.log(torch.tensor(2.0, dtype=torch.float64)) - compressed_bits(x, levels)
    if isinstance(model, EnergyModel):
        scores["energy"] = _batched(lambda b: model.energy(b.to(device)), x, batch_size)
    if hasattr(model, "discriminator_score"):
        scores["discriminator"] = _batched(lambda b: model.discriminator_score(b.to(device)), x, batch_size)
    if isinstance(model, Autoencoder) and not reconstructs_exactly(model):
        scores["reconstruction"] = _batched(lambda b: reconstruction_error(model, b.to(device)), x, batch_size)
    return scores


def reconstructs_exactly(model: object) -> bool:
    """An invertible model (a normalizing flow): ``decode(encode(x)) == x`` up to float error."""
    return bool(getattr(model, "is_normalizing_flow", False))


def _takes_labels(method: Callable[..., object]) -> bool:
    return "y" in inspect.signature(method).parameters


def reconstruction_error(model: Autoencoder, x: Tensor) -> Tensor:
    """``(B,)`` squared error of ``decode(encode(x))`` summed over pixels. A class-conditional
    autoencoder (``num_classes > 0``, ``encode``/``decode`` taking ``y``) needs no labels: the error is
    the smallest over the classes, ``min_y |decode(encode(x, y), y) - x|²``."""
    k = int(getattr(model, "num_classes", 0) or 0)
    if k > 0 and _takes_labels(model.encode) and _takes_labels(model.decode):
        errors = []
        for c in range(k):
            y = torch.full((len(x),), c, dtype=torch.long, device=x.device)
            errors.append((model.decode(model.encode(x, y=y), y=y) - x).pow(2).flatten(1).sum(1))  # type: ignore[call-arg]
        return torch.stack(errors, 1).amin(1)
    return (model.decode(model.encode(x)) - x).pow(2).flatten(1).sum(1)


def _hparam(model: object, name: str) -> int | None:
    hparams = getattr(model, "hparams", None) or {}
    value = hparams.get(name) if hasattr(hparams, "get") else None
    return int(value) if value else None
