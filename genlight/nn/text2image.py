"""Networks and losses of the text-to-image GAN (Reed et al. 2016, "Generative Adversarial Text to Image
Synthesis", GAN-CLS / GAN-INT), sized for small images.

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

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from genlight.nn.adversarial import discriminator_loss
from genlight.nn.dcgan import DCGANGenerator, dcgan_plan

__all__ = [
    "ImageEncoder", "MatchingDiscriminator", "TextConditionalGenerator", "TextEncoder", "contrastive_loss",
    "gan_cls_discriminator_loss", "wrong_indices",
]


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
            nn.Conv2d(c, width, 3, 1, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(2 * width * (h // 2) * (w // 2), text_dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.net(x).float(), dim=1)


class TextConditionalGenerator(nn.Module):
    """``G(z, t)``: ``(B, latent_dim)``, ``(B, text_dim)`` -> ``(B, C, H, W)`` in [-1, 1]."""

    def __init__(self, latent_dim: int, text_dim: int, proj_dim: int, image_shape: Sequence[int], width: int,
                 extra_layers: int = 0) -> None:
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
