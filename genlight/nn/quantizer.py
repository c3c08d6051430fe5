"""Vector quantisation (van den Oord et al. 2017, "Neural Discrete Representation Learning").

Each vector ``z_e`` of an encoder's map is replaced by its nearest codebook entry ``e_k``,
``k = argmin_j ||z_e - e_j||^2``; the straight-through estimator ``z_q = z_e + sg(e_k - z_e)`` copies the
decoder's gradient to the encoder. Losses per example, summed over the map:
``codebook = ||sg(z_e) - e_k||^2`` (trains the codebook, gradient mode only) and
``commitment = ||z_e - sg(e_k)||^2`` (weighted by ``beta`` by the caller).

With ``ema=True`` the codebook follows exponential moving averages instead of a gradient (Appendix A.1;
Laplace-smoothed counts as in sonnet's ``VectorQuantizerEMA``)::

    N_k <- g N_k + (1 - g) n_k                      n_k: vectors assigned to k in the batch
    m_k <- g m_k + (1 - g) sum_{i: k_i = k} z_e,i
    e_k  = m_k / ((N_k + eps) / (n + K eps) * n)    n = sum_k N_k

Dead-code restarts: ``usage`` is an EMA of ``n_k`` per step (decay ``g``); a code whose usage falls below
``restart_threshold`` takes the value of a random encoder output of the batch (as in Dhariwal et al. 2020,
Jukebox), and its usage is reset to the mean usage. Under DDP, counts and sums are summed over processes
and restarts drawn on rank 0, so every process keeps the same codebook.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["QuantizerOutput", "VectorQuantizer", "codebook_stats"]


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def codebook_stats(indices: Tensor, num_codes: int) -> tuple[Tensor, Tensor]:
    """``(perplexity, usage)`` of a batch of code indices: ``exp`` of the entropy of the codes' batch
    frequencies (``num_codes`` when all are used equally, 1 when one code takes all), and the fraction
    of the codes used at least once."""
    counts = torch.bincount(indices.flatten(), minlength=num_codes).float()  # (K,)
    p = counts / counts.sum().clamp_min(1)
    perplexity = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
    return perplexity, (counts > 0).float().mean()


class QuantizerOutput(NamedTuple):
    """What :class:`VectorQuantizer` returns: the straight-through map ``z_q`` ``(B, D, h, w)``, the
    code ``indices`` ``(B, h, w)``, and the ``codebook`` and ``commitment`` losses per example ``(B,)``."""

    z_q: Tensor
    indices: Tensor
    codebook: Tensor
    commitment: Tensor


class VectorQuantizer(nn.Module):
    """A codebook of ``num_codes`` vectors of ``code_dim`` over ``(B, code_dim, h, w)`` maps.

    Args:
        num_codes: ``K``, the codebook size.
        code_dim: ``D``, the size of each code vector.
        ema: update the codebook by moving averages (then it is a buffer, not a parameter).
        decay: ``g`` of the moving averages (and of the usage counts).
        eps: Laplace smoothing of the counts.
        restart_threshold: restart codes whose usage (assignments per step, averaged) falls below it
            (0 = never).
    """

    def __init__(
        self,
        num_codes: int,
        code_dim: int,
        *,
        ema: bool = True,
        decay: float = 0.99,
        eps: float = 1e-5,
        restart_threshold: float = 1.0,
    ) -> None:
        super().__init__()
        self.num_codes, self.code_dim = num_codes, code_dim
        self.ema, self.decay, self.eps, self.restart_threshold = ema, decay, eps, restart_threshold
        init = torch.empty(num_codes, code_dim).uniform_(-1.0 / num_codes, 1.0 / num_codes)
        if ema:
            self.register_buffer("embedding", init)
            self.register_buffer("cluster_size", torch.zeros(num_codes))
            self.register_buffer("embed_sum", init.clone())
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("usage", torch.ones(num_codes))

    # ------------------------------------------------------------------ lookups
    def nearest(self, z: Tensor) -> Tensor:
        """Code indices ``(B, h, w)`` of the entries nearest to ``z`` ``(B, D, h, w)`` (squared distance)."""
        flat = z.float().permute(0, 2, 3, 1).reshape(-1, self.code_dim)  # (N, D)
        e = self.embedding.float()
        with torch.autocast(z.device.type, enabled=False):
            dist2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None]  # (N, K)
        return dist2.argmin(1).view(z.shape[0], *z.shape[2:])

    def lookup(self, indices: Tensor) -> Tensor:
        """The code vectors of ``indices`` ``(B, h, w)`` as a map ``(B, D, h, w)``."""
        return F.embedding(indices, self.embedding).permute(0, 3, 1, 2)

    # ------------------------------------------------------------------ forward
    def forward(self, z_e: Tensor, update: bool = False) -> QuantizerOutput:
        """Quantise ``z_e`` ``(B, D, h, w)``; with ``update`` (training), move the EMA codebook and
        restart dead codes after the assignment."""
        z_e = z_e.float()
        indices = self.nearest(z_e)  # (B, h, w)
        e = self.lookup(indices)  # (B, D, h, w)
        commitment = (z_e - e.detach()).pow(2).flatten(1).sum(1)
        codebook = (z_e.detach() - e).pow(2).flatten(1).sum(1) if not self.ema else torch.zeros_like(commitment)
        if update:
            self.update(z_e.detach(), indices)
        z_q = z_e + (e - z_e).detach()  # straight-through: forward e, backward identity to z_e
        return QuantizerOutput(z_q, indices, codebook, commitment)

    # ------------------------------------------------------------------ training updates
    @torch.no_grad()
    def update(self, z_e: Tensor, indices: Tensor) -> None:
        """One step of the moving averages (``ema``) and of the dead-code restarts."""
        flat = z_e.permute(0, 2, 3, 1).reshape(-1, self.code_dim).float()  # (N, D)
        onehot = F.one_hot(indices.flatten(), self.num_codes).float()  # (N, K)
        counts, sums = onehot.sum(0), onehot.t() @ flat  # (K,), (K, D)
        if _distributed():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        g = self.decay
        self.usage.mul_(g).add_(counts, alpha=1 - g)
        if self.ema:
            self.cluster_size.mul_(g).add_(counts, alpha=1 - g)
            self.embed_sum.mul_(g).add_(sums, alpha=1 - g)
            n = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (n + self.num_codes * self.eps) * n
            self.embedding.copy_(self.embed_sum / smoothed[:, None])
        if self.restart_threshold > 0:
            self.restart(flat)

    @torch.no_grad()
    def restart(self, flat: Tensor) -> Tensor:
        """Give every code whose ``usage`` is below ``restart_threshold`` a random row of ``flat``
        ``(N, D)`` (drawn on rank 0 under DDP); returns the restarted codes' indices."""
        dead = (self.usage < self.restart_threshold).nonzero().flatten()
        if len(dead) == 0:
            return dead
        picks = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]  # (n_dead, D)
        if _distributed():
            dist.broadcast(picks, 0)
        self.embedding[dead] = picks.to(self.embedding.dtype)
        self.usage[dead] = self.usage.mean().clamp_min(self.restart_threshold)
        if self.ema:  # the averages restart at the new vector: e_k = m_k / N_k with N_k ~ 1
            self.cluster_size[dead] = 1.0
            n = self.cluster_size.sum()
            smoothed = (1.0 + self.eps) / (n + self.num_codes * self.eps) * n
            self.embed_sum[dead] = picks * smoothed
        return dead

    def extra_repr(self) -> str:
        mode = f"ema, decay={self.decay}" if self.ema else "gradient"
        return f"num_codes={self.num_codes}, code_dim={self.code_dim}, {mode}, restart<{self.restart_threshold}"

    @property
    def log_num_codes(self) -> float:
        """``log K``: a code's length under the uniform prior, in nats."""
        return math.log(self.num_codes)
