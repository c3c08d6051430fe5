"""``infogan``: InfoGAN (Chen et al. 2016), a GAN whose latent code carries interpretable factors.

``z = (noise, c)`` with ``noise ~ N(0, I)``, categorical codes ``c_k ~ Cat(K_k)`` (one-hot) and
continuous codes ``c_j ~ U(-1, 1)``. An auxiliary head ``Q(c | x)`` on the discriminator's trunk
(:meth:`~genlight.nn.dcgan.DCGANDiscriminator.features`) predicts the codes of generated images, and the
variational lower bound of the mutual information (paper eq. 4),

    ``L_I(G, Q) = E_{c, x~G(z, c)}[log Q(c | x)] + H(c)``,

is maximised by G and Q. ``H(c)`` is a constant, so the loss used is ``λ_cat · CE + λ_con · NLL``
(:func:`info_loss`): cross-entropy on Q's *logits* for each categorical code (one softmax, inside
``cross_entropy``; no ``Softmax`` layer in front of it) and the Gaussian negative log-likelihood with
a *predicted* σ for each continuous code, ``log σ + (c - μ)² / (2σ²) + ½ log 2π`` (not MSE, a fixed
σ). Q's mean is ``tanh``-squashed into the codes' range (-1, 1); ``log σ`` is softly bounded to
``[LOG_SIGMA_MIN, LOG_SIGMA_MAX]``.

Parameter grouping, as the official code (openai/InfoGAN: the MI term is subtracted from both the
discriminator's and the generator's loss, and Q's variables are discriminator variables):

* the discriminator optimizer owns D *and* Q; its loss is the adversarial loss plus the MI term on the
  detached fakes, so the MI term trains Q and D's shared trunk;
* the generator optimizer owns G; its loss is the adversarial loss plus the MI term on the same fakes
  (gradients flow through Q and the trunk into G, which alone is stepped).

So there is no third optimizer, and one ``training_step`` (one batch) is one D step then one G step:
``trainer.global_step`` moves twice per batch, as for ``dcgan`` (:mod:`genlight.modules.adversarial`).
The paper's MNIST setup is the default: one Cat(10) code, two continuous codes, 62 noise dimensions,
Adam with lr 1e-3 for G and 2e-4 for D, β1 = 0.5; λ_cat = 1, λ_con = 0.1.

:meth:`InfoGAN.code_traversal` (and :func:`genlight.callbacks.traversal.traversal_grid`) decode a seeded fixed noise vector with one
row per value of a categorical code and one column per value of a swept continuous code; the
:class:`~genlight.callbacks.CodeTraversal` callback logs that grid during training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.functional import check_image_shape
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.adversarial import AdversarialLoss, dcgan_init_, discriminator_loss, generator_loss, gradient_penalty
from genlight.nn.augment import DEFAULT_POLICY, Augmentation
from genlight.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from genlight.ranges import (
    Choices,
    DepthOrZero,
    Fraction,
    NonNegativeFloat,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    Size,
    SizeOrZero,
)
from genlight.registry import register_model

__all__ = ["InfoGAN", "InfoHead", "categorical_info_loss", "gaussian_info_nll", "info_loss"]

LOG_SIGMA_MIN, LOG_SIGMA_MAX = -4.0, 2.0
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def categorical_info_loss(logits: Tensor, codes: Tensor) -> Tensor:
    """``-E log Q(c | x)`` of categorical codes: the cross-entropy of Q's logits ``(B, K)`` against the
    code indices ``(B,)``, a batch mean (the softmax is ``cross_entropy``'s own: pass logits)."""
    return F.cross_entropy(logits.float(), codes)


def gaussian_info_nll(mean: Tensor, log_sigma: Tensor, codes: Tensor) -> Tensor:
    """``-log N(c; μ, σ²)`` of continuous codes ``(B, J)``, summed over the codes, a batch mean:
    ``Σ_j log σ_j + (c_j - μ_j)² / (2 σ_j²) + ½ log 2π``."""
    mean, log_sigma, codes = mean.float(), log_sigma.float(), codes.float()
    nll = log_sigma + 0.5 * ((codes - mean) * torch.exp(-log_sigma)) ** 2 + _HALF_LOG_2PI
    return nll.sum(1).mean()


def info_loss(
    q: dict[str, Any],
    categories: Sequence[Tensor],
    continuous: Tensor,
    lambda_cat: float = 1.0,
    lambda_con: float = 0.1,
) -> dict[str, Tensor]:
    """The weighted MI terms ``{"cat": λ_cat Σ_k CE_k, "con": λ_con NLL}`` (zero-dim tensors; a term is
    left out when there is no such code). ``q`` is :class:`InfoHead`'s output."""
    terms: dict[str, Tensor] = {}
    if categories:
        terms["cat"] = lambda_cat * sum(categorical_info_loss(l, c) for l, c in zip(q["logits"], categories))
    if continuous.shape[1]:
        terms["con"] = lambda_con * gaussian_info_nll(q["mean"], q["log_sigma"], continuous)
    return terms


class InfoHead(nn.Module):
    """``Q(c | x)`` from the discriminator's trunk map ``(B, C, h, w)``: flatten, ``Linear - LeakyReLU(0.2)``
    (``hidden > 0``), then one linear map to the logits of each categorical code, the means (``tanh``,
    the codes' range) and the ``log σ`` (softly bounded) of the continuous codes."""

    def __init__(self, feature_dim: int, categories: Sequence[int], num_continuous: int, hidden: int = 128) -> None:
        super().__init__()
        self.categories = [int(k) for k in categories]
        self.num_continuous = int(num_continuous)
        out = sum(self.categories) + 2 * self.num_continuous
        body: list[nn.Module] = [nn.Flatten()]
        if hidden > 0:
            body += [nn.Linear(feature_dim, hidden), nn.LeakyReLU(0.2)]
        body.append(nn.Linear(hidden if hidden > 0 else feature_dim, out))
        self.net = nn.Sequential(*body)

    def forward(self, features: Tensor) -> dict[str, Any]:
        out = self.net(features).float()
        logits = list(out[:, : sum(self.categories)].split(self.categories, dim=1)) if self.categories else []
        rest = out[:, sum(self.categories) :]
        mean, raw = rest[:, : self.num_continuous], rest[:, self.num_continuous :]
        # soft bounds: log σ in (LOG_SIGMA_MIN, LOG_SIGMA_MAX), gradients never vanish at a hard clamp
        span = LOG_SIGMA_MAX - LOG_SIGMA_MIN
        log_sigma = LOG_SIGMA_MIN + span * torch.sigmoid(raw + math.log(-LOG_SIGMA_MIN / LOG_SIGMA_MAX))  # 0 at init
        return {"logits": logits, "mean": torch.tanh(mean), "log_sigma": log_sigma}


@register_model("infogan", tags=("adversarial", "sampler"))
class InfoGAN(AdversarialModule):
    """InfoGAN on the DCGAN networks; see the module docstring.

    Args:
        image_shape: ``(C, H, W)``, H and W a multiple of 4; from the datamodule.
        noise_dim: size of the incompressible noise ``N(0, I)``.
        categories: the number of values of each categorical code (``[10]``: one Cat(10) code).
        num_continuous: how many ``U(-1, 1)`` codes.
        width: channels of the DCGAN networks at full resolution (:mod:`genlight.nn.dcgan`).
        extra_layers: stride-1 3x3 blocks added at every resolution in both nets.
        d_norm: discriminator normalisation: ``batch`` | ``spectral`` | ``layer`` | ``none``.
        q_hidden: width of Q's hidden layer (0: a linear head on the trunk map).
        lambda_cat: weight of the categorical mutual-information term.
        lambda_con: weight of the continuous mutual-information term.
        loss: the adversarial loss (:mod:`genlight.modules.adversarial`).
        n_critic: discriminator steps per generator step.
        gp_weight: gradient-penalty weight (> 0 adds the penalty to any loss).
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator and of Q (trained with D).
        betas: Adam's ``(beta1, beta2)`` of all, each in [0, 1).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"noise_dim": 4, "width": 4, "q_hidden": 8, "categories": [3]}
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images",)
    # torch.compile (genlight.callbacks.Compile): not the discriminator, which Q also runs through its eager
    # ``features`` method; compiled, its first backward fails under AOT autograd (a tensor modified in place)
    compile_modules: ClassVar[tuple[str, ...] | None] = ("generator", "q_head")

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        noise_dim: SizeOrZero = 62,
        categories: list[Choices] = [10],  # noqa: B006 (copied below; a list for the CLI)
        num_continuous: DepthOrZero = 2,
        width: Size = 64,
        extra_layers: DepthOrZero = 0,
        d_norm: str = "batch",
        q_hidden: SizeOrZero = 128,
        lambda_cat: NonNegativeFloat = 1.0,
        lambda_con: NonNegativeFloat = 0.1,
        loss: AdversarialLoss = "non_saturating",
        n_critic: PositiveInt = 1,
        gp_weight: NonNegativeFloat = 0.0,
        lr_g: PositiveFloat = 1e-3,
        lr_d: PositiveFloat = 2e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        augment: Augmentation = "none",
        augment_policy: str = DEFAULT_POLICY,
        ada_target: OpenUnitInterval = 0.6,
        lecam_weight: NonNegativeFloat = 0.0,
        r1_gamma: NonNegativeFloat = 0.0,
        r1_every: PositiveInt = 1,
        accumulate: PositiveInt = 1,
    ) -> None:
        latent_dim = int(noise_dim) + sum(int(k) for k in categories) + int(num_continuous)
        super().__init__(
            image_shape=image_shape,
            latent_dim=latent_dim,
            loss=loss,
            n_critic=n_critic,
            gp_weight=gp_weight,
            lr_g=lr_g,
            lr_d=lr_d,
            betas=betas,
            augment=augment,
            augment_policy=augment_policy,
            ada_target=ada_target,
            lecam_weight=lecam_weight,
            r1_gamma=r1_gamma,
            r1_every=r1_every,
            accumulate=accumulate,
        )
        shape = check_image_shape(image_shape, type(self).__name__, multiple_of=4, min_size=8)
        self.categories = [int(k) for k in categories]
        if any(k < 2 for k in self.categories):
            raise ValueError(f"each categorical code needs at least 2 values, got categories={list(categories)}")
        if num_continuous < 0 or noise_dim < 0:
            raise ValueError(f"noise_dim and num_continuous must be >= 0, got {noise_dim} and {num_continuous}")
        if not self.categories and num_continuous == 0:
            raise ValueError("InfoGAN needs at least one code: set categories (e.g. [10]) or num_continuous (e.g. 2)")
        if lambda_cat < 0 or lambda_con < 0:
            raise ValueError(f"lambda_cat and lambda_con must be >= 0, got {lambda_cat} and {lambda_con}")
        self.noise_dim, self.num_continuous = int(noise_dim), int(num_continuous)
        self.lambda_cat, self.lambda_con = float(lambda_cat), float(lambda_con)
        self.generator = dcgan_init_(DCGANGenerator(self.latent_dim, shape, width, extra_layers=extra_layers))
        self.discriminator = dcgan_init_(
            DCGANDiscriminator(shape, width, norm=d_norm, extra_layers=extra_layers, head_bias=loss != "wasserstein_gp")
        )
        self.q_head = dcgan_init_(InfoHead(self.discriminator.feature_dim, self.categories, num_continuous, q_hidden))

    # ------------------------------------------------------------------ the latent code
    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``z = [noise, one-hot c_1, ..., one-hot c_K, continuous]``, ``(n, latent_dim)``: noise ``N(0, I)``,
        categorical codes uniform, continuous codes ``U(-1, 1)``."""
        device = self.device
        noise = torch.randn(n, self.noise_dim, device=device, generator=generator)
        cats = [torch.randint(k, (n,), device=device, generator=generator) for k in self.categories]
        cont = torch.rand(n, self.num_continuous, device=device, generator=generator) * 2.0 - 1.0
        return self.make_latent(noise, cats, cont)

    def make_latent(self, noise: Tensor, categories: Sequence[Tensor], continuous: Tensor) -> Tensor:
        """Assemble ``z`` from noise ``(n, noise_dim)``, code indices (one ``(n,)`` tensor per categorical
        code) and continuous codes ``(n, num_continuous)``."""
        if len(categories) != len(self.categories):
            raise ValueError(f"expected {len(self.categories)} categorical code tensors, got {len(categories)}")
        onehots = [F.one_hot(c.long(), k).to(noise.dtype) for c, k in zip(categories, self.categories)]
        return torch.cat([noise, *onehots, continuous.to(noise.dtype)], dim=1)

    def split_latent(self, z: Tensor) -> tuple[Tensor, list[Tensor], Tensor]:
        """``(noise, [code indices per categorical code], continuous)`` of ``z`` (inverse of :meth:`make_latent`)."""
        noise, rest = z[:, : self.noise_dim], z[:, self.noise_dim :]
        blocks = rest.split([*self.categories, self.num_continuous], dim=1)
        return noise, [b.argmax(1) for b in blocks[:-1]], blocks[-1]

    # ------------------------------------------------------------------ Q
    def q(self, x: Tensor) -> dict[str, Any]:
        """Q's prediction for images ``x`` in the generator's range [-1, 1]."""
        return self.q_head(self.discriminator.features(x))

    @torch.no_grad()
    def infer_codes(self, images: Tensor) -> tuple[list[Tensor], Tensor]:
        """Q's point estimate of the codes of images in [0, 1]: ``([argmax index per categorical code],
        continuous means)``."""
        q = self.q(self.to_model_range(images.to(self.device)))
        return [l.argmax(1) for l in q["logits"]], q["mean"]

    def _critic_and_q(self, x: Tensor) -> tuple[Tensor, dict[str, Any]]:
        """D's logits and Q's prediction from one trunk forward."""
        h = self.discriminator.features(x)
        return self.discriminator.head(h.flatten(1)).squeeze(1), self.q_head(h)

    def mutual_information_terms(self, q: dict[str, Any], z: Tensor) -> dict[str, Tensor]:
        """The weighted MI terms of Q's prediction ``q`` against the codes of ``z``."""
        _, cats, cont = self.split_latent(z)
        return info_loss(q, cats, cont, self.lambda_cat, self.lambda_con)

    # ------------------------------------------------------------------ losses (see AdversarialModule)
    def discriminator_terms(
        self, real: Tensor, y: Tensor | None, fake: Tensor, fake_y: Tensor | None, z: Tensor
    ) -> dict[str, Tensor]:
        """The adversarial loss plus the MI term on the (detached) fakes: trains D's trunk and Q. D and Q see
        the augmented images (``augment``), and the small-data regularisers apply to D's logits."""
        real, fake = self.augment_images(real), self.augment_images(fake)
        fake_logits, q = self._critic_and_q(fake)
        real_logits = self.critic(real)
        terms = {"d_adv": discriminator_loss(self.adversarial_loss, real_logits, fake_logits)}
        if self.gp_weight > 0:
            terms["gp"] = self.gp_weight * gradient_penalty(self.critic, real, fake)
        terms.update({f"d_info_{k}": v for k, v in self.mutual_information_terms(q, z).items()})
        terms.update(self.regularizer_terms(real, real_logits, fake_logits, self.critic))
        return terms

    def generator_terms(self, fake: Tensor, fake_y: Tensor | None, z: Tensor) -> dict[str, Tensor]:
        """The adversarial loss plus the MI term: trains G (D and Q are not stepped here)."""
        logits, q = self._critic_and_q(self.augment_images(fake))
        terms = {"g_adv": generator_loss(self.adversarial_loss, logits)}
        terms.update({f"g_info_{k}": v for k, v in self.mutual_information_terms(q, z).items()})
        return terms

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        """D and Q: the MI term trains Q with D's optimizer (official InfoGAN)."""
        return chain(self.discriminator.parameters(), self.q_head.parameters())

    # ------------------------------------------------------------------ code traversals
    @torch.no_grad()
    def code_traversal(
        self,
        continuous: int = 0,
        categorical: int = 0,
        num_steps: int = 10,
        span: float = 1.0,
        seed: int = 0,
    ) -> Tensor:
        """Decode one seeded noise vector (shared by every cell) with each value of categorical code
        ``categorical`` per row and continuous code ``continuous`` swept over ``[-span, span]`` in
        ``num_steps`` columns; other codes are fixed (categorical at 0, continuous at 0).

        Returns images in [0, 1], ``(rows, num_steps, C, H, W)`` (one row if there is no categorical
        code). Call it in eval mode (and with EMA weights swapped in) for a training-independent grid;
        the global RNG is not touched, so the same weights and seed give the same grid.
        """
        if not 0 <= continuous < self.num_continuous:
            raise ValueError(
                f"continuous must index one of the {self.num_continuous} continuous codes, got {continuous}"
            )
        if self.categories and not 0 <= categorical < len(self.categories):
            raise ValueError(
                f"categorical must index one of the {len(self.categories)} categorical codes, got {categorical}"
            )
        rows = self.categories[categorical] if self.categories else 1
        gen = torch.Generator(device="cpu").manual_seed(seed)
        noise = torch.randn(1, self.noise_dim, generator=gen).to(self.device).expand(rows * num_steps, -1)
        row_ids = torch.arange(rows, device=self.device).repeat_interleave(num_steps)
        cats = [row_ids if i == categorical else torch.zeros_like(row_ids) for i in range(len(self.categories))]
        cont = torch.zeros(rows * num_steps, self.num_continuous, device=self.device)
        cont[:, continuous] = torch.linspace(-span, span, num_steps, device=self.device).repeat(rows)
        images = self.decode(self.make_latent(noise, cats, cont))
        return images.view(rows, num_steps, *images.shape[1:])
