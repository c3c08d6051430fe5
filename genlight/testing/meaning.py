"""The checks of what a family's numbers MEAN, each picked by capability (:mod:`genlight.types`), each
run on an untrained family with perturbed weights in a space small enough to compute everything:

- :func:`check_samples`: ``sample(n)`` has shape ``(n, *image_shape)``, lies in [0, 1], and on the
  level grid where the family claims an exact discrete likelihood;
- :func:`check_normalised`: an exact likelihood sums to 1 over all 81 images of 1x2x2 with 3 levels
  (an exact density on 2-D points integrates to 1 on a dense grid);
- :func:`check_sampler_matches_log_prob`: sampler frequencies agree with ``exp(log_prob)`` (Pearson's
  chi-square, false-alarm rate ``ALPHA`` = 1e-3);
- :func:`check_bound_below_exact`: a bound (ELBO, IWAE, dequantisation) lies below ``log p(x)``
  estimated by huge-k importance sampling, and that estimate sums to 1;
- :func:`check_causal`: an autoregressive family's conditional of sub-pixel ``d`` has zero gradient
  with respect to sub-pixels ``>= d`` (raster order);
- :func:`check_autoencoder_round_trip` and :func:`check_translation`.

A check that does not apply raises :class:`~genlight.testing.spaces.NotApplicable` with the reason.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import math
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from genlight.testing.harness import Family, family_class, family_name, seeded, smoke_setup
from genlight.testing.spaces import (
    TINY_LEVELS,
    TINY_SHAPE,
    NotApplicable,
    all_images,
    chi_square,
    image_index,
    tiny_model,
)
from genlight.types import Autoencoder, DensityModel, MultiDomainTranslator, Sampler, Translator, is_conditional

__all__ = [
    "ALPHA",
    "check_autoencoder_round_trip",
    "check_bound_below_exact",
    "check_causal",
    "check_normalised",
    "check_sampler_matches_log_prob",
    "check_samples",
    "check_translation",
]

#: false-alarm rate of the chi-square test of :func:`check_sampler_matches_log_prob` (per family and seed)
ALPHA = 1e-3
#: draws of the sampler in that test (81 cells: a cell of probability 0.05 expects 500 draws, sd 22)
NUM_SAMPLES = 10_000
#: tolerance of a sum of probabilities that is computed exactly (float32 sums of 81 terms)
SUM_TOL = 1e-4


def _require(name: str, what: str, condition: bool) -> None:
    if not condition:
        raise NotApplicable(f"{name} is not {what}")


@functools.cache
def _probe_class(cls: type) -> Any:
    with tempfile.TemporaryDirectory(prefix="genlight-probe-") as root:
        return smoke_setup(cls, root)[0]


def _probe(family: Family) -> Any:
    """The family built once per process from its smoke settings: what capability it has, asked before
    anything else is built (a check that does not apply costs nothing more)."""
    return _probe_class(family_class(family))  # type: ignore[arg-type]  # a class is hashable; type[Any] hides it


def _tiny(family: Family, capable: Callable[[Any], bool], what: str, *args: Any, **kwargs: Any) -> Any:
    """:func:`tiny_model` of a family that is ``capable`` (judged on its smoke model first, then on the
    tiny one): :class:`NotApplicable` naming what it is not, or why the tiny build does not apply."""
    _require(family_name(family), what, capable(_probe(family)))
    model = tiny_model(family, *args, **kwargs)
    _require(family_name(family), what, capable(model))
    return model


def _is_density(model: Any) -> bool:
    return isinstance(model, DensityModel)


def _exact_discrete(family: Family) -> Any:
    """The family on the tiny space, if it is an exact density model of discrete images."""
    model = _tiny(family, _is_density, "a DensityModel")
    _require(family_name(family), "exact (log_prob_is_exact is False: a bound)", bool(model.log_prob_is_exact))
    return model


def _log_probs(model: Any, x: Tensor) -> Tensor:
    with torch.no_grad():
        lp = model.log_prob(x)
    assert lp.shape == (len(x),), f"log_prob of {len(x)} images has shape {tuple(lp.shape)}, not ({len(x)},)"
    return lp.double()


# ---------------------------------------------------------------------------- samples
def check_samples(family: Family, root: str | Path) -> None:
    """``sample(6)`` (and ``sample(6, y=)`` for a conditional sampler) on the smoke data's shape: shape
    ``(6, *image_shape)``, finite, in [0, 1] for images, and on the level grid ``k / (L-1)`` when the
    family claims an exact likelihood of discrete images."""
    name = family_name(family)
    _require(name, "a Sampler", isinstance(_probe(family), Sampler))
    model, dm, _ = smoke_setup(family, root)
    model.eval()
    _require(name, "a Sampler", isinstance(model, Sampler))
    draws = [("sample(6)", seeded(lambda: model.sample(6)))]
    if is_conditional(model):
        y = torch.arange(6) % model.num_classes
        draws.append(("sample(6, y=)", seeded(lambda: model.sample(6, y=y))))
    shape = tuple(dm.image_shape)
    for call, x in draws:
        assert tuple(x.shape) == (6, *shape), f"sample shape: {call} has shape {tuple(x.shape)}, not {(6, *shape)}"
        assert torch.isfinite(x).all(), f"sample values: {call} is not finite"
        if len(shape) == 3:
            lo, hi = float(x.min()), float(x.max())
            assert lo >= 0 and hi <= 1, f"sample range: {call} lies in [{lo:.3g}, {hi:.3g}], not in [0, 1]"
        levels = int(model.hparams.get("num_levels", 0) or 0)
        if isinstance(model, DensityModel) and model.log_prob_is_exact and model.data_is_discrete and levels >= 2:
            off = float((x * (levels - 1) - torch.round(x * (levels - 1))).abs().max())
            assert off < 1e-4, f"sample levels: {call} is off the grid k/{levels - 1} by {off:.3g}"


# ---------------------------------------------------------------------------- exact likelihoods
def check_normalised(family: Family, root: str | Path) -> None:
    """An exact likelihood is a distribution: ``sum_x exp(log_prob(x)) = 1`` over all 81 images of
    1x2x2 with 3 levels (within 1e-4); for an exact density on 2-D points, its integral over
    ``[-12, 12]^2`` by the midpoint rule on a 480x480 grid is 1 (within 1e-3)."""
    name = family_name(family)
    try:
        model = _exact_discrete(family)
    except NotApplicable as discrete:
        if "takes no num_levels" not in str(discrete):
            raise
        model = _tiny(family, _is_density, "a DensityModel", (2,), None)
        _require(name, "exact on 2-D points", bool(model.log_prob_is_exact))
        edges = torch.linspace(-12, 12, 481)
        mid = (edges[1:] + edges[:-1]) / 2
        grid = torch.cartesian_prod(mid, mid)  # (480^2, 2)
        total = float(_log_probs(model, grid).exp().sum() * (24 / 480) ** 2)
        assert abs(total - 1) < 1e-3, f"normalised: the density integrates to {total:.6f} over [-12, 12]^2, not 1"
        return
    total = float(_log_probs(model, all_images()).exp().sum())
    assert abs(total - 1) < SUM_TOL, (
        f"normalised: exp(log_prob) sums to {total:.6f}, not 1, over all {TINY_LEVELS**4} images of "
        f"1x2x2 with {TINY_LEVELS} levels"
    )


def check_sampler_matches_log_prob(family: Family, root: str | Path) -> None:
    """``sample`` draws from ``exp(log_prob)``: of ``NUM_SAMPLES`` draws over the 81 images of 1x2x2
    with 3 levels, Pearson's chi-square against ``NUM_SAMPLES * exp(log_prob(x))`` (cells expected
    under 5 pooled, the mass missing from the 81 a cell of its own) is below its ``1 - ALPHA``
    quantile: a correct family fails with probability ``ALPHA`` = 1e-3 (seeded, so never twice)."""
    model = _exact_discrete(family)
    _require(family_name(family), "a Sampler", isinstance(model, Sampler))
    probs = _log_probs(model, all_images()).exp()
    x = seeded(lambda: model.sample(NUM_SAMPLES), seed=3)
    assert tuple(x.shape) == (NUM_SAMPLES, *TINY_SHAPE), f"sample shape: {tuple(x.shape)} on 1x2x2 images"
    off = float((x.double() * (TINY_LEVELS - 1) - torch.round(x.double() * (TINY_LEVELS - 1))).abs().max())
    assert x.min() >= 0 and x.max() <= 1 and off < 1e-4, "sample levels: samples off the grid of 3 levels in [0, 1]"
    counts = torch.bincount(image_index(x, TINY_LEVELS), minlength=len(probs))
    stat, dof, p = chi_square(counts, probs)
    worst = int(((counts - NUM_SAMPLES * probs).abs() / (NUM_SAMPLES * probs).clamp_min(1).sqrt()).argmax())
    assert p >= ALPHA, (
        f"sampler matches log_prob: chi-square {stat:.1f} on {dof} degrees of freedom, p = {p:.2g} < {ALPHA:g}; "
        f"e.g. image {worst}: {int(counts[worst])} of {NUM_SAMPLES} draws, exp(log_prob) expects "
        f"{float(NUM_SAMPLES * probs[worst]):.1f}"
    )


# ---------------------------------------------------------------------------- bounds
#: importance samples per image of the reference ``log p(x)`` of :func:`check_bound_below_exact`
REFERENCE_SAMPLES = 512
#: draws of the bound averaged into its expectation (and of the reference)
BOUND_DRAWS = 32


def _draws(model: Any, x: Tensor, r: int, **kwargs: Any) -> Tensor:
    """``(r, N)``: ``r`` independent draws of ``log_prob`` of each of the ``N`` images (one call)."""
    with torch.no_grad():
        return model.log_prob(x.repeat(r, *([1] * (x.dim() - 1))), **kwargs).double().view(r, len(x))


def _mean_and_error(draws: Tensor) -> tuple[Tensor, Tensor]:
    """Per image: the mean of ``(R, N)`` draws and its standard error."""
    return draws.mean(0), draws.std(0) / math.sqrt(len(draws))


def check_bound_below_exact(family: Family, root: str | Path) -> None:
    """A bound is below the exact value, on all 81 images of 1x2x2 with 3 levels (weights perturbed by
    N(0, 0.1^2): importance sampling converges slowly on a badly matched posterior). ``B(x)``, the
    expected bound, is the mean of ``BOUND_DRAWS`` calls of ``log_prob(x)``. ``log p(x)`` is estimated
    by importance sampling: where ``log_prob`` takes ``num_samples`` (VAE-like), by IWAE with k = 512
    (it rises to ``log p(x)`` as k grows; the mean of 8 draws), and then ``B(x) <= log p(x)`` on every
    image (within 0.01 nats and 4 standard errors); else (e.g. a flow's dequantisation) by
    ``log mean_r exp(log_prob_r(x))`` over 512 calls, ``log_prob``'s own randomness the proposal. The
    estimate must sum to 1 over the 81 images (within 0.03: it is one of a normalised ``p``), and
    ``sum_x exp(B(x)) <= 1`` (a bound on a normalised ``log p``)."""
    name = family_name(family)
    model = _tiny(family, _is_density, "a DensityModel", noise=0.1)
    _require(name, "a bound (log_prob_is_exact is True: check_normalised applies)", not model.log_prob_is_exact)
    _require(
        name,
        "a bound (log_prob_is_estimate: an estimate, no inequality to check)",
        not getattr(model, "log_prob_is_estimate", False),
    )
    x = all_images()
    torch.manual_seed(5)
    bound, bound_error = _mean_and_error(_draws(model, x, BOUND_DRAWS))  # (81,)
    pointwise = "num_samples" in inspect.signature(model.log_prob).parameters
    if pointwise:
        reference, reference_error = _mean_and_error(_draws(model, x, 8, num_samples=REFERENCE_SAMPLES))
        how = f"IWAE, log_prob(x, num_samples={REFERENCE_SAMPLES})"
    else:
        reference = torch.logsumexp(_draws(model, x, REFERENCE_SAMPLES), 0) - math.log(REFERENCE_SAMPLES)
        how = f"log mean exp of {REFERENCE_SAMPLES} draws of log_prob"
    total = float(reference.exp().sum())
    assert abs(total - 1) < 0.03, (
        f"bound below exact: the importance-sampled p(x) ({how}) sums to {total:.4f}, not 1, over the 81 "
        "images of 1x2x2 with 3 levels: log_prob is not a bound on a normalised log p(x)"
    )
    if pointwise:
        slack = 0.01 + 4 * (bound_error**2 + reference_error**2).sqrt()
        excess = bound - reference - slack
        worst = int(excess.argmax())
        assert float(excess[worst]) <= 0, (
            f"bound below exact: on image {worst} the expected bound {float(bound[worst]):.4f} exceeds "
            f"log p(x) ~ {float(reference[worst]):.4f} ({how}) by more than {float(slack[worst]):.3f}"
        )
    mass = float(bound.exp().sum())
    assert mass <= 1 + 0.01, f"bound below exact: exp(expected bound) sums to {mass:.4f} > 1 over the 81 images"


# ---------------------------------------------------------------------------- autoregressive
CAUSAL_SHAPES = ((1, 3, 3), (3, 2, 2))
AUTOREGRESSIVE = "autoregressive (it has no conditional_logits)"


def dependence(
    model: Any, shape: tuple[int, ...], *, draws: int = 8, seed: int = 0, dtype: torch.dtype = torch.float32
) -> Tensor:
    """``(C, H, W, C, H, W)``: whether sub-pixel d's conditional has a nonzero gradient w.r.t. input d',
    by one backward pass over ``D * draws`` random off-grid images (example ``(d, r)`` back-propagates
    the parameters of output ``d`` only, and every path is active in some draw)."""
    c, h, w = shape
    d = c * h * w
    torch.manual_seed(seed)
    x = torch.rand(d * draws, *shape, dtype=dtype, requires_grad=True)
    out = model.conditional_logits(x)  # (D*draws, C*P, H, W)
    assert out.shape[0] == len(x) and out.shape[1] % c == 0 and tuple(out.shape[2:]) == (h, w), (
        f"causal: conditional_logits of {tuple(x.shape)} gave {tuple(out.shape)}, not (B, C*P, H, W)"
    )
    p = out.shape[1] // c
    select = torch.zeros(d, c, p, h, w, dtype=out.dtype)
    for k, i, j in itertools.product(range(c), range(h), range(w)):
        select[(k * h + i) * w + j, k, :, i, j] = 1.0
    weight = select.view(d, c * p, h, w).repeat_interleave(draws, 0)
    (grad,) = torch.autograd.grad((out * weight).sum(), x)
    return (grad.abs().view(d, draws, -1).sum(1) > 0).view(c, h, w, c, h, w)


def _has_conditionals(model: Any) -> bool:
    return callable(getattr(model, "conditional_logits", None))


def check_causal(family: Family, root: str | Path) -> None:
    """An autoregressive family (one with ``conditional_logits(x)`` -> ``(B, C*P, H, W)``, the hook of
    :class:`~genlight.modules.autoregressive.AutoregressiveImageModel`) is causal, by autograd: the
    parameters of sub-pixel ``(c, i, j)``'s conditional have zero gradient with respect to every
    sub-pixel at or after it in raster order (rows, columns, then channels), on 1x3x3 and 3x2x2 images."""
    tried = []
    for shape in CAUSAL_SHAPES:
        try:
            model = _tiny(family, _has_conditionals, AUTOREGRESSIVE, shape, 4)
        except NotApplicable as error:
            if "autoregressive" in str(error):
                raise
            tried.append(str(error))
            continue
        dep = dependence(model, shape)
        c, h, w = shape
        rank = torch.arange(c * h * w).view(h, w, c).permute(2, 0, 1)  # (C, H, W): raster position
        later = rank[None, None, None] >= rank[..., None, None, None]  # input d' at or after output d
        leaks = (dep & later).nonzero().tolist()
        if leaks:
            k, i, j, k2, i2, j2 = leaks[0]
            what = "itself" if (k, i, j) == (k2, i2, j2) else f"the later sub-pixel (c={k2}, {i2}, {j2})"
            raise AssertionError(
                f"causal: on {'x'.join(map(str, shape))} images the conditional of sub-pixel (c={k}, {i}, {j}) "
                f"depends on {what} ({len(leaks)} such dependences)"
            )
        return
    raise NotApplicable("; ".join(tried))


# ---------------------------------------------------------------------------- encoders and translators
def check_autoencoder_round_trip(family: Family, root: str | Path) -> None:
    """An :class:`~genlight.types.Autoencoder`: ``encode`` of a batch gives one code per image,
    ``decode(encode(x))`` has the shape of ``x`` and is finite, and a code is per image (encoding the
    batch or its first image alone gives that image the same code, in eval mode)."""
    _require(family_name(family), "an Autoencoder", isinstance(_probe(family), Autoencoder))
    model, dm, _ = smoke_setup(family, root)
    model.eval()
    _require(family_name(family), "an Autoencoder", isinstance(model, Autoencoder))
    x = next(iter(dm.val_dataloader()))[0][:4]
    with torch.no_grad():
        z = seeded(lambda: model.encode(x))
        back = model.decode(z)
        first = seeded(lambda: model.encode(x[:1]))
    assert len(z) == len(x), f"autoencoder round trip: encode of {len(x)} images gave {len(z)} codes"
    assert back.shape == x.shape, (
        f"autoencoder round trip: decode(encode(x)) has shape {tuple(back.shape)}, not {tuple(x.shape)}"
    )
    assert torch.isfinite(back).all(), "autoencoder round trip: decode(encode(x)) is not finite"
    assert torch.allclose(z[:1], first, atol=1e-5), (
        "autoencoder round trip: an image's code depends on the rest of its batch"
    )


def check_translation(family: Family, root: str | Path) -> None:
    """A :class:`~genlight.types.Translator` or :class:`~genlight.types.MultiDomainTranslator` (eval
    mode): every direction or domain keeps shape and [0, 1]; a translation is a function of the image
    (the same call twice gives the same output, and an image translated alone or in a batch gives the
    same output); a per-example tensor of target domains gives each image the translation its own
    domain index gives; an unknown direction or domain is refused with ``ValueError``."""
    probe = _probe(family)
    _require(family_name(family), "a Translator", isinstance(probe, (Translator, MultiDomainTranslator)))
    model, dm, _ = smoke_setup(family, root)
    model.eval()
    multi = isinstance(model, MultiDomainTranslator)
    _require(family_name(family), "a Translator", multi or isinstance(model, Translator))
    x = next(iter(dm.val_dataloader()))[0][:4]
    targets: list[Any] = list(range(model.num_domains)) if multi else ["a2b", "b2a"]
    outs = {}
    with torch.no_grad():
        for t in targets:
            out = model.translate(x, t)
            assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1, (
                f"translation: translate(x, {t!r}) shape/range"
            )
            assert torch.allclose(out, model.translate(x, t), atol=1e-6), (
                f"translation: translate(x, {t!r}) changes between calls"
            )
            alone = model.translate(x[:1], t)
            assert torch.allclose(out[:1], alone, atol=1e-4), (
                f"translation: translate(x, {t!r}) of an image depends on its batch"
            )
            outs[t] = out
        if multi:
            per_example = torch.arange(len(x)) % model.num_domains
            mixed = model.translate(x, per_example)
            expected = torch.stack([outs[int(t)][i] for i, t in enumerate(per_example)])
            assert torch.allclose(mixed, expected, atol=1e-4), (
                "translation: a tensor of target domains is not applied per example"
            )
    bad = model.num_domains if multi else "sideways"
    try:
        model.translate(x, bad)
    except ValueError:
        return
    raise AssertionError(f"translation: translate(x, {bad!r}) must raise ValueError")
