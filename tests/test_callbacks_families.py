"""Image and metric callbacks for every family: 2-D scatter plots, conditional labels, latent walks of
generators without an encoder, translation grids, Langevin samplers, slow samplers, readable grids.

The tiny models below are test-only ``GenerativeModule`` subclasses, kept out of the registry (no
``@register_model``) so the registry-wide tests never see them.
"""

from __future__ import annotations

import logging
import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger
from PIL import Image
from torch import Tensor, nn

from genlight import create_datamodule
from genlight.module import GenerativeModule
from genlight.callbacks import (
    FIDCallback,
    LatentInterpolation,
    Reconstructions,
    SampleGrid,
    TranslationGrid,
    image_grid,
    log_images,
)
from genlight.callbacks.base import first_batch
from genlight.callbacks.image_logging import MIN_CELL
from genlight.datamodules.unpaired_folders import UnpairedFoldersDataModule
from genlight.types import Autoencoder, ConditionalSampler, LatentGenerator, Sampler, Translator, is_conditional
from tests.helpers import cpu_trainer, digits_datamodule

BLUE, GREY = (31, 100, 200), (175, 175, 175)  # the scatter plot's sample and data colours


# ------------------------------------------------------------------------------------ toy families
class ToyModule(GenerativeModule):
    """One scalar parameter pulled to 0.5: a training step, a validation step, an optimiser."""

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8)) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.image_shape = tuple(image_shape)
        self.w = nn.Parameter(torch.zeros(()))

    def toy_loss(self) -> Tensor:
        return (self.w - 0.5) ** 2

    def training_step(self, batch: object, batch_idx: int) -> Tensor:
        loss = self.toy_loss()
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: object, batch_idx: int) -> None:
        self.log("val/loss", self.toy_loss())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


class ToyGaussian2D(ToyModule):
    """A diagonal Gaussian on 2-D points, fitted by maximum likelihood: a Sampler and LatentGenerator."""

    def __init__(self, image_shape: tuple[int, ...] = (2,)) -> None:
        super().__init__(image_shape)
        self.mean = nn.Parameter(torch.zeros(2))
        self.log_std = nn.Parameter(torch.zeros(2))

    def toy_loss(self, x: Tensor | None = None) -> Tensor:
        if x is None:
            return self.log_std.sum()
        return (0.5 * ((x - self.mean) / self.log_std.exp()).pow(2) + self.log_std).sum(1).mean()

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.toy_loss(batch[0])

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=0.05)

    def sample_latent(self, n: int) -> Tensor:
        return torch.randn(n, 2, device=self.device)

    def decode(self, z: Tensor) -> Tensor:
        return self.mean + self.log_std.exp() * z

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return self.decode(self.sample_latent(n))


class ConditionalAE(ToyModule):
    """A linear conditional autoencoder (and sampler) on 8x8 digits that records the labels it gets."""

    num_classes = 10

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), latent_dim: int = 3) -> None:
        super().__init__(image_shape)
        self.enc = nn.Linear(64, latent_dim)
        self.dec = nn.Linear(latent_dim, 64)
        self.embed = nn.Embedding(10, latent_dim)
        self.latent_dim = latent_dim
        self.seen: dict[str, list[Tensor | None]] = {"encode": [], "decode": [], "sample": []}

    def encode(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        self.seen["encode"].append(None if y is None else y.detach().cpu())
        z = self.enc(x.flatten(1))
        return z if y is None else z - self.embed(y)

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        self.seen["decode"].append(None if y is None else y.detach().cpu())
        h = z if y is None else z + self.embed(y)
        return torch.sigmoid(self.dec(h)).view(-1, 1, 8, 8)

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        self.seen["sample"].append(None if y is None else y.detach().cpu())
        if y is None:
            raise ValueError("ConditionalAE needs labels y")
        return torch.rand(n, 1, 8, 8, device=self.device) * 0.1 + (y.float() / 10).view(-1, 1, 1, 1)


class ToyLatentGenerator(ToyModule):
    """A generator from a 4-d Gaussian prior, with no encoder (like a GAN)."""

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8)) -> None:
        super().__init__(image_shape)
        self.net = nn.Linear(4, 64)

    def sample_latent(self, n: int) -> Tensor:
        return torch.randn(n, 4, device=self.device)

    def decode(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.net(z)).view(-1, 1, 8, 8)

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return self.decode(self.sample_latent(n))


class ConditionalLatentGenerator(ToyLatentGenerator):
    """A conditional generator (like a cGAN): ``decode(z, y=labels)``, recording the labels."""

    num_classes = 10

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8)) -> None:
        super().__init__(image_shape)
        self.embed = nn.Embedding(10, 4)
        self.decoded: list[tuple[Tensor, Tensor | None]] = []

    def decode(self, z: Tensor, y: Tensor | None = None) -> Tensor:
        self.decoded.append((z.detach().cpu(), None if y is None else y.detach().cpu()))
        return torch.sigmoid(self.net(z if y is None else z + self.embed(y))).view(-1, 1, 8, 8)

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return self.decode(self.sample_latent(n), y=y)


class ToyTranslator(ToyModule):
    """Translates by inverting intensities, both ways (digits <-> inverted digits)."""

    def translate(self, x: Tensor, direction: str) -> Tensor:
        if direction not in ("a2b", "b2a"):
            raise ValueError(direction)
        return 1.0 - x


class LangevinSampler(ToyModule):
    """Samples by Langevin dynamics on ``E(x) = |x - target|^2 / 2``: needs ``torch.autograd.grad``."""

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), steps: int = 5) -> None:
        super().__init__(image_shape)
        self.target = nn.Parameter(torch.full(tuple(image_shape), 0.5))
        self.steps = steps
        self.gradient_steps = 0

    def energy(self, x: Tensor) -> Tensor:
        return 0.5 * (x - self.target).pow(2).flatten(1).sum(1)

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        x = torch.rand(n, *self.image_shape, device=self.device)
        for _ in range(self.steps):
            with torch.enable_grad():
                x = x.detach().requires_grad_(True)
                (grad,) = torch.autograd.grad(self.energy(x).sum(), x)
            x = x - 0.2 * grad + 0.01 * torch.randn_like(x)
            self.gradient_steps += 1
        return x.detach().clamp(0, 1)


class FakeClock:
    """A clock that moves only when told to: stands in for ``time.perf_counter`` in the time budget,
    so the budget's decisions are the same on an idle machine and a loaded one."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SlowSampler(ToyModule):
    """A sampler whose draws take ``delay`` seconds and whose training steps take ``step_seconds``, on
    its fake :attr:`clock` (a stand-in for DDPM or PixelRNN); :meth:`timing` hands callbacks that clock."""

    def __init__(self, image_shape: tuple[int, ...] = (1, 8, 8), delay: float = 0.5, step_seconds: float = 1.0) -> None:
        super().__init__(image_shape)
        self.delay, self.step_seconds = delay, step_seconds
        self.clock = FakeClock()
        self.calls = 0

    def timing(self, *callbacks):
        for callback in callbacks:
            callback.clock = self.clock
        return list(callbacks)

    def training_step(self, batch: object, batch_idx: int) -> Tensor:
        self.clock.advance(self.step_seconds)
        return super().training_step(batch, batch_idx)

    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        self.calls += 1
        self.clock.advance(self.delay)
        return torch.rand(n, *self.image_shape, device=self.device)


def test_the_toy_families_have_the_capabilities_they_stand_in_for():
    assert isinstance(ToyGaussian2D(), Sampler) and isinstance(ToyGaussian2D(), LatentGenerator)
    assert isinstance(ConditionalAE(), Autoencoder) and is_conditional(ConditionalAE())
    generator = ToyLatentGenerator()
    assert isinstance(generator, LatentGenerator) and not isinstance(generator, Autoencoder)
    assert is_conditional(ConditionalLatentGenerator()) and isinstance(ConditionalAE(), ConditionalSampler)
    assert isinstance(ToyTranslator(), Translator)


# ------------------------------------------------------------------------------------ helpers
def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def count_colour(array: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((array == np.array(colour, dtype=np.uint8)).all(-1).sum())


def grid_scale(size: tuple[int, int], cols: int, rows: int, h: int = 8, w: int = 8) -> int:
    """The whole-number enlargement of ``rows x cols`` cells of ``h x w`` with 1-px separators."""
    width, height = size
    scale = (width - 1) / cols - 1
    assert scale == int(scale) and scale % w == 0, size
    assert height == rows * (h * scale // w + 1) + 1, size
    return int(scale) // w


def fit(model, dm, root, callbacks, **kwargs):
    defaults = dict(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=CSVLogger(str(root)))
    trainer = cpu_trainer(str(root), callbacks=callbacks, **{**defaults, **kwargs})
    trainer.fit(model, dm)
    return trainer


# ------------------------------------------------------------------------------------ readable grids
@pytest.mark.parametrize(("side", "scale"), [(8, 4), (28, 2), (32, 1), (64, 1)])
def test_image_grid_cells_are_at_least_32_px(side, scale):
    grid = image_grid(torch.rand(16, 3, side, side), nrow=8)
    cell = side * scale
    assert cell >= MIN_CELL
    assert grid.shape == (3, 2 * (cell + 1) + 1, 8 * (cell + 1) + 1)
    one = image_grid(torch.rand(1, 1, 4, 4), min_width=0)  # only the cell rule: 4 px -> 32 px
    assert one.shape == (3, 32, 32)


def test_sample_grid_png_of_8x8_digits_has_32_px_cells(tmp_path):
    callback = SampleGrid(num_samples=16, nrow=8)
    fit(ToyLatentGenerator(), digits_datamodule(), tmp_path, [callback])
    scale = grid_scale(Image.open(callback.last_path).size, cols=8, rows=2)
    assert 8 * scale >= 32


def test_log_images_reaches_wandb_and_tensorboard(tmp_path):
    class FakeWandb(WandbLogger):  # records log_image calls; never starts a run
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        def log_image(self, key, images, step=None, **kwargs) -> None:
            self.calls.append((key, images, step, kwargs))

    class FakeTensorBoard(TensorBoardLogger):
        added: list[tuple] = []

        @property
        def experiment(self):
            return SimpleNamespace(add_image=lambda key, grid, global_step: self.added.append((key, grid)))

    wandb, tensorboard = FakeWandb(), FakeTensorBoard(str(tmp_path))
    trainer = SimpleNamespace(is_global_zero=True, loggers=[tensorboard, wandb], current_epoch=2, global_step=7,
                              default_root_dir=str(tmp_path), datamodule=None)  # fmt: skip
    for key, data in (("samples", torch.rand(4, 1, 8, 8)), ("points", torch.randn(300, 2))):
        path = log_images(trainer, key, data, caption="epoch 2")
        assert path.is_file() and path.parent == tmp_path / "lightning_logs" / "version_0" / "images"
        png = pixels(path)
        ((wkey, (array,), step, _),), (tkey, grid) = wandb.calls[-1:], tensorboard.added[-1]
        assert wkey == tkey == key and step == 7
        assert np.array_equal(array, png) and grid.shape == (3, *png.shape[:2])  # the same picture
    assert count_colour(png, BLUE) > 100  # the points were drawn


# ------------------------------------------------------------------------------------ 2-D data
def test_toy2d_samples_are_a_scatter_plot_over_the_data(tmp_path):
    dm = create_datamodule("toy2d", dataset="eight_gaussians", num_samples=1000, batch_size=100)
    samples, interp = SampleGrid(num_points=500), LatentInterpolation(num_pairs=3, num_steps=5)
    fit(ToyGaussian2D(), dm, tmp_path, [samples, interp], max_epochs=2, limit_train_batches=5)
    assert samples.last_path.is_file() and samples.last_path.suffix == ".png"
    png = pixels(samples.last_path)
    assert png.shape == (400, 400, 3)
    assert count_colour(png, BLUE) > 500  # samples (many dots of ~12 px each, some overlapping)
    assert count_colour(png, GREY) > 500  # the real data under them
    assert (png < 250).any(-1).mean() > 0.05  # not blank
    epochs = sorted(p.name for p in samples.last_path.parent.glob("samples_*.png"))
    assert len(epochs) == 2
    for key in ("interpolations", "traversals"):  # latent walks of 2-D points: scatter plots too
        assert pixels(interp.last_paths[key]).shape == (400, 400, 3)


# ------------------------------------------------------------------------------------ conditional models
def test_conditional_autoencoder_gets_the_labels_in_reconstructions_and_interpolations(tmp_path):
    dm = digits_datamodule()
    model = ConditionalAE()
    recon, interp = Reconstructions(num_images=8), LatentInterpolation(num_pairs=3, num_steps=4, traverse_dims=2)
    trainer = fit(model, dm, tmp_path, [recon, interp])
    _, labels = first_batch(trainer, 8, "val")
    assert labels.min() >= 0 and len(labels.unique()) > 1
    seen_encode, seen_decode = model.seen["encode"], model.seen["decode"]
    assert torch.equal(seen_encode[0], labels) and torch.equal(seen_decode[0], labels)  # reconstructions
    assert torch.equal(seen_encode[1], labels[:6])  # interpolation codes: the first 2 * 3 images
    pairs_rows = seen_decode[1]  # 3 rows x 4 steps, one label per row: the first image's of the pair
    assert torch.equal(pairs_rows, labels[:3].repeat_interleave(4))
    assert torch.equal(seen_decode[2], labels[:1].repeat(2 * 4))  # traversals around the first code
    assert grid_scale(Image.open(recon.last_path).size, cols=8, rows=2) * 8 >= 32


def test_fid_draws_class_balanced_labels_the_same_on_any_number_of_ranks():
    model = ConditionalAE()
    callback = FIDCallback(num_samples=95, batch_size=20, every_n_epochs=1)

    def labels(world_size: int) -> tuple[Tensor, Tensor, Tensor]:
        model.seen["sample"].clear()
        batches = [b for rank in range(world_size) for b in callback.generate(model, rank, world_size)]
        index = torch.cat([i for i, _ in batches])
        order = index.argsort()
        images = torch.cat([x for _, x in batches])[order]
        return index[order], torch.cat(model.seen["sample"])[order], images

    index, y, images = labels(1)
    assert torch.equal(index, torch.arange(95))
    assert torch.equal(y, torch.arange(95) % 10)
    counts = torch.bincount(y, minlength=10)
    assert counts.max() - counts.min() <= 1  # balanced: 9 or 10 of every class
    assert torch.allclose(images.mean((1, 2, 3)), y.float() / 10 + 0.05, atol=0.02)  # y reached sample()
    index2, y2, images2 = labels(3)  # three ranks: the same labels and the same images
    assert torch.equal(index2, index) and torch.equal(y2, y) and torch.equal(images2, images)


def test_unconditional_fid_samples_get_no_labels():
    model = LangevinSampler(steps=1)
    callback = FIDCallback(num_samples=10, batch_size=5)
    assert [x.shape for _, x in callback.generate(model)] == [(5, 1, 8, 8)] * 2


# ------------------------------------------------------------------------------------ latent generators
def test_latent_generator_without_encoder_gets_interpolations_and_traversals(tmp_path):
    model = ConditionalLatentGenerator()
    interp = LatentInterpolation(num_pairs=3, num_steps=5, traverse_dims=2, seed=7)
    fit(model, digits_datamodule(), tmp_path, [interp])
    sizes = {k: Image.open(p).size for k, p in interp.last_paths.items()}
    assert grid_scale(sizes["interpolations"], cols=5, rows=3) * 8 >= 32
    assert grid_scale(sizes["traversals"], cols=5, rows=2) * 8 >= 32
    (z_interp, y_interp), (z_trav, y_trav) = model.decoded[-2:]
    assert torch.equal(y_interp, torch.arange(3).repeat_interleave(5))  # one label per row: row % classes
    assert torch.equal(y_trav, torch.zeros(10, dtype=torch.long))
    offsets = z_trav.view(2, 5, 4) - z_trav.view(2, 5, 4)[:, 2:3]  # traversals move one dimension each
    assert torch.allclose(offsets[0, :, 1:], torch.zeros(5, 3))
    assert torch.allclose(offsets[1, :, [0, 2, 3]], torch.zeros(5, 3))
    assert torch.allclose(offsets[0, :, 0], torch.linspace(-3, 3, 5), atol=1e-5)

    # seeded prior draws: the same codes at every epoch, the global RNG untouched
    rng = torch.get_rng_state()
    z1, _ = interp.codes(None, model)
    z2, _ = interp.codes(None, model)
    assert torch.equal(z1, z2) and torch.equal(rng, torch.get_rng_state())
    assert torch.allclose(z_interp.view(3, 5, 4)[:, 0], z1[:3], atol=1e-5)  # paths start at the prior codes
    plain = ToyLatentGenerator()  # unconditional: decode(z) alone
    interpolations, traversals = interp.draw(plain, *interp.codes(None, plain))
    assert interpolations.shape == (15, 1, 8, 8) and traversals.shape == (10, 1, 8, 8)


# ------------------------------------------------------------------------------------ translators
def test_translation_grid_shows_x_translation_and_round_trip(tmp_path):
    dm = UnpairedFoldersDataModule.smoke(tmp_path / "data")
    callback = TranslationGrid(num_images=8)
    trainer = fit(ToyTranslator(), dm, tmp_path, [callback])
    x_a, x_b = first_batch(trainer, 8, "val")
    n = len(x_a)
    assert n >= 2 and x_b.shape == x_a.shape
    grid = callback.draw(ToyTranslator(), x_a, x_b)
    assert grid.shape == (6 * n, 1, 8, 8)
    assert torch.allclose(grid[:n], x_a) and torch.allclose(grid[n : 2 * n], 1 - x_a)  # x, a2b(x)
    assert torch.allclose(grid[2 * n : 3 * n], x_a)  # b2a(a2b(x)): the round trip
    assert torch.allclose(grid[3 * n : 4 * n], x_b) and torch.allclose(grid[4 * n : 5 * n], 1 - x_b)
    width, height = Image.open(callback.last_path).size  # row labels drawn left of the grid widen it
    assert (height - 1) % 6 == 0 and (height - 1) // 6 - 1 >= 32 and width > n * 33 + 20
    assert callback.draw(ToyTranslator(), x_a).shape == (3 * n, 1, 8, 8)  # labels or no B: three rows


def test_callbacks_skip_a_translator_for_what_it_lacks(tmp_path, caplog):
    callbacks = [SampleGrid(), Reconstructions(), LatentInterpolation(), TranslationGrid()]
    with caplog.at_level(logging.INFO):
        fit(ToyGaussian2D(), create_datamodule("toy2d", num_samples=200, batch_size=50), tmp_path, callbacks)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("TranslationGrid")]
    assert lines == ["TranslationGrid: ToyGaussian2D has no translate(x, direction); skipped"]
    assert callbacks[3].last_path is None


# ------------------------------------------------------------------------------------ Langevin dynamics
def test_langevin_sampler_works_in_sample_grid_and_fid_during_fit(tmp_path):
    model = LangevinSampler()
    grid = SampleGrid(num_samples=16)
    fid = FIDCallback(metrics=["fid"], num_samples=100, batch_size=50, every_n_epochs=1, cache_dir=str(tmp_path / "c"))
    fit(model, digits_datamodule(), tmp_path, [grid, fid], max_epochs=2, limit_val_batches=1)
    assert grid.last_path.is_file()
    assert math.isfinite(fid.last_results["val/fid_digits"])
    assert model.gradient_steps == 2 * 5 + 2 * 2 * 5  # 2 grids + 2 FID evaluations of 2 chunks, 5 steps each
    assert model.training


# ------------------------------------------------------------------------------------ time budget
# The budget reads the model's fake clock: a training step takes 1 s, a draw 0.5 s, on any machine.
def test_slow_sampler_skips_due_epochs_over_the_time_budget_but_draws_the_last(tmp_path, caplog):
    model = SlowSampler(delay=0.5, step_seconds=1.0)
    callback = SampleGrid(num_samples=4, max_time_fraction=0.1)  # skips while training took < 9.5 s
    with caplog.at_level(logging.INFO):
        fit(model, digits_datamodule(), tmp_path, model.timing(callback), max_epochs=6, limit_train_batches=1,
            limit_val_batches=0)  # fmt: skip
    assert model.calls == 2  # the first due epoch (to measure) and the last
    assert callback.skipped_epochs == [1, 2, 3, 4]
    names = sorted(p.name for p in callback.last_path.parent.glob("samples_*.png"))
    assert [n.split("_")[1] for n in names] == ["epoch000", "epoch005"]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("SampleGrid: skipped")]
    assert len(lines) == 1 and "[1, 2, 3, 4]" in lines[0] and "10%" in lines[0]  # logged once, with why
    assert callback.draw_seconds == 1.0  # two draws of 0.5 s
    # with training steps of 10 s, a 0.5 s draw fits in 10% from the second epoch on: nothing skipped
    patient = SlowSampler(delay=0.5, step_seconds=10.0)
    again = SampleGrid(num_samples=4, max_time_fraction=0.1)
    fit(patient, digits_datamodule(), tmp_path / "b", patient.timing(again), max_epochs=6, limit_train_batches=1,
        limit_val_batches=0)  # fmt: skip
    assert patient.calls == 6 and again.skipped_epochs == []


def test_without_a_budget_or_with_a_fast_sampler_every_due_epoch_draws(tmp_path):
    slow = SlowSampler(delay=5.0)  # far over any budget
    unbounded = SampleGrid(num_samples=4, max_time_fraction=None)
    quick = dict(max_epochs=3, limit_train_batches=1, limit_val_batches=0)
    fit(slow, digits_datamodule(), tmp_path / "a", slow.timing(unbounded), **quick)
    assert slow.calls == 3 and unbounded.skipped_epochs == []
    fast = SampleGrid(num_samples=4, every_n_epochs=2)
    fit(ToyLatentGenerator(), digits_datamodule(), tmp_path / "b", [fast], max_epochs=4, limit_train_batches=1)
    names = sorted(p.name.split("_")[1] for p in fast.last_path.parent.glob("samples_*.png"))
    assert names == ["epoch001", "epoch003"] and fast.skipped_epochs == []
    with pytest.raises(ValueError, match="max_time_fraction"):
        SampleGrid(max_time_fraction=0.0)


def test_fid_time_budget_counts_only_sampling_and_skips_slow_epochs(tmp_path):
    model = SlowSampler(delay=0.5)
    fid = FIDCallback(metrics=["fid"], num_samples=20, batch_size=20, every_n_epochs=1, cache_dir=str(tmp_path / "c"))
    fid.max_time_fraction = 0.01  # FIDCallback keeps PeriodicCallback's default (0.25) unless set
    extractor_calls = []

    def slow_extractor(module, args) -> None:  # every extractor call (reference pass, samples) takes 0.25 s
        extractor_calls.append(1)
        model.clock.advance(0.25)

    fid.extractor(torch.device("cpu")).register_forward_pre_hook(slow_extractor)
    fit(model, digits_datamodule(), tmp_path, model.timing(fid), max_epochs=4, limit_train_batches=1,
        limit_val_batches=1)  # fmt: skip
    assert model.calls == 2 and fid.skipped_epochs == [1, 2]
    assert len(extractor_calls) > 2  # the reference pass and the two evaluations moved the clock ...
    assert fid.draw_seconds == 1.0  # ... but only the two draws count


def test_cli_sample_grid_takes_the_new_arguments():
    from genlight.cli import GenlightCLI

    cli = GenlightCLI(
        args=["--model", "vae", "--data", "digits",
              "--samples.max_time_fraction", "0.5", "--samples.num_points", "300"],  # fmt: skip
        run=False,
    )
    (grid,) = [c for c in cli.trainer.callbacks if isinstance(c, SampleGrid)]
    assert grid.max_time_fraction == 0.5 and grid.num_points == 300


@pytest.mark.slow
def test_time_budget_under_ddp_decides_on_rank_zero_and_never_hangs(tmp_path):
    """Two processes: SampleGrid (draws on rank 0) and FID (draws on every rank) skip the same epochs."""
    model = SlowSampler(delay=0.5, step_seconds=0.25)  # each process has a copy of the fake clock: rank 0's decides
    grid = SampleGrid(num_samples=4)
    fid = FIDCallback(metrics=["fid"], num_samples=40, batch_size=20, every_n_epochs=1, cache_dir=str(tmp_path / "c"))
    trainer = cpu_trainer(str(tmp_path), devices=2, strategy="ddp_spawn", max_epochs=4, limit_train_batches=1,
                          limit_val_batches=1, logger=CSVLogger(str(tmp_path)), callbacks=model.timing(grid, fid))  # fmt: skip
    trainer.fit(model, digits_datamodule())
    names = sorted(p.name.split("_")[1] for p in (tmp_path / "lightning_logs" / "version_0" / "images").glob("*.png"))
    assert names == ["epoch000", "epoch003"]


def test_fid_monitored_by_a_checkpoint_is_never_skipped(tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    model = SlowSampler(delay=0.5)
    fid = FIDCallback(metrics=["fid"], num_samples=20, batch_size=20, every_n_epochs=1, cache_dir=str(tmp_path / "c"))
    fid.max_time_fraction = 0.01  # without the checkpoint, epoch 1 would be skipped (see above)
    best = ModelCheckpoint(dirpath=str(tmp_path / "ckpt"), monitor="val/fid_digits", mode="min")
    fit(model, digits_datamodule(), tmp_path, [*model.timing(fid), best], max_epochs=3, limit_train_batches=1,
        enable_checkpointing=True)  # fmt: skip
    assert model.calls == 3 and fid.skipped_epochs == []  # no checkpoint chosen on a stale FID
    assert best.best_model_path
