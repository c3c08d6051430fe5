"""``puzzlegan``: whole images from a few unplaced key patches (Lee et al. 2017, "Unsupervised Holistic
Image Generation from Key Local Patches", arXiv 1703.10730).

The module cuts its own patches from plain ``(x, y)`` image batches, so it trains on any image
datamodule: ``num_patches`` squares of ``patch_size`` pixels per image, at uniform random positions
drawn per example (:func:`~genlight.nn.puzzle.random_positions`; training draws from the global RNG,
which the seed and an exact resume fix; validation and test from a generator seeded with
``eval_seed + batch_idx``, so every epoch scores the same patches). The positions give the true masks,
which the generator never sees.

The generator (:class:`PuzzleGenerator`, below) encodes each patch alone, pools the
encodings with a mean (the output does not depend on the patches' order; the paper concatenates them)
and decodes an image ``G`` in [-1, 1] and, per patch, a distribution ``π_k`` over the positions of its
top-left corner; noise ``z`` of ``latent_dim`` (0: deterministic) joins the pooled code. The soft mask
of patch ``k`` is the probability that it covers a pixel (``π_k`` convolved with a ``p x p`` box,
:func:`~genlight.nn.puzzle.coverage`); the paper decodes a pixel mask instead, whose per-pixel
probabilities stay under 0.5 wherever a patch could sit in several places (a blank patch), so that the
thresholded mask is empty; a position distribution always gives boxes of the patches' shape. The
losses (paper §3.2):

* spatial: ``λ_spatial · CE(π_k, true corner of patch k)``, mean over patches: the mask loss of a mask
  restricted to a ``p x p`` box;
* appearance: ``λ_appearance · Σ m |G - x| / Σ m`` with ``m`` the union of the true masks: the
  patches must reappear, unchanged, where they were cut; ``λ_reconstruction · mean |G - x|`` adds the
  L1 over the whole image (0 turns it off);
* with ``composite_patches`` (not in the paper) the patches are pasted into ``G`` where the model puts
  them before any loss sees it: spread over their position distributions in training
  (:func:`~genlight.nn.puzzle.composite`, differentiable, so the appearance and reconstruction losses
  also train the positions), at their most likely positions in ``complete``;
* adversarial: the discriminator (:class:`~genlight.nn.dcgan.DCGANDiscriminator`) sees real pairs
  ``(x, true union mask)`` and generated pairs ``(G, predicted union mask)`` stacked as channels, as
  the paper's; ``discriminator_sees_mask=False`` shows it the images only.

One ``training_step`` = one batch: a discriminator step on the real pairs and the detached generated
pairs, then a generator step on the same generated pairs (so ``trainer.global_step`` moves twice per
batch). The generated pair's mask is the union of the soft masks (differentiable); ``complete`` returns
the union of the boxes at the most likely positions (``argmax π_k``). The generator is averaged by
the shared :class:`~genlight.callbacks.EMA` (``ema_target = "generator"``). Validation and test log ``{stage}/mask_iou`` (IoU of the predicted
union mask thresholded at 0.5 with the true one), ``{stage}/l1`` (mean |completion - x|, which selects
checkpoints) and ``{stage}/patch_l1`` (the same inside the true patches).

Not a subclass of :class:`~genlight.modules.adversarial.AdversarialModule`: that base draws images
from noise alone (``sample``, ``decode``), which a patch completer cannot; the losses are the shared
ones of :mod:`genlight.nn.adversarial`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn.accumulate import AccumulationWindow
from genlight.nn.adversarial import AdversarialLoss, check_loss, discriminator_loss, generator_loss, gradient_penalty
from genlight.nn.conv import ConvDecoder, ConvEncoder
from genlight.nn.dcgan import DCGANDiscriminator
from genlight.nn.puzzle import (
    composite,
    corner_index,
    coverage,
    cut_patches,
    mask_iou,
    patch_masks,
    random_positions,
    union_mask,
)
from genlight.ranges import (
    Fraction,
    KernelSize,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Seed,
    Size,
    SizeOrZero,
    check_arguments,
)
from genlight.registry import register_model

__all__ = ["PuzzleGAN", "PuzzleGenerator"]


class PuzzleGenerator(nn.Module):
    """``G(patches, z) -> (image, corner_logits)``: ``(B, K, C, p, p)`` patches in [-1, 1] and noise
    ``(B, latent_dim)`` -> an image ``(B, C, H, W)`` in [-1, 1] and, per patch, logits of where its
    top-left corner is, ``(B, K, H - p + 1, W - p + 1)`` (a softmax over the map gives the position's
    distribution, :func:`~genlight.nn.puzzle.coverage` the soft mask).

    Each patch is encoded alone by one shared :class:`~genlight.nn.conv.ConvEncoder` (``e_k``); the
    patches meet only through the mean ``c = mean_k φ(e_k)`` (a deep-sets pooling), so the output does
    not depend on the order of the patches: the image is decoded from ``[c, z]`` and the position map
    of patch ``k`` from ``[e_k, c, z]`` (:class:`~genlight.nn.conv.ConvDecoder`, an image-sized map
    cropped to the corners that fit). The paper concatenates the encodings in a fixed order and decodes
    a pixel mask; a distribution over positions gives masks of exactly the patches' shape.
    """

    def __init__(
        self, image_shape: Sequence[int], patch_size: int, latent_dim: int, embed_dim: int = 64, width: int = 32
    ) -> None:
        super().__init__()
        c = int(image_shape[0])
        self.latent_dim = latent_dim
        self.corners = (int(image_shape[1]) - patch_size + 1, int(image_shape[2]) - patch_size + 1)
        self.encoder = ConvEncoder((c, patch_size, patch_size), width, embed_dim)
        self.pool = nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.SiLU(), nn.Linear(embed_dim, embed_dim))
        self.image_decoder = ConvDecoder(embed_dim + latent_dim, image_shape, width, c)
        self.position_decoder = ConvDecoder(2 * embed_dim + latent_dim, image_shape, width, 1)

    def forward(self, patches: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        b, k = patches.shape[:2]
        e = self.encoder(patches.flatten(0, 1)).view(b, k, -1)  # (B*K, C, p, p) -> (B, K, E)
        context = self.pool(e).mean(dim=1)  # (B, E): order-invariant
        image = torch.tanh(self.image_decoder(torch.cat([context, z], dim=1)))  # (B, C, H, W)
        per_patch = torch.cat([e, context[:, None].expand(b, k, -1), z[:, None].expand(b, k, -1)], dim=2)
        logits = self.position_decoder(per_patch.flatten(0, 1))  # (B*K, 2E+Z) -> (B*K, 1, H, W)
        hc, wc = self.corners
        return image, logits[:, 0, :hc, :wc].reshape(b, k, hc, wc)  # (B, K, H-p+1, W-p+1)


@register_model("puzzlegan", tags=("adversarial", "completer"))
class PuzzleGAN(GenerativeModule):
    """Puzzle-GAN; see the module docstring. ``complete(patches)`` -> ``(images, masks)``.

    Args:
        image_shape: ``(C, H, W)`` images; from the datamodule.
        num_patches: key patches per image, K (the paper uses 2-4).
        patch_size: side of the square patches in pixels, at most the image side.
        latent_dim: noise dimensions fed to both decoders (0: completions are deterministic).
        embed_dim: size of each patch's encoding.
        width: channels of the patch encoder and the decoders.
        width_d: discriminator channels.
        d_norm: discriminator normalisation, ``spectral`` | ``batch`` | ``layer`` | ``none``.
        loss: adversarial loss (``hinge``, ``non_saturating``, ``lsgan``, ...).
        gp_weight: gradient-penalty weight (0: none).
        lambda_adversarial: weight of the generator's adversarial term.
        lambda_spatial: weight of the mask loss.
        lambda_appearance: weight of the L1 inside the true patch positions.
        lambda_reconstruction: weight of the L1 over the whole image.
        discriminator_sees_mask: show the discriminator (image, mask) pairs, as the paper does.
        composite_patches: paste the patches into the generated image at their predicted positions
            (expected positions in training, the most likely ones in ``complete``); the paper does not.
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator.
        betas: Adam's ``(beta1, beta2)`` of both, each in [0, 1).
        eval_seed: seed of the validation / test patch positions and noise.
        accumulate: batches per optimizer step (gradient accumulation, :mod:`genlight.nn.accumulate`; 1 = none).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"embed_dim": 8, "width": 4, "width_d": 4, "latent_dim": 2}
    ema_decay: ClassVar[float] = 0.999
    ema_target: ClassVar[str | None] = "generator"
    monitor: ClassVar[str | None] = "val/l1"
    monitor_mode: ClassVar[str] = "min"
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images",)
    ddp_find_unused_parameters: ClassVar[bool] = True  # G-only / D-only backwards

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        num_patches: PositiveInt = 3,
        patch_size: KernelSize = 3,
        latent_dim: SizeOrZero = 16,
        embed_dim: Size = 64,
        width: Size = 32,
        width_d: Size = 32,
        d_norm: str = "spectral",
        loss: AdversarialLoss = "hinge",
        gp_weight: NonNegativeFloat = 0.0,
        lambda_adversarial: NonNegativeFloat = 1.0,
        lambda_spatial: NonNegativeFloat = 10.0,
        lambda_appearance: NonNegativeFloat = 10.0,
        lambda_reconstruction: NonNegativeFloat = 1.0,
        discriminator_sees_mask: bool = True,
        composite_patches: bool = False,
        lr_g: PositiveFloat = 1e-3,
        lr_d: PositiveFloat = 1e-3,
        betas: tuple[Fraction, Fraction] = (0.0, 0.9),
        eval_seed: Seed = 0,
        accumulate: PositiveInt = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.accumulation = AccumulationWindow(int(accumulate))
        self.automatic_optimization = False
        name = type(self).__name__
        shape = check_image_shape(image_shape, name)
        if patch_size > min(shape[1:]):
            raise ValueError(
                f"{name}: patch_size {patch_size} does not fit in {shape[1]}x{shape[2]} images; use at most {min(shape[1:])}"
            )
        if check_loss(loss) == "wasserstein_gp" and gp_weight <= 0:
            raise ValueError(
                f"{name}: loss 'wasserstein_gp' needs a gradient penalty; set gp_weight > 0 (10 in the paper)"
            )
        self.image_shape = tuple(shape)
        self.num_patches, self.patch_size, self.latent_dim = int(num_patches), int(patch_size), int(latent_dim)
        self.generator = PuzzleGenerator(shape, self.patch_size, self.latent_dim, embed_dim, width)
        d_channels = shape[0] + (1 if discriminator_sees_mask else 0)
        # no head bias for the hinge and Wasserstein critics: its gradient is -1 + 1 = 0 while both hinge
        # margins are active (it would never move) and a constant offset does not change the W-loss
        head_bias = loss not in ("hinge", "wasserstein_gp")
        self.discriminator = DCGANDiscriminator((d_channels, *shape[1:]), width_d, norm=d_norm, head_bias=head_bias)

    # ------------------------------------------------------------------ the capability
    def cut_patches(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(patches (n, K, C, p, p), true union mask (n, 1, H, W))`` of images ``x`` in [0, 1], cut at
        random positions (``generator``, else the global RNG)."""
        patches, positions = self._cut(x, generator)
        return patches, union_mask(patch_masks(positions, self.patch_size, self.image_shape[1:]))

    def _cut(self, x: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor]:
        """Patches ``(n, K, C, p, p)`` and their top-left corners ``(n, K, 2)``."""
        if tuple(x.shape[1:]) != self.image_shape:
            raise ValueError(
                f"{type(self).__name__}: images of shape {tuple(x.shape[1:])}, built for {self.image_shape}"
            )
        hw = self.image_shape[1:]
        positions = random_positions(
            len(x), self.num_patches, hw, self.patch_size, generator=generator, device=x.device
        )
        return cut_patches(x, positions, self.patch_size), positions

    def noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``z ~ N(0, I)``, ``(n, latent_dim)`` (``generator``, else the global RNG)."""
        on = generator.device if generator is not None else self.device
        return torch.randn(n, self.latent_dim, generator=generator, device=on).to(self.device)

    def generate(self, patches: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """``G`` in [-1, 1] ``(n, C, H, W)`` and per-patch corner logits ``(n, K, H-p+1, W-p+1)`` from
        patches in [0, 1]."""
        if patches.dim() != 5 or tuple(patches.shape[2:]) != (self.image_shape[0], self.patch_size, self.patch_size):
            raise ValueError(
                f"{type(self).__name__}.complete: patches of shape (n, k, {self.image_shape[0]}, {self.patch_size}, "
                f"{self.patch_size}) expected, got {tuple(patches.shape)}"
            )
        return self.generator(patches * 2.0 - 1.0, z)

    def complete(self, patches: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``(images (n, C, H, W) in [0, 1], masks (n, 1, H, W) in [0, 1])`` from unplaced patches
        ``(n, k, C, p, p)`` in [0, 1]; the noise from ``generator`` (else the global RNG). The mask is
        the union of the patches' boxes at their most likely positions. Runs with gradients if they are on."""
        image, logits = self.generate(patches, self.noise(len(patches), generator))
        flat = logits.float().flatten(2)  # (n, K, corners)
        best = torch.zeros_like(flat).scatter_(2, flat.argmax(2, keepdim=True), 1.0).view_as(logits)
        if self.hparams.composite_patches:
            image = composite(image.float(), patches.float() * 2.0 - 1.0, best)
        return ((image + 1.0) / 2.0).clamp(0, 1), union_mask(coverage(best, self.patch_size)).clamp(0, 1)

    def soft_masks(self, logits: Tensor) -> Tensor:
        """Per-patch coverage probabilities ``(n, K, H, W)`` from corner logits."""
        probabilities = torch.softmax(logits.float().flatten(2), dim=2).view_as(logits)
        return coverage(probabilities, self.patch_size)

    # ------------------------------------------------------------------ losses
    def _pair(self, image: Tensor, mask: Tensor) -> Tensor:
        """What the discriminator sees: the image in [-1, 1], and the union mask mapped to [-1, 1]."""
        if not self.hparams.discriminator_sees_mask:
            return image
        return torch.cat([image, mask.to(image.dtype) * 2.0 - 1.0], dim=1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        hp = self.hparams
        opt_g, opt_d = self.optimizers()
        window = self.accumulation
        x = batch[0]
        n = len(x)
        patches, positions = self._cut(x, None)  # (n, K, C, p, p), (n, K, 2)
        noise = self.noise(n)
        fake, logits, fake_pair = self._fakes(patches, noise)
        real_pair = self._pair(x * 2.0 - 1.0, union_mask(patch_masks(positions, self.patch_size, self.image_shape[1:])))
        d_real, d_fake = self.discriminator(real_pair), self.discriminator(fake_pair.detach())
        d_terms = {"d_adv": discriminator_loss(hp.loss, d_real, d_fake)}
        if hp.gp_weight > 0:
            d_terms["gp"] = hp.gp_weight * gradient_penalty(self.discriminator, real_pair, fake_pair.detach())
        d_loss = sum(d_terms.values())
        self.manual_step(opt_d, d_loss, scale=window.scale, zero_grad=window.begins, step=window.ends)
        logs: dict[str, Tensor] = {"d_loss": d_loss, **d_terms}
        if window.k == 1:
            g_terms = self.manual_step(
                opt_g, lambda: self.generator_terms(x, fake, logits, positions, fake_pair)
            )  # D frozen
        else:  # G's step goes through the updated D: at the window's end, over the carried batches
            window.carry(x, patches, positions, noise)
            g_terms = window.replay(self.manual_step, opt_g, self.replayed_generator_terms) if window.ends else {}
        if g_terms:
            logs.update({"g_loss": sum(g_terms.values()), **g_terms})
        window.advance()
        self.log_train(**logs, batch_size=n, prog_bar=("d_loss", "g_loss"))

    def _fakes(self, patches: Tensor, noise: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(fake in [-1, 1], corner logits, what D sees of the fake)`` from ``patches`` and ``noise``."""
        fake, logits = self.generate(patches, noise)
        if self.hparams.composite_patches:
            probabilities = torch.softmax(logits.float().flatten(2), dim=2).view_as(logits)
            fake = composite(fake.float(), patches.float() * 2.0 - 1.0, probabilities)
        return fake, logits, self._pair(fake, union_mask(self.soft_masks(logits)).clamp(0, 1))

    def replayed_generator_terms(
        self, x: Tensor, patches: Tensor, positions: Tensor, noise: Tensor
    ) -> dict[str, Tensor]:
        """G's terms for a carried batch (accumulation): the fakes again, then :meth:`generator_terms`."""
        fake, logits, fake_pair = self._fakes(patches, noise)
        return self.generator_terms(x, fake, logits, positions, fake_pair)

    def generator_terms(
        self, x: Tensor, fake: Tensor, logits: Tensor, positions: Tensor, fake_pair: Tensor
    ) -> dict[str, Tensor]:
        """The generator's named loss terms (their sum is minimised); ``fake`` in [-1, 1], ``logits`` the
        corner logits ``(n, K, H-p+1, W-p+1)``, ``positions`` the true corners ``(n, K, 2)``."""
        hp = self.hparams
        image = (fake.float() + 1.0) / 2.0
        error = (image - x).abs()  # (n, C, H, W)
        region = union_mask(patch_masks(positions, self.patch_size, self.image_shape[1:]))  # (n, 1, H, W)
        target = corner_index(positions, self.image_shape[2], self.patch_size).flatten()  # (n*K,)
        terms = {
            "g_adv": hp.lambda_adversarial * generator_loss(hp.loss, self.discriminator(fake_pair)),
            "spatial": hp.lambda_spatial * F.cross_entropy(logits.float().flatten(2).flatten(0, 1), target),
            "appearance": hp.lambda_appearance * (error * region).sum() / (region.sum() * x.shape[1]).clamp(min=1),
        }
        if hp.lambda_reconstruction > 0:
            terms["reconstruction"] = hp.lambda_reconstruction * error.mean()
        return terms

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, x: Tensor, batch_idx: int) -> dict[str, Tensor]:
        """Per-example ``mask_iou``, ``l1`` and ``patch_l1`` of completions of ``x``, with the patches and
        noise of ``eval_seed + batch_idx``."""
        generator = torch.Generator().manual_seed(int(self.hparams.eval_seed) + batch_idx)
        patches, true_mask = self.cut_patches(x, generator)
        images, masks = self.complete(patches, generator)
        error = (images.float() - x).abs()
        return {
            "mask_iou": mask_iou(masks, true_mask),
            "l1": error.flatten(1).mean(1),
            "patch_l1": (error * true_mask).flatten(1).sum(1) / (true_mask.flatten(1).sum(1) * x.shape[1]).clamp(min=1),
        }

    def _log_scores(self, stage: str, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        scores = self.evaluate(batch[0], batch_idx)
        n = len(batch[0])
        for key, value in scores.items():
            self.log(f"{stage}/{key}", value.mean(), prog_bar=key in ("l1", "mask_iou"), sync_dist=True, batch_size=n)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._log_scores("val", batch, batch_idx)

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._log_scores("test", batch, batch_idx)

    def on_test_epoch_start(self) -> None:
        """Nothing to reset: the test figures are logged by :meth:`test_step` (no sample scores)."""

    def on_test_epoch_end(self) -> None:
        """Nothing to add: :meth:`test_step` logs every test figure."""

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """``[Adam(generator), Adam(discriminator)]`` with ``lr_g``, ``lr_d`` and ``betas``."""
        hp = self.hparams
        betas = (float(hp.betas[0]), float(hp.betas[1]))
        return [
            torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d, betas=betas),
        ]
