"""What the generator/discriminator families share (``gan``, ``dcgan``, ``wgan_gp``, ``cgan``, ``infogan``):
manual optimisation of a generator ``G`` and a discriminator ``D`` in the style of Lightning's GAN example.

One ``training_step`` = one batch:

1. one discriminator step on the real batch and a detached fake batch, with the family's loss
   (:func:`~genlight.nn.adversarial.discriminator_loss`) plus ``gp_weight`` times the gradient penalty
   when ``gp_weight > 0``;
2. a generator step on the same fakes, every ``n_critic``-th batch (``(batch_idx + 1) % n_critic == 0``),
   so each critic step sees a fresh real batch, as in Gulrajani et al.'s ``CRITIC_ITERS`` loop.

``trainer.global_step`` counts optimizer steps: it moves ``1 + 1/n_critic`` times per batch (twice with
``n_critic = 1``); budget runs with ``max_epochs`` or ``max_time``. The generator is averaged by the
shared :class:`~genlight.callbacks.EMA` (``ema_target = "generator"``); samples, grids and FID use it.

Options for small data sets (every family built on this base takes them):

* ``augment``: ``diffaugment`` (Zhao et al. 2020) or ``ada`` (Karras et al. 2020), the operations of
  ``augment_policy``, on real and generated images alike wherever D sees them, in both players' steps
  (:mod:`genlight.nn.augment`). ADA's probability ``p`` follows ``r_t = E[sign(D(x_real))]`` toward
  ``ada_target`` and is logged as ``train/ada_p`` (with ``train/ada_rt``).
* ``lecam_weight``: LeCam regularisation (Tseng et al. 2021); ``r1_gamma``: the R1 penalty (Mescheder
  et al. 2018) on the reals D sees, every ``r1_every`` D steps and multiplied by ``r1_every`` (lazy
  regularisation) (:mod:`genlight.nn.gan_regularizers`).
* ``accumulate: k``: gradient accumulation (:mod:`genlight.nn.accumulate`): losses scaled by ``1/k``,
  each optimizer steps once every ``k`` batches; ``n_critic``, R1's interval, ADA's and LeCam's
  updates, the EMA (``trainer.global_step``) and the ProGAN schedule count optimizer steps. D's
  gradients accumulate as batches arrive; the generator's step, which goes through the updated D as
  without accumulation, runs at the window's end over the latent codes the window carried (one more
  generator forward per batch, none of its activations kept). With batch norm (DCGAN's default ``d_norm``)
  or minibatch statistics the step is not that of one large batch. Under DDP every batch's backward
  all-reduces its gradients (no ``no_sync`` inside a window): correct, not the cheapest.

Subclasses build ``self.generator`` (``G(z[, y]) -> [-1, 1]``) and ``self.discriminator``
(``D(x[, y]) -> (B,)`` logits) in ``__init__`` and may extend :meth:`discriminator_terms` /
:meth:`generator_terms` (each returns named loss terms; their sum is minimised), :meth:`sample_latent`
and :meth:`generator_parameters` / :meth:`discriminator_parameters` (InfoGAN's Q head).

Under DDP a generator-only backward leaves the discriminator without gradients (and the other way
round), so ``ddp_find_unused_parameters = True`` (see :class:`~genlight.module.GenerativeModule`); the
discriminator runs once per ``training_step`` forward of the DDP wrapper, so buffer synchronisation (batch-norm statistics, spectral-norm vectors) happens once per step. Under
``16-mixed`` ``manual_backward`` scales the loss and the optimizer step unscales it; the gradient
penalty runs in fp32 (``autograd.grad`` bypasses the scaler).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from genlight._compat import attached_trainer
from genlight.errors import ConfigError
from genlight.module import GenerativeModule
from genlight.nn.accumulate import AccumulationWindow
from genlight.nn.adversarial import AdversarialLoss, check_loss, discriminator_loss, generator_loss, gradient_penalty
from genlight.nn.augment import (
    DEFAULT_POLICY,
    AdaptiveProbability,
    Augmentation,
    ada_augment,
    diff_augment,
    parse_policy,
)
from genlight.nn.gan_regularizers import LeCamAnchors, lecam_penalty, r1_penalty
from genlight.ranges import (
    Fraction,
    NonNegativeFloat,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    Size,
    check_arguments,
)
from genlight.types import class_count

__all__ = ["AdversarialModule"]

#: where checkpoints keep ADA's probability and the LeCam anchors
TRICKS_KEY = "genlight_adversarial"


class AdversarialModule(GenerativeModule):
    """Base of the G/D families; see the module docstring.

    Args:
        image_shape: ``(C, H, W)`` images or ``(d,)`` points; from the datamodule.
        latent_dim: size of ``z ~ N(0, I)`` (1 to 4096).
        loss: ``non_saturating`` | ``minimax`` | ``hinge`` | ``lsgan`` | ``wasserstein_gp``.
        n_critic: discriminator steps per generator step (>= 1).
        gp_weight: gradient-penalty weight (>= 0; > 0 adds the penalty to any loss).
        lr_g: Adam learning rate of the generator (> 0).
        lr_d: Adam learning rate of the discriminator (> 0).
        betas: Adam's ``(beta1, beta2)`` of both, each in [0, 1).
        augment: ``none`` | ``diffaugment`` (every operation on every image) | ``ada`` (each with an
            adaptive probability p); images only.
        augment_policy: comma-separated operations of ``color``, ``translation``, ``cutout``, ``xflip``,
            ``rot90`` (flips and quarter turns change digits: not in the default).
        ada_target: ADA's target for ``r_t = E[sign(D(x_real))]`` in (0, 1) (the paper's 0.6).
        lecam_weight: weight of the LeCam regulariser (>= 0; 0 = off; Tseng et al. use 0.3 on 10% CIFAR-10).
        r1_gamma: ``γ`` of the R1 penalty ``γ/2 E||∇D(x_real)||²`` (>= 0; 0 = off).
        r1_every: apply R1 every this many D steps, multiplied by it (lazy regularisation; 1 = every step).
        accumulate: batches per optimizer step (gradient accumulation; 1 = none).

    The base saves the hyper-parameters of the whole ``__init__`` chain (Lightning's
    ``save_hyperparameters`` reads every ``__init__`` that led here) and checks every numeric argument
    of the chain against the range its type declares (:func:`genlight.ranges.check_arguments`), so a
    family or a user's subclass passes its arguments to ``super().__init__`` and calls neither
    ``save_hyperparameters`` nor ``check_arguments`` itself. A subclass may declare only some of the
    parent's arguments: the parent's defaults fill the rest. Read them from the attributes the base
    sets (``self.latent_dim``, ``self.lr_g``, ...), not from ``self.hparams``.
    """

    ema_decay: ClassVar[float] = 0.999
    ema_target: ClassVar[str | None] = "generator"
    monitor: ClassVar[str | None] = ""  # no validation figure of its own; FID callbacks may be monitored
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images", "points")
    ddp_find_unused_parameters: ClassVar[bool] = True
    #: arguments under which every loss term is a mean of per-example terms (no in-batch negatives), so that
    #: ``accumulate: k`` over k batches steps as one batch of k·b would (the accumulation test builds with them)
    per_example_kwargs: ClassVar[dict[str, Any]] = {}

    generator: nn.Module
    discriminator: nn.Module

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        latent_dim: Size = 64,
        loss: AdversarialLoss = "non_saturating",
        n_critic: PositiveInt = 1,
        gp_weight: NonNegativeFloat = 0.0,
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
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.automatic_optimization = False
        check_loss(loss)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.latent_dim, self.adversarial_loss, self.n_critic = int(latent_dim), loss, int(n_critic)
        self.gp_weight, self.lr_g, self.lr_d = float(gp_weight), float(lr_g), float(lr_d)
        self.betas = (float(betas[0]), float(betas[1]))
        self.augment = str(augment)
        try:
            self.augment_policy = parse_policy(augment_policy)
        except ValueError as error:
            raise ConfigError(f"{type(self).__name__}: {error}") from None
        if self.augment != "none" and len(self.image_shape) != 3:
            raise ConfigError(
                f"{type(self).__name__}: augment={self.augment} augments images, but the data are points of shape "
                f"{self.image_shape}; set --model.augment none"
            )
        if self.augment == "ada" and "rot90" in self.augment_policy and self.image_shape[1] != self.image_shape[2]:
            raise ConfigError(f"{type(self).__name__}: rot90 needs square images; leave it out of augment_policy")
        self.lecam_weight, self.r1_gamma, self.r1_every = float(lecam_weight), float(r1_gamma), int(r1_every)
        #: ADA's probability p (its state is checkpointed with the accumulation window's)
        self.ada = AdaptiveProbability(target=float(ada_target))
        self.lecam_anchors = LeCamAnchors()
        self.accumulation = AccumulationWindow(int(accumulate))

    # ------------------------------------------------------------------ sampling
    def sample_latent(self, n: int) -> Tensor:
        """``z ~ N(0, I)``, ``(n, latent_dim)``."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def generate(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """``G(z[, y])`` in the generator's range [-1, 1]."""
        return self.generator(z, y) if class_count(self) else self.generator(z)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """Images in [0, 1] from latent codes (points are returned as they are)."""
        out = self.generate(z, y)
        return (out + 1.0) / 2.0 if len(self.image_shape) == 3 else out

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        if class_count(self) and y is None:
            y = torch.randint(class_count(self), (n,), device=self.device)
        return self.decode(self.sample_latent(n), y.to(self.device) if y is not None else None)

    # ------------------------------------------------------------------ losses
    def to_model_range(self, x: Tensor) -> Tensor:
        """Data in [0, 1] to the generator's range [-1, 1] (2-D points are used as they are)."""
        return x * 2.0 - 1.0 if x.dim() == 4 else x

    def critic(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``D(x[, y])``, one logit per example."""
        return self.discriminator(x, y) if class_count(self) else self.discriminator(x)

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the discriminator's penultimate features (the input of its final linear
        map) of images ``x`` in [0, 1], flattened, ``(B, F)``. Label-free: a class-conditional (projection)
        discriminator's label term comes after them."""
        if not callable(getattr(self.discriminator, "features", None)):
            raise NotImplementedError(
                f"{type(self).__name__}'s discriminator has no features(x): give it one to use features"
            )
        return self.discriminator.features(self.to_model_range(x)).flatten(1)

    @torch.no_grad()
    def discriminator_score(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """``(B,)`` outlier score of data ``x`` in [0, 1]: minus the discriminator's realness logit
        ``-D(x)`` (higher = less like the training data). A conditional critic is scored at the most
        real-looking class, ``-max_y D(x, y)``, unless labels ``y`` are given."""
        real = self.to_model_range(x)
        if not class_count(self):
            return -self.critic(real).flatten()
        if y is not None:
            return -self.critic(real, y).flatten()
        labels = [torch.full((len(x),), k, dtype=torch.long, device=x.device) for k in range(class_count(self))]
        return -torch.stack([self.critic(real, k).flatten() for k in labels], 1).amax(1)

    def fake_labels(self, n: int) -> Tensor | None:
        """Labels for generated examples: drawn from the uniform class prior (``None`` if unconditional)."""
        return torch.randint(class_count(self), (n,), device=self.device) if class_count(self) else None

    def augment_images(self, x: Tensor) -> Tensor:
        """What D sees of images ``x`` in [-1, 1]: ``augment``'s operations (each image its own draw), or
        ``x`` itself. Applied to reals and fakes in both players' steps."""
        if self.augment == "diffaugment":
            return diff_augment(x, self.augment_policy)
        if self.augment == "ada":
            return ada_augment(x, self.augment_policy, self.ada.p)
        return x

    def discriminator_terms(
        self, real: Tensor, y: Tensor | None, fake: Tensor, fake_y: Tensor | None, z: Tensor
    ) -> dict[str, Tensor]:
        """Named terms of the discriminator's loss (``fake`` is detached) on the augmented images."""
        real, fake = self.augment_images(real), self.augment_images(fake)
        d_real, d_fake = self.critic(real, y), self.critic(fake, fake_y)
        terms = {"d_adv": discriminator_loss(self.adversarial_loss, d_real, d_fake)}
        args = (y,) if class_count(self) else ()
        if self.gp_weight > 0:
            terms["gp"] = self.gp_weight * gradient_penalty(self.critic, real, fake, *args)
        terms.update(self.regularizer_terms(real, d_real, d_fake, lambda x: self.critic(x, *args)))
        return terms

    def regularizer_terms(
        self, real: Tensor, d_real: Tensor, d_fake: Tensor, critic: Callable[[Tensor], Tensor]
    ) -> dict[str, Tensor]:
        """LeCam's and R1's terms of D's loss, from D's outputs ``d_real`` on the (augmented) reals
        ``real`` it saw and ``d_fake`` on the fakes; ``critic(x)`` is D on images (with their labels).
        Records D's outputs for ADA and the LeCam anchors, which move when the D step ends."""
        terms: dict[str, Tensor] = {}
        window = self.accumulation
        if self.lecam_weight > 0:
            terms["lecam"] = self.lecam_weight * lecam_penalty(
                d_real, d_fake, self.lecam_anchors.real, self.lecam_anchors.fake
            )
        if self.r1_gamma > 0 and window.index % self.r1_every == 0:
            terms["r1"] = (0.5 * self.r1_gamma * self.r1_every) * r1_penalty(critic, real)
        if self.augment == "ada" or self.lecam_weight > 0:
            r, f = d_real.detach().float().flatten(), d_fake.detach().float().flatten()
            stats = torch.stack([r.sign().sum(), r.sum(), f.sum(), torch.tensor(float(len(r)), device=r.device)])
            window.add(**dict(zip(("real_sign", "real", "fake", "count"), stats.tolist(), strict=True)))
        return terms

    def end_discriminator_step(self) -> dict[str, float]:
        """At the D step (the window's end): move ADA's ``p`` and the LeCam anchors with D's outputs over
        the window (summed over processes under DDP). Returns what to log."""
        sums = self.accumulation.sums
        if "count" not in sums:
            return {}
        stats = torch.tensor([sums["real_sign"], sums["real"], sums["fake"], sums["count"]], dtype=torch.float64)
        trainer = attached_trainer(self)
        if trainer is not None and trainer.world_size > 1:
            stats = trainer.strategy.reduce(stats.to(self.device), reduce_op="sum").cpu()
        real_sign, real, fake, count = stats.tolist()
        logs = {}
        if self.lecam_weight > 0:
            self.lecam_anchors.update(real / count, fake / count)
        if self.augment == "ada":
            self.ada.observe(real_sign, count)
            logs = {"ada_p": self.ada.p, "ada_rt": real_sign / count}
        return logs

    def generator_terms(self, fake: Tensor, fake_y: Tensor | None, z: Tensor) -> dict[str, Tensor]:
        """Named terms of the generator's loss (through D on the augmented fakes)."""
        return {"g_adv": generator_loss(self.adversarial_loss, self.critic(self.augment_images(fake), fake_y))}

    def replayed_generator_terms(self, z: Tensor, fake_y: Tensor | None) -> dict[str, Tensor]:
        """The generator's terms for carried codes (accumulation): ``G(z[, y])`` again, then :meth:`generator_terms`."""
        return self.generator_terms(self.generate(z, fake_y), fake_y, z)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Nothing to score: a GAN has no validation figure of its own. Defined so that Lightning runs the
        validation loop, at whose end FID callbacks and sample grids evaluate (without it Lightning skips
        the loop and they never fire); the loop reads the small validation split only."""

    # ------------------------------------------------------------------ optimisation
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        window = self.accumulation
        x = batch[0]
        real = self.to_model_range(x)
        y = batch[1] if class_count(self) else None
        n = real.shape[0]
        z = self.sample_latent(n)
        fake_y = self.fake_labels(n)
        fake = self.generate(z, fake_y)  # one G forward serves both steps (without accumulation)
        d_terms = self.discriminator_terms(real, y, fake.detach(), fake_y, z)
        d_loss = sum(d_terms.values())
        self.manual_step(opt_d, d_loss, scale=window.scale, zero_grad=window.begins, step=window.ends)
        logs: dict[str, Tensor | float] = {"d_loss": d_loss, **d_terms}
        if window.ends:
            logs.update(self.end_discriminator_step())
        if (window.index + 1) % self.n_critic == 0:  # built with D frozen: no gradient reaches D
            g_terms = self.generator_step(opt_g, lambda: self.generator_terms(fake, fake_y, z), z, fake_y)
            if g_terms:
                logs.update({"g_loss": sum(g_terms.values()), **g_terms})
        window.advance()
        self.log_train(**logs, batch_size=n, prog_bar=("d_loss", "g_loss"))

    def generator_step(
        self, opt_g: torch.optim.Optimizer, terms: Callable[[], dict[str, Tensor]], *carried: Tensor | None
    ) -> dict[str, Tensor]:
        """G's step: at once without accumulation (``terms()`` on this batch's fakes); with it, carry this
        batch's ``carried`` inputs of :meth:`replayed_generator_terms` and step over them at the window's end.
        Returns the terms to log (none before the window's end)."""
        window = self.accumulation
        if window.k == 1:
            return self.manual_step(opt_g, terms)
        window.carry(*carried)
        return window.replay(self.manual_step, opt_g, self.replayed_generator_terms) if window.ends else {}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Keep ADA's ``p`` and the LeCam anchors (training state outside the weights) for an exact resume."""
        checkpoint[TRICKS_KEY] = {"ada": self.ada.state_dict(), "lecam": self.lecam_anchors.state_dict()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get(TRICKS_KEY)
        if state:
            self.ada.load_state_dict(state["ada"])
            self.lecam_anchors.load_state_dict(state["lecam"])

    def generator_parameters(self) -> Iterable[nn.Parameter]:
        return self.generator.parameters()

    def discriminator_parameters(self) -> Iterable[nn.Parameter]:
        return self.discriminator.parameters()

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """``[Adam(G), Adam(D)]`` with ``lr_g``, ``lr_d`` and ``betas`` (the generator first)."""
        return [
            torch.optim.Adam(self.generator_parameters(), lr=self.lr_g, betas=self.betas),
            torch.optim.Adam(self.discriminator_parameters(), lr=self.lr_d, betas=self.betas),
        ]
