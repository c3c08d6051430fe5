"""Variational autoencoder (Kingma & Welling 2014) with an exact discrete decoder likelihood.

``-ELBO(x) = -E_q[log p(x|z)] + KL(q(z|x) || p(z))`` with ``p(x|z)`` a distribution over the data's
discrete levels, so the negative ELBO is a true upper bound on ``-log p(x)`` in nats. The prior
``p(z)`` is ``N(0, I)`` (KL in closed form), a learned mixture of Gaussians or a VampPrior
(:mod:`genlight.nn.priors`; KL by Monte Carlo at the sampled ``z``, unbiased). ``beta`` weighs the KL
in the training loss (beta-VAE, Higgins et al. 2017); the bound reported under ``val/nelbo`` always
uses ``beta = 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor

from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn import ConvDecoder, ConvEncoder, make_likelihood
from genlight.nn.priors import LOGVAR_RANGE, DiagonalGaussianMixture, check_prior, gaussian_log_prob, make_prior
from genlight.ranges import Levels, NonNegativeFloat, PositiveFloat, PositiveInt, Size, check_arguments
from genlight.registry import register_model


@register_model("vae")
class VAE(GenerativeModule):
    """Convolutional VAE with a Gaussian posterior and a Bernoulli / categorical / logistic decoder.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: discrete levels per pixel (17 for digits, 256 for 8-bit, 2 binarised).
        latent_dim: size of ``z``.
        hidden_channels: width of the first conv layer (doubles per down-sampling, up to 4x).
        likelihood: ``auto`` (Bernoulli for 2 levels, categorical up to 64, else logistic).
        beta: KL weight in the training loss (1 = the ELBO).
        lr: Adam learning rate.
        eval_samples: importance samples for ``log_prob`` in validation/test (1 = ELBO, >1 = IWAE).
        prior: ``gaussian`` (``N(0, I)``), ``vamp`` (VampPrior, Tomczak & Welling 2018) or ``mog``
            (a learned mixture of Gaussians).
        prior_components: pseudo-inputs of the VampPrior / components of the mixture.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "hidden_channels": 8}
    log_prob_is_exact = False

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        latent_dim: Size = 16,
        hidden_channels: Size = 32,
        likelihood: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto",
        beta: NonNegativeFloat = 1.0,
        lr: PositiveFloat = 1e-3,
        eval_samples: PositiveInt = 1,
        prior: Literal["gaussian", "vamp", "mog"] = "gaussian",
        prior_components: Size = 50,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        shape = check_image_shape(image_shape, type(self).__name__)
        check_prior(prior, "density")  # before anything is built
        self.likelihood = make_likelihood(likelihood, num_levels)
        self.encoder = ConvEncoder(shape, hidden_channels, 2 * latent_dim)
        self.decoder = ConvDecoder(latent_dim, shape, hidden_channels, shape[0] * self.likelihood.params_per_channel)
        self.prior = make_prior(prior, latent_dim, prior_components, shape)
        self.example_input_array = torch.zeros(2, *shape)

    # ------------------------------------------------------------------ model
    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``q(z|x) = N(mu, diag(exp(logvar)))``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def prior_distribution(self) -> DiagonalGaussianMixture:
        """``p(z)``: the chosen prior (a VampPrior encodes its pseudo-inputs with the current encoder)."""
        return self.prior(self.posterior)

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction: the decoder's mean image at the posterior mean."""
        return self.decode(self.encode(x))

    def encode(self, x: Tensor) -> Tensor:
        return self.posterior(x)[0]

    def decode(self, z: Tensor) -> Tensor:
        return self.likelihood.mean(self.decoder(z))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the encoder's posterior mean ``E_q[z|x]``, ``(B, latent_dim)``."""
        return self.encode(x)

    def sample_latent(self, n: int) -> Tensor:
        """``n`` draws ``z ~ p(z)`` of the chosen prior, ``(n, latent_dim)``."""
        return self.prior_distribution().sample(n)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        """Draws ``x ~ p(x|z)``, ``z ~ p(z)``: images in [0, 1] on the level grid."""
        if y is not None:
            raise ValueError(
                "VAE is unconditional: sample(n) takes no labels y (`genlight list models` shows the families)"
            )
        return self.likelihood.sample(self.decoder(self.sample_latent(n)))

    def elbo_terms(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Per-example ``(-log p(x|z), KL(q||p))`` in nats, one reparameterised sample of ``z``; the KL
        in closed form for ``N(0, I)``, else ``log q(z|x) - log p(z)`` at that sample."""
        return self._elbo_terms(x, *self.posterior(x), self.decoder)

    def log_weights(self, x: Tensor, num_samples: int, chunk_size: int = 4096) -> Tensor:
        """``(k, B)`` importance log-weights ``log p(x|z_i) + log p(z_i) - log q(z_i|x)``, ``z_i ~ q(z|x)``."""
        return self._log_weights(x, *self.posterior(x), self.decoder, num_samples, chunk_size)

    def log_prob(self, x: Tensor, num_samples: int | None = None, chunk_size: int = 4096) -> Tensor:
        """A lower bound on ``log p(x)`` in nats: the ELBO (1 sample) or IWAE (Burda et al. 2016),
        ``log (1/k) sum_i p(x, z_i) / q(z_i|x)``, decoding up to ``chunk_size`` latents per call."""
        self.check_log_prob_input(x)
        k = num_samples or self.hparams.eval_samples
        if k == 1:
            nll, kl = self.elbo_terms(x)
            return -(nll + kl)
        return torch.logsumexp(self.log_weights(x, k, chunk_size), dim=0) - math.log(k)

    def _elbo_terms(
        self, x: Tensor, mu: Tensor, logvar: Tensor, decoder: Callable[[Tensor], Tensor]
    ) -> tuple[Tensor, Tensor]:
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        nll = -self.likelihood.log_prob(decoder(z), x)
        return nll, self.prior_distribution().kl(z, mu, logvar)

    def _log_weights(
        self, x: Tensor, mu: Tensor, logvar: Tensor, decoder: Callable[[Tensor], Tensor], k: int, chunk_size: int
    ) -> Tensor:
        """``decoder`` maps ``(c*B, latent)`` codes (``c`` stacked copies of the batch) to likelihood params."""
        prior = self.prior_distribution()
        std, b = torch.exp(0.5 * logvar), x.shape[0]
        log_w = []
        per_call = max(1, chunk_size // b)
        for start in range(0, k, per_call):
            c = min(per_call, k - start)
            eps = torch.randn(c, *mu.shape, device=mu.device, dtype=mu.dtype)  # (c, B, latent)
            z = mu + eps * std
            params = decoder(z.flatten(0, 1))
            log_px_z = self.likelihood.log_prob(params, x.repeat(c, *([1] * (x.dim() - 1)))).view(c, b)
            log_w.append(log_px_z + prior.log_prob(z) - gaussian_log_prob(z, mu, logvar))
        return torch.cat(log_w)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0]
        nll, kl = self.elbo_terms(x)
        loss = (nll + self.hparams.beta * kl).mean()
        self.log_train(loss=loss, recon=nll.mean(), kl=kl.mean(), batch_size=len(x))
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x = batch[0]
        nll, kl = self.elbo_terms(x)
        bound = -(nll + kl)
        self.log(f"{stage}/nelbo", -bound.mean(), prog_bar=stage == "val", sync_dist=True)
        metrics = {
            f"{stage}/loss": (nll + self.hparams.beta * kl).mean(),
            f"{stage}/recon": nll.mean(),
            f"{stage}/kl": kl.mean(),
        }
        if self.hparams.eval_samples > 1:  # the tighter IWAE bound
            bound = self.log_prob(x)
            metrics[f"{stage}/nll_iwae"] = -bound.mean()
        self.log_dict(metrics, sync_dist=True)
        self.log_density(stage, bound)  # {stage}/bpd_bound, summed over the whole split

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
