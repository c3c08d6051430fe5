"""The mnist5k recipes (``examples/mnist5k/<family>.yaml``): one for every image family, each on 28x28 data
(mnist5k or its ``source: mnist5k`` variants; ProGAN padded to 32x32), budgeted in optimizer steps, and
each parses and trains one batch of 8 images with its own widths (callbacks and sample grids off; NADE and
DDPM and flow matching smaller, see ``SMALLER``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from genlight import get_model_class, list_models
from genlight.cli import GenlightCLI

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "mnist5k"
RECIPES = sorted(p.stem for p in EXAMPLES.glob("*.yaml"))
#: the recipe of a family whose file is not named after it
FAMILY = {"vae_vamp": "vae", "vqvae_prior": "vqvae"}
TINY = [
    "--trainer.callbacks=[]", "--trainer.logger=false", "--trainer.enable_progress_bar=false",
    "--trainer.enable_model_summary=false", "--trainer.enable_checkpointing=false", "--trainer.max_epochs=1",
    "--trainer.max_steps=-1", "--trainer.limit_train_batches=1", "--trainer.limit_val_batches=1",
    "--trainer.check_val_every_n_epoch=1", "--data.batch_size=8",
]  # fmt: skip
#: the few recipes whose one batch is slow at their own sizes (NADE's 784 x 256 x H input weights; DDPM's
#: validation bound over many timesteps; flow matching's ODE likelihood): smaller here, the recipe's other arguments kept
SMALLER = {"nade": ["--model.hidden_units=16"], "ddpm": ["--model.bound_examples=8", "--model.bound_timesteps=2"],
           "flow_matching": ["--model.likelihood_examples=2", "--model.likelihood_steps=1", "--model.likelihood_draws=1"]}


def test_every_image_family_has_a_recipe() -> None:
    shipped = {name for name in list_models() if get_model_class(name).__module__.startswith("genlight.")}
    families = {FAMILY.get(r, r) for r in RECIPES}  # no shipped family is toy2d-only: every one takes images
    assert shipped <= families, shipped - families


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_is_budgeted_in_steps_and_says_why(recipe: str) -> None:
    text = (EXAMPLES / f"{recipe}.yaml").read_text()
    config = yaml.safe_load(text)
    assert text.startswith("#") and "Budget:" in text and "idle thread" in text  # the header states the budget
    trainer = config["trainer"]
    assert trainer.get("max_steps", 0) > 0 or (recipe == "cyclegan" and trainer["max_epochs"] > 0)
    assert get_model_class(FAMILY.get(recipe, recipe)).__name__ == config["model"]["class_path"].rsplit(".", 1)[1]


@pytest.fixture(scope="module")
def mnist5k_folders(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight 28x28 mnist5k digits per CycleGAN folder (A: as they are, B: inverted), from the pools that
    ``make_digit_domains.py --source mnist5k`` writes (all of them: 4,500 train + val, 500 test)."""
    from examples.unpaired_folders.make_digit_domains import digit_splits, transform_b

    pools = digit_splits("mnist5k")
    assert pools["train"].shape == (4500, 1, 28, 28) and pools["test"].shape == (500, 1, 28, 28)
    root = tmp_path_factory.mktemp("mnist5k_domains")
    for split, x in pools.items():
        for name, images in (("A", x[0:16:2]), ("B", transform_b(x[1:16:2], "invert"))):
            (root / f"{split}{name}").mkdir()
            for i, image in enumerate((images[:, 0] * 255).round().to(torch.uint8).numpy()):
                Image.fromarray(image).save(root / f"{split}{name}" / f"{i}.png")
    return root


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_one_batch_at_28x28(recipe: str, tmp_path: Path, mnist5k_folders: Path) -> None:
    extra = [f"--trainer.default_root_dir={tmp_path}", *SMALLER.get(recipe, [])]
    if recipe == "cyclegan":
        extra += [f"--data.{k}={mnist5k_folders / v}" for k, v in
                  (("dir_a", "trainA"), ("dir_b", "trainB"), ("test_dir_a", "testA"), ("test_dir_b", "testB"))]  # fmt: skip
    else:
        extra += ["--samples.every_n_epochs=0"]
    cli = GenlightCLI(args=["-c", str(EXAMPLES / f"{recipe}.yaml"), *TINY, *extra], run=False)
    assert type(cli.model) is get_model_class(FAMILY.get(recipe, recipe))
    side = 32 if recipe == "progan" else 28  # progan grows to 32x32 (pad 2)
    shape = getattr(cli.datamodule, "image_shape", None) or (1, cli.datamodule.image_size, cli.datamodule.image_size)
    assert tuple(shape)[-2:] == (side, side)
    before = {k: v.clone() for k, v in cli.model.state_dict().items() if v.is_floating_point()}
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    assert cli.trainer.global_step >= 1
    after = cli.model.state_dict()
    changed = [k for k, v in before.items() if not torch.equal(v, after[k])]
    assert changed, "one training batch changed no weight"
    assert all(torch.isfinite(after[k]).all() for k in before)
