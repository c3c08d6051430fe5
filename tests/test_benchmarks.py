"""The benchmark scripts as a user runs them: `make bench`'s commands are the ones the results files
name, and (slow) every script runs end to end on a tiny budget in a subprocess. Nothing here imports
``benchmarks``."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def bench_commands() -> list[str]:
    """The recipe of the Makefile's ``bench`` target, written as the results files write commands."""
    recipe = re.search(r"^bench:.*\n((?:\t.*\n)+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert recipe, "the Makefile has no bench target"
    return [line.strip().replace("$(BENCH)", "python") for line in recipe.group(1).splitlines()]


def test_make_bench_depends_on_the_install_and_test_does_not_run_it() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^bench: \$\(STAMP\)$", makefile, re.MULTILINE)
    test_recipe = re.search(r"^test:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1)
    assert "bench" not in test_recipe


def test_every_results_table_names_the_command_make_bench_runs() -> None:
    scripts = {command: re.search(r"benchmarks/(\w+)\.py", command).group(1) for command in bench_commands()}
    assert {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"common"} == set(scripts.values())  # all run
    for command, script in scripts.items():
        table = RESULTS / f"{script}.md"
        if table.is_file():  # ebm_landscape writes pictures only
            assert command in table.read_text(), (table.name, command)


# ---------------------------------------------------------------------------------------- smoke runs
def run(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python benchmarks/<args>`` from the repository root, as the docstrings say to run them: no
    ``PYTHONPATH`` (each script finds ``benchmarks`` and this checkout's ``genlight`` itself)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**env, "WANDB_MODE": "offline"},
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.mark.parametrize(
    "how",
    [["benchmarks/gpu_check.py"], pytest.param(["-m", "benchmarks.gpu_check"], marks=pytest.mark.slow)],
    ids=["file", "module"],
)
def test_a_script_runs_as_a_file_or_a_module_without_pythonpath(how: list[str]) -> None:
    """``python benchmarks/gpu_check.py`` and ``python -m benchmarks.gpu_check`` import ``benchmarks.common``
    and this checkout's ``genlight`` with no ``PYTHONPATH`` set."""
    result = run(*how, "--help", timeout=300)
    assert "--device" in result.stdout


@pytest.mark.slow
def test_likelihood_digits_smoke(tmp_path) -> None:
    out = tmp_path / "likelihood.md"
    run("benchmarks/likelihood_digits.py", "--only", "vae", "--budget_minutes", "0.05", "--threads", "1",
        "--out", str(out))  # fmt: skip
    text = out.read_text()
    assert "| `vae` | bound |" in text and "IWAE k=100" in text and "Command (`make bench`)" in text


@pytest.mark.slow
def test_vae_rows_smoke(tmp_path) -> None:
    run("benchmarks/vae_rows.py", "--rows", "cvae", "--epochs", "1", "--out", str(tmp_path))
    row = json.loads((tmp_path / "vae_rows.json").read_text())["cvae"]
    assert row["epochs"] == 1 and {"elbo", "iwae100", "elbo_y", "iwae100_y", "fid_train", "fid_test"} <= set(row)
    assert "| cvae with labels |" in (tmp_path / "vae_rows.md").read_text()


@pytest.mark.slow
def test_fid_digits_and_ddpm_bound_smoke(tmp_path) -> None:
    ckpt = tmp_path / "ddpm.ckpt"
    run("benchmarks/fid_digits.py", "train", "ddpm", "--steps", "2", "--rows", "DDIM", "--threads", "1",
        "--keep", str(ckpt), "--out", str(tmp_path))  # fmt: skip
    rows = json.loads((tmp_path / "fid_digits.json").read_text())
    assert rows["ddpm (DDIM-50, EMA)"]["steps"] == 2 and "_floor" in rows
    assert "| ddpm (DDIM-50, EMA) |" in (tmp_path / "fid_digits.md").read_text()
    row, floor = rows["ddpm (DDIM-50, EMA)"], rows["_floor"]  # FID at the floor's n as well: 20 subsets of 359
    assert row["matched_n"] == floor["matched_n"] == 359 and row["matched_draws"] == 20 and floor["matched_draws"] == 1
    assert floor["fid_train_matched"] == floor["fid_train"] and row["fid_train_matched_std"] > 0
    assert "FID train n=359" in (tmp_path / "fid_digits.md").read_text()
    run("benchmarks/ddpm_bound_digits.py", str(ckpt), "--terms", "2", "--out", str(tmp_path / "bound.md"))
    assert "| ddpm.ckpt |" in (tmp_path / "bound.md").read_text()


@pytest.mark.slow
def test_gan_digits_smoke(tmp_path) -> None:
    run("benchmarks/gan_digits.py", "--families", "dcgan", "no_such_family", "--steps", "6", "--evals", "2",
        "--threads", "1", "--out", str(tmp_path))  # fmt: skip
    results = json.loads((tmp_path / "gan_digits.json").read_text())
    row = results["rows"]["dcgan"]
    assert row["steps"] == 6 and row["fid_train"] > results["_floor"]["fid_train"]
    assert row["matched_n"] == results["_floor"]["matched_n"] == 359 and row["fid_train_matched_std"] > 0
    assert 0.0 <= row["mem_q10"] <= 1.0 and 1.0 <= row["class_entropy_exp"] <= 10.0
    assert row["checkpoint"].startswith(("final by val FID", "best periodic by val FID"))
    assert results["skipped"] == {"no_such_family": "not registered"}
    assert len(results["arithmetic"]["stats"]["ink"]) == len(results["arithmetic"]["stats"]["scales"])
    md = (tmp_path / "gan_digits.md").read_text()
    assert "| dcgan |" in md and "<!-- gan_digits table -->" in md and "`no_such_family` (not registered)" in md
    assert Image.open(tmp_path / "gan_digits.png").width > 300


@pytest.mark.slow
def test_uses_digits_smoke(tmp_path) -> None:
    run("benchmarks/uses_digits.py", "--only", "nade,ae", "--budget", "4", "--threads", "1", "--jobs", "2",
        "--mixture_ks", "3", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path))  # fmt: skip
    results = json.loads((tmp_path / "uses_digits.json").read_text())
    nade, ae = results["nade"], results["ae"]
    assert {"nll", "likelihood_ratio", "typicality", "complexity"} <= set(nade["ood"]) and set(ae["ood"]) == {"reconstruction"}
    assert set(nade["ood"]["nll"]) == {"inverted", "uniform_noise", "constant", "blurred", "pixel_shuffled", "held_out_class"}
    assert all(0.0 <= m["auroc"] <= 1.0 for r in (nade, ae) for sets in r["ood"].values() for m in sets.values())
    assert set(nade["records"]) == {"main", "background", "holdout"} and nade["classify"] is None
    assert 0.1 < ae["probe"]["all"]["test"] <= 1.0 and results["pixels"]["probe"]["all"]["test"] > 0.8
    md = (tmp_path / "uses_digits.md").read_text()
    assert "| nade | nll (exact) |" in md and "| ae | reconstruction |" in md and "Command (`make bench`)" in md
    assert Image.open(tmp_path / "uses_digits.png").width > 300
    mtime = (tmp_path / "cache" / "nade" / "main.ckpt").stat().st_mtime
    run("benchmarks/uses_digits.py", "--only", "nade", "--budget", "4", "--mixture_ks", "3", "--cache", str(tmp_path / "cache"),
        "--out", str(tmp_path))  # fmt: skip
    assert (tmp_path / "cache" / "nade" / "main.ckpt").stat().st_mtime == mtime  # cached: not trained again


@pytest.mark.slow
def test_uses_digits_dose_smoke(tmp_path) -> None:
    run("benchmarks/uses_digits.py", "dose", "--only", "nade", "--budget", "4", "--cache", str(tmp_path / "cache"),
        "--out", str(tmp_path))  # fmt: skip
    results = json.loads((tmp_path / "uses_digits_dose.json").read_text())
    assert {"nll", "typicality", "complexity", "dose", "dose_nll"} <= set(results["nade"]["auroc"])
    assert len(results["nade"]["auroc"]["nll"]) == 20 and {"per_pixel", "mixture"} <= set(results)
    md = (tmp_path / "uses_digits.md").read_text()
    assert "| nade | " in md and "**recommended** (chosen on the other sets)" in md and "Where it fails:" in md


@pytest.mark.slow
def test_progan_digits_smoke(tmp_path) -> None:
    run("benchmarks/progan_digits.py", "--budget", "6", "--evals", "2", "--threads", "1", "--out", str(tmp_path),
        "--progan_args", '{"width": 8, "steps_per_stage": 2, "fade_steps": 2}')  # fmt: skip
    results = json.loads((tmp_path / "progan_digits.json").read_text())
    rows, runs = results["rows"], results["runs"]
    stage0 = [label for label in rows if label.startswith("progan: end of stage 0 (4x4, step 2")]
    assert stage0 and runs["progan"]["stage_ends"]["0"]["batches"] == 2
    assert {"progan: chosen on val FID", "dcgan: end of training", "dcgan: chosen on val FID"} <= set(rows)
    for row in rows.values():
        assert row["fid_train"] > results["_floor"]["fid_train"] and 0.0 <= row["mem_q10"] <= 1.0
    md = (tmp_path / "progan_digits.md").read_text()
    assert "<!-- progan_digits table -->" in md and "| progan: end of stage 0 (4x4" in md
    assert Image.open(tmp_path / "progan_digits.png").width > 100

@pytest.mark.slow
def test_cyclegan_digits_smoke(tmp_path) -> None:
    result = run("benchmarks/cyclegan_digits.py", "--epochs", "1", "--budget", "5", "--test", "--out", str(tmp_path))
    row = json.loads(result.stdout.strip().splitlines()[-1])
    assert row["test"]["n"] > 0 and 0.0 <= row["test"]["mae_a2b"] <= 1.0
    assert Image.open(tmp_path / "cyclegan_digits.png").width > 100


@pytest.mark.slow
def test_text2image_digits_smoke(tmp_path) -> None:
    run("benchmarks/text2image_digits.py", "--steps", "6", "--evals", "2", "--n", "10", "--captions", "a thick seven",
        "--out", str(tmp_path))  # fmt: skip
    results = json.loads((tmp_path / "text2image_digits.json").read_text())
    rows = results["rows"]
    assert results["run"]["steps"] == 6 and results["run"]["checkpoint"].startswith(("final by val FID", "best periodic"))
    assert {"val", "test", "held_out", "val_class_caption", "held_out_combos", "per_class"} <= set(rows)
    assert all(0.0 <= rows["val"][k] <= 1.0 for k in ("class_acc", "stroke_acc", "width_acc", "slant_acc", "all3_acc"))
    assert len(rows["per_class"]) == 10 and set(rows["held_out_combos"]) == {"thick seven", "right-slanted two"}
    md = (tmp_path / "text2image_digits.md").read_text()
    assert "| held-out combinations (never trained on) |" in md and "Command (`make bench`)" in md
    assert Image.open(tmp_path / "text2image_digits.png").width > 100


@pytest.mark.slow
def test_puzzlegan_digits_smoke(tmp_path) -> None:
    run("benchmarks/puzzlegan_digits.py", "--budget", "5", "--epochs", "2", "--every", "1", "--out", str(tmp_path))
    text = (tmp_path / "puzzlegan_digits.md").read_text()
    assert "| puzzlegan |" in text and "| mean image, random mask |" in text and "Command (`make bench`)" in text
    assert "| true images | 1.000 | 0.0000 | 0.0000 |" in text  # the truth scores itself exactly
    assert Image.open(tmp_path / "puzzlegan_digits.png").width > 100


@pytest.mark.slow
def test_stargan_digits_smoke(tmp_path) -> None:
    run("benchmarks/stargan_digits.py", "--budget", "6", "--judge_epochs", "1", "--out", str(tmp_path))
    table = (tmp_path / "stargan_digits.md").read_text()
    assert "| stargan |" in table and "| cyclegan |" in table and "plain->inverted" in table
    assert Image.open(tmp_path / "stargan_digits.png").width > 100


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "out"),
    [
        (["benchmarks/overhead.py", "--rounds", "1", "--epochs", "1", "--out", "{tmp}/overhead.md"], "overhead.md"),
        (["benchmarks/fid_cost.py", "--repeats", "1", "--num_samples", "100", "--out", "{tmp}/fid_cost.md"],
         "fid_cost.md"),
        (["benchmarks/sampling_speed.py", "--families", "pixelcnn,ddpm,gan", "--batches", "2", "--threads", "1",
          "--naive_steps", "1", "--ddpm_steps", "1", "--out", "{tmp}/speed.md"], "speed.md"),
        (["benchmarks/ebm_landscape.py", "--steps", "5", "--out", "{tmp}/energy.png"], "energy_samples.png"),
        (["benchmarks/gan_tricks_digits.py", "--steps", "10", "--evals", "2", "--tricks", "none", "ada", "--sizes",
          "10%", "--out", "{tmp}"], "gan_tricks_digits.md"),
    ],
    ids=["overhead", "fid_cost", "sampling_speed", "ebm_landscape", "gan_tricks_digits"],
)  # fmt: skip
def test_small_scripts_smoke(tmp_path, args: list[str], out: str) -> None:
    run(*(a.format(tmp=tmp_path) for a in args))
    assert (tmp_path / out).stat().st_size > 0


@pytest.mark.slow
def test_likelihood_mnist5k_smoke(tmp_path) -> None:
    out = tmp_path / "likelihood_mnist5k"
    run("benchmarks/likelihood_mnist5k.py", "--only", "baselines,vae,pixelcnn_bin", "--steps", "2", "--test_images", "8",
        "--iwae", "3", "--samples", "2", "--mixture_ks", "2", "--em_iters", "2", "--out", str(out))  # fmt: skip
    rows = json.loads(out.with_suffix(".json").read_text())
    assert rows["vae"]["steps"] == 2 and rows["vae"]["kind"] == "bound" and rows["vae"]["iwae_k"] == 3
    assert rows["vae"]["test_iwae_bpd"] > 0 and rows["vae"]["recipe_steps"] > 100  # the recipe's budget, replaced
    assert rows["pixelcnn_bin"]["kind"] == "exact" and rows["pixelcnn_bin"]["binary"] and rows["pixelcnn_bin"]["test_nats"] > 0
    assert 0 < rows["mixture"]["test_bpd"] < 8 and 0 < rows["per_pixel_bin"]["test_nats"] < 784 * math.log(2)
    md = out.with_suffix(".md").read_text()
    assert "| `vae` | bound |" in md and "IWAE k=3" in md and "| `nade` | | not run yet |" in md
    assert "Command (`make bench`)" in md and "Best bound" in md


@pytest.mark.slow
def test_fid_mnist5k_smoke(tmp_path) -> None:
    out = tmp_path / "fid_mnist5k"
    run("benchmarks/fid_mnist5k.py", "train", "progan", "--steps", "4", "--n", "520", "--out", str(out))
    rows = json.loads(out.with_suffix(".json").read_text())
    row, floor = rows["progan"], rows["_floor"]
    assert row["steps"] == 4 and row["checkpoint"] == "final" and row["n"] == 520
    assert row["matched_n"] == floor["matched_n"] == 500 and floor["matched_draws"] == 1 and row["fid_train_matched_std"] > 0
    assert row["fid_train"] > floor["fid_train"] and 0.0 <= row["mem_q10"] <= 1.0
    md = out.with_suffix(".md").read_text()
    assert "| `progan` |" in md and "| `dcgan` | not run yet |" in md and "FID train n=500" in md


@pytest.mark.slow
def test_gan_mnist5k_smoke(tmp_path) -> None:
    out = tmp_path / "gan_mnist5k"
    run("benchmarks/gan_mnist5k.py", "run", "cgan", "--split", "10%", "--steps", "4", "--out", str(out))
    results = json.loads(out.with_suffix(".json").read_text())
    row, floor = results["rows"]["cgan @ 10%"], results["_floor"]
    assert row["steps"] == 4 and row["train_images"] == 400 and row["fid_train_matched_std"] > 0
    assert {"precision", "recall", "density", "coverage", "intra_fid", "cas"} <= set(row) and len(row["intra_fid_per_class"]) == 10
    assert 0.5 < floor["coverage"] <= 1.0 and floor["cas_real_1000"] > 0.5
    md = out.with_suffix(".md").read_text()
    assert "| cgan | 400 |" in md and "not run yet: `python benchmarks/gan_mnist5k.py run dcgan --split full" in md
    # a trick row: refused in one line while the family lacks its option, a row once it has it
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    trick = subprocess.run(
        [sys.executable, "benchmarks/gan_mnist5k.py", "run", "dcgan+diffaugment", "--split", "10%", "--steps", "2",
         "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if trick.returncode:
        assert trick.stderr.strip().count("\n") == 0, trick.stderr[-2000:]
        assert trick.stderr.startswith("row 'dcgan+diffaugment' not run: DCGAN has no --model.augment")
    else:
        assert json.loads(out.with_suffix(".json").read_text())["rows"]["dcgan+diffaugment @ 10%"]["overrides"]


@pytest.mark.slow
def test_conditional_samplers_smoke(tmp_path) -> None:
    out = tmp_path / "conditional"
    run("benchmarks/conditional_samplers.py", "--out", str(out), "pretrained", "cgan-digits", "cvae-digits")
    rows = json.loads(out.with_suffix(".json").read_text())["digits"]
    floor, cgan = rows["_floor"], rows["cgan-digits"]
    assert 0.9 < floor["cas_ceiling"] <= 1.0 and 0 < floor["intra_fid"] < cgan["intra_fid"]  # real data beat samples
    assert len(cgan["intra_fid_per_class"]) == 10 and 0.1 < cgan["cas"] <= 1.0 and cgan["intra_m"] == 359
    md = out.with_suffix(".md").read_text()
    assert "| cgan-digits |" in md and "| cvae-digits |" in md and "CAS ceiling" in md
