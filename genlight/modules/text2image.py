"""``text2image``: text-conditional GAN of Reed et al. (2016, "Generative Adversarial Text to Image
Synthesis"): GAN-CLS (the matching-aware discriminator) with GAN-INT (interpolated captions).

* Text encoder (:class:`~genlight.modules.text2image.TextEncoder`, embeddings + GRU) trained **in the same
  module, jointly, by a contrastive term only**: symmetric InfoNCE between its caption embeddings and a
  small image encoder's embeddings of the batch's real images (weight ``contrastive_weight``, in the
  discriminator's step and optimizer). G and D see the embeddings detached, so no adversarial gradient
  reaches the encoder: it cannot collapse to whatever helps D or G (the trap Reed et al. avoid by
  pretraining theirs), and from the first step equal captions get equal embeddings.
* G: the embedding projected (Linear -> LeakyReLU, ``proj_dim``) and concatenated to ``z``; the DCGAN
  generator. D: spectrally normalised trunk, the projected embedding tiled over its last (4x4) map
  and concatenated before a 1x1 conv and the logit.
* D loss (GAN-CLS, Algorithm 1): ``(real, right) -> 1``, ``(real, wrong) -> 0``, ``(fake, right) -> 0``,
  the last two weighted 1/2. The wrong caption of image ``i`` is drawn among the batch's captions that
  differ from ``i``'s (another class or other attributes; :func:`~genlight.modules.text2image.wrong_indices`),
  never a random index that may hold the same caption.
* G loss: the adversarial loss on ``(G(z, t), t)`` plus ``int_weight`` times the loss on
  ``(G(z', t_int), t_int)``, ``t_int = β t + (1 - β) t_wrong`` (GAN-INT, ``β = int_beta`` = 0.5 as in
  the paper); no image exists for ``t_int``, only D's judgement. ``t_wrong`` is any other caption of the
  batch (``int_partner="any"``, the paper's), or another caption of the same class where the batch has
  one (``"same_class"``: attributes are interpolated, not classes; the tuned digits config, see
  ``benchmarks/results/text2image_digits.md``).

One ``training_step`` = one batch: a D step (with the contrastive term), then a G step every
``n_critic``-th batch (see :mod:`genlight.modules.adversarial`). Samples: ``sample(n, text=[...])``
(captions tokenised with the model's own vocabulary, stored in its hyper-parameters, so a checkpoint
knows it), ``sample(n, y=labels)`` (the class captions, every attribute at its middle level: "a seven").

Networks and losses (below, sized for small images):

* :class:`TextEncoder`: word embeddings and a GRU; the last hidden state of each caption, mapped to a
  unit-norm embedding (Reed et al. pretrain a char-CNN-RNN; here the encoder learns jointly, see
  :func:`contrastive_loss`).
* :class:`ImageEncoder`: a small CNN to the same unit sphere; it exists only for the contrastive term.
* :class:`TextConditionalGenerator`: ``G(z, t)``: ``t`` projected (Linear -> LeakyReLU) and concatenated
  to ``z``, then the DCGAN generator of :mod:`genlight.nn.dcgan`.
* :class:`MatchingDiscriminator`: ``D(x, t)``: a spectrally normalised conv trunk to the smallest map
  (4x4 for 8x8 to 64x64 images), the projected text tiled over that map and concatenated, then a 1x1
  conv and a linear layer to one logit.
* :func:`gan_cls_discriminator_loss`: ``(real, right) -> 1``, ``(real, wrong) -> 0`` and
  ``(fake, right) -> 0``, the last two weighted 1/2 (Reed et al. 2016, Algorithm 1).
* :func:`wrong_indices`: for every caption of a batch, another caption of the batch that differs from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from genlight._compat import attached_trainer
from genlight.datamodules.digit_captions import CAPTION_LENGTH, VOCABULARY, class_captions, tokenize
from genlight.errors import ConfigError, IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.modules.adversarial import AdversarialModule
from genlight.nn.adversarial import AdversarialLoss, dcgan_init_, discriminator_loss, generator_loss
from genlight.nn.augment import DEFAULT_POLICY, Augmentation
from genlight.nn.dcgan import DCGANGenerator, dcgan_plan
from genlight.ranges import (
    ClassCount,
    Decay,
    DepthOrZero,
    Fraction,
    NonNegativeFloat,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    Size,
)
from genlight.registry import register_model

__all__ = [
    "ImageEncoder",
    "MatchingDiscriminator",
    "Text2Image",
    "TextConditionalGenerator",
    "TextEncoder",
    "contrastive_loss",
    "gan_cls_discriminator_loss",
    "wrong_indices",
]

_LOSSES = ("non_saturating", "hinge", "lsgan")


# ------------------------------------------------------------------ networks and losses (see the module docstring)


class TextEncoder(nn.Module):
    """``(B, L)`` word ids (0 = padding, at the end) -> ``(B, text_dim)`` unit-norm embeddings."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_dim: int, text_dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.gru = nn.GRU(embed_dim, hidden_dim, batch_first=True)
        self.out = nn.Linear(hidden_dim, text_dim)

    def forward(self, tokens: Tensor) -> Tensor:
        with torch.autocast(device_type=tokens.device.type, enabled=False):  # tiny; the GRU stays float32
            h, _ = self.gru(self.embed(tokens))  # (B, L, hidden)
            last = (tokens != 0).sum(1).clamp(min=1) - 1  # index of each caption's last word
            h = h[torch.arange(len(tokens), device=tokens.device), last]  # (B, hidden)
            return F.normalize(self.out(h), dim=1)


class ImageEncoder(nn.Module):
    """``(B, C, H, W)`` in [-1, 1] -> ``(B, text_dim)`` unit-norm embeddings (for the contrastive term)."""

    def __init__(self, image_shape: Sequence[int], width: int, text_dim: int) -> None:
        super().__init__()
        c, h, w = image_shape
        self.net = nn.Sequential(
            nn.Conv2d(c, width, 3, 1, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * (h // 2) * (w // 2), text_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.net(x).float(), dim=1)


class TextConditionalGenerator(nn.Module):
    """``G(z, t)``: ``(B, latent_dim)``, ``(B, text_dim)`` -> ``(B, C, H, W)`` in [-1, 1]."""

    def __init__(
        self,
        latent_dim: int,
        text_dim: int,
        proj_dim: int,
        image_shape: Sequence[int],
        width: int,
        extra_layers: int = 0,
    ) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.Linear(text_dim, proj_dim), nn.LeakyReLU(0.2))
        self.net = DCGANGenerator(latent_dim + proj_dim, image_shape, width, extra_layers=extra_layers)

    def forward(self, z: Tensor, t: Tensor) -> Tensor:
        return self.net(torch.cat([z, self.project(t.to(z.dtype))], dim=1))  # (B, latent + proj) -> image


class MatchingDiscriminator(nn.Module):
    """``D(x, t)``: ``(B, C, H, W)`` in [-1, 1] and ``(B, text_dim)`` -> ``(B,)`` logits of "real and
    matching the text"."""

    def __init__(self, image_shape: Sequence[int], width: int, text_dim: int, proj_dim: int) -> None:
        super().__init__()
        c = image_shape[0]
        (bh, bw), widths = dcgan_plan(image_shape, width)
        widths = widths[::-1]
        layers: list[nn.Module] = [spectral_norm(nn.Conv2d(c, widths[0], 3, 1, 1)), nn.LeakyReLU(0.2)]
        for c_in, c_out in zip(widths, widths[1:]):
            layers += [spectral_norm(nn.Conv2d(c_in, c_out, 4, 2, 1)), nn.LeakyReLU(0.2)]
        self.trunk = nn.Sequential(*layers)  # (B, widths[-1], bh, bw)
        self.map_size = (bh, bw)
        self.project = nn.Sequential(spectral_norm(nn.Linear(text_dim, proj_dim)), nn.LeakyReLU(0.2))
        self.joint = nn.Sequential(spectral_norm(nn.Conv2d(widths[-1] + proj_dim, widths[-1], 1)), nn.LeakyReLU(0.2))
        self.head = spectral_norm(nn.Linear(widths[-1] * bh * bw, 1))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        h = self.trunk(x)  # (B, W, bh, bw)
        p = self.project(t.to(h.dtype))[:, :, None, None].expand(-1, -1, *self.map_size)  # (B, P, bh, bw)
        h = self.joint(torch.cat([h, p], dim=1))  # (B, W, bh, bw)
        return self.head(h.flatten(1)).squeeze(1)


def gan_cls_discriminator_loss(loss: str, real_right: Tensor, real_wrong: Tensor, fake_right: Tensor) -> Tensor:
    """GAN-CLS: ``l_real(real_right) + ½ l_fake(real_wrong) + ½ l_fake(fake_right)`` with the real/fake
    terms of ``loss`` (:func:`~genlight.nn.adversarial.discriminator_loss`)."""
    return 0.5 * (discriminator_loss(loss, real_right, real_wrong) + discriminator_loss(loss, real_right, fake_right))


def same_caption(tokens: Tensor) -> Tensor:
    """``(B, B)`` bool: whether captions ``i`` and ``j`` are the same word sequence."""
    return (tokens[:, None, :] == tokens[None, :, :]).all(-1)


def wrong_indices(
    tokens: Tensor, generator: torch.Generator | None = None, prefer: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """For every caption ``i`` of the batch, a uniformly drawn ``j`` whose caption differs from ``i``'s
    (another class or other attributes: never a random index that may hold the same caption), and
    ``(B,)`` bool of the rows that have one (all captions of a batch equal: none). With ``prefer``
    (``(B, B)`` bool), ``j`` is drawn among the differing captions it marks where row ``i`` has any."""
    other = ~same_caption(tokens)  # (B, B)
    if prefer is not None:
        preferred = other & prefer
        other = torch.where(preferred.any(1, keepdim=True), preferred, other)
    found = other.any(1)
    weights = other.float() + (~found).float().unsqueeze(1) * torch.eye(len(tokens), device=tokens.device)
    j = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    return j, found


def contrastive_loss(image_emb: Tensor, text_emb: Tensor, tokens: Tensor, temperature: float) -> Tensor:
    """Symmetric InfoNCE between unit-norm image and caption embeddings of a batch (CLIP-style), with
    every caption equal to the image's own counted as a positive (targets spread evenly over them)."""
    logits = image_emb.float() @ text_emb.float().T / temperature  # (B, B)
    targets = same_caption(tokens).float()
    targets = targets / targets.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets))


@register_model("text2image", tags=("adversarial", "sampler", "conditional", "text"))
class Text2Image(AdversarialModule):
    """Text-to-image GAN (GAN-CLS + GAN-INT): ``sample(n, text=["a thick seven", ...])``.

    Args:
        image_shape: ``(C, H, W)``, H and W a multiple of 4; from the datamodule.
        num_classes: number of classes, one caption each in ``class_captions``; from the datamodule.
        vocabulary: the words, id 0 padding (default: ``digit_captions``'); must equal the datamodule's.
        class_captions: the caption ``sample(n, y=...)`` uses for each class.
        caption_length: tokens per caption (captions are padded to it).
        latent_dim: size of ``z ~ N(0, I)``.
        width: channels at full resolution in G and D (doubled at every halving).
        extra_layers: stride-1 3x3 blocks at every resolution of G.
        embed_dim: word embedding size.
        text_dim: caption (and image) embedding size.
        proj_dim: size of the text projection in G and D (Reed et al.: 128).
        contrastive_weight: weight of the contrastive term that trains the text encoder (>= 0; 0 leaves the text encoder at its initialisation).
        temperature: temperature of the contrastive logits.
        int_beta: GAN-INT's ``β``: ``t_int = β t + (1 - β) t_wrong``.
        int_weight: weight of the GAN-INT term in G's loss (0: GAN-CLS alone).
        int_partner: whom a caption is interpolated with: ``any`` other caption of the batch (Reed et al.)
            or, where the batch has one, another caption of the ``same_class`` (attributes interpolated,
            not classes).
        loss: ``non_saturating`` | ``hinge`` | ``lsgan``.
        n_critic: discriminator steps per generator step.
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator and both encoders.
        betas: Adam's ``(beta1, beta2)``, each in [0, 1).
    """

    per_example_kwargs: ClassVar[dict[str, Any]] = {"contrastive_weight": 0.0}  # InfoNCE's negatives: the batch
    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "width": 4, "embed_dim": 4, "text_dim": 4, "proj_dim": 4}
    smoke_data: ClassVar[str] = "digit_captions"
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("captioned",)

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        num_classes: ClassCount = 10,
        vocabulary: tuple[str, ...] = VOCABULARY,
        class_captions: tuple[str, ...] = class_captions(),
        caption_length: Size = CAPTION_LENGTH,
        latent_dim: Size = 32,
        width: Size = 32,
        extra_layers: DepthOrZero = 0,
        embed_dim: Size = 32,
        text_dim: Size = 32,
        proj_dim: Size = 32,
        contrastive_weight: NonNegativeFloat = 1.0,
        temperature: Decay = 0.1,
        int_beta: Fraction = 0.5,
        int_weight: NonNegativeFloat = 1.0,
        int_partner: Literal["any", "same_class"] = "any",
        loss: AdversarialLoss = "non_saturating",
        n_critic: PositiveInt = 1,
        lr_g: PositiveFloat = 2e-4,
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
        shape = check_image_shape(image_shape, type(self).__name__, multiple_of=4, min_size=8)
        if loss not in _LOSSES:
            raise ConfigError(f"text2image: loss {loss!r} is not supported; choose one of {', '.join(_LOSSES)}")
        if int_partner not in ("any", "same_class"):
            raise ConfigError(f"text2image: int_partner must be 'any' or 'same_class', got {int_partner!r}")
        if int(num_classes) < 1:
            raise IncompatibleDataError(
                f"text2image needs captioned, labelled data (num_classes > 0), got num_classes={num_classes}; "
                "use --data digit_captions"
            )
        super().__init__(
            image_shape=image_shape,
            latent_dim=latent_dim,
            loss=loss,
            n_critic=n_critic,
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
        self.num_classes = int(num_classes)
        self.vocabulary = tuple(vocabulary)
        self.caption_length = int(caption_length)
        self.contrastive_weight, self.temperature = float(contrastive_weight), float(temperature)
        self.int_beta, self.int_weight = float(int_beta), float(int_weight)
        self.int_partner = int_partner
        self.register_buffer("class_tokens", self.tokenize(list(class_captions)), persistent=False)
        self.text_encoder = TextEncoder(len(self.vocabulary), embed_dim, 2 * text_dim, text_dim)
        self.image_encoder = ImageEncoder(shape, width, text_dim)
        self.generator = dcgan_init_(
            TextConditionalGenerator(latent_dim, text_dim, proj_dim, shape, width, extra_layers)
        )
        self.discriminator = dcgan_init_(MatchingDiscriminator(shape, width, text_dim, proj_dim))

    # ------------------------------------------------------------------ text
    def tokenize(self, captions: Sequence[str]) -> Tensor:
        """``(n, caption_length)`` word ids of ``captions`` in this model's vocabulary; an unknown word
        raises one ``ValueError`` line listing the vocabulary."""
        return tokenize(captions, self.vocabulary, self.caption_length)

    def embed_text(self, tokens: Tensor) -> Tensor:
        """``(B, text_dim)`` unit-norm caption embeddings of ``(B, L)`` word ids."""
        return self.text_encoder(tokens.to(self.device))

    def captions_tokens(self, n: int, y: Tensor | int | None = None, text: str | Sequence[str] | None = None) -> Tensor:
        """``(n, L)`` tokens: ``text`` (repeated to ``n``), else the class captions of ``y`` (``None``:
        classes drawn uniformly)."""
        if text is not None and y is not None:
            raise ValueError("pass text or y, not both")
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if not texts:
                raise ValueError("text must hold at least one caption")
            tokens = self.tokenize(texts).to(self.device)
            return tokens.repeat((n + len(texts) - 1) // len(texts), 1)[:n]
        if y is None:
            y = torch.randint(self.num_classes, (n,), device=self.device)
        y = torch.as_tensor(y, device=self.device).long()
        y = y.expand(n) if y.dim() == 0 else y.view(-1)
        high = min(self.num_classes, len(self.class_tokens))  # one class caption per class
        if len(y) != n or (n and (y.min() < 0 or y.max() >= high)):
            raise ValueError(f"labels y must be {n} class ids in [0, {high}), got {y.tolist()}")
        return self.class_tokens[y]

    # ------------------------------------------------------------------ sampling
    def generate(self, z: Tensor, t: Tensor | None = None) -> Tensor:
        """``G(z, t)`` in [-1, 1] for caption embeddings ``t``."""
        return self.generator(z, t)

    def decode(self, z: Tensor, y: Tensor | int | None = None, *, text: str | Sequence[str] | None = None) -> Tensor:
        """Images in [0, 1] from latent codes and captions (``text``), or class captions (``y``; ``None``:
        uniform classes)."""
        t = self.embed_text(self.captions_tokens(len(z), y, text))
        return (self.generate(z, t) + 1.0) / 2.0

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | int | None = None, text: str | Sequence[str] | None = None) -> Tensor:
        """``n`` images in [0, 1] for ``text`` (a caption or a list, repeated to ``n``), or for the class
        captions of ``y`` (an int or ``(n,)`` ids; ``None``: classes drawn uniformly)."""
        tokens = self.captions_tokens(n, y, text)
        return (self.generate(self.sample_latent(n), self.embed_text(tokens)) + 1.0) / 2.0

    # ------------------------------------------------------------------ data checks
    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.check_num_classes("use a captioned datamodule (digit_captions)")
        if len(self.class_tokens) != self.num_classes:
            raise IncompatibleDataError(
                f"text2image has {len(self.class_tokens)} class_captions for num_classes={self.num_classes}; set "
                "--model.class_captions to one caption per class"
            )
        dm = getattr(attached_trainer(self), "datamodule", None)
        vocab = getattr(dm, "vocabulary", None)
        if vocab is not None and tuple(vocab) != self.vocabulary:
            raise IncompatibleDataError(
                f"text2image was built with a vocabulary of {len(self.vocabulary)} words that differs from "
                f"{type(dm).__name__}'s ({len(vocab)} words); set --model.vocabulary to the datamodule's"
            )

    # ------------------------------------------------------------------ losses
    def batch_terms(self, batch: Sequence[Tensor]) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """``(real in [-1, 1], tokens, t, t_wrong, has_wrong)`` of a captioned batch (embeddings with
        their graph: the contrastive term trains the encoder through them)."""
        x, tokens = batch[0], batch[2].long()
        j, found = wrong_indices(tokens)
        t = self.embed_text(tokens)
        return self.to_model_range(x), tokens, t, t[j], found

    def training_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        window = self.accumulation
        real, tokens, t, t_wrong, found = self.batch_terms(batch)
        n = len(real)
        ts, tw = t.detach(), t_wrong.detach()  # no adversarial gradient reaches the text encoder
        z = self.sample_latent(n)
        fake = self.generate(z, ts)
        # D: (real, right), (real, wrong) and (fake, right) in one forward (one buffer sync under DDP)
        seen = self.augment_images(torch.cat([real, real[found], fake.detach()]))
        scores = self.discriminator(seen, torch.cat([ts, tw[found], ts]))
        s_rr, s_rw, s_fr = scores.split([n, int(found.sum()), n])
        d_cls = gan_cls_discriminator_loss(self.adversarial_loss, s_rr, s_rw, s_fr)
        contrast = contrastive_loss(self.image_encoder(real), t, tokens, self.temperature)
        regular = self.regularizer_terms(seen[:n], s_rr, s_fr, lambda x: self.discriminator(x, ts))
        d_loss = d_cls + self.contrastive_weight * contrast + sum(regular.values())
        self.manual_step(opt_d, d_loss, scale=window.scale, zero_grad=window.begins, step=window.ends)
        logs: dict[str, Tensor | float] = {
            "d_loss": d_loss,
            "d_cls": d_cls,
            "contrastive": contrast,
            "d_right_minus_wrong": (s_rr.float().mean() - s_rw.float().mean()).detach(),
            **regular,
        }
        if window.ends:
            logs.update(self.end_discriminator_step())
        if (window.index + 1) % self.n_critic == 0:  # built with D frozen: no gradient reaches D
            y = batch[1].long()
            terms = lambda: self.caption_generator_terms(y, tokens, ts, tw, fake)  # noqa: E731
            g_terms = self.generator_step(opt_g, terms, z, y, tokens, ts, tw)
            if g_terms:
                logs.update({"g_loss": sum(g_terms.values()), **g_terms})
        window.advance()
        self.log_train(**logs, batch_size=n, prog_bar=("d_loss", "g_loss"))

    def replayed_generator_terms(  # type: ignore[override]
        self, z: Tensor, y: Tensor, tokens: Tensor, ts: Tensor, tw: Tensor
    ) -> dict[str, Tensor]:
        """G's terms for a carried batch (accumulation): the fakes ``G(z, t)`` again, then :meth:`caption_generator_terms`."""
        return self.caption_generator_terms(y, tokens, ts, tw, self.generate(z, ts))

    def caption_generator_terms(
        self, y: Tensor, tokens: Tensor, ts: Tensor, tw: Tensor, fake: Tensor
    ) -> dict[str, Tensor]:
        """G's named loss terms (their sum is minimised): ``g_adv`` on ``(fake, right caption)`` and
        ``g_int``, ``int_weight`` times the loss on fakes for interpolated captions (GAN-INT); ``y`` are
        the batch's class labels."""
        n = len(fake)
        partner = tw
        if self.int_partner == "same_class":
            k, _ = wrong_indices(tokens, prefer=y[:, None] == y[None, :])
            partner = ts[k]
        t_int = self.int_beta * ts + (1.0 - self.int_beta) * partner  # GAN-INT: no image for these
        fake_int = self.generate(self.sample_latent(n), t_int)
        g_scores = self.discriminator(self.augment_images(torch.cat([fake, fake_int])), torch.cat([ts, t_int]))
        return {
            "g_adv": generator_loss(self.adversarial_loss, g_scores[:n]),
            "g_int": self.int_weight * generator_loss(self.adversarial_loss, g_scores[n:]),
        }

    def validation_step(self, batch: Sequence[Tensor], batch_idx: int) -> None:
        """``val/d_right`` and ``val/d_wrong``: D's mean logit on held-out real images with their own and
        with a wrong caption (matching-awareness: right should exceed wrong), and ``val/retrieval``: how
        often an image's nearest caption embedding in the batch is its own caption."""
        real, tokens, t, t_wrong, found = self.batch_terms(batch)
        d_right = self.discriminator(real, t).float()
        d_wrong = self.discriminator(real[found], t_wrong[found]).float()
        img = self.image_encoder(real)
        nearest = (img @ t.T).argmax(1)
        retrieval = (tokens[nearest] == tokens).all(1).float().mean()
        self.log_dict(
            {"val/d_right": d_right.mean(), "val/d_wrong": d_wrong.mean(), "val/retrieval": retrieval},
            sync_dist=True,
            batch_size=len(real),
        )

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        """D and both encoders (the contrastive term is part of the discriminator's step)."""
        return chain(self.discriminator.parameters(), self.text_encoder.parameters(), self.image_encoder.parameters())
