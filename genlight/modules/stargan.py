"""``stargan``: one generator for translation among many domains (Choi et al. 2018, "StarGAN: Unified
Generative Adversarial Networks for Multi-Domain Image-to-Image Translation"), after yunjey/stargan
(``model.py``, ``solver.py``).

``G(x, c)`` takes the target domain's one-hot tiled as extra channels
(:class:`~genlight.modules.stargan.DomainGenerator`, CycleGAN's ResNet generator inside); ``D(x)`` is a
PatchGAN trunk with a critic head ``D_src`` and a domain-classification head ``D_cls``
(:class:`~genlight.modules.stargan.DomainDiscriminator`). Images are mapped from [0, 1] to [-1, 1] inside
the model. Losses (paper eqs. 1-7, WGAN-GP form of §4 / solver.py):

* discriminator: ``L_D = -E[D_src(x)] + E[D_src(G(x, c'))] + λ_gp GP + λ_cls CE(D_cls(x), c)``: the
  classification term is on REAL images with their TRUE domain ``c`` only (eq. 2);
* generator: ``L_G = -E[D_src(G(x, c'))] + λ_cls CE(D_cls(G(x, c')), c') + λ_rec |x - G(G(x, c'), c)|_1``:
  classification of the FAKE with its TARGET ``c'`` (eq. 3) and the reconstruction back with the
  ORIGINAL domain ``c`` (eq. 4, L1 in the [-1, 1] units of the reference).

``D_src`` is averaged over its patches. The target ``c'`` is drawn uniformly from all ``N`` domains for
every example, so it equals the source with probability ``1/N`` (the reference permutes the batch's
labels: the same chance in expectation). On those draws the reconstruction term is only a two-step
identity, ``G(G(x, c), c) ≈ x``, which an involution satisfies as well as the identity: on
(plain, inverted) a short run maps a plain digit "into plain" half-way to its inversion
(``tests/test_stargan.py``). ``lambda_id > 0`` (not in the paper; 0 by default) adds the one-step
identity ``λ_id |G(x, c) - x|_1`` on the examples whose target is their source. ``λ_gp = 10``, ``λ_cls = 1``, ``λ_rec = 10``, ``n_critic = 5``, Adam
(1e-4, β 0.5/0.999) are the paper's; the learning rate is held for ``lr_constant_epochs`` epochs, then
falls linearly (:func:`~genlight.nn.schedules.linear_decay`, stepped once per epoch).

One ``training_step`` = one batch ``(x, y, domain)`` of the ``domains`` batch kind (``digit_domains``):
one discriminator step, then a generator step every ``n_critic``-th batch (``(batch_idx + 1) % n_critic
== 0``), so each critic step sees a fresh batch; ``trainer.global_step`` moves ``1 + 1/n_critic`` times
per batch. The generator is averaged by the shared :class:`~genlight.callbacks.EMA`
(``ema_target = "generator"``); validation and translations use it.

Validation and test batches carry the same digit in every domain, so translations are scored against
the true answer: ``val/l1_true`` = mean over examples of ``|G(x, t) - x_t|`` averaged over the ``N - 1``
other domains ``t`` ([0, 1] units; each source domain has the same share of the split), ``val/l1_self``
= ``|G(x, c) - x|`` (translation into its own domain). ``val/l1_true`` selects checkpoints.

Networks (below, sized from an image shape):

* :class:`DomainGenerator`: ``G(x, c)``, the target domain's one-hot ``c`` tiled to ``H x W`` and
  concatenated to the image as ``K`` extra channels, then CycleGAN's ResNet generator
  (:class:`~genlight.nn.image_to_image.ResnetGenerator`) back to the image's channels, ``tanh``. Its
  stem pads with ZEROS, as the reference's (``Conv2d(..., padding=3)``): the tiled channels are
  constant, so with reflection padding the stem's output from them would be constant too and the
  instance norm after it would subtract all of it, leaving G blind to the target; with zero padding
  the label reaches the network through the border, where the constant channels meet the padding.
* :class:`DomainDiscriminator`: a PatchGAN trunk of stride-2 4x4 convolutions (LeakyReLU 0.01, no
  normalisation: the gradient penalty is per example) and two heads: ``src``, a 3x3 convolution to one
  critic value per patch, and ``cls``, a convolution over the whole remaining map to ``K`` domain logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight._compat import attached_trainer
from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn.accumulate import AccumulationWindow
from genlight.nn.adversarial import discriminator_loss, generator_loss, gradient_penalty
from genlight.nn.image_to_image import ImageNorm, ResnetGenerator, num_halvings
from genlight.nn.schedules import linear_decay
from genlight.ranges import (
    Depth,
    DepthOrZero,
    Fraction,
    KernelSize,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Size,
    check_arguments,
)
from genlight.registry import register_model

__all__ = ["DomainDiscriminator", "DomainGenerator", "StarGAN"]


# ------------------------------------------------------------------ networks (see the module docstring)


class DomainGenerator(nn.Module):
    """``G(x, c)``: ``x`` ``(B, C, H, W)`` in [-1, 1], ``c`` ``(B,)`` target-domain indices -> ``(B, C, H, W)``
    in [-1, 1]. The arguments after ``num_domains`` are :class:`ResnetGenerator`'s."""

    def __init__(
        self,
        image_shape: Sequence[int],
        num_domains: int,
        width: int = 64,
        n_blocks: int = 6,
        *,
        max_downsamplings: int = 2,
        stem_kernel: int = 7,
        norm: str = "instance",
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        self.num_domains = int(num_domains)
        self.net = ResnetGenerator(
            (c + self.num_domains, h, w),
            width,
            n_blocks,
            max_downsamplings=max_downsamplings,
            stem_kernel=stem_kernel,
            norm=norm,
            out_channels=c,
        )
        stem_pad = self.net.net[0]
        assert isinstance(stem_pad, nn.ReflectionPad2d)
        self.net.net[0] = nn.ZeroPad2d(stem_pad.padding)  # see the module docstring

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        onehot = F.one_hot(c.long(), self.num_domains).to(x.dtype)  # (B, K)
        tiled = onehot[:, :, None, None].expand(-1, -1, *x.shape[-2:])  # (B, K, H, W)
        return self.net(torch.cat([x, tiled], dim=1))  # (B, C + K, H, W) -> (B, C, H, W)


class DomainDiscriminator(nn.Module):
    """``D(x)`` -> ``(src, cls)``: ``src`` ``(B, 1, h, w)`` critic values per patch, ``cls`` ``(B, K)``
    domain logits.

    Args:
        image_shape: ``(C, H, W)``.
        num_domains: ``K``.
        width: channels of the first layer, doubled per stride-2 layer.
        n_layers: stride-2 layers at most (6 at 128x128 in the paper); fewer for small images, the map
            never below 4x4 (8x8: one).
        n_extra: stride-1 3x3 convolutions after the last stride-2 one (capacity for small images).
    """

    def __init__(
        self, image_shape: Sequence[int], num_domains: int, width: int = 64, n_layers: int = 6, n_extra: int = 1
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        n = max(1, num_halvings(image_shape, n_layers))
        layers: list[nn.Module] = []
        c_in, c_out = c, width
        for i in range(n):
            c_out = width * 2**i
            layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.LeakyReLU(0.01)]
            c_in = c_out
        for _ in range(n_extra):
            layers += [nn.Conv2d(c_in, c_in, 3, padding=1), nn.LeakyReLU(0.01)]
        self.trunk = nn.Sequential(*layers)
        size = (h // 2**n, w // 2**n)
        self.src = nn.Conv2d(c_in, 1, 3, padding=1, bias=False)
        self.cls = nn.Conv2d(c_in, num_domains, size, bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)  # (B, width * 2^(n-1), H / 2^n, W / 2^n)
        return self.src(h), self.cls(h).flatten(1)  # (B, 1, h, w), (B, K)


@register_model("stargan", tags=("adversarial", "translator"))
class StarGAN(GenerativeModule):
    """StarGAN; see the module docstring. ``translate(x, target_domain)`` maps images in [0, 1] into a
    domain given by index, name, or a ``(n,)`` tensor of indices.

    Args:
        image_shape: ``(C, H, W)``, H and W multiples of 4, at least 8; from the datamodule.
        domains: the domain names, in the order of the datamodule's indices (its ``domain_names``).
        width_g: generator stem channels (64 in the paper).
        n_blocks: generator residual blocks (6 in the paper).
        g_downsamplings: generator halvings, at most (2 in the paper).
        g_stem_kernel: generator first/last convolution size (7 in the paper).
        width_d: discriminator first-layer channels (64 in the paper).
        n_layers_d: stride-2 discriminator layers, at most (6 at 128x128); capped for small images.
        n_extra_d: stride-1 3x3 discriminator layers after them.
        norm: generator normalisation, ``instance`` (the paper's) | ``batch`` | ``none``.
        lambda_cls: weight of both domain-classification losses.
        lambda_rec: weight of the reconstruction loss.
        lambda_gp: weight of the gradient penalty.
        lambda_id: weight of ``|G(x, c) - x|`` on examples drawn with target = source (0: the paper's).
        n_critic: discriminator steps per generator step.
        lr_g: Adam learning rate of the generator.
        lr_d: Adam learning rate of the discriminator.
        betas: Adam's ``(beta1, beta2)`` of both.
        lr_constant_epochs: epochs at the full learning rate.
        lr_decay_epochs: epochs over which the learning rates then fall linearly to 0 (0: constant).
        accumulate: batches per optimizer step (gradient accumulation, :mod:`genlight.nn.accumulate`; 1 = none).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {
        "width_g": 4,
        "n_blocks": 1,
        "width_d": 4,
        "n_critic": 1,
        "lr_constant_epochs": 1,
        "lr_decay_epochs": 2,
    }
    smoke_data: ClassVar[str] = "digit_domains"
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("domains",)
    ddp_find_unused_parameters: ClassVar[bool] = True  # G-only / D-only backwards leave the other net without gradients
    ema_decay: ClassVar[float] = 0.999
    ema_target: ClassVar[str | None] = "generator"
    # torch.compile (genlight.callbacks.Compile): the generator only; the gradient penalty differentiates the
    # discriminator twice, and AOT autograd (inductor, aot_eager) does not support double backward
    compile_modules: ClassVar[tuple[str, ...] | None] = ("generator",)
    monitor: ClassVar[str | None] = "val/l1_true"
    monitor_mode: ClassVar[str] = "min"
    num_domains: int
    domain_names: tuple[str, ...]

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        domains: Sequence[str] = ("plain", "thick", "thin", "inverted"),
        width_g: Size = 64,
        n_blocks: DepthOrZero = 6,
        g_downsamplings: DepthOrZero = 2,
        g_stem_kernel: KernelSize = 7,
        width_d: Size = 64,
        n_layers_d: Depth = 6,
        n_extra_d: DepthOrZero = 1,
        norm: ImageNorm = "instance",
        lambda_cls: NonNegativeFloat = 1.0,
        lambda_rec: NonNegativeFloat = 10.0,
        lambda_gp: NonNegativeFloat = 10.0,
        lambda_id: NonNegativeFloat = 0.0,
        n_critic: PositiveInt = 5,
        lr_g: PositiveFloat = 1e-4,
        lr_d: PositiveFloat = 1e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        lr_constant_epochs: NonNegativeInt = 100,
        lr_decay_epochs: NonNegativeInt = 0,
        accumulate: PositiveInt = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.accumulation = AccumulationWindow(int(accumulate))
        self.automatic_optimization = False
        name = type(self).__name__
        shape = check_image_shape(image_shape, name, multiple_of=4, min_size=8)
        self.domain_names = tuple(str(d) for d in domains)
        if len(self.domain_names) < 2 or len(set(self.domain_names)) != len(self.domain_names):
            raise ValueError(f"{name}: domains must be at least two distinct names, got {list(self.domain_names)}")
        self.num_domains = len(self.domain_names)
        self.generator = DomainGenerator(
            shape,
            self.num_domains,
            width_g,
            n_blocks,
            max_downsamplings=g_downsamplings,
            stem_kernel=g_stem_kernel,
            norm=norm,
        )
        self.discriminator = DomainDiscriminator(shape, self.num_domains, width_d, n_layers_d, n_extra_d)

    def setup(self, stage: str) -> None:
        """Refuse a datamodule whose domains are not the model's (names and order)."""
        dm = getattr(attached_trainer(self), "datamodule", None)
        names = getattr(dm, "domain_names", None)
        if names is not None and tuple(names) != self.domain_names:
            raise IncompatibleDataError(
                f"stargan was built for domains {list(self.domain_names)} but {type(dm).__name__} gives "
                f"{list(names)}; set --model.domains to the data's list (same order)"
            )

    # ------------------------------------------------------------------ translation
    def domain_index(self, target_domain: int | str | Tensor, n: int) -> Tensor:
        """``(n,)`` domain indices from an index, a name or a tensor of indices; ``ValueError`` if out of range."""
        if isinstance(target_domain, str):
            if target_domain not in self.domain_names:
                raise ValueError(
                    f"unknown domain {target_domain!r}; this model's domains: {', '.join(self.domain_names)}"
                )
            target_domain = self.domain_names.index(target_domain)
        t = torch.as_tensor(target_domain, device=self.device).long()
        t = t.expand(n) if t.dim() == 0 else t
        if t.shape != (n,):
            raise ValueError(f"target_domain must be one index or one per image ({n}), got shape {tuple(t.shape)}")
        if bool(((t < 0) | (t >= self.num_domains)).any()):
            raise ValueError(f"target_domain must be in [0, {self.num_domains}) ({', '.join(self.domain_names)})")
        return t

    def translate(self, x: Tensor, target_domain: int | str | Tensor) -> Tensor:
        """``x`` (images in [0, 1], any domain) in ``target_domain``, in [0, 1]. Runs with gradients if
        they are on (wrap in ``torch.no_grad()`` to infer)."""
        t = self.domain_index(target_domain, len(x))
        return (self.generator(x * 2.0 - 1.0, t) + 1.0) / 2.0

    # ------------------------------------------------------------------ losses
    def critic(self, x: Tensor) -> Tensor:
        """``D_src(x)`` averaged over patches: one critic value per example."""
        return self.discriminator(x)[0].flatten(1).mean(1)

    def discriminator_terms(self, real: Tensor, source: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Named terms of ``L_D`` (``fake`` detached); ``d_cls`` reads D's classifier on the REAL images only."""
        hp = self.hparams
        src_real, cls_real = self.discriminator(real)
        src_fake, _ = self.discriminator(fake)  # the classifier head's output on fakes is not used
        terms = {
            "d_adv": discriminator_loss("wasserstein_gp", src_real.flatten(1).mean(1), src_fake.flatten(1).mean(1)),
            "d_cls": hp.lambda_cls * F.cross_entropy(cls_real.float(), source),
        }
        if hp.lambda_gp > 0:
            terms["gp"] = hp.lambda_gp * gradient_penalty(self.critic, real, fake)
        return terms

    def generator_terms(self, real: Tensor, source: Tensor, target: Tensor, fake: Tensor) -> dict[str, Tensor]:
        """Named terms of ``L_G`` for ``fake = G(real, target)``; the reconstruction goes back with ``source``."""
        hp = self.hparams
        src_fake, cls_fake = self.discriminator(fake)
        back = self.generator(fake, source)  # G(G(x, c'), c): the ORIGINAL domain
        terms = {
            "g_adv": generator_loss("wasserstein_gp", src_fake.flatten(1).mean(1)),
            "g_cls": hp.lambda_cls * F.cross_entropy(cls_fake.float(), target),
            "rec": hp.lambda_rec * (back - real).abs().mean(),
        }
        if hp.lambda_id > 0:
            same = (target == source).to(real.dtype)  # (B,)
            change = (fake - real).abs().flatten(1).mean(1)
            terms["id"] = hp.lambda_id * (change * same).sum() / same.sum().clamp(min=1.0)
        return terms

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        window = self.accumulation
        x, source = batch[0], batch[2].long()  # (x, y, domain): the digit class y is not used
        real = x * 2.0 - 1.0
        n = len(real)
        target = torch.randint(self.num_domains, (n,), device=real.device)  # may equal the source (p = 1/N)
        fake = self.generator(real, target)  # one G forward serves both steps (without accumulation)
        d_terms = self.discriminator_terms(real, source, fake.detach())
        d_loss = sum(d_terms.values())
        self.manual_step(opt_d, d_loss, scale=window.scale, zero_grad=window.begins, step=window.ends)
        logs: dict[str, Tensor] = {"d_loss": d_loss, **d_terms}
        if (window.index + 1) % self.hparams.n_critic == 0:  # built with the discriminator frozen
            if window.k == 1:
                g_terms = self.manual_step(opt_g, lambda: self.generator_terms(real, source, target, fake))
            else:  # G's step goes through the updated D: at the window's end, over the carried batches
                window.carry(real, source, target)
                g_terms = window.replay(self.manual_step, opt_g, self.replayed_generator_terms) if window.ends else {}
            if g_terms:
                logs.update({"g_loss": sum(g_terms.values()), **g_terms})
        window.advance()
        self.log_train(**logs, batch_size=n, prog_bar=("d_loss", "g_loss"))

    def replayed_generator_terms(self, real: Tensor, source: Tensor, target: Tensor) -> dict[str, Tensor]:
        """G's terms for a carried batch (accumulation): ``G(x, c')`` again, then :meth:`generator_terms`."""
        return self.generator_terms(real, source, target, self.generator(real, target))

    # ------------------------------------------------------------------ scores against the true translation
    def true_errors(self, x: Tensor, every: Tensor) -> Tensor:
        """``(n, N)``: mean ``|translate(x, t) - every[:, t]|`` per example and target domain ``t``."""
        return torch.stack(
            [(self.translate(x, t).float() - every[:, t]).abs().flatten(1).mean(1) for t in range(self.num_domains)], 1
        )

    def _score(self, stage: str, batch: tuple[Tensor, ...]) -> None:
        x, source = batch[0], batch[2].long()
        if len(batch) < 4:
            raise IncompatibleDataError(
                f"stargan scores {stage} translations against every domain's copy (x, y, domain, every); "
                "use the digit_domains datamodule"
            )
        errors = self.true_errors(x, batch[3])  # (n, N)
        own = errors.gather(1, source[:, None]).squeeze(1)
        other = (errors.sum(1) - own) / (self.num_domains - 1)
        n = len(x)
        self.log(f"{stage}/l1_true", other.mean(), prog_bar=stage == "val", sync_dist=True, batch_size=n)
        self.log(f"{stage}/l1_self", own.mean(), sync_dist=True, batch_size=n)

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        self._score("val", batch)

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
        """``test/l1_true`` and ``test/l1_self`` on the test split (as in validation)."""
        self._score("test", batch)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        """``[Adam(G), Adam(D)]``, with the linear-decay schedulers when ``lr_decay_epochs > 0``."""
        hp = self.hparams
        betas = (float(hp.betas[0]), float(hp.betas[1]))
        optimizers = [
            torch.optim.Adam(self.generator.parameters(), lr=hp.lr_g, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d, betas=betas),
        ]
        if hp.lr_decay_epochs <= 0:
            return optimizers
        rule = partial(linear_decay, constant_epochs=int(hp.lr_constant_epochs), decay_epochs=int(hp.lr_decay_epochs))
        return optimizers, [torch.optim.lr_scheduler.LambdaLR(opt, rule) for opt in optimizers]

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
