"""Small families that exist only in the test-suite, to prove the registry-wide tests fit every kind of
family with no per-family code in the test files: a two-optimizer GAN trained with manual
optimisation (and EMA of its generator), an exact flow on 2-D points, a class-conditional exact
density model, and a two-domain translator. Registered with the tag ``test`` by ``tests/conftest.py``.

Each declares its smoke test beside ``smoke_kwargs`` (``smoke_data``, ``smoke_trainer``); nothing in
``tests/test_all_models.py`` names them.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlight.functional import check_image_shape, to_levels

from genlight.module import GenerativeModule
from genlight.errors import IncompatibleDataError
from genlight.ranges import ClassCount, Levels, PositiveFloat, Size, check_arguments
from genlight.registry import register_model

__all__ = ["TestAffineFlow2D", "TestConditionalCategorical", "TestMLPGAN", "TestTranslator"]


@register_model("test_mlp_gan", tags=("test",))
class TestMLPGAN(GenerativeModule):
    """MLP GAN with the non-saturating loss on logits; G and D each have an optimizer (manual
    optimisation, so ``global_step`` moves twice per batch); EMA of the generator by default.

    Args:
        image_shape: ``(C, H, W)`` images or ``(d,)`` points; linked from the datamodule.
        latent_dim: size of ``z ~ N(0, I)``.
        hidden: width of the hidden layer of G and D.
        lr: Adam learning rate of both.
    """

    __test__ = False  # not a pytest class
    smoke_kwargs: ClassVar[dict[str, Any]] = {"latent_dim": 4, "hidden": 16}
    ema_decay: ClassVar[float] = 0.9
    ema_target: ClassVar[str | None] = "generator"
    monitor: ClassVar[str | None] = ""  # no validation metric: checkpoints keep only last.ckpt

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), latent_dim: Size = 8, hidden: Size = 64, lr: PositiveFloat = 2e-4) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.automatic_optimization = False
        shape = check_image_shape(image_shape, type(self).__name__)
        d = math.prod(shape)
        self.generator = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, d))
        self.discriminator = nn.Sequential(nn.Linear(d, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def sample_latent(self, n: int) -> Tensor:
        return torch.randn(n, self.hparams.latent_dim, device=self.device)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.generator(z)).view(-1, *self.hparams.image_shape)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return self.decode(self.sample_latent(n))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        x = batch[0].flatten(1)
        fake = self.decode(self.sample_latent(len(x))).flatten(1)
        with self.toggled_optimizer(opt_d):
            d_loss = F.softplus(-self.discriminator(x)).mean() + F.softplus(self.discriminator(fake.detach())).mean()
            opt_d.zero_grad()
            self.manual_backward(d_loss)
            opt_d.step()
        with self.toggled_optimizer(opt_g):
            g_loss = F.softplus(-self.discriminator(fake)).mean()
            opt_g.zero_grad()
            self.manual_backward(g_loss)
            opt_g.step()
        self.log_train(loss=g_loss + d_loss, g_loss=g_loss, d_loss=d_loss, batch_size=len(x), prog_bar=("g_loss", "d_loss"))

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        betas = (0.5, 0.999)
        return [
            torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr, betas=betas),
        ]


@register_model("test_affine_flow2d", tags=("test",))
class TestAffineFlow2D(GenerativeModule):
    """Exact density on 2-D points: ``x = mu + exp(s) * z``, ``z ~ N(0, I)``, with an extra counter
    saved by an ``on_save_checkpoint`` that does not call ``super()`` (as an EBM saving its replay
    buffer might): ``load_model`` must still find the class.

    Args:
        image_shape: ``(2,)`` points; linked from the datamodule.
        lr: Adam learning rate.
    """

    __test__ = False
    smoke_data: ClassVar[str] = "toy2d"
    smoke_data_kwargs: ClassVar[dict[str, Any]] = {"dataset": "eight_gaussians"}
    log_prob_is_exact = True

    def __init__(self, image_shape: tuple[int, ...] = (2,), lr: PositiveFloat = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        (self.dim,) = check_image_shape(image_shape, type(self).__name__, ndim=1)
        self.mu = nn.Parameter(torch.zeros(self.dim))
        self.log_scale = nn.Parameter(torch.zeros(self.dim))
        self.saves = 0

    def encode(self, x: Tensor) -> Tensor:
        return (x - self.mu) * torch.exp(-self.log_scale)

    def decode(self, z: Tensor) -> Tensor:
        return self.mu + torch.exp(self.log_scale) * z

    def sample_latent(self, n: int) -> Tensor:
        return torch.randn(n, self.dim, device=self.device)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return self.decode(self.sample_latent(n))

    def log_prob(self, x: Tensor) -> Tensor:
        self.check_log_prob_input(x)
        z = self.encode(x.float())
        return -0.5 * (z.pow(2) + math.log(2 * math.pi)).sum(1) - self.log_scale.sum()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = -self.log_prob(batch[0]).mean()
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("val", self.log_prob(batch[0]))

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:  # no super(): on purpose
        self.saves += 1
        checkpoint["test_flow_saves"] = self.saves

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.saves = checkpoint.get("test_flow_saves", 0)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


@register_model("test_conditional_categorical", tags=("test",))
class TestConditionalCategorical(GenerativeModule):
    """Class-conditional independent categorical pixels, ``p(x|y) = prod_i Cat(x_i; softmax(W_y,i))``,
    with a uniform class prior: ``log_prob(x) = logsumexp_y log p(x|y) - log K`` is exact; ``sample(n, y=)``.

    Args:
        image_shape: ``(C, H, W)``; linked from the datamodule.
        num_levels: levels per pixel; linked.
        num_classes: classes of the data; linked.
        lr: Adam learning rate.
    """

    __test__ = False
    log_prob_is_exact = True

    def __init__(
        self, image_shape: tuple[int, ...] = (1, 8, 8), num_levels: Levels = 17, num_classes: ClassCount = 10, lr: PositiveFloat = 0.05
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        self.shape = check_image_shape(image_shape, type(self).__name__)
        if num_classes < 2:
            raise IncompatibleDataError(
                f"{type(self).__name__} needs labelled data (num_classes >= 2), got num_classes={num_classes}; "
                "pick a labelled datamodule such as digits"
            )
        self.num_classes = num_classes
        self.logits = nn.Parameter(torch.zeros(num_classes, math.prod(self.shape), num_levels))

    def class_log_probs(self, x: Tensor) -> Tensor:
        """``(B, K)``: ``log p(x | y=k)`` for every class."""
        levels = to_levels(x, self.hparams.num_levels).flatten(1)  # (B, D)
        log_p = self.logits.log_softmax(-1)  # (K, D, L)
        index = levels[:, None, :, None].expand(-1, self.num_classes, -1, 1)
        return log_p[None].expand(len(x), -1, -1, -1).gather(-1, index).squeeze(-1).sum(-1)

    def log_prob(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        self.check_log_prob_input(x)
        per_class = self.class_log_probs(x)
        if y is not None:
            return per_class.gather(1, y.view(-1, 1)).squeeze(1)
        return torch.logsumexp(per_class, 1) - math.log(self.num_classes)

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        if y is None:
            y = torch.randint(self.num_classes, (n,), device=self.device)
        probs = self.logits[y].softmax(-1)  # (n, D, L)
        levels = torch.multinomial(probs.flatten(0, 1), 1).view(n, *self.shape)
        return levels.float() / (self.hparams.num_levels - 1)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = -self.log_prob(batch[0], batch[1]).mean()  # (x, y), and any further items ignored
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log_density("val", self.log_prob(batch[0]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


@register_model("test_translator", tags=("test",))
class TestTranslator(GenerativeModule):
    """Two 1x1-conv maps between domains A and B trained with a cycle loss only; ``translate(x, "a2b")``.
    Trains on ``(x_a, x_b)`` batches of ``unpaired_folders`` (refuses labelled batches).

    Args:
        image_shape: ``(C, H, W)`` of both domains; linked from the datamodule.
        lr: Adam learning rate.
    """

    __test__ = False
    smoke_data: ClassVar[str] = "unpaired_folders"
    batch_kinds: ClassVar[tuple[str, ...]] = ("unpaired",)

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), lr: PositiveFloat = 1e-2) -> None:
        super().__init__()
        self.save_hyperparameters()
        check_arguments(self, self.hparams)
        c = check_image_shape(image_shape, type(self).__name__)[0]
        self.a2b = nn.Conv2d(c, c, 1)
        self.b2a = nn.Conv2d(c, c, 1)

    def translate(self, x: Tensor, direction: str) -> Tensor:
        if direction not in ("a2b", "b2a"):
            raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
        return torch.sigmoid((self.a2b if direction == "a2b" else self.b2a)(x))

    def cycle_loss(self, x_a: Tensor, x_b: Tensor) -> Tensor:
        back_a = self.translate(self.translate(x_a, "a2b"), "b2a")
        back_b = self.translate(self.translate(x_b, "b2a"), "a2b")
        return (back_a - x_a).abs().mean() + (back_b - x_b).abs().mean()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self.cycle_loss(*batch)
        self.log_train(loss=loss, batch_size=len(batch[0]))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.log("val/loss", self.cycle_loss(*batch), prog_bar=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
