"""PixelRNN (van den Oord et al. 2016, "Pixel Recurrent Neural Networks"): Row LSTM and Diagonal BiLSTM.

``p(x) = prod_{i,j} p(R_ij | x_<ij) p(G_ij | x_<ij, R_ij) p(B_ij | x_<ij, R_ij, G_ij)``, a softmax over
the levels of every sub-pixel, so ``log_prob`` is exact (``-log p(x)`` in nats; bits/dim divides by
``D ln 2``). The network: a mask-A ``k x k`` convolution, ``num_layers`` residual LSTM layers (from
:mod:`genlight.nn.recurrent`), then ReLU, a mask-B 1x1 convolution, ReLU and a mask-B 1x1
convolution to ``C * L`` logits; colour channels are contiguous feature groups in every layer.

Sampling draws the whole batch at once and never recomputes more than one pixel column: the Row LSTM
carries each layer's ``(h, c)`` row by row (the state-to-state gates of a row are computed once, then
each pixel runs only its own column through the layers, once per colour channel); the Diagonal BiLSTM
runs its left-to-right direction pixel by pixel and its mirrored direction once per finished row (the
shifted output of row ``i - 1`` is all that row ``i`` needs from it). Either costs about ``C`` forward
passes' worth of arithmetic instead of ``C * H * W``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from genlight._compat import attached_trainer
from genlight.errors import IncompatibleDataError
from genlight.functional import check_image_shape, to_levels
from genlight.module import GenerativeModule
from genlight.nn.likelihoods import Categorical
from genlight.nn.masked import MaskedConv2d
from genlight.nn.recurrent import DiagonalBiLSTM, RowLSTM, lstm_cell
from genlight.nn.schedules import warmup_cosine_scheduler
from genlight.ranges import (
    Depth,
    Fraction,
    KernelSize,
    Levels,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    Size,
    check_arguments,
)
from genlight.registry import register_model

__all__ = ["DiagonalBiLSTMPixelRNN", "PixelRNN", "RowLSTMPixelRNN"]


class PixelRNN(GenerativeModule):
    """What both PixelRNNs share: first layer, output head, likelihood, training, optimiser.

    Subclasses build ``self.layers`` in :meth:`make_layer` and implement :meth:`generate`.
    """

    log_prob_is_exact = True
    ema_decay: ClassVar[float] = 0.995  # the digits recipes evaluate, sample and checkpoint EMA weights
    smoke_kwargs: ClassVar[dict[str, Any]] = {"hidden_channels": 6, "num_layers": 1, "head_channels": 6}  # RGB too

    def build(self) -> None:
        hp = self.hparams
        self.shape = check_image_shape(hp.image_shape, type(self).__name__)
        c = self.shape[0]
        for name in ("hidden_channels", "head_channels"):
            if hp[name] < c or hp[name] % c:
                raise IncompatibleDataError(
                    f"{type(self).__name__}: {name}={hp[name]} must be a positive multiple of the {c} image channels "
                    f"(one feature group per colour); use e.g. {name}={c * max(1, round(hp[name] / c))}"
                )
        if hp.first_kernel_size < 1 or hp.first_kernel_size % 2 == 0:
            raise ValueError(f"first_kernel_size must be odd (a centred mask-A kernel), got {hp.first_kernel_size}")
        if hp.num_levels < 2:
            raise IncompatibleDataError(f"{type(self).__name__} models discrete levels; got num_levels={hp.num_levels}")
        self.likelihood = Categorical(hp.num_levels)
        f = hp.hidden_channels
        self.first = MaskedConv2d(c, f, hp.first_kernel_size, c, "A")
        self.layers = nn.ModuleList(self.make_layer() for _ in range(hp.num_layers))
        self.head = nn.ModuleList(
            [
                MaskedConv2d(f, hp.head_channels, 1, c, "B"),
                MaskedConv2d(hp.head_channels, c * hp.num_levels, 1, c, "B"),
            ]
        )
        self.example_input_array = torch.zeros(2, *self.shape)

    def make_layer(self) -> nn.Module:
        raise NotImplementedError

    def apply_layer(self, layer: nn.Module, h: Tensor, inputs: Tensor) -> Tensor:
        """One recurrent layer on features ``h``; ``inputs`` is the scaled image."""
        return layer(h)

    # ------------------------------------------------------------------ model
    def scale(self, levels: Tensor) -> Tensor:
        """Integer levels -> network input in [-1, 1]."""
        return levels.float() * (2.0 / (self.hparams.num_levels - 1)) - 1.0

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(B, C * L, H, W)`` of every sub-pixel's conditional, ``x`` in [0, 1]."""
        return self.network(self.scale(to_levels(x, self.hparams.num_levels)))

    def network(self, inputs: Tensor) -> Tensor:
        """Logits ``(B, C * L, H, W)`` from scaled inputs ``(B, C, H, W)`` (differentiable: causality tests)."""
        h = self.first(inputs)
        for layer in self.layers:
            h = self.apply_layer(layer, h, inputs)
        return self.head[1](torch.relu(self.head[0](torch.relu(h))))

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """A frozen representation: the hidden maps after the middle recurrent layer (``ceil(num_layers /
        2)`` layers), averaged over positions, ``(B, hidden_channels)`` (middle layers, mean-pooled, as in
        Chen et al. 2020, "Generative Pretraining from Pixels")."""
        inputs = self.scale(to_levels(x, self.hparams.num_levels))
        h = self.first(inputs)  # (B, F, H, W)
        for layer in self.layers[: (len(self.layers) + 1) // 2]:
            h = self.apply_layer(layer, h, inputs)
        return h.mean(dim=(2, 3))  # (B, F)

    def head_at(self, h: Tensor) -> Tensor:
        """The head at one position: ``(B, F)`` -> ``(B, C, L)`` logits."""
        out = self.head[0].at(torch.relu(h)[..., None, None])
        out = self.head[1].at(torch.relu(out)[..., None, None])
        return out.view(len(h), self.shape[0], self.hparams.num_levels)

    def log_prob(self, x: Tensor) -> Tensor:
        """Exact ``log p(x)`` in nats, ``(B,)``."""
        self.check_log_prob_input(x)
        return self.likelihood.log_prob(self(x), x)

    @torch.inference_mode()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        """``n`` images drawn pixel by pixel (R, G, B inside a pixel), in [0, 1] on the level grid."""
        if y is not None:
            raise ValueError(f"{type(self).__name__} is unconditional; sample(n) takes no labels y")
        levels, _ = self.generate(n)
        return levels.float() / (self.hparams.num_levels - 1)

    def generate(self, n: int, teacher: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the network one sub-pixel at a time: ``(levels (n, C, H, W), logits (n, C, L, H, W))``,
        drawing each sub-pixel from its conditional, or reading it from ``teacher`` levels (then the
        logits equal :meth:`forward`'s: what the tests check)."""
        raise NotImplementedError

    def _draw(self, logits: Tensor, teacher: Tensor | None, index: tuple[int, int, int]) -> Tensor:
        """One sub-pixel's level: ``teacher[:, c, i, j]`` or a draw from ``softmax(logits)`` (Gumbel-max)."""
        if teacher is not None:
            return teacher[:, index[0], index[1], index[2]]
        u = torch.rand_like(logits, dtype=torch.float32).clamp_(1e-12, 1.0)
        return (logits.float() - torch.log(-torch.log(u))).argmax(-1)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = -self.log_prob(batch[0]).mean() / self.num_dims  # nats per dimension
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("val", self.log_prob(batch[0]))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("test", self.log_prob(batch[0]))

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        decay = [p for n, p in self.named_parameters() if p.dim() > 1]
        no_decay = [p for n, p in self.named_parameters() if p.dim() <= 1]
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": hp.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=hp.lr
        )
        if hp.lr_schedule == "constant":
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches)) if attached_trainer(self) is not None else 1
        # linear warm-up (at most half the run), then cosine to 0 over the rest
        sched = warmup_cosine_scheduler(opt, min(hp.warmup_steps, total // 2), total)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


@register_model("pixelrnn_row")
class RowLSTMPixelRNN(PixelRNN):
    """PixelRNN with Row LSTM layers (triangular receptive field above each pixel).

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: levels per sub-pixel (a softmax over them; 17 for digits, 256 for 8-bit, 2 binarised).
        hidden_channels: features and LSTM state per layer (a multiple of ``C``).
        num_layers: Row LSTM layers.
        kernel_size: width of the input-to-state and state-to-state row convolutions (odd).
        first_kernel_size: the mask-A first convolution (odd; 7 in the paper).
        head_channels: width of the 1x1 output layers (a multiple of ``C``).
        dropout: on the LSTM outputs, before each residual 1x1 convolution.
        lr: AdamW learning rate.
        weight_decay: AdamW's decoupled weight decay, on weight matrices only.
        lr_schedule: ``constant`` (with the family's EMA of weights: best on digits) or ``cosine``
            (linear warm-up, then cosine to 0 over ``max_epochs``).
        warmup_steps: warm-up optimizer steps of the cosine schedule.
    """

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        hidden_channels: Size = 64,
        num_layers: Depth = 2,
        kernel_size: KernelSize = 3,
        first_kernel_size: KernelSize = 7,
        head_channels: Size = 128,
        dropout: Fraction = 0.1,
        lr: PositiveFloat = 2e-3,
        weight_decay: NonNegativeFloat = 0.01,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        warmup_steps: NonNegativeInt = 50,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.build()

    def make_layer(self) -> nn.Module:
        hp = self.hparams
        return RowLSTM(hp.hidden_channels, self.shape[0], hp.kernel_size, hp.dropout)

    def generate(self, n: int, teacher: Tensor | None = None) -> tuple[Tensor, Tensor]:
        (c, height, width), levels_n = self.shape, self.hparams.num_levels
        k0, k = self.hparams.first_kernel_size, self.hparams.kernel_size
        p0, p = k0 // 2, k // 2
        f, dev = self.hparams.hidden_channels, self.device
        x_pad = torch.zeros(n, c, height + 2 * p0, width + 2 * p0, device=dev)  # scaled input, zero borders
        levels = torch.zeros(n, c, height, width, dtype=torch.long, device=dev)
        all_logits = torch.zeros(n, c, levels_n, height, width, device=dev)
        zeros = torch.zeros(n, f, width, device=dev)
        h_prev, c_prev = [zeros] * len(self.layers), [zeros] * len(self.layers)
        for i in range(height):
            row_gates = [layer.row_gates(h) for layer, h in zip(self.layers, h_prev)]  # (n, 4F, W) each
            row_in = [torch.zeros(n, f, 1, width + 2 * p, device=dev) for _ in self.layers]
            h_row = [torch.zeros(n, f, width, device=dev) for _ in self.layers]
            c_row = [torch.zeros(n, f, width, device=dev) for _ in self.layers]
            for j in range(width):
                for ch in range(c):
                    h = self.first.at(x_pad[:, :, i : i + k0, j : j + k0])  # (n, F)
                    for l, layer in enumerate(self.layers):
                        row_in[l][:, :, 0, j + p] = h
                        gates = layer.input_gates_at(row_in[l][..., j : j + k]) + row_gates[l][..., j]
                        h_row[l][..., j], c_row[l][..., j] = lstm_cell(gates, c_prev[l][..., j])
                        h = layer.residual_at(h, h_row[l][..., j])
                    logits = self.head_at(h)[:, ch]  # (n, L)
                    all_logits[:, ch, :, i, j] = logits
                    value = self._draw(logits, teacher, (ch, i, j))
                    levels[:, ch, i, j] = value
                    x_pad[:, ch, p0 + i, p0 + j] = self.scale(value)
            h_prev, c_prev = h_row, c_row
        return levels, all_logits


@register_model("pixelrnn_diag")
class DiagonalBiLSTMPixelRNN(PixelRNN):
    """PixelRNN with Diagonal BiLSTM layers (the whole context above and to the left of each pixel).

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule by the CLI.
        num_levels: levels per sub-pixel (a softmax over them; 17 for digits, 256 for 8-bit, 2 binarised).
        hidden_channels: features and LSTM state per direction per layer (a multiple of ``C``).
        num_layers: Diagonal BiLSTM layers.
        first_kernel_size: the mask-A first convolution (odd; 7 in the paper).
        head_channels: width of the 1x1 output layers (a multiple of ``C``).
        dropout: on the LSTM outputs, before each residual 1x1 convolution.
        lr: AdamW learning rate.
        weight_decay: AdamW's decoupled weight decay, on weight matrices only.
        lr_schedule: ``constant`` (with the family's EMA of weights: best on digits) or ``cosine``
            (linear warm-up, then cosine to 0 over ``max_epochs``).
        warmup_steps: warm-up optimizer steps of the cosine schedule.
    """

    def __init__(
        self,
        image_shape: tuple[int, ...] = (1, 8, 8),
        num_levels: Levels = 17,
        hidden_channels: Size = 32,
        num_layers: Depth = 2,
        first_kernel_size: KernelSize = 7,
        head_channels: Size = 128,
        dropout: Fraction = 0.1,
        lr: PositiveFloat = 2e-3,
        weight_decay: NonNegativeFloat = 0.01,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        warmup_steps: NonNegativeInt = 50,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.build()

    def make_layer(self) -> nn.Module:
        c = self.shape[0]
        return DiagonalBiLSTM(self.hparams.hidden_channels, c, self.hparams.dropout, context_channels=c)

    def apply_layer(self, layer: nn.Module, h: Tensor, inputs: Tensor) -> Tensor:
        return layer(h, inputs)

    def generate(self, n: int, teacher: Tensor | None = None) -> tuple[Tensor, Tensor]:
        (c, height, width), levels_n = self.shape, self.hparams.num_levels
        k0 = self.hparams.first_kernel_size
        p0 = k0 // 2
        f, dev, n_layers = self.hparams.hidden_channels, self.device, len(self.layers)
        x_pad = torch.zeros(n, c, height + 2 * p0, width + 2 * p0, device=dev)
        levels = torch.zeros(n, c, height, width, dtype=torch.long, device=dev)
        all_logits = torch.zeros(n, c, levels_n, height, width, device=dev)
        zeros_row, zeros_px = torch.zeros(n, f, width, device=dev), torch.zeros(n, f, device=dev)
        h_above = [zeros_row] * n_layers  # left-to-right h of row i - 1
        rev_above = [zeros_row] * n_layers  # mirrored-direction h of row i - 1 (= its shifted output at row i)
        for i in range(height):
            row_in = [torch.zeros(n, f, width, device=dev) for _ in range(n_layers)]
            h_row = [torch.zeros(n, f, width, device=dev) for _ in range(n_layers)]
            c_row = [torch.zeros(n, f, width, device=dev) for _ in range(n_layers)]
            for j in range(width):
                for ch in range(c):
                    h = self.first.at(x_pad[:, :, i : i + k0, j : j + k0])  # (n, F)
                    for l, layer in enumerate(self.layers):
                        row_in[l][..., j] = h
                        h_left, c_left = (h_row[l][..., j - 1], c_row[l][..., j - 1]) if j else (zeros_px, zeros_px)
                        gates = layer.input_gates(h, 0) + layer.state_gates(h_above[l][..., j], h_left, 0)
                        h_row[l][..., j], c_row[l][..., j] = lstm_cell(gates, c_left)
                        h = layer.residual_at(h, h_row[l][..., j] + rev_above[l][..., j])
                    logits = self.head_at(h)[:, ch]
                    all_logits[:, ch, :, i, j] = logits
                    value = self._draw(logits, teacher, (ch, i, j))
                    levels[:, ch, i, j] = value
                    x_pad[:, ch, p0 + i, p0 + j] = self.scale(value)
            for l, layer in enumerate(self.layers):  # the mirrored direction over the finished row, right to left
                image_row = x_pad[:, :, p0 + i, p0 : p0 + width]  # (n, C, W), the whole row now drawn
                gates_in = layer.input_gates(row_in[l], 1, image_row)  # (n, 4F, W)
                h_right = c_right = zeros_px
                rev_row = torch.zeros(n, f, width, device=dev)
                for j in reversed(range(width)):
                    gates = gates_in[..., j] + layer.state_gates(rev_above[l][..., j], h_right, 1)
                    h_right, c_right = lstm_cell(gates, c_right)
                    rev_row[..., j] = h_right
                rev_above[l] = rev_row
            h_above = h_row
        return levels, all_logits
