"""Class-conditional VAE (Kingma et al. 2014, M2 with observed labels; Sohn et al. 2015).

Both the posterior and the decoder see the label: ``q(z|x,y)`` (one-hot channels appended to the
image) and ``p(x|z,y)`` (one-hot appended to ``z``), with a label-free prior ``p(z)``. With labels,
``-ELBO(x, y) = -E_q[log p(x|z,y)] + KL(q(z|x,y) || p(z)) >= -log p(x|y)``. Without labels, a uniform
class prior ``p(y) = 1/K`` and ``k`` draws ``z_{y,i} ~ q(z|x,y)`` per class give the importance estimate
``(1/(kK)) sum_y sum_i w_{y,i}``, ``w = p(x|z,y) p(z) / q(z|x,y)``, whose expectation is ``p(x)``; by
Jensen ``log p(x) >= E[logsumexp_{y,i} log w_{y,i} - log(kK)]`` (Burda et al. 2016, IWAE, with the
class summed exactly). A logsumexp over classes of per-class *estimates* (one-sample ELBOs) is not a
bound: logsumexp is convex, so their noise raises its expectation above ``log p(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape
from genlight.modules.vae import VAE
from genlight.nn import ConvDecoder, ConvEncoder
from genlight.nn.priors import LOGVAR_RANGE, DiagonalGaussianMixture
from genlight.ranges import ClassCount, Levels, NonNegativeFloat, PositiveFloat, PositiveInt, Size, check_arguments
from genlight.registry import register_model


@register_model("cvae")
class CVAE(VAE):
    """A VAE conditioned on class labels: ``sample(n, y=labels)``, ``encode(x, y)`` / ``decode(z, y)``.

    The other arguments are :class:`~genlight.modules.vae.VAE`'s.

    Args:
        num_classes: number of classes, linked from the datamodule by the CLI (labelled data only).

    Without labels, ``encode(x)`` uses the class with the highest bound at the posterior mean
    (:meth:`classify`), and ``decode(z)`` the mean image under the uniform class prior,
    ``1/K sum_y E[x | z, y]``. A VampPrior's pseudo-input ``k`` is encoded with label ``k mod K``.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "hidden_channels": 8}

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        num_classes: ClassCount = 10,
        latent_dim: Size = 16,
        hidden_channels: Size = 32,
        likelihood: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto",
        beta: NonNegativeFloat = 1.0,
        lr: PositiveFloat = 1e-3,
        eval_samples: PositiveInt = 1,
        prior: Literal["gaussian", "vamp", "mog"] = "gaussian",
        prior_components: Size = 50,
    ) -> None:
        check_image_shape(image_shape, type(self).__name__)  # the shape error first: it names what fits
        if num_classes < 2:
            raise IncompatibleDataError(
                f"cvae needs labelled data (num_classes >= 2), got num_classes={num_classes}; pick a labelled "
                "datamodule (digits, mnist, cifar10, ...) or the unconditional vae for unlabelled data"
            )
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
        )
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.num_classes = num_classes
        c, h, w = self.example_input_array.shape[1:]  # type: ignore[union-attr]
        out_channels = c * self.likelihood.params_per_channel
        self.encoder = ConvEncoder((c + num_classes, h, w), hidden_channels, 2 * latent_dim)  # q(z|x,y)
        self.decoder = ConvDecoder(latent_dim + num_classes, (c, h, w), hidden_channels, out_channels)  # p(x|z,y)
        self.register_buffer("pseudo_labels", torch.arange(prior_components) % num_classes, persistent=False)

    def setup(self, stage: str) -> None:
        super().setup(stage)
        self.check_num_classes("use the unconditional vae", min_classes=2)

    # ------------------------------------------------------------------ model
    def _labels(self, y: Tensor | int, n: int) -> Tensor:
        """``y`` as ``(n,)`` class ids on this device (an int or a 0-d tensor is repeated)."""
        y = torch.as_tensor(y, device=self.device).long()
        y = y.expand(n) if y.dim() == 0 else y.view(-1)
        if len(y) != n or y.min() < 0 or y.max() >= self.num_classes:
            raise ValueError(f"labels y must be {n} class ids in [0, {self.num_classes}), got {y.tolist()}")
        return y

    def one_hot(self, y: Tensor) -> Tensor:
        return F.one_hot(y, self.num_classes).float()

    def posterior(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``q(z|x,y) = N(mu, diag(exp(logvar)))``; labels enter as constant one-hot channels."""
        if y is None:
            raise ValueError("cvae's posterior q(z|x,y) needs labels y (encode(x) infers them)")
        onehot = self.one_hot(self._labels(y, len(x))).to(x.dtype)
        cond = onehot[:, :, None, None].expand(-1, -1, *x.shape[2:])
        mu, logvar = self.encoder(torch.cat([x, cond], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decoder_given(self, y: Tensor) -> Callable[[Tensor], Tensor]:
        """``z -> params of p(x|z,y)``; ``z`` may stack several copies of the batch of labels ``y``."""
        onehot = self.one_hot(y)

        def decode_params(z: Tensor) -> Tensor:
            return self.decoder(torch.cat([z, onehot.repeat(len(z) // len(onehot), 1).to(z.dtype)], 1))

        return decode_params

    def prior_distribution(self) -> DiagonalGaussianMixture:
        return self.prior(lambda u: self.posterior(u, self.pseudo_labels[: len(u)]))

    def classify(self, x: Tensor) -> Tensor:
        """The class whose bound ``log p(x|z,y) - KL`` at the posterior mean ``z = mu`` is highest."""
        scores = []
        prior = self.prior_distribution()
        for k in range(self.num_classes):
            y = torch.full((len(x),), k, device=x.device, dtype=torch.long)
            mu, logvar = self.posterior(x, y)
            scores.append(self.likelihood.log_prob(self.decoder_given(y)(mu), x) - prior.kl(mu, mu, logvar))
        return torch.stack(scores, 1).argmax(1)

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """The posterior mean of ``q(z|x,y)``; without ``y`` the labels come from :meth:`classify`."""
        y = self.classify(x) if y is None else self._labels(y, len(x))
        return self.posterior(x, y)[0]

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen, label-free representation: the posterior means of ``q(z|x,y)`` for every class ``y``,
        concatenated in class order, ``(B, num_classes * latent_dim)``. No label is needed nor guessed
        (how the code moves with the assumed class is part of the representation)."""
        means = [
            self.posterior(x, torch.full((len(x),), k, device=x.device, dtype=torch.long))[0]
            for k in range(self.num_classes)
        ]
        return torch.cat(means, 1)  # (B, K * latent_dim)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        """``E[x | z, y]``; without ``y`` the mean under the uniform class prior."""
        if y is not None:
            return self.likelihood.mean(self.decoder_given(self._labels(y, len(z)))(z))
        means = [self.decode(z, torch.full((len(z),), k, device=z.device)) for k in range(self.num_classes)]
        return torch.stack(means).mean(0)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | int | None = None) -> Tensor:
        """``x ~ p(x|z,y)``, ``z ~ p(z)``; ``y`` (an int or ``n`` ids) or, if ``None``, uniform labels."""
        y = torch.randint(self.num_classes, (n,), device=self.device) if y is None else self._labels(y, n)
        return self.likelihood.sample(self.decoder_given(y)(self.sample_latent(n)))

    def elbo_terms(self, x: Tensor, y: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Per-example ``(-log p(x|z,y), KL(q(z|x,y) || p(z)))`` in nats, one sample of ``z``."""
        if y is None:
            raise ValueError("cvae's ELBO needs labels y; log_prob(x) gives the label-free bound")
        y = self._labels(y, len(x))
        return self._elbo_terms(x, *self.posterior(x, y), self.decoder_given(y))

    def log_prob(  # type: ignore[override]
        self, x: Tensor, y: Tensor | None = None, num_samples: int | None = None, chunk_size: int = 4096
    ) -> Tensor:
        """A lower bound in nats (in expectation): given labels on ``log p(x|y)``, the ELBO for 1 sample,
        IWAE for ``num_samples > 1``; without labels on ``log p(x)`` under a uniform class prior, the
        importance estimate over ``num_samples`` draws per class, ``logsumexp_{y,i} log w_{y,i} -
        log(kK)`` (module docstring)."""
        self.check_log_prob_input(x)
        k = num_samples or self.hparams.eval_samples
        if y is None:
            ids = torch.arange(self.num_classes, device=x.device)
            log_w = torch.cat([self.log_weights(x, k, chunk_size, y=c.expand(len(x))) for c in ids])  # (K*k, B)
            return torch.logsumexp(log_w, 0) - math.log(k * self.num_classes)
        y = self._labels(y, len(x))
        if k == 1:
            nll, kl = self.elbo_terms(x, y)
            return -(nll + kl)
        return torch.logsumexp(self.log_weights(x, k, chunk_size, y=y), 0) - math.log(k)

    def log_weights(self, x: Tensor, num_samples: int, chunk_size: int = 4096, y: Tensor | None = None) -> Tensor:
        """``(k, B)`` log-weights ``log p(x|z_i,y) + log p(z_i) - log q(z_i|x,y)``, ``z_i ~ q(z|x,y)``."""
        if y is None:
            raise ValueError("cvae's importance weights need labels y; log_prob(x) gives the label-free bound")
        y = self._labels(y, len(x))
        return self._log_weights(x, *self.posterior(x, y), self.decoder_given(y), num_samples, chunk_size)

    def class_bounds(self, x: Tensor, num_samples: int | None = None, chunk_size: int = 4096) -> Tensor:
        """``(B, K)``: the bound on ``log p(x | y=k)`` for every class ``k`` (each a bound in expectation;
        their logsumexp is not a bound on ``log p(x)``: :meth:`log_prob` without labels is)."""
        ids = torch.arange(self.num_classes, device=x.device)
        return torch.stack([self.log_prob(x, ids[k].expand(len(x)), num_samples, chunk_size) for k in ids], 1)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch[0], batch[1]  # (x, y), and any further items (digit_domains: the domain) ignored
        nll, kl = self.elbo_terms(x, y)
        loss = (nll + self.hparams.beta * kl).mean()
        self.log_train(loss=loss, recon=nll.mean(), kl=kl.mean(), batch_size=len(x))
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch[0], batch[1]
        nll, kl = self.elbo_terms(x, y)
        marginal = self.log_prob(x)  # the label-free bound on log p(x): comparable with other families
        self.log(f"{stage}/nelbo", -marginal.mean(), prog_bar=stage == "val", sync_dist=True)
        self.log_dict(
            {f"{stage}/nelbo_y": (nll + kl).mean(), f"{stage}/recon": nll.mean(), f"{stage}/kl": kl.mean()},
            sync_dist=True,
        )
        self.log_density(stage, marginal)  # {stage}/bpd_bound
