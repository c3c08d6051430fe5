"""Pictures a user gets: a bare `fit` of a translator writes a labelled translation grid; `genlight
translate` and `genlight complete` apply a checkpoint to image files; nothing earlier is overwritten;
mistakes are one line naming the option and the fix."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genlight.callbacks.image_logging import image_grid, label_rows
from genlight.cli import main
from tests.test_cli_errors import assert_kept, assert_user_error, private_copy, run, snapshot

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--trainer.max_epochs",
         "1", "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1"]  # fmt: skip
STARGAN = ["--model", "stargan", "--data", "digit_domains", "--model.width_g", "4", "--model.n_blocks", "1",
           "--model.width_d", "4", "--model.n_critic", "1"]  # fmt: skip
PUZZLEGAN = ["--model", "puzzlegan", "--model.embed_dim", "8", "--model.width", "4", "--model.width_d", "4",
             "--model.latent_dim", "2"]  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        main(["fit", *STARGAN, *QUIET])
        main(["fit", *PUZZLEGAN, *QUIET])
        Image.fromarray((np.arange(100).reshape(10, 10) * 2).astype(np.uint8)).save("digit.png")
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def workdir(trained, tmp_path, monkeypatch) -> Path:
    return private_copy(trained, tmp_path, monkeypatch)


def has_text_left_of(path: Path, width: int) -> bool:
    """Dark pixels in the white margin left of a grid ``width`` pixels wide: the row labels."""
    array = np.asarray(Image.open(path).convert("L"))
    margin = array.shape[1] - width
    return margin > 10 and (array[:, :margin] < 128).any()


def test_label_rows_writes_one_label_per_row():
    grid = image_grid(torch.rand(6, 1, 8, 8), nrow=3)  # two rows
    labelled = label_rows(grid, ["first row", "second"])
    assert labelled.shape[1] == grid.shape[1] and labelled.shape[2] > grid.shape[2] + 20
    margin = labelled[:, :, : labelled.shape[2] - grid.shape[2]].mean(0)  # (h, margin)
    half = margin.shape[0] // 2
    assert (margin[:half] < 0.5).any() and (margin[half:] < 0.5).any()  # text in each row's band


def test_a_bare_stargan_fit_writes_a_labelled_translation_grid(workdir):
    pngs = list((workdir / "runs/stargan/version_0/images").glob("translations_*.png"))
    assert len(pngs) == 1
    cells = image_grid(torch.zeros(8, 1, 8, 8), nrow=8).shape[2]  # the grid without labels
    assert has_text_left_of(pngs[0], cells)


def test_translate_and_complete_image_files(workdir, capsys):
    stargan = "runs/stargan/version_0/checkpoints/last.ckpt"
    code, out, err = run(capsys, "translate", "--ckpt_path", stargan, "--image", "digit.png", "--to", "thick", "thin")
    assert code == 0, err
    assert "rows: input, to thick, to thin" in out and (workdir / "translations.png").is_file()
    first = (workdir / "translations.png").read_bytes()
    code, out, err = run(capsys, "translate", "--ckpt_path", stargan, "--image", "digit.png", "digit.png")
    assert code == 0, err
    assert (workdir / "translations.png").read_bytes() == first  # kept: the new one is numbered
    assert "note: kept the earlier translations.png" in out and (workdir / "translations_2.png").is_file()
    code, out, err = run(capsys, "complete", "--ckpt_path", "runs/puzzlegan/version_0/checkpoints/last.ckpt",
                         "--image", "digit.png")  # fmt: skip
    assert code == 0, err
    assert "rows: true image, patches" in out
    assert has_text_left_of(workdir / "completions.png", image_grid(torch.zeros(1, 1, 8, 8), nrow=1).shape[2])


STARGAN_CKPT = "runs/stargan/version_0/checkpoints/last.ckpt"
BAD = [
    (["translate", "--ckpt_path", STARGAN_CKPT, "--image", "nowhere.png"], ["--image nowhere.png", "PNG or JPEG"]),
    (["translate", "--ckpt_path", STARGAN_CKPT, "--image", "digit.png", "--to", "fat"], ["--to fat", "plain, thick"]),
    (["translate", "--ckpt_path", STARGAN_CKPT, "--image", "digit.png", "--direction", "b2a"],
     ["--direction", "--to"]),
    (["translate", "--ckpt_path", STARGAN_CKPT, "--image", "digit.png", "--out", "t.gif"], ["--out t.gif", ".png"]),
    (["complete", "--ckpt_path", STARGAN_CKPT, "--image", "digit.png"], ["StarGAN cannot complete", "puzzlegan"]),
    (["translate", "--ckpt_path", "runs/puzzlegan/version_0/checkpoints/last.ckpt", "--image", "digit.png"],
     ["cannot translate", "stargan"]),
    (["translate", "--ckpt_path", STARGAN_CKPT], ["--image"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD, ids=[" ".join(a[:1] + a[3:]) for a, _ in BAD])
def test_translate_and_complete_bad_values(workdir, capsys, args, needles):
    before = snapshot(workdir)
    code, _, err = run(capsys, *args)
    assert_user_error(code, err, *needles)
    assert_kept(before, workdir)


def test_progan_stage_grid_and_sample_grid_of_one_step_carry_one_epoch(tmp_path):
    import lightning.pytorch as pl

    from genlight.callbacks import EMA, SampleGrid, StageSamples
    from genlight.testing import cpu_trainer, smoke_setup

    pl.seed_everything(0)
    model, dm, _ = smoke_setup("progan", tmp_path / "data", steps_per_stage=2, fade_steps=2)
    trainer = cpu_trainer(str(tmp_path / "run"), callbacks=[EMA(), StageSamples(num_samples=4), SampleGrid(num_samples=4)],
                          max_steps=-1, max_epochs=2, limit_train_batches=4, limit_val_batches=0)  # fmt: skip
    trainer.fit(model, datamodule=dm)
    names = sorted(p.name for p in (tmp_path / "run" / "images").iterdir())
    last_step = f"step{trainer.global_step:06d}.png"
    final = [n for n in names if n.endswith(last_step)]  # the stage grid drawn at the end, the last sample grid
    assert len(final) == 2 and {n.split("_epoch")[1] for n in final} == {f"001_{last_step}"}, names
