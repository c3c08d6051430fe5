"""``cyclegan``: unpaired image-to-image translation (Zhu et al. 2017, "Unpaired Image-to-Image
Translation using Cycle-Consistent Adversarial Networks"), after junyanz/pytorch-CycleGAN-and-pix2pix
(``models/cycle_gan_model.py``).

Two ResNet generators ``G_a2b``, ``G_b2a`` and two PatchGAN discriminators ``D_a`` (judges domain-A
images) and ``D_b`` (domain B), :mod:`genlight.nn.image_to_image`, initialised ``N(0, 0.02)``. Images
are mapped from [0, 1] to [-1, 1] inside the model. One ``training_step`` = one batch ``(x_a, x_b)``:

1. generator step, discriminators frozen (``toggled_optimizer``), paper eq. 3 plus the identity term
   (§5.2): ``L_G = L_adv(D_b(G_a2b(a))) + L_adv(D_a(G_b2a(b)))
   + λ_cycle (|G_b2a(G_a2b(a)) - a|_1 + |G_a2b(G_b2a(b)) - b|_1)
   + λ_identity λ_cycle (|G_a2b(b) - b|_1 + |G_b2a(a) - a|_1)``, with the LSGAN loss (eq. 2 with a
   least-squares objective, Mao et al. 2017) ``(D(G(x)) - 1)²`` (the reference's MSE against 1);
2. discriminator step: ``D_b`` on real ``b`` and a fake drawn from the pool of past fakes
   (:class:`~genlight.nn.adversarial.ImagePool`, 50 images, saved in checkpoints), likewise ``D_a``;
   each D loss is ``½ (D(real) - 1)² + ½ D(fake)²``: the reference's MSE sum, halved.

``λ_cycle = 10``, ``λ_identity = 0.5``, Adam(2e-4, β 0.5/0.999), one optimizer for both generators and
one for both discriminators; the learning rate is held for ``lr_constant_epochs`` epochs, then decays
linearly towards 0 over ``lr_decay_epochs`` (the reference's ``linear`` policy, stepped once per epoch here,
since manual optimisation leaves scheduler stepping to the family). ``trainer.global_step`` moves twice
per batch (two optimizer steps). The paper trains with batch size 1 and instance norm.

The identity term assumes the domains share their colours (paintings and photos, §5.2); where the map
changes them (digits -> inverted digits) it works against the translation, and 8x8 images want a
full-resolution generator with a 3x3 stem: the digits recipe (``examples/digits/cyclegan.yaml``) sets
``lambda_identity=0``, ``g_downsamplings=0``, ``g_stem_kernel=3``; ``benchmarks/results/cyclegan_digits.md``.

Validation logs ``val/cycle`` (mean L1 round-trip error of both directions, in [0, 1] units) and
``val/identity``; neither selects checkpoints (identity maps have zero cycle error), so ``monitor`` is
empty and only ``last.ckpt`` is kept. No EMA by default (the reference has none); ``ema_target`` names
the ``generators`` for ``--ema.decay``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn.accumulate import AccumulationWindow
from genlight.nn.adversarial import (
    AdversarialLoss,
    ImagePool,
    check_loss,
    dcgan_init_,
    discriminator_loss,
    generator_loss,
)
from genlight.nn.image_to_image import ImageNorm, PatchDiscriminator, ResnetGenerator
from genlight.nn.schedules import linear_decay
from genlight.ranges import (
    Buffer,
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

__all__ = ["CycleGAN", "DIRECTIONS", "linear_decay"]

DIRECTIONS = ("a2b", "b2a")


@register_model("cyclegan", tags=("adversarial", "translator"))
class CycleGAN(GenerativeModule):
    """CycleGAN; see the module docstring. ``translate(x, "a2b" | "b2a")`` maps images in [0, 1].

    Args:
        image_shape: ``(C, H, W)`` of both domains, H and W multiples of 4, at least 8; from the datamodule.
        width_g: generator stem channels (64 in the paper).
        n_blocks: generator residual blocks (9 at 256x256, 6 at 128x128 in the paper).
        g_downsamplings: generator halvings, at most (2 in the paper; fewer where the map would go below 4x4).
        g_stem_kernel: generator first/last convolution size (7 in the paper; 3 keeps 8x8 translations local).
        width_d: discriminator first-layer channels (64 in the paper).
        n_layers_d: stride-2 discriminator layers (3: 70x70 patches); capped for small images.
        norm: ``instance`` (the paper's) | ``batch`` | ``none``.
        loss: adversarial loss, ``lsgan`` (the paper's) | ``non_saturating`` | ``hinge``.
        lambda_cycle: weight of each direction's cycle loss.
        lambda_identity: identity-loss weight, relative to ``lambda_cycle`` (0 turns it off).
        pool_size: images in each pool of past fakes (0: the discriminators see only current fakes).
        lr: Adam learning rate of both optimizers.
        betas: Adam's ``(beta1, beta2)`` of both optimizers, each in [0, 1).
        lr_constant_epochs: epochs at the full learning rate.
        lr_decay_epochs: epochs over which the learning rate then falls linearly to 0 (0: constant).
        accumulate: batches per optimizer step (gradient accumulation, :mod:`genlight.nn.accumulate`; 1 = none).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {
        "width_g": 4,
        "n_blocks": 1,
        "width_d": 4,
        "lr_constant_epochs": 1,
        "lr_decay_epochs": 2,
    }
    smoke_data: ClassVar[str] = "unpaired_folders"
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("unpaired",)
    ddp_find_unused_parameters: ClassVar[bool] = (
        True  # G-only / D-only backwards leave the other nets without gradients
    )
    ema_decay: ClassVar[float] = 0.0
    ema_target: ClassVar[str | None] = "generators"
    monitor: ClassVar[str | None] = ""

    def __init__(
        self,
        image_shape: tuple[int, int, int] = (1, 8, 8),
        width_g: Size = 64,
        n_blocks: Depth = 9,
        g_downsamplings: DepthOrZero = 2,
        g_stem_kernel: KernelSize = 7,
        width_d: Size = 64,
        n_layers_d: Depth = 3,
        norm: ImageNorm = "instance",
        loss: AdversarialLoss = "lsgan",
        lambda_cycle: NonNegativeFloat = 10.0,
        lambda_identity: NonNegativeFloat = 0.5,
        pool_size: Buffer = 50,
        lr: PositiveFloat = 2e-4,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        lr_constant_epochs: NonNegativeInt = 100,
        lr_decay_epochs: NonNegativeInt = 100,
        accumulate: PositiveInt = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.accumulation = AccumulationWindow(int(accumulate))
        self.automatic_optimization = False
        name = type(self).__name__
        shape = check_image_shape(image_shape, name, multiple_of=4, min_size=8)
        if check_loss(loss) == "wasserstein_gp":
            raise ValueError(
                f"{name}: loss 'wasserstein_gp' needs a gradient penalty; use lsgan, non_saturating or hinge"
            )
        if lambda_cycle < 0 or lambda_identity < 0 or pool_size < 0:
            raise ValueError(
                f"{name}: lambda_cycle, lambda_identity and pool_size must be >= 0, got "
                f"{lambda_cycle}, {lambda_identity}, {pool_size}"
            )
        if lr_constant_epochs < 0 or lr_decay_epochs < 0:
            raise ValueError(f"{name}: lr_constant_epochs and lr_decay_epochs must be >= 0")
        self.generators = nn.ModuleDict(
            {
                d: dcgan_init_(
                    ResnetGenerator(
                        shape,
                        width_g,
                        n_blocks,
                        max_downsamplings=g_downsamplings,
                        stem_kernel=g_stem_kernel,
                        norm=norm,
                    )
                )
                for d in DIRECTIONS
            }
        )
        self.discriminators = nn.ModuleDict(
            {d: dcgan_init_(PatchDiscriminator(shape, width_d, n_layers_d, norm=norm)) for d in ("a", "b")}
        )
        self.pools = nn.ModuleDict({d: ImagePool(pool_size) for d in ("a", "b")})
        # generator_loss("lsgan") is ½(l - 1)²; the reference's G term is the MSE (l - 1)²
        self.g_adv_scale = 2.0 if loss == "lsgan" else 1.0

    # ------------------------------------------------------------------ translation
    def translate(self, x: Tensor, direction: str) -> Tensor:
        """``x`` (images in [0, 1] of domain A for ``"a2b"``, of domain B for ``"b2a"``) in the other
        domain, in [0, 1]. Runs with gradients if they are on (wrap in ``torch.no_grad()`` to infer)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be 'a2b' (domain A to B) or 'b2a' (B to A), got {direction!r}")
        return (self.generators[direction](x * 2.0 - 1.0) + 1.0) / 2.0

    # ------------------------------------------------------------------ losses
    def generator_terms(self, real_a: Tensor, real_b: Tensor, fake_a: Tensor, fake_b: Tensor) -> dict[str, Tensor]:
        """The generators' named loss terms on ``[-1, 1]`` images (their sum is minimised), given the
        fakes ``fake_a = b2a(real_b)`` and ``fake_b = a2b(real_a)``."""
        hp = self.hparams
        g_a2b, g_b2a = self.generators["a2b"], self.generators["b2a"]
        terms = {
            "g_adv": self.g_adv_scale
            * (
                generator_loss(hp.loss, self.discriminators["b"](fake_b))
                + generator_loss(hp.loss, self.discriminators["a"](fake_a))
            ),
            "cycle": hp.lambda_cycle * ((g_b2a(fake_b) - real_a).abs().mean() + (g_a2b(fake_a) - real_b).abs().mean()),
        }
        if hp.lambda_identity > 0:
            weight = hp.lambda_identity * hp.lambda_cycle
            terms["identity"] = weight * ((g_a2b(real_b) - real_b).abs().mean() + (g_b2a(real_a) - real_a).abs().mean())
        return terms

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        window = self.accumulation  # both steps accumulate as batches arrive: D's uses the fakes made before G's
        scale, begins, ends = window.scale, window.begins, window.ends
        real_a, real_b = batch[0] * 2.0 - 1.0, batch[1] * 2.0 - 1.0
        fake_b, fake_a = self.generators["a2b"](real_a), self.generators["b2a"](real_b)  # serve both steps
        g_terms = self.manual_step(
            opt_g,
            lambda: self.generator_terms(real_a, real_b, fake_a, fake_b),
            scale=scale,
            zero_grad=begins,
            step=ends,
        )  # D frozen
        g_loss = sum(g_terms.values())
        d_a = discriminator_loss(
            self.hparams.loss,
            self.discriminators["a"](real_a),
            self.discriminators["a"](self.pools["a"].query(fake_a.detach())),
        )
        d_b = discriminator_loss(
            self.hparams.loss,
            self.discriminators["b"](real_b),
            self.discriminators["b"](self.pools["b"].query(fake_b.detach())),
        )
        d_loss = d_a + d_b
        self.manual_step(
            opt_d, d_loss, scale=scale, zero_grad=begins, step=ends
        )  # the fakes are detached: the generators are not in this graph
        window.advance()
        self.log_train(
            g_loss=g_loss,
            d_loss=d_loss,
            **g_terms,
            d_a=d_a,
            d_b=d_b,
            batch_size=len(real_a),
            prog_bar=("g_loss", "d_loss"),
        )

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x_a, x_b = batch[0], batch[1]
        cycle = (self.translate(self.translate(x_a, "a2b"), "b2a") - x_a).abs().mean() + (
            self.translate(self.translate(x_b, "b2a"), "a2b") - x_b
        ).abs().mean()
        identity = (self.translate(x_b, "a2b") - x_b).abs().mean() + (self.translate(x_a, "b2a") - x_a).abs().mean()
        n = len(x_a)
        self.log("val/cycle", cycle / 2, prog_bar=True, sync_dist=True, batch_size=n)
        self.log("val/identity", identity / 2, sync_dist=True, batch_size=n)

    # ------------------------------------------------------------------ optimisation
    def configure_optimizers(self) -> Any:
        """``[Adam(generators), Adam(discriminators)]``, with the linear-decay schedulers when ``lr_decay_epochs > 0``."""
        hp = self.hparams
        optimizers = [
            torch.optim.Adam(self.generators.parameters(), lr=hp.lr, betas=tuple(hp.betas)),
            torch.optim.Adam(self.discriminators.parameters(), lr=hp.lr, betas=tuple(hp.betas)),
        ]
        if hp.lr_decay_epochs <= 0:
            return optimizers
        rule = _LinearDecay(int(hp.lr_constant_epochs), int(hp.lr_decay_epochs))
        return optimizers, [torch.optim.lr_scheduler.LambdaLR(opt, rule) for opt in optimizers]

    def on_train_epoch_end(self) -> None:
        schedulers = self.lr_schedulers()
        if schedulers is None:
            return
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()


class _LinearDecay:
    """Picklable ``epoch -> LR factor`` of :func:`linear_decay` (LambdaLR keeps it in its state_dict)."""

    def __init__(self, constant_epochs: int, decay_epochs: int) -> None:
        self.constant_epochs, self.decay_epochs = constant_epochs, decay_epochs

    def __call__(self, epoch: int) -> float:
        return linear_decay(epoch, self.constant_epochs, self.decay_epochs)
