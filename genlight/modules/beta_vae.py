"""beta-VAE (Higgins et al. 2017) with the optional KL-capacity schedule of Burgess et al. (2018).

Training loss: ``-E_q[log p(x|z)] + beta KL(q(z|x) || p(z))``, or with a capacity ``C(t)`` that grows
linearly from 0 to ``capacity_max`` nats over ``capacity_steps`` optimizer steps,
``-E_q[log p(x|z)] + gamma |KL - C(t)|`` (batch-mean KL, as in Burgess et al.). Everything else is the
VAE's: the reported ``val/bpd_bound`` (and ``log_prob``) always uses ``beta = 1``, a true bound.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from torch import Tensor

from genlight.modules.vae import VAE
from genlight.ranges import Levels, NonNegativeFloat, PositiveFloat, PositiveInt, Size
from genlight.registry import register_model


@register_model("beta_vae")
class BetaVAE(VAE):
    """A VAE trained with ``beta > 1`` (disentangling pressure on the latent code), or with a KL capacity.

    The other arguments are :class:`~genlight.modules.vae.VAE`'s, whose defaults it keeps except ``beta``.

    Args:
        beta: KL weight of the training loss (used when ``capacity_max`` is 0).
        capacity_max: target KL in nats at the end of the schedule (0 = off: the plain beta loss).
        capacity_steps: optimizer steps over which the capacity grows linearly from 0 to ``capacity_max``.
        gamma: weight of ``|KL - C(t)|`` in the capacity loss.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "hidden_channels": 8, "capacity_max": 5.0}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        latent_dim: Size = 16,
        hidden_channels: Size = 32,
        likelihood: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto",
        beta: NonNegativeFloat = 4.0,
        lr: PositiveFloat = 1e-3,
        eval_samples: PositiveInt = 1,
        prior: Literal["gaussian", "vamp", "mog"] = "gaussian",
        prior_components: Size = 50,
        capacity_max: NonNegativeFloat = 0.0,
        capacity_steps: PositiveInt = 10000,
        gamma: NonNegativeFloat = 100.0,
    ) -> None:
        super().__init__(
            image_shape,
            num_levels,
            latent_dim,
            hidden_channels,
            likelihood,
            beta,
            lr,
            eval_samples,
            prior,
            prior_components,
        )  # VAE saves and checks the hyper-parameters of this whole __init__ chain

    def capacity(self, step: int | None = None) -> float:
        """``C(t) = capacity_max * min(1, t / capacity_steps)`` in nats at optimizer step ``t``."""
        t = self.global_step if step is None else step
        return self.hparams.capacity_max * min(1.0, t / self.hparams.capacity_steps)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        if not self.hparams.capacity_max:
            return super().training_step(batch, batch_idx)  # nll + beta KL
        nll, kl = self.elbo_terms(batch[0])
        capacity = self.capacity()
        loss = nll.mean() + self.hparams.gamma * (kl.mean() - capacity).abs()
        self.log_train(loss=loss, recon=nll.mean(), kl=kl.mean(), capacity=capacity, batch_size=len(nll))
        return loss
