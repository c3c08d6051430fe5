"""Capability protocols: callbacks and tests ask a model what it can do, not what it is.

Check them with ``isinstance(model, Sampler)``; each is ``runtime_checkable``, and the answer is the
object's: a protocol's attribute exists on an instance only when the instance has the capability
(a ``dcgan`` has no ``num_classes``; a ``ddpm`` has one only when built with ``conditional=True``).
:func:`capabilities` lists what an instance can do.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from torch import Generator, Tensor


@runtime_checkable
class Sampler(Protocol):
    """Draws images: ``sample(n, y=None)`` -> float tensor in [0, 1], shape ``(n, *image_shape)``."""

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class ConditionalSampler(Protocol):
    """A sampler conditioned on class labels: ``sample(n, y=labels)`` with ``0 <= y < num_classes``.

    Only an instance that takes labels has ``num_classes`` (an attribute set in ``__init__``, never a
    class attribute): a family whose conditioning is optional sets it only when built conditional, and
    declares how in :attr:`~genlight.module.GenerativeModule.conditional_with`. Read it through
    :func:`class_count` where a model may have none."""

    num_classes: int

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor: ...


@runtime_checkable
class DensityModel(Protocol):
    """Scores discrete images: ``log_prob(x)`` -> ``(n,)`` log-probabilities in nats.

    ``log_prob_is_exact`` is ``True`` for exact likelihoods (NADE, PixelCNN, flows up to
    dequantisation) and ``False`` for lower bounds (ELBO, IWAE, DDPM's variational bound). A family
    whose ``log_prob`` is neither, an estimate (flow matching's ODE likelihood with a Hutchinson
    trace), also sets ``log_prob_is_estimate = True``: its figures are labelled ``*_estimate``.

    ``log_prob`` is differentiable, like any module call (training losses are built on it): score
    under ``torch.no_grad()`` (Lightning's validation and test loops already do) so that no graph is
    kept. Outside training (eval mode, e.g. after :func:`genlight.load_model`) it refuses, in one
    ``ValueError`` line, input of the wrong shape and, for discrete data, values outside [0, 1] or
    off the level grid (``x (L-1)`` not a whole number): see
    :func:`genlight.functional.check_discrete_images`.
    """

    log_prob_is_exact: bool

    def log_prob(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class Autoencoder(Protocol):
    """Maps images to latent codes and back: ``decode(encode(x))`` has the shape of ``x``."""

    def encode(self, x: Tensor) -> Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class LatentGenerator(Protocol):
    """Images from a latent prior: ``sample_latent(n)`` draws prior codes, ``decode(z)`` maps codes to
    images in [0, 1] (GANs, flows, VAEs, AAEs). Latent walks need only this, not an encoder."""

    def sample_latent(self, n: int) -> Tensor: ...

    def decode(self, z: Tensor) -> Tensor: ...


@runtime_checkable
class Translator(Protocol):
    """Maps images between two domains (CycleGAN): ``translate(x, "a2b")`` or ``"b2a"``."""

    def translate(self, x: Tensor, direction: str) -> Tensor: ...


@runtime_checkable
class EnergyModel(Protocol):
    """Assigns energies, low = likely (``p(x) ∝ exp(-E(x))``): ``energy(x)`` -> ``(n,)``. ``data_box`` is
    the half-width of the square ``[-box, box]²`` that 2-D points live in, ``None`` for images."""

    data_box: float | None

    def energy(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class CodeTraversable(Protocol):
    """Sweeps structured latent codes (InfoGAN): ``code_traversal(continuous, categorical, num_steps, span,
    seed)`` -> ``(rows, num_steps, C, H, W)`` images in [0, 1]; ``num_continuous`` continuous codes."""

    num_continuous: int

    def code_traversal(
        self, continuous: int = 0, categorical: int = 0, num_steps: int = 10, span: float = 1.0, seed: int = 0
    ) -> Tensor: ...


@runtime_checkable
class GrowingSampler(Protocol):
    """A sampler trained through resolution stages (progressive growing): ``num_stages`` stages;
    ``growth(step)`` is ``(stage, alpha)`` of the schedule at training step ``step`` (``None``: of the
    last step taken, where ``sample`` draws); ``steps_taken`` training steps so far."""

    num_stages: int
    steps_taken: int

    def growth(self, step: int | None = None) -> tuple[int, float]: ...

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor: ...


def is_conditional(model: object) -> bool:
    """Whether ``model`` samples given class labels: a :class:`ConditionalSampler` with ``num_classes > 0``."""
    return isinstance(model, ConditionalSampler) and class_count(model) > 0


def class_count(model: object) -> int:
    """The number of classes ``model`` takes labels of: its ``num_classes``, 0 when it has none (an
    unconditional instance, which is no :class:`ConditionalSampler`)."""
    return int(getattr(model, "num_classes", 0) or 0)


@runtime_checkable
class Featurizer(Protocol):
    """Gives a frozen representation of images: ``features(x)`` -> ``(B, F)`` float tensor, computed
    without updating the model (e.g. a VAE's posterior mean, a discriminator's penultimate layer), for
    linear probes (:func:`genlight.evaluation.linear_probe`)."""

    def features(self, x: Tensor) -> Tensor: ...


@runtime_checkable
class TextConditionalSampler(Protocol):
    """Draws images for captions (``text2image``): ``sample(n, text=["a thick seven", ...])`` -> ``(n,
    *image_shape)`` in [0, 1], the captions repeated to ``n``; ``vocabulary`` holds the words it knows
    (an unknown word raises one ``ValueError`` line listing them)."""

    vocabulary: tuple[str, ...]

    def sample(self, n: int, *, text: str | list[str] | None = None) -> Tensor: ...


@runtime_checkable
class PatchCompleter(Protocol):
    """Completes whole images from a few unplaced square patches (Puzzle-GAN):
    ``cut_patches(x, generator=None)`` -> ``(patches, masks)``, ``(n, k, C, p, p)`` crops of images ``x``
    in [0, 1] at random positions (seeded by ``generator``) and ``(n, 1, H, W)`` the 0/1 mask of where
    they were cut; ``complete(patches)`` -> ``(images, masks)``, images ``(n, C, H, W)`` in [0, 1] and
    the predicted mask of where the patches belong, ``(n, 1, H, W)`` in [0, 1]. ``complete`` never
    sees the positions."""

    def cut_patches(self, x: Tensor, generator: Generator | None = None) -> tuple[Tensor, Tensor]: ...

    def complete(self, patches: Tensor) -> tuple[Tensor, Tensor]: ...


@runtime_checkable
class MultiDomainTranslator(Protocol):
    """Maps images into any of ``num_domains`` named domains with one model (StarGAN):
    ``translate(x, target_domain)``, the target an ``int`` for the whole batch or a ``(n,)`` tensor of
    domain indices, -> images in [0, 1] of ``x``'s shape; ``domain_names[i]`` names domain ``i``."""

    num_domains: int
    domain_names: tuple[str, ...]

    def translate(self, x: Tensor, target_domain: int | Tensor) -> Tensor: ...


#: every capability protocol, in the order :func:`capabilities` and ``genlight list models`` name them
CAPABILITIES: tuple[type, ...] = (
    Sampler,
    ConditionalSampler,
    DensityModel,
    Autoencoder,
    LatentGenerator,
    Translator,
    MultiDomainTranslator,
    EnergyModel,
    CodeTraversable,
    GrowingSampler,
    Featurizer,
    TextConditionalSampler,
    PatchCompleter,
)


def capabilities(model: object) -> tuple[str, ...]:
    """The names of the protocols of :data:`CAPABILITIES` that the instance ``model`` implements, e.g.
    ``("Sampler", "LatentGenerator", "Featurizer")`` for a ``dcgan`` and ``("Sampler",
    "ConditionalSampler", ...)`` for a ``cgan``. A :class:`MultiDomainTranslator` is not also named a
    :class:`Translator` (its ``translate`` takes a domain, not ``"a2b"``)."""
    names = tuple(p.__name__ for p in CAPABILITIES if isinstance(model, p))
    return tuple(n for n in names if not (n == "Translator" and "MultiDomainTranslator" in names))
