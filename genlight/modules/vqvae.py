"""VQ-VAE (van den Oord et al. 2017, "Neural Discrete Representation Learning") with a learned prior.

Stage one: an encoder maps ``x`` to a ``(D, h, w)`` map ``z_e``, each vector snapped to its nearest code of
a codebook of ``K`` (:class:`~genlight.nn.quantizer.VectorQuantizer`: straight-through gradient,
commitment loss, EMA codebook as an option, dead-code restarts), and a decoder gives ``p(x | z)``, a
normalised distribution over the data's discrete levels. Loss per image:
``-log p(x | z_q) + ||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2`` (the codebook term only without EMA).

Stage two: a Gated PixelCNN over the ``(h, w)`` map of code indices
(:class:`~genlight.nn.code_prior.GatedCodePrior`), fitted to the codes of the trained encoder
(``prior="gated_pixelcnn"`` with ``vqvae_ckpt`` pointing at the stage-one checkpoint, which is loaded
with ``weights_only`` and frozen); with ``vqvae_ckpt`` empty both stages train at once, the prior on
the detached codes. ``prior="uniform"`` is the paper's stage one, ``p(z) = K^(-h w)``.

The bound. The model is ``p(x) = sum_z p(x | z) p(z)`` over all ``K^(h w)`` code maps; every term is
non-negative, so for the deterministic encoder's map ``z* = argmin ||z_e(x) - e||``::

    log p(x) >= log p(x | z*) + log p(z*)

(the ELBO of a point-mass posterior ``q(z | x) = 1[z = z*]``, whose entropy is 0). It holds because
``p(x | z)`` is a normalised discrete likelihood (categorical / Bernoulli / discretised logistic, not an
MSE) and ``log p(z)`` is the prior's exact code likelihood. ``log_prob(x)`` returns it (a bound:
``log_prob_is_exact = False``, logged as ``bpd_bound``); ``log_prob(x, num_samples=k)`` the tighter
importance-weighted bound with a proposal at the encoder's soft assignments, and
:meth:`VQVAE.exact_log_prob` the sum itself where the code space is small enough to enumerate.
"""

from __future__ import annotations

import itertools
import math
import pickle
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.errors import CheckpointError, CheckpointNotFoundError, ConfigError, ImageShapeError
from genlight.functional import check_image_shape
from genlight.module import GenerativeModule
from genlight.nn import make_likelihood
from genlight.nn.code_prior import GatedCodePrior
from genlight.nn.quantizer import VectorQuantizer, codebook_stats
from genlight.ranges import (
    Choices,
    Depth,
    DepthOrZero,
    Fraction,
    KernelSize,
    Levels,
    NonNegativeFloat,
    PositiveFloat,
    Size,
    check_arguments,
)
from genlight.registry import register_model

#: the arguments that fix stage one's weights: a stage-one checkpoint must agree on every one
STAGE_ONE = (
    "image_shape", "num_levels", "num_codes", "code_dim", "hidden_channels", "downsample", "num_res_blocks",
    "likelihood", "codebook",
)  # fmt: skip
#: the most code maps :meth:`VQVAE.exact_log_prob` enumerates
MAX_ENUMERATED = 1 << 16


class ResBlock(nn.Module):
    """``x + conv1x1(act(conv3x3(act(x))))`` (the residual block of the paper's encoder and decoder)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1), nn.SiLU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def vq_encoder(channels: int, hidden: int, code_dim: int, downsample: int, res_blocks: int) -> nn.Sequential:
    """``(B, C, H, W)`` -> ``(B, code_dim, H / 2^downsample, W / 2^downsample)``."""
    layers: list[nn.Module] = [nn.Conv2d(channels, hidden, 3, padding=1)]
    for _ in range(downsample):
        layers += [nn.SiLU(), nn.Conv2d(hidden, hidden, 4, stride=2, padding=1)]
    layers += [ResBlock(hidden) for _ in range(res_blocks)]
    layers += [nn.SiLU(), nn.Conv2d(hidden, code_dim, 1)]
    return nn.Sequential(*layers)


def vq_decoder(code_dim: int, hidden: int, out_channels: int, upsample: int, res_blocks: int) -> nn.Sequential:
    """``(B, code_dim, h, w)`` -> ``(B, out_channels, h 2^upsample, w 2^upsample)``, mirroring the encoder."""
    layers: list[nn.Module] = [nn.Conv2d(code_dim, hidden, 3, padding=1)]
    layers += [ResBlock(hidden) for _ in range(res_blocks)]
    for _ in range(upsample):
        layers += [nn.SiLU(), nn.ConvTranspose2d(hidden, hidden, 4, stride=2, padding=1)]
    layers += [nn.SiLU(), nn.Conv2d(hidden, out_channels, 3, padding=1)]
    return nn.Sequential(*layers)


@register_model("vqvae")
class VQVAE(GenerativeModule):
    """VQ-VAE: a discrete ``(h, w)`` code map, a discrete decoder likelihood, and a uniform or Gated
    PixelCNN prior over the codes; ``log_prob`` is the bound ``log p(x | z*) + log p(z*)``.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: discrete levels per pixel (linked).
        num_codes: ``K``, the codebook size.
        code_dim: size of each code vector.
        hidden_channels: width of the encoder and decoder.
        downsample: stride-2 steps of the encoder (the code map is ``H / 2^downsample`` square; 28x28 -> 7x7
            with 2).
        num_res_blocks: residual blocks in the encoder and in the decoder.
        likelihood: the decoder's distribution over levels: ``auto`` (Bernoulli for 2 levels, categorical
            up to 64, else discretised logistic).
        beta: weight of the commitment loss.
        codebook: ``ema`` (moving averages, Appendix A.1) or ``gradient`` (the codebook loss).
        codebook_decay: decay of the moving averages and of the usage counts.
        restart_threshold: restart a code whose average assignments per step fall below it (0 = never).
        prior: ``uniform`` (stage one of the paper) or ``gated_pixelcnn`` (a learned prior over the codes).
        prior_channels: width of the prior's gated layers.
        prior_layers: gated layers of the prior.
        prior_kernel: kernel size of the prior's vertical (kxk) and horizontal (1xk) convolutions (odd).
        prior_dropout: dropout on the prior's gated features (the prior sees few code maps: it overfits).
        vqvae_ckpt: a trained stage-one ``vqvae`` checkpoint: its encoder, codebook and decoder are loaded
            (``weights_only``) before the fit and frozen, and only the prior trains; empty: both train.
        lr: Adam learning rate.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {
        "num_codes": 4,
        "code_dim": 4,
        "hidden_channels": 8,
        "num_res_blocks": 1,
        "prior": "gated_pixelcnn",
        "prior_channels": 8,
        "prior_layers": 2,
    }
    log_prob_is_exact = False

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        num_codes: Choices = 64,
        code_dim: Size = 16,
        hidden_channels: Size = 64,
        downsample: DepthOrZero = 1,
        num_res_blocks: DepthOrZero = 2,
        likelihood: Literal["auto", "bernoulli", "categorical", "logistic"] = "auto",
        beta: NonNegativeFloat = 0.25,
        codebook: Literal["ema", "gradient"] = "ema",
        codebook_decay: Fraction = 0.99,
        restart_threshold: NonNegativeFloat = 1.0,
        prior: Literal["uniform", "gated_pixelcnn"] = "uniform",
        prior_channels: Size = 64,
        prior_layers: Depth = 6,
        prior_kernel: KernelSize = 3,
        prior_dropout: Fraction = 0.0,
        vqvae_ckpt: str = "",
        lr: PositiveFloat = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        c, h, w = check_image_shape(image_shape, type(self).__name__)
        step = 2**downsample
        if h % step or w % step:
            raise ImageShapeError(
                f"VQVAE with downsample={downsample} needs H and W that are multiples of {step}, got {h}x{w}; "
                f"lower --model.downsample or resize the data"
            )
        if prior not in ("uniform", "gated_pixelcnn"):
            raise ConfigError(f"prior must be uniform or gated_pixelcnn, got {prior!r}")
        if vqvae_ckpt and prior == "uniform":
            raise ConfigError(
                "vqvae_ckpt loads a trained stage one for a prior to fit, but prior=uniform has nothing to fit; "
                "set --model.prior gated_pixelcnn (or drop --model.vqvae_ckpt to train stage one)"
            )
        if prior_kernel % 2 == 0:
            raise ConfigError(f"prior_kernel must be odd (a centred causal kernel), got {prior_kernel}")
        self.beta, self.lr = float(beta), float(lr)
        self.code_shape = (h // step, w // step)
        self.likelihood = make_likelihood(likelihood, num_levels)
        self.encoder = vq_encoder(c, hidden_channels, code_dim, downsample, num_res_blocks)
        self.quantizer = VectorQuantizer(
            num_codes,
            code_dim,
            ema=codebook == "ema",
            decay=float(codebook_decay),
            restart_threshold=float(restart_threshold),
        )
        out = c * self.likelihood.params_per_channel
        self.decoder = vq_decoder(code_dim, hidden_channels, out, downsample, num_res_blocks)
        self.code_prior = (
            GatedCodePrior(num_codes, self.code_shape, prior_channels, prior_layers, prior_kernel, float(prior_dropout))
            if prior == "gated_pixelcnn"
            else None
        )
        #: whether stage one was loaded from ``vqvae_ckpt`` and is frozen (then only the prior trains)
        self.stage_one_frozen = False
        self.example_input_array = torch.zeros(2, *image_shape)

    # ------------------------------------------------------------------ codes
    def encode(self, x: Tensor) -> Tensor:
        """Code indices ``(B, h, w)`` of the deterministic encoder: the nearest code of every ``z_e``."""
        return self.quantizer.nearest(self.encoder(x))

    def decode(self, z: Tensor) -> Tensor:
        """The decoder's mean image in [0, 1] for code indices ``z`` ``(B, h, w)``."""
        return self.likelihood.mean(self.decoder_params(z))

    def decoder_params(self, z: Tensor) -> Tensor:
        """Parameters of ``p(x | z)`` ``(B, C*P, H, W)`` for code indices ``z`` ``(B, h, w)``."""
        if z.is_floating_point() or z.dim() != 3:
            raise ValueError(
                f"VQVAE decodes integer code maps (B, {self.code_shape[0]}, {self.code_shape[1]}) as encode() gives, "
                f"got a {z.dtype} tensor of shape {tuple(z.shape)}; codes are discrete, so they cannot be interpolated"
            )
        return self.decoder(self.quantizer.lookup(z))

    def forward(self, x: Tensor) -> Tensor:
        """Reconstruction: the decoder's mean image at the encoder's codes."""
        return self.decode(self.encode(x))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the encoder's map ``z_e`` before quantisation, flattened, ``(B, D h w)``
        (the codes' vectors ``z_q`` are this, snapped to ``K`` values per position)."""
        return self.encoder(x).float().flatten(1)

    # ------------------------------------------------------------------ prior and sampling
    def code_log_prob(self, z: Tensor) -> Tensor:
        """Exact ``log p(z)`` of code maps ``(B, h, w)`` under the prior, in nats ``(B,)``."""
        if self.code_prior is None:
            return torch.full((len(z),), -math.prod(self.code_shape) * self.quantizer.log_num_codes, device=z.device)
        return self.code_prior.log_prob(z)

    def sample_latent(self, n: int) -> Tensor:
        """``n`` code maps ``(n, h, w)`` from the prior."""
        if self.code_prior is None:
            return torch.randint(self.quantizer.num_codes, (n, *self.code_shape), device=self.device)
        return self.code_prior.sample(n, self.device)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        """Draws ``x ~ p(x | z)``, ``z ~ p(z)``: images in [0, 1] on the level grid."""
        if y is not None:
            raise ValueError("VQVAE is unconditional: sample(n) takes no labels y")
        return self.likelihood.sample(self.decoder_params(self.sample_latent(n)))

    # ------------------------------------------------------------------ likelihood
    def log_joint(self, x: Tensor, z: Tensor) -> Tensor:
        """``log p(x | z) + log p(z)`` per image, in nats ``(B,)``."""
        return self.likelihood.log_prob(self.decoder_params(z), x) + self.code_log_prob(z)

    def log_prob(self, x: Tensor, num_samples: int | None = None) -> Tensor:
        """A lower bound on ``log p(x)`` in nats: ``log p(x | z*) + log p(z*)`` at the encoder's codes
        (see the module docstring); with ``num_samples=k``, the importance-weighted bound
        ``log (1/k) sum_i p(x, z_i) / q(z_i | x)`` with ``q`` the encoder's soft assignments (a softmax
        over negative squared distances, mixed half and half with uniform), which rises to ``log p(x)``
        as ``k`` grows."""
        self.check_log_prob_input(x)
        if num_samples is None:
            return self.log_joint(x, self.encode(x))
        return self.importance_log_prob(x, int(num_samples))

    def importance_log_prob(self, x: Tensor, k: int) -> Tensor:
        """The ``k``-sample importance-weighted bound of :meth:`log_prob`."""
        z_e = self.encoder(x).float().permute(0, 2, 3, 1)  # (B, h, w, D)
        e = self.quantizer.embedding.float()
        dist2 = (z_e[..., None, :] - e).pow(2).sum(-1)  # (B, h, w, K)
        q = 0.5 * F.softmax(-dist2, dim=-1) + 0.5 / self.quantizer.num_codes
        b = len(x)
        z = torch.distributions.Categorical(probs=q).sample((k,))  # (k, B, h, w)
        log_q = torch.log(q).expand(k, *q.shape).gather(-1, z[..., None]).squeeze(-1).flatten(2).sum(2)  # (k, B)
        log_pxz = self.log_joint(x.repeat(k, 1, 1, 1), z.flatten(0, 1)).view(k, b)
        return torch.logsumexp(log_pxz - log_q, 0) - math.log(k)

    @torch.no_grad()
    def exact_log_prob(self, x: Tensor, chunk_size: int = 4096) -> Tensor:
        """``log p(x) = log sum_z p(x | z) p(z)`` by enumerating every code map (at most
        ``MAX_ENUMERATED``: tiny code spaces, for tests), in nats ``(B,)``."""
        num = self.quantizer.num_codes ** math.prod(self.code_shape)
        if num > MAX_ENUMERATED:
            raise ValueError(f"exact_log_prob enumerates {num} code maps, more than {MAX_ENUMERATED}")
        maps = torch.tensor(list(itertools.product(range(self.quantizer.num_codes), repeat=math.prod(self.code_shape))))
        maps = maps.view(-1, *self.code_shape).to(self.device)  # (K^(hw), h, w)
        per_x = []
        for xi in x:
            terms = [self.log_joint(xi.expand(len(chunk), *xi.shape), chunk) for chunk in maps.split(chunk_size)]
            per_x.append(torch.logsumexp(torch.cat(terms), 0))
        return torch.stack(per_x)

    # ------------------------------------------------------------------ stage one from a checkpoint
    def setup(self, stage: str) -> None:
        if stage == "fit" and self.hparams.vqvae_ckpt and not self.stage_one_frozen:
            self.load_stage_one(self.hparams.vqvae_ckpt)

    def load_stage_one(self, path: str) -> None:
        """Load the encoder, codebook and decoder of a trained ``vqvae`` checkpoint (``weights_only``) and
        freeze them; a checkpoint of another family or architecture is refused in one line."""
        checkpoint = read_weights(path)
        theirs = checkpoint.get("hyper_parameters") or {}
        if "num_codes" not in theirs or "code_dim" not in theirs:
            raise CheckpointError(
                f"vqvae_ckpt {path} is not a vqvae checkpoint (no num_codes/code_dim hyper-parameters)"
            )
        differ = [k for k in STAGE_ONE if k in theirs and _plain(theirs[k]) != _plain(self.hparams[k])]
        if differ:
            fix = " ".join(f"--model.{k} {_plain(theirs[k])}" for k in differ)
            mine = ", ".join(f"{k}={_plain(self.hparams[k])}" for k in differ)
            raise ConfigError(f"vqvae_ckpt {path} was trained with other stage-one settings than {mine}; pass {fix}")
        parts = ("encoder.", "decoder.", "quantizer.")
        state = {k: v for k, v in checkpoint["state_dict"].items() if k.startswith(parts)}
        missing = [k for k in self.state_dict() if k.startswith(parts) and k not in state]
        if missing:
            raise CheckpointError(f"vqvae_ckpt {path} lacks stage-one weights, e.g. {missing[0]}")
        self.load_state_dict(state, strict=False)
        for module in (self.encoder, self.decoder, self.quantizer):
            module.requires_grad_(False)
        self.stage_one_frozen = True

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0]
        logs: dict[str, Any] = {}
        loss = torch.zeros(len(x), device=x.device)
        if self.stage_one_frozen:
            with torch.no_grad():
                codes = self.encode(x)
        else:
            q = self.quantizer(self.encoder(x), update=True)
            nll = -self.likelihood.log_prob(self.decoder(q.z_q), x)
            loss = nll + q.codebook + self.beta * q.commitment
            codes = q.indices
            logs.update(recon=nll.mean(), commitment=q.commitment.mean())
        if self.code_prior is not None:
            prior_nll = -self.code_prior.log_prob(codes.detach())
            loss = loss + prior_nll
            logs["prior_nll"] = prior_nll.mean()
        loss = loss.mean() / self.num_dims
        perplexity, usage = codebook_stats(codes, self.quantizer.num_codes)
        self.log_train(loss=loss, perplexity=perplexity, usage=usage, batch_size=len(x), **logs)
        return loss

    def _evaluate(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x = batch[0]
        self.check_log_prob_input(x)
        codes = self.encode(x)
        recon = -self.likelihood.log_prob(self.decoder_params(codes), x)
        log_pz = self.code_log_prob(codes)
        perplexity, usage = codebook_stats(codes, self.quantizer.num_codes)
        self.log_dict(
            {
                f"{stage}/recon": recon.mean(),
                f"{stage}/prior_nll": -log_pz.mean(),
                f"{stage}/perplexity": perplexity,
                f"{stage}/usage": usage,
            },
            sync_dist=True,
        )
        self.log_density(stage, -recon + log_pz)  # {stage}/bpd_bound: log p(x|z*) + log p(z*)

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam([p for p in self.parameters() if p.requires_grad], lr=self.lr)


def read_weights(path: str) -> dict[str, Any]:
    """The checkpoint dict at ``path``, read with ``torch.load(weights_only=True)``: tensors, numbers,
    strings and containers, never arbitrary objects (as :func:`genlight.checkpoint.read_checkpoint`, which
    is a layer above the families). A missing or unreadable file is refused in one line."""
    file = Path(path)
    if not file.is_file():
        what = "is a folder, not a checkpoint file" if file.is_dir() else "does not exist"
        raise CheckpointNotFoundError(
            f"vqvae_ckpt {path} {what}; stage one (genlight fit -c examples/digits/vqvae.yaml) writes "
            f"runs/vqvae/version_N/checkpoints/last.ckpt"
        )
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        OSError,
        ValueError,
    ) as err:  # unpickling refused, a truncated file, not a torch file
        reason = " ".join(str(err).split())[:120] or type(err).__name__
        raise CheckpointError(f"vqvae_ckpt {path} cannot be read with weights_only=True ({reason})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"vqvae_ckpt {path} is not a Lightning checkpoint (no 'state_dict')")
    return checkpoint


def _plain(value: Any) -> Any:
    """A hyper-parameter as a plain value to compare (a shape list or tuple as a tuple)."""
    return tuple(value) if isinstance(value, (list, tuple)) else value
