"""Discriminator regularisers for GANs on small data: the R1 penalty and LeCam's anchors.

* **R1** (Mescheder et al. 2018, eq. 9): ``γ/2 · E_x[‖∇_x D(x)‖²]`` on real data only. With lazy
  regularisation (Karras et al. 2020b, StyleGAN2 §4) it is added every ``r1_every`` discriminator
  steps, multiplied by ``r1_every`` so that its average strength is unchanged.
* **LeCam** (Tseng et al. 2021, eq. 3, as in their code): ``E_x[relu(D(x) - α_F)²] + E_z[relu(α_R -
  D(G(z)))²]`` with ``α_R``, ``α_F`` exponential moving averages (decay 0.99) of D's mean output on real
  and on generated images: it keeps D's outputs near their recent values, against overfitting.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["LeCamAnchors", "lecam_penalty", "r1_penalty"]


def r1_penalty(critic: Any, real: Tensor, *args: Any) -> Tensor:
    """``E_x[‖∇_x D(x)‖²]`` over the real batch ``real`` (the caller multiplies by ``γ/2``).

    ``critic(x, *args)`` must return one value per example. In fp32 with autocast off and with its graph
    (``create_graph=True``), like :func:`~genlight.nn.adversarial.gradient_penalty`: it trains D."""
    real = real.detach().float().requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False), torch.enable_grad():
        out = critic(real, *args).float()
        (grad,) = torch.autograd.grad(out.sum(), real, create_graph=True)
    return grad.flatten(1).pow(2).sum(1).mean()


def lecam_penalty(d_real: Tensor, d_fake: Tensor, anchor_real: float, anchor_fake: float) -> Tensor:
    """``mean(relu(D(x) - α_F)²) + mean(relu(α_R - D(G(z)))²)`` from D's outputs (logits)."""
    return F.relu(d_real.float() - anchor_fake).pow(2).mean() + F.relu(anchor_real - d_fake.float()).pow(2).mean()


class LeCamAnchors:
    """``α_R``, ``α_F``: moving averages ``α <- d α + (1 - d) mean(D)`` of D's outputs on real and fake
    images, updated once per discriminator step; the first step sets them. A plain dict for checkpoints."""

    def __init__(self, decay: float = 0.99) -> None:
        self.decay = float(decay)
        self.real = 0.0
        self.fake = 0.0
        self.updates = 0

    def update(self, mean_real: float, mean_fake: float) -> None:
        d = self.decay if self.updates else 0.0
        self.real = d * self.real + (1.0 - d) * float(mean_real)
        self.fake = d * self.fake + (1.0 - d) * float(mean_fake)
        self.updates += 1

    def state_dict(self) -> dict[str, float]:
        return {"real": self.real, "fake": self.fake, "updates": float(self.updates)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.real, self.fake, self.updates = float(state["real"]), float(state["fake"]), int(state["updates"])
