"""Latent vector arithmetic (genlight.latent_arithmetic): exact on a generator whose decode is linear."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from genlight.latent_arithmetic import arithmetic_grid, latent_arithmetic, latent_direction
from genlight.types import LatentGenerator


class LinearGenerator(nn.Module):
    """``decode(z) = W z + b`` as 1x4x4 images (+ a label offset when conditional)."""

    def __init__(self, latent_dim: int = 6, conditional: bool = False) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.linear = nn.Linear(latent_dim, 16)
        self.label_offset = nn.Embedding(3, 16) if conditional else None

    def sample_latent(self, n: int) -> Tensor:
        return torch.randn(n, self.latent_dim)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        out = self.linear(z)
        if self.label_offset is not None:
            out = out + self.label_offset(y)
        return out.view(-1, 1, 4, 4)


def test_direction_is_the_difference_of_group_means() -> None:
    p1, p2, n1 = torch.randn(5, 6), torch.randn(3, 6), torch.randn(7, 6)
    torch.testing.assert_close(latent_direction([p1, p2], [n1]), p1.mean(0) + p2.mean(0) - n1.mean(0))
    torch.testing.assert_close(latent_direction([], [n1]), -n1.mean(0))
    with pytest.raises(ValueError, match="group"):
        latent_direction([], [])
    with pytest.raises(ValueError, match="shape"):
        latent_direction([p1], [torch.randn(2, 5)])


def test_arithmetic_is_exact_for_a_linear_decoder() -> None:
    model = LinearGenerator()
    assert isinstance(model, LatentGenerator)
    pos, neg, base = model.sample_latent(8), model.sample_latent(4), model.sample_latent(3)
    scales = (0.0, 0.5, 1.0, 2.0)
    out = latent_arithmetic(model, [pos], [neg], base, scales)
    assert out.shape == (3, 4, 1, 4, 4)
    torch.testing.assert_close(out[:, 0], model.decode(base))  # s = 0: the base images
    # linear decode: decode(z + s d) = decode(z) + s W d, and W d = mean(decode(P)) - mean(decode(N))
    shift = model.decode(pos).mean(0) - model.decode(neg).mean(0)
    for i, s in enumerate(scales):
        torch.testing.assert_close(out[:, i], model.decode(base) + s * shift, atol=1e-5, rtol=1e-5)


def test_conditional_decode_gets_each_base_codes_label() -> None:
    model = LinearGenerator(conditional=True)
    pos, neg, base = model.sample_latent(4), model.sample_latent(4), model.sample_latent(2)
    y = torch.tensor([2, 0])
    out = latent_arithmetic(model, [pos], [neg], base, (0.0, 1.0), y=y)
    torch.testing.assert_close(out[:, 0], model.decode(base, y=y))
    torch.testing.assert_close(out[:, 1] - out[:, 0], (model.linear.weight @ (pos.mean(0) - neg.mean(0))).view(1, 1, 4, 4).expand(2, 1, 4, 4),
                               atol=1e-5, rtol=1e-5)  # fmt: skip


def test_grid_and_errors() -> None:
    model = LinearGenerator()
    out = latent_arithmetic(model, [model.sample_latent(3)], [], model.sample_latent(2), (0.0, 1.0, 2.0)).sigmoid()
    grid = arithmetic_grid(out, min_cell=8)
    assert grid.shape[0] == 3 and grid.shape[1] > 2 * 8 and grid.shape[2] > 3 * 8
    with pytest.raises(TypeError, match="LatentGenerator"):
        latent_arithmetic(nn.Linear(2, 2), [torch.randn(2, 2)], [], torch.randn(1, 2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        latent_arithmetic(model, [torch.randn(2, 5)], [], model.sample_latent(2))
    with pytest.raises(ValueError, match="scales"):
        arithmetic_grid(out[0])
