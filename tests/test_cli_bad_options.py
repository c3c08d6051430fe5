"""Every option of `genlight sample`, `test` and `score` given a bad value: a non-zero exit, a message
of at most three lines that names the option and the fix, no traceback, and nothing written earlier
removed. Also `fit --trainer.strategy ddp_spawn` from the command line (the parser pickles)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from genlight.cli import GenlightCLI, main
from tests.test_cli_errors import assert_kept, assert_user_error, run, snapshot

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--data.subset", "64",
         "--trainer.max_epochs", "1"]  # fmt: skip
CVAE = "runs/cvae/version_0/checkpoints/last.ckpt"
VAE = "runs/vae/version_0/checkpoints/last.ckpt"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder after a tiny `fit --model cvae` and `fit --model vae` on digit_outliers."""
    root = tmp_path_factory.mktemp("bad_options")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        for family in ("cvae", "vae"):
            main(["fit", "--model", family, "--model.hidden_channels", "8", "--model.latent_dim", "4", "--data",
                  "digit_outliers", *QUIET])  # fmt: skip
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def workdir(trained, tmp_path, monkeypatch) -> Path:
    import shutil

    work = tmp_path / "work"
    shutil.copytree(trained, work)
    (work / "a_file").write_text("not a folder")
    (work / "samples.png").write_bytes(b"an earlier grid")  # must survive every failed command
    monkeypatch.chdir(work)
    return work


SAMPLE = [
    (["--labels", "12"], ["--labels 12", "classes 0..9", "--labels 0 1 2"]),
    (["--labels", "-1"], ["--labels -1", "classes 0..9"]),
    (["--labels", "x"], ["--labels", "invalid int value"]),
    (["-n", "0"], ["--num_samples", "must be >= 1"]),
    (["-n", "x"], ["--num_samples", "whole number"]),
    (["--out", "grid.txt"], ["--out grid.txt", ".png", "--out samples.png"]),
    (["--out", "a_file/grid.png"], ["--out a_file/grid.png", "is a file", "--out grid.png"]),
    (["--seed", "x"], ["--seed", "invalid int value"]),
    (["--text", "a", "seven"], ["--text", "text2image"]),
    (["--device", "foo"], ["--device", "use cpu"]),
    (["--device", "cuda:7"], ["--device", "cpu"]),
    (["--model", "vea"], ["unknown model 'vea'", "vae"]),
    (["--model", "vae"], ["not 'vae'", "--model cvae"]),
]


@pytest.mark.parametrize(("args", "needles"), SAMPLE, ids=[" ".join(a) for a, _ in SAMPLE])
def test_sample_bad_values(workdir, capsys, args, needles):
    before = snapshot(workdir)
    code, _, err = run(capsys, "sample", "--ckpt_path", CVAE, *args)
    assert_user_error(code, err, *needles)
    assert_kept(before, workdir)
    assert (workdir / "samples.png").read_bytes() == b"an earlier grid"


def test_sample_ckpt_path_missing(workdir, capsys):
    code, _, err = run(capsys, "sample", "--ckpt_path", "nowhere.ckpt")
    assert_user_error(code, err, "nowhere.ckpt does not exist", "--ckpt_path last")


SCORE = [
    (["--task", "odd"], ["--task", "choose from"]),
    (["--task", "ood", "--data", "digts"], ["unknown datamodule 'digts'", "digits"]),
    (["--task", "ood", "--data", "digits"], ["--task ood", "--data digit_outliers"]),
    (["--task", "ood", "--held_out_class", "12"], ["held_out_class", "0, 1, 2", "--held_out_class"]),
    (["--task", "ood", "--held_out_class", "-1"], ["held_out_class", "got -1"]),
    (["--task", "ood", "--seed", "-3"], ["seed", "got -3", "--seed"]),
    (["--task", "ood", "--score_seed", "x"], ["--score_seed", "invalid int value"]),
    (["--task", "ood", "--draws", "0"], ["--draws", "must be >= 1"]),
    (["--task", "ood", "--max_examples", "5"], ["--max_examples", "must be >= 10"]),
    (["--task", "ood", "--out", "a_file"], ["--out a_file is a file", "--out scores"]),
    (["--task", "ood", "--data_dir", "x"], ["--data_dir", "drop --data_dir"]),
    (["--task", "ood", "--background", "nowhere.ckpt"], ["--background", "nowhere.ckpt does not exist"]),
    (["--task", "ood", "--background", VAE], ["--background", "holds VAE", "same family", "CVAE background"]),
    (["--task", "probe", "--background", CVAE], ["--background is for --task ood", "drop it"]),
    (["--task", "classify", "--ckpt_path", VAE], ["--task classify", "class-conditional"]),
    (["--task", "ood", "--device", "cuda:7"], ["--device", "cpu"]),
    (["--task", "ood", "--model", "vae"], ["not 'vae'", "--model cvae"]),
]


@pytest.mark.parametrize(("args", "needles"), SCORE, ids=[" ".join(a) for a, _ in SCORE])
def test_score_bad_values(workdir, capsys, args, needles):
    before = snapshot(workdir)
    code, _, err = run(capsys, "score", "--ckpt_path", CVAE, *args)
    assert_user_error(code, err, *needles)
    assert_kept(before, workdir)
    assert not (workdir / "scores").exists()


TEST = [
    (["--ckpt_path", "nowhere.ckpt"], ["nowhere.ckpt does not exist", "--ckpt_path last"], True),
    (["--ckpt_path", CVAE, "--seed_everything", "x"], ["--seed_everything", "--seed_everything 0"], True),
    (["--ckpt_path", CVAE, "--data", "digts"], ["unknown datamodule 'digts'", "digits"], True),
    (["--ckpt_path", CVAE, "--data.batch_size", "0"], ["--data.batch_size", "--data.help"], True),
    (["--ckpt_path", CVAE, "--model", "vea"], ["unknown model 'vea'", "vae"], True),
    (["--ckpt_path", CVAE, "--model", "vae"], ["--model", "cvae"], True),
    (["--ckpt_path", CVAE, "--trainer.limit_test_batches", "-1"], ["--trainer.limit_test_batches"], False),
    (["--ckpt_path", CVAE, "--trainer.devices", "0"], ["--trainer.devices"], False),
]


@pytest.mark.parametrize(("args", "needles", "strict"), TEST, ids=[" ".join(a[2:] or a) for a, _, _ in TEST])
def test_test_bad_values(workdir, capsys, args, needles, strict):
    before = snapshot(workdir)
    code, _, err = run(capsys, "test", *args)
    assert_user_error(code, err, *needles, strict=strict)
    assert_kept(before, workdir)


@pytest.mark.slow  # ~15 s in a fresh interpreter; the slow ddp_spawn fit exercises the same pickling
def test_the_cli_parser_pickles_and_loads_in_a_fresh_process(tmp_path):
    """`ddp_spawn` pickles the CLI's config callback and its parser; a spawned process unpickles it
    with nothing of genlight imported and must still dump the config (the YAML loader registered)."""
    cli = GenlightCLI(args=["--model", "vae", "--trainer.max_epochs", "1"], run=False)
    blob = tmp_path / "parser.pkl"
    blob.write_bytes(pickle.dumps((cli.parser, cli.config)))
    script = ("import pickle, sys; parser, config = pickle.loads(open(sys.argv[1], 'rb').read()); "
              "print('model:' in parser.dump(config))")  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", script, str(blob)], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "True", done.stderr[-2000:]


@pytest.mark.slow
def test_fit_with_ddp_spawn_from_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    args = ["fit", "--model", "vae", "--model.hidden_channels", "8", "--model.latent_dim", "4", *QUIET,
            "--trainer.strategy", "ddp_spawn", "--trainer.devices", "2", "--trainer.accelerator", "cpu"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "genlight.cli", *args], capture_output=True, text=True, env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "pickle" not in done.stderr
    assert (tmp_path / "runs/vae/version_0/checkpoints/last.ckpt").is_file()
