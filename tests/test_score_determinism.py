"""The same `genlight score` / `genlight test` command gives the same table, byte for byte, on models
whose likelihood is a random estimate (a VAE's bound, a DDPM's one-sample bound); the seed and the
Monte Carlo standard error are in the output; an earlier result is never overwritten; a background of
another family is refused; an invertible flow gets no reconstruction score."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from genlight.cli import main
from genlight.evaluation import mc_standard_error, outlier_scores, seeded, varying
from tests.helpers import build_model, digits_datamodule
from tests.test_cli_errors import assert_kept, assert_user_error, private_copy, run, snapshot

QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", "--data.subset", "64",
         "--trainer.max_epochs", "1", "--data", "digit_outliers", "--samples.every_n_epochs", "0"]  # fmt: skip
FAMILIES = {
    "vae": ["--model", "vae", "--model.hidden_channels", "8", "--model.latent_dim", "4"],
    "ddpm": ["--model", "ddpm", "--model.channels", "8", "--model.timesteps", "10", "--model.sample_steps", "5",
             "--model.bound_timesteps", "3", "--model.bound_examples", "32"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("determinism")
    cwd = Path.cwd()
    os.chdir(root)
    try:
        for args in FAMILIES.values():
            main(["fit", *args, *QUIET])
    finally:
        os.chdir(cwd)
    return root


@pytest.fixture
def workdir(trained, tmp_path, monkeypatch) -> Path:
    return private_copy(trained, tmp_path, monkeypatch)


def ckpt(family: str) -> str:
    return f"runs/{family}/version_0/checkpoints/last.ckpt"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_same_score_command_gives_the_same_table(workdir, capsys, family):
    args = ["score", "--ckpt_path", ckpt(family), "--task", "ood", "--max_examples", "20"]
    code, _, err = run(capsys, *args)
    assert code == 0, err
    code, second, err = run(capsys, *args)
    assert code == 0, err
    scores = workdir / "scores"
    for ext in ("md", "json", "csv", "png"):  # the second run is numbered beside the first, both kept
        assert (scores / f"ood.{ext}").read_bytes() == (scores / f"ood_2.{ext}").read_bytes(), ext
    assert "note: kept the earlier scores/ood.md" in second and "ood_2.*" in second
    record = json.loads((scores / "ood.json").read_text())
    assert "--score_seed 0" in record["header"] and any(n.startswith("seed 0") for n in record["notes"])
    nll = [r for r in record["rows"] if r["score"] == "nll"]
    assert nll and all("auroc_mc_se" in r and r["auroc_mc_se"] >= 0 for r in nll)  # a Monte Carlo estimate
    assert any("Monte Carlo estimates: " in n and "nll" in n and "3 draws" in n for n in record["notes"])


def test_another_score_seed_is_recorded_and_draws_other_values(workdir, capsys):
    base = ["score", "--ckpt_path", ckpt("ddpm"), "--task", "ood", "--max_examples", "20", "--draws", "1"]
    assert run(capsys, *base, "--out", "a")[0] == 0
    assert run(capsys, *base, "--out", "b", "--score_seed", "1")[0] == 0
    a, b = (json.loads((workdir / d / "ood.json").read_text()) for d in "ab")
    assert "--score_seed 1" in b["header"] and "auroc_mc_se" not in b["rows"][0]  # one draw: no error to give
    assert [r["auroc"] for r in a["rows"]] != [r["auroc"] for r in b["rows"]]


def test_a_given_out_is_replaced_with_a_notice(workdir, capsys):
    args = ["score", "--ckpt_path", ckpt("vae"), "--task", "ood", "--max_examples", "10", "--out", "mine"]
    assert run(capsys, *args)[0] == 0
    code, out, _ = run(capsys, *args)
    assert code == 0 and "note: replaced mine/ood.* of an earlier run" in out
    assert sorted(p.name for p in (workdir / "mine").iterdir()) == ["ood.csv", "ood.json", "ood.md", "ood.png"]


def test_the_same_test_command_gives_the_same_figures(workdir, capsys):
    outs = []
    for _ in range(2):
        code, out, err = run(capsys, "test", "--ckpt_path", ckpt("vae"), "--trainer.enable_progress_bar", "false")
        assert code == 0, err
        outs.append(out)
    assert "seed_everything: 0" in outs[0] and "test/bpd_bound" in outs[0]
    assert outs[0] == outs[1]


def test_a_background_of_another_family_is_refused(workdir, capsys):
    before = snapshot(workdir)
    code, _, err = run(capsys, "score", "--ckpt_path", ckpt("ddpm"), "--task", "ood", "--background", ckpt("vae"))
    assert_user_error(code, err, "--background", "holds VAE", "the model is DDPM", "same family", "DDPM background")
    assert_kept(before, workdir)


def test_the_background_is_recorded(workdir, capsys):
    code, out, err = run(capsys, "score", "--ckpt_path", ckpt("vae"), "--task", "ood", "--background", ckpt("vae"),
                         "--max_examples", "10")  # fmt: skip
    assert code == 0, err
    sha = hashlib.sha256((workdir / ckpt("vae")).read_bytes()).hexdigest()
    record = json.loads((workdir / "scores/ood.json").read_text())
    assert f"background: {ckpt('vae')} (sha256 {sha})" in record["notes"]
    assert sha in (workdir / "scores/ood.md").read_text() and sha in out
    assert {r["score"] for r in record["rows"]} >= {"nll", "likelihood_ratio"}


def test_an_invertible_flow_gets_no_reconstruction_score():
    dm = digits_datamodule()
    dm.setup("fit")
    x = torch.stack([dm.reference_dataset("test")[i][0] for i in range(6)])
    flow, ae = build_model("realnvp", dm), build_model("ae", dm)
    assert "reconstruction" not in outlier_scores(flow, x) and "nll" in outlier_scores(flow, x)
    assert "reconstruction" in outlier_scores(ae, x)


def test_varying_finds_the_random_scores_and_seeded_restores_the_stream():
    state = torch.get_rng_state()
    found = varying(lambda: {"random": torch.rand(3), "fixed": torch.ones(3)}, seed=4)
    assert found == {"random"} and torch.equal(torch.get_rng_state(), state)
    with seeded(7):
        a = torch.rand(2)
    with seeded(7):
        assert torch.equal(torch.rand(2), a)
    assert mc_standard_error([1.0]) == 0.0 and abs(mc_standard_error([1.0, 3.0]) - 1.0) < 1e-12  # sd √2 / √2


def test_sample_numbers_its_default_output_and_gives_the_same_grid(workdir, capsys):
    code, out, err = run(capsys, "sample", "--ckpt_path", ckpt("vae"), "-n", "16")
    assert code == 0 and "(--seed 0)" in out, err
    code, out, err = run(capsys, "sample", "--ckpt_path", ckpt("vae"), "-n", "16")
    assert code == 0 and "note: kept the earlier samples.png; this one is samples_2.png" in out, err
    assert (workdir / "samples.png").read_bytes() == (workdir / "samples_2.png").read_bytes()
    code, out, _ = run(capsys, "sample", "--ckpt_path", ckpt("vae"), "-n", "16", "--out", "samples.png")
    assert code == 0 and "note: replaced the earlier samples.png" in out
