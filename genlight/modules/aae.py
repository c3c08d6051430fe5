"""``aae``: adversarial autoencoder (Makhzani et al. 2016, "Adversarial Autoencoders").

An autoencoder whose aggregated posterior ``q(z) = E_x q(z|x)`` is matched to a fixed prior ``p(z)``
(:mod:`genlight.nn.priors`, kind ``sampler``: ``gaussian``, ``mixture_of_gaussians``, ``swiss_roll``)
by a GAN on the codes: an MLP discriminator ``D`` tells prior draws from codes, the encoder is its generator.
After training, ``decode(z)``, ``z ~ p(z)``, generates.

One ``training_step`` = one batch, in the paper's two phases (§2):

1. *reconstruction*: the autoencoder optimiser (encoder + decoder) minimises ``-log p(x | dec(z))``,
   ``z = enc(x)``, summed over pixels (nats per image, a discrete likelihood of
   :func:`~genlight.nn.likelihoods.make_likelihood`);
2. *regularisation*: ``D`` takes one step on prior draws ("real") against the detached codes
   ``z.detach()`` ("fake"), then the encoder takes one step to fool ``D`` (the non-saturating loss on
   logits by default, :func:`~genlight.nn.adversarial.generator_loss`).

So ``trainer.global_step`` moves three times per batch (three ``optimizer.step()``).

The scale trap (pythae, eriklindernoren mix the terms with a weight): the reconstruction is summed per
image (tens to hundreds of nats) while the adversarial BCE is a mean (~0.7). Here each phase has its
own Adam optimiser, whose steps do not depend on a loss's scale, so no mixing weight is needed; the
encoder's adversarial step size is ``lr_g``. ``train/recon`` and ``train/d_loss`` / ``train/g_loss``
are logged separately; validation logs ``val/loss`` (= ``val/recon``, nats per image, which selects
checkpoints) and ``val/mmd``, a Gaussian-kernel MMD between the batch's codes and as many prior draws.
An AAE has no tractable likelihood: nothing here is an ELBO or a bound on ``log p(x)``.

A freshly initialised encoder maps every image to nearly the same code (spread ~0.003), and the first
adversarial steps then push that one clump around (mode collapse in code space). ``code_norm`` (on by
default) batch-normalises the code with its affine part initialised to the prior's per-dimension mean
and std, so ``D`` sees codes with the prior's first two moments from the first step (digits, 60
epochs: FID 4.8 vs 7.2 without, ``benchmarks/results/tuning.md``).

Label-supervised regularisation (``supervised=True``, Makhzani §2.3; labelled data): the prior has one
component per class; in the ``D`` step the prior draw for example ``i`` comes from the component of
its class ``y_i``, and ``D`` sees the one-hot label beside the code (for real and fake alike), so the
encoder must put class ``k`` on component ``k``. The decoder does not see labels; ``sample(n, y=k)``
decodes draws of component ``k``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn import ConvDecoder, ConvEncoder, make_likelihood
from genlight.nn.accumulate import AccumulationWindow
from genlight.nn.adversarial import AdversarialLoss, check_loss, discriminator_loss, generator_loss, gradient_penalty
from genlight.nn.mlp import MLPDiscriminator
from genlight.nn.priors import LOGVAR_RANGE, check_prior, gaussian_mmd, make_prior
from genlight.ranges import (
    ClassCount,
    Depth,
    Fraction,
    Levels,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Size,
    check_arguments,
)
from genlight.registry import register_model
from genlight.types import class_count

__all__ = ["AAE"]


@register_model("aae", tags=("adversarial", "autoencoder", "sampler"))
class AAE(GenerativeModule):
    """Adversarial autoencoder with a convolutional encoder/decoder and an MLP latent discriminator.

    Args:
        image_shape: ``(C, H, W)`` images in [0, 1]; linked from the datamodule.
        num_levels: discrete levels per pixel (17 for digits); linked from the datamodule.
        num_classes: classes of the data, linked from the datamodule; used only when ``supervised``.
        latent_dim: size of ``z``.
        hidden_channels: width of the first conv layer of encoder and decoder.
        prior: ``gaussian`` | ``mixture_of_gaussians`` | ``swiss_roll`` (2-D codes).
        prior_components: components of the mixture / segments of the roll (``num_classes`` when supervised).
        supervised: label-supervised regularisation (Makhzani §2.3), one prior component per class.
        posterior: ``deterministic`` (``z = enc(x)``) or ``gaussian`` (``z = mu + sigma * eps``,
            Makhzani §2's second choice; ``encode`` returns ``mu``).
        likelihood: reconstruction likelihood, ``auto`` (Bernoulli for 2 levels, categorical up to 64,
            else discretised logistic).
        disc_hidden: width of the discriminator MLP.
        disc_layers: hidden layers of the discriminator MLP.
        loss: adversarial loss on logits (``non_saturating`` default; see
            :data:`~genlight.nn.adversarial.ADVERSARIAL_LOSSES`).
        gp_weight: weight of a gradient penalty on ``D`` (0 = off; use with ``wasserstein_gp``).
        lr: Adam learning rate of the reconstruction phase (encoder + decoder).
        lr_g: Adam learning rate of the encoder's adversarial step.
        lr_d: Adam learning rate of the discriminator.
        betas: Adam betas of the two adversarial optimisers.
        code_norm: batch norm on the encoder's code (its mean for a Gaussian posterior), its affine
            part initialised to the prior's per-dimension mean and std.
        sample_mode: what ``sample`` returns: ``mean`` (the decoder's expected image, as the paper
            shows) or ``draw`` (a draw of the pixel likelihood).
        accumulate: batches per optimizer step (gradient accumulation, :mod:`genlight.nn.accumulate`; 1 = none).
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "hidden_channels": 8, "disc_hidden": 16}
    #: each phase's backward reaches part of the model only (the D step leaves encoder and decoder without
    #: gradients): DDP must expect unused parameters (set by GenerativeModule before it wraps the model)
    ddp_find_unused_parameters: ClassVar[bool] = True
    conditional_with: ClassVar[str | None] = "--model.supervised true"

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        num_classes: ClassCount = 10,
        latent_dim: Size = 8,
        hidden_channels: Size = 32,
        prior: Literal["gaussian", "mixture_of_gaussians", "swiss_roll"] = "gaussian",
        prior_components: Size = 10,
        supervised: bool = False,
        posterior: Literal["deterministic", "gaussian"] = "deterministic",
        likelihood: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto",
        disc_hidden: Size = 256,
        disc_layers: Depth = 2,
        loss: AdversarialLoss = "non_saturating",
        gp_weight: NonNegativeFloat = 0.0,
        lr: PositiveFloat = 2e-3,
        lr_g: PositiveFloat = 1e-3,
        lr_d: PositiveFloat = 1e-3,
        betas: tuple[Fraction, Fraction] = (0.5, 0.999),
        sample_mode: Literal["mean", "draw"] = "mean",
        code_norm: bool = True,
        accumulate: PositiveInt = 1,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.accumulation = AccumulationWindow(int(accumulate))
        self.automatic_optimization = False
        shape = check_image_shape(image_shape, type(self).__name__)
        check_prior(prior, "sampler")
        if supervised and num_classes < 2:
            raise IncompatibleDataError(
                f"supervised aae needs labelled data (num_classes >= 2), got num_classes={num_classes}; pick a "
                "labelled datamodule (digits, mnist, ...) or set --model.supervised false"
            )
        if supervised and prior == "gaussian":
            raise ValueError(
                "supervised aae puts each class on its own prior component: use prior='mixture_of_gaussians' "
                "or 'swiss_roll' (the gaussian prior has no components)"
            )
        if posterior not in ("deterministic", "gaussian"):
            raise ValueError(f"posterior must be 'deterministic' or 'gaussian', got {posterior!r}")
        if sample_mode not in ("mean", "draw"):
            raise ValueError(f"sample_mode must be 'mean' or 'draw', got {sample_mode!r}")
        check_loss(loss)
        if gp_weight < 0:
            raise ValueError(f"gp_weight must be >= 0, got {gp_weight}")
        #: classes ``sample(n, y=)`` takes: ``num_classes`` when supervised, else 0 (unconditional)
        if supervised:  # a class-conditional instance (a ConditionalSampler); an unsupervised one has no num_classes
            self.num_classes = int(num_classes)
        self.prior = make_prior(prior, latent_dim, class_count(self) or prior_components, kind="sampler")
        self.likelihood = make_likelihood(likelihood, num_levels)
        code = latent_dim * (2 if posterior == "gaussian" else 1)
        self.encoder = ConvEncoder(shape, hidden_channels, code)
        self.decoder = ConvDecoder(latent_dim, shape, hidden_channels, shape[0] * self.likelihood.params_per_channel)
        # batch norm on the code (mean): unit spread per dimension from the first step, where a freshly
        # initialised encoder puts every image at nearly the same code (spread ~0.01)
        # with its affine part set to the prior's per-dimension mean and std (from 10000 seeded draws)
        self.code_norm = (
            nn.BatchNorm1d(latent_dim, eps=1e-8) if code_norm else nn.Identity()
        )  # initial code variance ~1e-5
        if code_norm:
            with torch.no_grad():
                draws = self.prior.sample(10000, generator=torch.Generator().manual_seed(0))
                self.code_norm.weight.copy_(draws.std(0))
                self.code_norm.bias.copy_(draws.mean(0))
        self.discriminator = MLPDiscriminator((latent_dim + class_count(self),), disc_hidden, disc_layers)
        self.example_input_array = torch.zeros(2, *shape)

    # ------------------------------------------------------------------ model
    def posterior_sample(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(z, mean code)``: ``z`` is the code the decoder and ``D`` see (with noise for a Gaussian posterior)."""
        out = self.encoder(x)
        if self.hparams.posterior == "deterministic":
            out = self.code_norm(out)
            return out, out
        mu, logvar = out.chunk(2, dim=1)
        mu = self.code_norm(mu)
        return mu + torch.randn_like(mu) * torch.exp(0.5 * logvar.clamp(*LOGVAR_RANGE)), mu

    def encode(self, x: Tensor) -> Tensor:
        """The code of ``x`` (the posterior mean for a Gaussian posterior), ``(n, latent_dim)``."""
        return self.posterior_sample(x)[1] if self.hparams.posterior == "gaussian" else self.code_norm(self.encoder(x))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: :meth:`encode`'s code (the posterior mean for a Gaussian posterior),
        ``(B, latent_dim)``; label-free (a supervised AAE's code is the style, the label is not in it)."""
        return self.encode(x)

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's expected image in [0, 1]."""
        return self.likelihood.mean(self.decoder(z))

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction: ``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def sample_latent(self, n: int, y: Tensor | int | None = None) -> Tensor:
        """``n`` prior draws ``(n, latent_dim)``; ``y``: class ids (supervised) for their components."""
        return self.prior.sample(n, self._labels(y, n) if y is not None else None)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | int | None = None) -> Tensor:
        """Images ``decode(z)``, ``z ~ p(z)`` (class ``y``'s component when supervised)."""
        if y is not None and not class_count(self):
            raise ValueError("this aae is unsupervised: sample(n) takes no labels y (train with supervised=True)")
        params = self.decoder(self.sample_latent(n, y))
        return self.likelihood.sample(params) if self.hparams.sample_mode == "draw" else self.likelihood.mean(params)

    def _labels(self, y: Tensor | int, n: int) -> Tensor:
        y = torch.as_tensor(y, device=self.device).long()
        y = y.expand(n) if y.dim() == 0 else y.view(-1)
        if len(y) != n or y.min() < 0 or y.max() >= class_count(self):
            raise ValueError(f"labels y must be {n} class ids in [0, {class_count(self)}), got {y.tolist()}")
        return y

    def critic(self, z: Tensor, y: Tensor | None) -> Tensor:
        """``D(z[, one-hot y])``, one logit per code."""
        if class_count(self):
            z = torch.cat([z, F.one_hot(y, class_count(self)).to(z.dtype)], 1)  # type: ignore[arg-type]
        return self.discriminator(z)

    def reconstruction_nll(self, x: Tensor, z: Tensor) -> Tensor:
        """``-log p(x | dec(z))`` per image, nats (summed over pixels)."""
        return -self.likelihood.log_prob(self.decoder(z), x)

    # ------------------------------------------------------------------ training
    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.check_num_classes("set --model.supervised false", min_classes=2)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """The two phases; with ``accumulate: k`` the reconstruction phase accumulates as batches arrive and
        the regularisation phase, which needs the updated encoder, runs over the window's batches at its end."""
        opt_ae, opt_d, opt_g = self.optimizers()
        window = self.accumulation
        x = batch[0]
        y = batch[1].long() if class_count(self) else None
        # 1. reconstruction phase
        z, _ = self.posterior_sample(x)
        recon = self.reconstruction_nll(x, z).mean()
        self.manual_step(opt_ae, recon, scale=window.scale, zero_grad=window.begins, step=window.ends)
        logs: dict[str, Tensor] = {"recon": recon}
        if window.k == 1:
            logs.update(self.regularisation_phase(opt_d, opt_g, [(x, y)]))
        else:
            window.carry(x, y)
            if window.ends:
                logs.update(self.regularisation_phase(opt_d, opt_g, window.carried))
        window.advance()
        self.log_train(**logs, batch_size=len(x), prog_bar=("recon", "d_loss", "g_loss"))

    def regularisation_phase(
        self, opt_d: Any, opt_g: Any, batches: list[tuple[Tensor | None, ...]]
    ) -> dict[str, Tensor]:
        """Phase 2 over ``batches`` ``(x, y)`` (one step of each optimizer, losses scaled by ``1/len``): D on
        prior draws vs the codes of the updated encoder (detached), then the encoder fools D. Returns
        the mean losses."""
        k, codes = len(batches), []
        sums: dict[str, Tensor] = {}
        for i, (x, y) in enumerate(batches):
            assert x is not None
            z, _ = self.posterior_sample(x)  # the codes of the updated encoder
            real = self.prior.sample(len(x), y)
            d_terms = {"d_adv": discriminator_loss(self.hparams.loss, self.critic(real, y), self.critic(z.detach(), y))}
            if self.hparams.gp_weight > 0:
                d_terms["gp"] = self.hparams.gp_weight * gradient_penalty(lambda c, y=y: self.critic(c, y), real, z)
            d_loss = sum(d_terms.values())
            self.manual_step(opt_d, d_loss, scale=1.0 / k, zero_grad=i == 0, step=i == k - 1)
            codes.append((z, y))
            for name, value in {"d_loss": d_loss, **({"gp": d_terms["gp"]} if "gp" in d_terms else {})}.items():
                sums[name] = sums[name] + value.detach() / k if name in sums else value.detach() / k
        for i, (z, y) in enumerate(codes):
            g_loss = generator_loss(self.hparams.loss, self.critic(z, y))
            self.manual_step(opt_g, g_loss, scale=1.0 / k, zero_grad=i == 0, step=i == k - 1)
            sums["g_loss"] = sums["g_loss"] + g_loss.detach() / k if "g_loss" in sums else g_loss.detach() / k
        return sums

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x = batch[0]
        z, _ = self.posterior_sample(x)
        recon = self.reconstruction_nll(x, z).mean()
        self.log(f"{stage}/loss", recon, prog_bar=stage == "val", sync_dist=True)
        metrics = {f"{stage}/recon": recon}
        if len(x) >= 2:
            y = batch[1].long() if class_count(self) else None
            metrics[f"{stage}/mmd"] = gaussian_mmd(z, self.prior.sample(len(x), y)).float()
        self.log_dict(metrics, sync_dist=True)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        """``[Adam(encoder + decoder, lr), Adam(D, lr_d, betas), Adam(encoder, lr_g, betas)]``."""
        hp, betas = self.hparams, tuple(self.hparams.betas)
        return [
            torch.optim.Adam([*self.encoder_parameters(), *self.decoder.parameters()], lr=hp.lr),
            torch.optim.Adam(self.discriminator.parameters(), lr=hp.lr_d, betas=betas),
            torch.optim.Adam(self.encoder_parameters(), lr=hp.lr_g, betas=betas),
        ]

    def encoder_parameters(self) -> list[nn.Parameter]:
        return [*self.encoder.parameters(), *self.code_norm.parameters()]
