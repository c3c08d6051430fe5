"""Free-bits VAE (Kingma et al. 2016, "Improving Variational Inference with Inverse Autoregressive
Flow", appendix C): each latent dimension's KL counts in the training loss only above ``free_bits``
nats, which keeps the posterior from collapsing early. Evaluation still reports the true ELBO.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from genlight.modules.vae import VAE


class FreeBitsVAE(VAE):
    """A downstream subclass: new argument, new training loss, everything else inherited."""

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: int = 17,
        latent_dim: int = 16,
        hidden_channels: int = 32,
        likelihood: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto",
        beta: float = 1.0,
        lr: float = 1e-3,
        eval_samples: int = 1,
        free_bits: float = 0.25,
    ) -> None:
        super().__init__(image_shape, num_levels, latent_dim, hidden_channels, likelihood, beta, lr, eval_samples)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0]
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        nll = -self.likelihood.log_prob(self.decoder(z), x)
        kl_per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean(0)  # batch-averaged, per dimension
        loss = nll.mean() + self.hparams.beta * kl_per_dim.clamp(min=self.hparams.free_bits).sum()
        self.log_train(loss=loss, recon=nll.mean(), batch_size=len(x))  # the cheap logging rule of genlight
        return loss
