"""NADE (Larochelle & Murray 2011) and, on continuous data, RNADE (Uria et al. 2013).

``p(x) = prod_d p(x_{o_d} | x_{o_<d})`` with tied weights: ``h_d = act(c + sum_{k<d} W[o_k] e(x_{o_k}))``,
a running pre-activation, so every conditional comes out of one O(D H) pass (an exclusive cumulative
sum), not D networks. ``e`` is the (soft) one-hot of the level, the output a Bernoulli (2 levels), a
softmax over the levels, or, on continuous data, a mixture of Gaussians per dimension (RNADE).

Order-agnostic training (Uria et al. 2014): each example is trained under one of ``num_orderings``
fixed orderings (the first is the raster order); ``log_prob`` is the exact equal-weight mixture
``log (1/K) sum_k p_k(x)`` (logsumexp) and ``sample`` draws an ordering, then the image.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.functional import check_image_shape
from genlight.modules.autoregressive import AutoregressiveImageModel
from genlight.nn import LogisticMixture, logistic_mixture_log_prob_at
from genlight.nn.autoregressive import draw_levels
from genlight.ranges import Decay, Fraction, Levels, NonNegativeFloat, PositiveFloat, Size, Steps
from genlight.registry import register_model


def soft_one_hot(x: Tensor, num_levels: int) -> Tensor:
    """``(..., L)`` hat functions ``max(0, 1 - |x (L-1) - k|)``: the one-hot of the level on the grid
    ``k/(L-1)``, piecewise linear in between (so conditionals can be differentiated for tests)."""
    k = torch.arange(num_levels, device=x.device, dtype=x.dtype)
    return (1.0 - (x.unsqueeze(-1) * (num_levels - 1) - k).abs()).clamp(min=0.0)


def raster_order(shape: tuple[int, ...]) -> Tensor:
    """Flat ``(c, h, w)`` indices in raster order (rows, columns, then channels inside a pixel)."""
    if len(shape) != 3:
        return torch.arange(math.prod(shape))
    c, h, w = shape
    return torch.arange(c * h * w).view(c, h, w).permute(1, 2, 0).reshape(-1)


@register_model("nade")
class NADE(AutoregressiveImageModel):
    """NADE over discrete images (Bernoulli / categorical), RNADE over continuous vectors (toy2d).

    Args:
        image_shape: ``(C, H, W)`` images, or ``(D,)`` continuous vectors (linked by the CLI).
        num_levels: discrete levels per dimension; 0 = continuous data (RNADE).
        hidden_units: ``H``, the width of the hidden layer.
        activation: ``sigmoid`` (the paper) or ``relu``.
        order_agnostic: train under ``num_orderings`` fixed orderings and score with their exact mixture.
        num_orderings: orderings of the ensemble (used when ``order_agnostic``).
        output: discrete data with more than 2 levels: ``softmax`` over the levels or ``logistic_mixture``
            (a mixture of discretised logistics, PixelCNN++).
        components: Gaussians per dimension of the RNADE output (continuous data), or logistics.
        dropout: dropout on the hidden units (training only).
        lr, weight_decay: AdamW settings; lr_decay: multiplied into the rate every epoch.
    """

    smoke_kwargs: ClassVar[dict[str, Any]] = {"hidden_units": 16, "order_agnostic": True, "num_orderings": 2}
    batch_kinds: ClassVar[tuple[str, ...] | None] = ("images", "points")  # RNADE on 2-D points

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        hidden_units: Size = 500,
        activation: Literal["sigmoid", "relu"] = "sigmoid",
        order_agnostic: bool = False,
        num_orderings: Steps = 8,
        output: Literal["softmax", "logistic_mixture"] = "softmax",
        components: Size = 10,
        dropout: Fraction = 0.0,
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.0,
        lr_decay: Decay = 1.0,
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, lr_decay=lr_decay)
        self.continuous = len(tuple(image_shape)) != 3 or num_levels == 0
        if self.continuous:
            self.shape = check_image_shape(image_shape, type(self).__name__, ndim=len(tuple(image_shape)))
            self.num_levels = 0
            in_features, self.params_per_channel = 1, 3 * components  # RNADE: logits, means, log-scales
        else:
            self.setup_autoregressive(image_shape, num_levels, output=output, components=components)
            in_features = 1 if num_levels == 2 else num_levels
        if num_orderings < 1 or components < 1 or hidden_units < 1:
            raise ValueError("hidden_units, num_orderings and components must be >= 1")
        self.mixture_output = isinstance(getattr(self, "likelihood", None), LogisticMixture)
        d = math.prod(self.shape)
        k = num_orderings if order_agnostic else 1
        gen = torch.Generator().manual_seed(0)
        orders = [raster_order(self.shape)] + [torch.randperm(d, generator=gen) for _ in range(k - 1)]
        self.register_buffer("orders", torch.stack(orders))  # (K, D): the ensemble's orderings
        self.W = nn.Parameter(torch.randn(d, in_features, hidden_units) / math.sqrt(in_features * min(d, 64)))
        self.c = nn.Parameter(torch.zeros(hidden_units))
        self.V = nn.Parameter(torch.randn(d, hidden_units, self.params_per_channel) / math.sqrt(hidden_units))
        self.b = nn.Parameter(torch.zeros(d, self.params_per_channel))
        self.act = torch.sigmoid if activation == "sigmoid" else F.relu
        self.dropout = nn.Dropout(dropout)
        self.example_input_array = torch.zeros(2, *self.shape)

    # ------------------------------------------------------------------ the O(DH) pass
    def encode_inputs(self, x: Tensor) -> Tensor:
        """``(B, D, I)`` input features of every dimension."""
        flat = x.flatten(1)
        if self.continuous or self.num_levels == 2:
            return flat.unsqueeze(-1)
        return soft_one_hot(flat, self.num_levels)

    def input_contributions(self, x: Tensor) -> Tensor:
        """``(B, D, H)``: ``W[d] e(x_d)``; a row lookup for images on the level grid."""
        if not self.continuous and self.num_levels > 2:
            scaled = x.flatten(1) * (self.num_levels - 1)
            levels = scaled.round().clamp(0, self.num_levels - 1).long()
            if torch.equal(scaled, levels.to(scaled.dtype)):  # one-hot inputs: a lookup, no matmul
                return self.W[torch.arange(levels.shape[1], device=x.device), levels]
        return torch.einsum("bdi,dih->bdh", self.encode_inputs(x), self.W)

    def hidden(self, x: Tensor, order: Tensor) -> Tensor:
        """``(B, D, H)``: ``h_d`` of each dimension ``d`` (in data layout) under ``order`` ``(B, D)`` or ``(D,)``."""
        b, d = x.shape[0], math.prod(self.shape)
        order = order.expand(b, d)
        contrib = self.input_contributions(x)  # (B, D, H): W[d] e(x_d)
        index = order.unsqueeze(-1).expand(-1, -1, contrib.shape[-1])
        ordered = contrib.gather(1, index)  # position t holds dimension order[t]
        before = ordered.cumsum(1) - ordered  # exclusive: the dimensions before position t
        a = torch.empty_like(before).scatter_(1, index, before)  # back to data layout
        return self.dropout(self.act(a + self.c))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the hidden units after reading every dimension, ``act(c + sum_d W_d
        e(x_d))``, ``(B, hidden_units)`` -- the state a (D+1)-th conditional would read; the same for
        every ordering (the sum runs over all dimensions), no dropout."""
        if not self.continuous:
            x = self.quantize(x)
        return self.act(self.input_contributions(x).sum(1) + self.c)  # (B, D, H) -> (B, H)

    def params(self, x: Tensor, order: Tensor) -> Tensor:
        """``(B, D, P)``: output parameters of every conditional."""
        return torch.einsum("bdh,dhp->bdp", self.hidden(x, order), self.V) + self.b

    def forward(self, x: Tensor) -> Tensor:
        return self.conditional_logits(x)

    def conditional_logits(self, x: Tensor, y: Tensor | None = None, ordering: int = 0) -> Tensor:
        """``(B, C*P, H, W)`` for images (the layout of :class:`~genlight.nn.Categorical`), ``(B, D, P)`` else."""
        p = self.params(x, self.orders[ordering])
        if self.continuous:
            return p
        c, h, w = self.shape
        return p.view(-1, c, h, w, self.params_per_channel).permute(0, 1, 4, 2, 3).reshape(-1, c * p.shape[-1], h, w)

    def log_prob_per_dim(self, x: Tensor, order: Tensor) -> Tensor:
        """``(B,)`` ``log p(x)`` under ``order``: ``(D,)`` for all, ``(B, D)`` per example."""
        p = self.params(x, order).float()
        if self.continuous:
            logits, mean, log_scale = p.chunk(3, dim=-1)  # (B, D, K) each
            log_scale = log_scale.clamp(-7.0, 5.0)
            z = (x.flatten(1).float().unsqueeze(-1) - mean) * torch.exp(-log_scale)
            log_normal = -0.5 * z.pow(2) - log_scale - 0.5 * math.log(2 * math.pi)
            return torch.logsumexp(F.log_softmax(logits, -1) + log_normal, -1).sum(1)
        levels = to_levels_flat(x, self.num_levels)
        if self.num_levels == 2:
            return -F.binary_cross_entropy_with_logits(p[..., 0], levels.float(), reduction="none").sum(1)
        if self.mixture_output:  # the observed level's probability only, not all L of them
            return logistic_mixture_log_prob_at(p, levels, self.num_levels).sum(1)
        return F.log_softmax(p, -1).gather(-1, levels.unsqueeze(-1)).squeeze(-1).sum(1)

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """Exact ``log p(x)`` in nats (a density for continuous data): the mixture over the orderings."""
        self.check_log_prob_input(x)
        if y is not None:
            raise ValueError("NADE is unconditional; labels y cannot be passed")
        if not self.continuous:
            x = self.quantize(x)
        per_order = torch.stack([self.log_prob_per_dim(x, order) for order in self.orders], 1)  # (B, K)
        return torch.logsumexp(per_order, 1) - math.log(len(self.orders))

    # ------------------------------------------------------------------ sampling
    @torch.inference_mode()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        """Exact ancestral sampling in one O(D H) loop: the running pre-activation is updated with each
        drawn dimension; each image picks one ordering of the ensemble uniformly."""
        if y is not None:
            raise ValueError("NADE is unconditional; labels y cannot be passed")
        d = math.prod(self.shape)
        orders = self.orders[torch.randint(len(self.orders), (n,), device=self.device)]  # (n, D)
        a = self.c.expand(n, -1).clone()  # (n, H)
        out = torch.zeros(n, d, device=self.device, dtype=self.dtype)
        rows = torch.arange(n, device=self.device)
        for t in range(d):
            dim = orders[:, t]  # (n,)
            p = torch.einsum("nh,nhp->np", self.act(a), self.V[dim]) + self.b[dim]  # (n, P)
            value = self.draw(p.float()).to(out.dtype)
            out[rows, dim] = value
            e = value.unsqueeze(-1) if self.continuous or self.num_levels == 2 else soft_one_hot(value, self.num_levels)
            a = a + torch.einsum("ni,nih->nh", e, self.W[dim])
        return out.view(n, *self.shape)

    def draw(self, p: Tensor) -> Tensor:
        """One value per row of ``p`` ``(n, P)``: a level in [0, 1] or, continuous, a mixture draw."""
        if not self.continuous:
            return draw_levels(p, self.likelihood).float() / (self.num_levels - 1)
        logits, mean, log_scale = p.chunk(3, dim=-1)
        k = torch.multinomial(F.softmax(logits, -1), 1)
        mu, s = mean.gather(1, k).squeeze(1), log_scale.clamp(-7.0, 5.0).gather(1, k).squeeze(1).exp()
        return mu + s * torch.randn_like(mu)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x = batch[0] if self.continuous else self.quantize(batch[0])
        pick = torch.randint(len(self.orders), (len(x),), device=x.device)
        nll = -self.log_prob_per_dim(x, self.orders[pick]).mean()
        loss = nll / self.num_dims if self.continuous else nll / (self.num_dims * math.log(2.0))
        self.log_train(loss=loss, batch_size=len(x))  # nats/dim (continuous) or bits/dim
        return loss


def to_levels_flat(x: Tensor, num_levels: int) -> Tensor:
    """``(B, D)`` integer levels of images ``x``."""
    return (x.flatten(1) * (num_levels - 1)).round().clamp(0, num_levels - 1).long()
