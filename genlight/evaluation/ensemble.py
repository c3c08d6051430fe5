"""WAIC of an ensemble of density models (Choi et al. 2018, arXiv 1810.01392): with ``log p_k(x)`` of
``K`` models (checkpoints of one run, or seeds),

    WAIC(x) = E_k[log p_k(x)] - Var_k[log p_k(x)],

high where the models agree that ``x`` is likely; the outlier score is ``-WAIC(x)``."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from genlight.types import DensityModel

__all__ = ["ensemble_log_probs", "waic_score"]


def waic_score(log_probs: Tensor) -> Tensor:
    """``(B,)`` ``-(mean_k - var_k)`` of ``(K, B)`` log-likelihoods (``K >= 2``, population variance)."""
    lp = torch.as_tensor(log_probs, dtype=torch.float64)
    if lp.dim() != 2 or lp.shape[0] < 2:
        raise ValueError(f"WAIC needs (K, B) log-likelihoods of K >= 2 models, got shape {tuple(lp.shape)}")
    return -(lp.mean(0) - lp.var(0, unbiased=False))


@torch.no_grad()
def ensemble_log_probs(models: Sequence[DensityModel], x: Tensor, batch_size: int = 256) -> Tensor:
    """``(K, B)`` ``log p_k(x)`` of every model (eval mode) for images ``x`` ``(B, C, H, W)``."""
    rows = []
    for model in models:
        if not isinstance(model, DensityModel):
            raise TypeError(f"WAIC needs density models (log_prob); got {type(model).__name__}")
        if hasattr(model, "eval"):
            model.eval()
        device = getattr(model, "device", x.device)
        rows.append(
            torch.cat(
                [model.log_prob(x[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(x), batch_size)]
            )
        )
    return torch.stack(rows)
