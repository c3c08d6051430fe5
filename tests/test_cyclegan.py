"""CycleGAN: translation learns a cycle, directions are checked, the pool of past fakes follows the
reference rule and survives checkpoints, the G step runs with the discriminators frozen, the linear LR
decay, the networks sized from image_shape, and the digit domains script."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from genlight import create_datamodule, create_model, load_model
from genlight.errors import ImageShapeError
from genlight.modules.cyclegan import CycleGAN, linear_decay
from genlight.nn.adversarial import ImagePool
from tests.helpers import cpu_trainer

ROOT = Path(__file__).resolve().parents[1]
#: a small version of the digits recipe: a local generator (3x3 stem, no down-sampling), no identity loss
LOCAL = {"width_g": 8, "n_blocks": 1, "g_downsamplings": 0, "g_stem_kernel": 3, "width_d": 8, "lambda_identity": 0.0}


def _smoke(tmp_path, **data_kwargs):
    from genlight.datamodules.unpaired_folders import UnpairedFoldersDataModule

    dm = UnpairedFoldersDataModule.smoke(tmp_path, **data_kwargs)
    dm.setup("fit")
    return dm


def _batch(dm, split: str = "val") -> tuple[torch.Tensor, torch.Tensor]:
    loader = torch.utils.data.DataLoader(dm.reference_dataset(split), batch_size=64)
    x_a, x_b = next(iter(loader))
    return x_a, x_b


@torch.no_grad()
def _cycle_error(model: CycleGAN, x_a: torch.Tensor, x_b: torch.Tensor) -> float:
    back_a = model.translate(model.translate(x_a, "a2b"), "b2a")
    back_b = model.translate(model.translate(x_b, "b2a"), "a2b")
    return float(((back_a - x_a).abs().mean() + (back_b - x_b).abs().mean()) / 2)


def test_cycle_error_falls_and_round_trip_approaches_x(tmp_path):
    """A short run (64 batches of 2, a small digits recipe) on the smoke domains (digits / inverted digits): the round trip
    error ``|b2a(a2b(x)) - x|`` (and B->A->B) falls to under half its value at init on the training
    images, and on held-out images below the best constant guess (the training mean image)."""
    pl.seed_everything(0)
    dm = _smoke(tmp_path, batch_size=2)
    model = create_model("cyclegan", image_shape=dm.image_shape, **LOCAL, lr=1e-3, lr_decay_epochs=0)
    held_out = [torch.cat(pair) for pair in zip(_batch(dm, "val"), _batch(dm, "test"), strict=True)]
    train_a, train_b = _batch(dm, "train")
    before, before_train = _cycle_error(model, *held_out), _cycle_error(model, train_a, train_b)
    cpu_trainer(max_epochs=4, limit_val_batches=0).fit(model, datamodule=dm)
    after, after_train = _cycle_error(model, *held_out), _cycle_error(model, train_a, train_b)
    x_a, x_b = held_out
    mean_guess = float(((train_a.mean(0) - x_a).abs().mean() + (train_b.mean(0) - x_b).abs().mean()) / 2)
    assert after_train < 0.5 * before_train, (before_train, after_train)
    assert after < 0.5 * before, (before, after)
    assert after < mean_guess, (after, mean_guess)


def test_bad_direction_is_refused():
    model = create_model("cyclegan", width_g=4, n_blocks=1, width_d=4)
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(ValueError, match="'a2b'.*'b2a'.*got 'A2B'"):
        model.translate(x, "A2B")
    for direction in ("a2b", "b2a"):
        out = model.translate(x, direction)
        assert out.shape == x.shape and 0 <= out.min() and out.max() <= 1


def test_image_pool_rule():
    """While filling: the current image comes back and is stored; the pool never exceeds its size; once
    full, about half of the images come back as stored ones (swapped in), the rest as they are."""
    random.seed(0)
    pool = ImagePool(4)
    def constant(*values: float) -> torch.Tensor:  # images filled with one value each
        return torch.tensor(values).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()

    first = constant(1.0, 2.0, 3.0).requires_grad_(True)
    out = pool.query(first)
    assert torch.equal(out, first.detach()) and not out.requires_grad and len(pool.images) == 3
    second = constant(4.0, 5.0, 6.0)
    out = pool.query(second)
    assert torch.equal(out[0], second[0]), "the fourth image fills the pool and is returned as is"
    assert len(pool.images) == 4
    stored = {float(t.flatten()[0]) for t in pool.images}  # every image ever stored, by its first value
    swapped = 0
    trials = 2000
    for i in range(trials):
        image = torch.full((1, 1, 2, 2), float(i + 100))
        got = pool.query(image)
        if not torch.equal(got, image):
            swapped += 1
            assert float(got.flatten()[0]) in stored, "a swapped-in image must be a stored past image"
            assert (got == got.flatten()[0]).all()
        stored.add(float(i + 100))
        assert len(pool.images) == 4
    assert 0.45 < swapped / trials < 0.55, swapped / trials
    assert ImagePool(0).query(second) is second, "pool_size 0 returns the current fakes"


def test_pool_survives_a_checkpoint_round_trip(tmp_path):
    pl.seed_everything(0)
    dm = _smoke(tmp_path)
    model = create_model("cyclegan", image_shape=dm.image_shape, width_g=4, n_blocks=1, width_d=4, pool_size=50)
    trainer = cpu_trainer(max_steps=6, limit_val_batches=0)  # 3 batches of 8: 24 images in each pool
    trainer.fit(model, datamodule=dm)
    assert len(model.pools["a"].images) == len(model.pools["b"].images) == 24
    path = tmp_path / "cyclegan.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_model(path)
    for d in ("a", "b"):
        assert len(loaded.pools[d].images) == 24
        for ours, theirs in zip(model.pools[d].images, loaded.pools[d].images, strict=True):
            assert torch.equal(ours, theirs)
    fresh = create_model("cyclegan", image_shape=dm.image_shape, width_g=4, n_blocks=1, width_d=4)
    assert fresh.pools["a"].images == []
    fresh.load_state_dict(model.state_dict())
    assert len(fresh.pools["b"].images) == 24


class _FrozenCheck(pl.Callback):
    """Records, at each optimizer step, which nets hold gradients."""

    def __init__(self) -> None:
        self.steps: list[tuple[bool, bool]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        d_grads = any(p.grad is not None for p in pl_module.discriminators.parameters())
        g_requires = all(p.requires_grad for p in pl_module.generators.parameters())
        d_requires = any(p.requires_grad for p in pl_module.discriminators.parameters())
        self.steps.append((d_grads, g_requires and not d_requires))


def test_generator_step_runs_with_discriminators_frozen(tmp_path):
    dm = _smoke(tmp_path)
    model = create_model("cyclegan", image_shape=dm.image_shape, width_g=4, n_blocks=1, width_d=4)
    check = _FrozenCheck()
    cpu_trainer(max_steps=2, limit_val_batches=0, callbacks=[check]).fit(model, datamodule=dm)
    assert len(check.steps) == 2, "one batch = a generator step and a discriminator step"
    assert check.steps[0] == (False, True), "G step: no discriminator gradients, discriminators frozen"
    assert check.steps[1][0], "D step: the discriminators have gradients"


def test_linear_lr_decay(tmp_path):
    # the reference's rule: 1 - max(0, epoch + 1 - n_epochs) / (n_epochs_decay + 1)
    assert [linear_decay(e, 2, 3) for e in range(6)] == [1.0, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert linear_decay(50, 2, 0) == 1.0
    dm = _smoke(tmp_path)
    model = create_model("cyclegan", image_shape=dm.image_shape, width_g=4, n_blocks=1, width_d=4, lr=1e-3,
                         lr_constant_epochs=1, lr_decay_epochs=3)  # fmt: skip
    lrs = []

    class Record(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            lrs.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])

    cpu_trainer(max_epochs=4, limit_train_batches=1, limit_val_batches=0, callbacks=[Record()]).fit(model, datamodule=dm)
    assert [pair[0] for pair in lrs] == pytest.approx([1e-3, 0.75e-3, 0.5e-3, 0.25e-3])  # 1 epoch held, then decay
    assert all(g == d for g, d in lrs), "both optimizers follow the same schedule"


@pytest.mark.parametrize(
    ("size", "most", "downsamplings", "patches"), [(8, 2, 1, 2), (8, 0, 0, 2), (16, 2, 2, 2), (32, 2, 2, 2), (64, 2, 2, 6)]
)
def test_networks_are_sized_from_image_shape(size, most, downsamplings, patches):
    model = create_model("cyclegan", image_shape=(3, size, size), width_g=4, n_blocks=1, width_d=4, g_downsamplings=most)
    x = torch.rand(2, 3, size, size)
    assert model.generators["a2b"].num_downsamplings == downsamplings
    assert model.translate(x, "b2a").shape == x.shape
    assert model.discriminators["a"](x * 2 - 1).shape == (2, 1, patches, patches)


@pytest.mark.parametrize("shape", [(1, 10, 10), (1, 4, 4), (8, 8)])
def test_bad_image_shapes_are_refused(shape):
    with pytest.raises(ImageShapeError):
        create_model("cyclegan", image_shape=shape)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="gradient penalty"):
        create_model("cyclegan", loss="wasserstein_gp")
    with pytest.raises(ValueError, match="norm must be one of 'instance', 'batch', 'none', got 'group'"):
        create_model("cyclegan", norm="group")
    with pytest.raises(ValueError, match="stem_kernel must be odd"):
        create_model("cyclegan", g_stem_kernel=4)
    with pytest.raises(ValueError, match="stem_kernel must be odd"):
        create_model("cyclegan", g_stem_kernel=17)  # reflection padding of 8 on an 8x8 image


def test_digit_domains_are_unpaired_halves(tmp_path):
    sys.path.insert(0, str(ROOT))
    try:
        from examples.unpaired_folders.make_digit_domains import write_domains
    finally:
        sys.path.remove(str(ROOT))
    counts = write_domains(tmp_path, "invert")
    assert counts == {"trainA": 719, "trainB": 719, "testA": 180, "testB": 179}
    dm = create_datamodule("unpaired_folders", dir_a=str(tmp_path / "trainA"), dir_b=str(tmp_path / "trainB"),
                           image_size=8, channels=1, test_fraction=0.1)  # fmt: skip
    dm.setup("fit")
    pool = dm.reference_dataset("train")
    a = torch.stack([pool.a[i][0] for i in range(pool.len_a)]).flatten(1)
    b = torch.stack([pool.b[i][0] for i in range(pool.len_b)]).flatten(1)
    assert b.mean() > 0.6 > 0.4 > a.mean(), "B is inverted: mostly white"
    assert torch.cdist(a, 1 - b).min() > 0, "no digit of A appears (inverted) in B"


@pytest.mark.slow
def test_digits_to_inverted_is_close_to_the_true_inversion(tmp_path):
    """After a short run on the digit domains, a2b(x) is close to 1 - x on held-out digits: the mean
    absolute error is well below the best constant image's (the training mean of domain B)."""
    sys.path.insert(0, str(ROOT))
    try:
        from examples.unpaired_folders.make_digit_domains import write_domains
    finally:
        sys.path.remove(str(ROOT))
    write_domains(tmp_path, "invert")
    dm = create_datamodule("unpaired_folders", dir_a=str(tmp_path / "trainA"), dir_b=str(tmp_path / "trainB"),
                           test_dir_a=str(tmp_path / "testA"), test_dir_b=str(tmp_path / "testB"),
                           image_size=8, channels=1, batch_size=4)  # fmt: skip
    dm.setup("fit")
    pl.seed_everything(0)
    model = create_model("cyclegan", image_shape=dm.image_shape, **{**LOCAL, "width_g": 16, "n_blocks": 2, "width_d": 16},
                         lr=5e-4, lr_constant_epochs=2, lr_decay_epochs=2)  # fmt: skip
    cpu_trainer(max_epochs=4, limit_val_batches=0).fit(model, datamodule=dm)  # the benchmark's recipe
    x_a, x_b = _batch(dm, "test")
    train = dm.reference_dataset("train")
    mean_b = torch.stack([train.b[i][0] for i in range(train.len_b)]).mean(0)
    with torch.no_grad():
        mae = float((model.translate(x_a, "a2b") - (1 - x_a)).abs().mean())
        back = float((model.translate(x_b, "b2a") - (1 - x_b)).abs().mean())
    baseline = float((mean_b - (1 - x_a)).abs().mean())
    assert mae < 0.5 * baseline, (mae, baseline)
    assert back < 0.5 * baseline, (back, baseline)


@pytest.mark.parametrize("example", ["examples/unpaired_folders/cyclegan.yaml"])  # digits/cyclegan.yaml: same run
def test_example_fits_on_the_folders_of_the_script(example, tmp_path, monkeypatch):
    """The examples read ``data/digit_domains`` written by the script: one short ``genlight fit`` (a
    subset of 16 pairs, tiny nets) writes the translation grid and logs the validation cycle error."""
    from genlight.cli import main

    sys.path.insert(0, str(ROOT))
    try:
        from examples.unpaired_folders.make_digit_domains import write_domains
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.chdir(tmp_path)
    write_domains(tmp_path / "data" / "digit_domains", "invert")
    main(["fit", "-c", str(ROOT / example), "--trainer.max_epochs", "1", "--data.subset", "16",
          "--trainer.limit_val_batches", "4", "--model.width_g", "4", "--model.n_blocks", "1", "--model.width_d", "4",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])  # fmt: skip
    run = next((tmp_path / "runs").glob("cyclegan/version_*"))
    assert "val/cycle" in (run / "metrics.csv").read_text()
    assert list((run / "images").glob("translations_*.png")), "TranslationGrid wrote no grid"
