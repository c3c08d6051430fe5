"""``genlight sample --sampler/--steps/--spacing/--guidance``: passed to the family's ``sample()`` (the same
images as the Python call with the same seed), refused in one line where the family has no such argument or
the value is not one it takes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import genlight
from genlight.cli import main
from genlight.pretrained_models import save_pretrained
from genlight.testing import smoke_setup


def run(tmp_path: Path, name: str, *options: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(["sample", "--pretrained", name, "-n", "3", "--seed", "5", "--out", str(tmp_path / "s.pt"), *options])
    return int(done.value.code or 0)


def draw_cli(tmp_path: Path, name: str, *options: str) -> torch.Tensor:
    assert run(tmp_path, name, *options) == 0
    return torch.load(tmp_path / "s.pt", weights_only=True)


def refusal(tmp_path: Path, capsys: pytest.CaptureFixture, name: str, *options: str) -> str:
    capsys.readouterr()
    assert run(tmp_path, name, *options) != 0
    assert not (tmp_path / "s.pt").exists()  # nothing written
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 or err[1].startswith("`genlight sample --help`"), err  # one line (argparse adds the help)
    return err[0]


def test_dpm_solver_from_the_command_line_draws_what_sample_draws(tmp_path: Path) -> None:
    cli = draw_cli(tmp_path, "ddpm-digits", "--sampler", "dpm_solver", "--steps", "4", "--spacing", "time")
    model = genlight.pretrained("ddpm-digits")
    torch.manual_seed(5)
    assert torch.equal(cli, model.sample(3, sampler="dpm_solver", steps=4, spacing="time"))
    torch.manual_seed(5)
    other = model.sample(3, sampler="dpm_solver", steps=4, spacing="logsnr")
    assert not torch.equal(cli, other)  # the option reached the sampler


def test_flow_matching_steps_and_sampler_reach_sample(tmp_path: Path) -> None:
    model, _, _ = smoke_setup("flow_matching", tmp_path)
    folder = save_pretrained(model.eval(), tmp_path / "fm")
    cli = draw_cli(tmp_path, str(folder), "--sampler", "euler", "--steps", "3")
    torch.manual_seed(5)
    assert torch.equal(cli, model.sample(3, sampler="euler", steps=3))


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("dcgan-digits", ["--steps", "10"], "--steps: DCGAN.sample has no steps argument; drop it (families with one:"),
        ("pixelcnn-digits", ["--spacing", "time"], "--spacing: PixelCNN.sample has no spacing argument"),
        ("ddpm-digits", ["--sampler", "euler"], "--sampler: unknown sampler 'euler'; choose"),
        ("ddpm-digits", ["--steps", "100000"], "steps must be an integer in [1,"),
        ("pixelcnn-digits", ["--sampler", "fast"], "sampler must be cached or naive"),
    ],
)
def test_an_option_the_family_cannot_take_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, name: str, options: list[str], message: str
) -> None:
    assert message in refusal(tmp_path, capsys, name, *options)


def test_the_refusal_names_the_families_that_take_the_option(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    named = refusal(tmp_path, capsys, "vae-digits", "--steps", "5").split("families with one: ")[1]
    assert {"ddpm", "flow_matching", "ebm"} <= set(named.rstrip(")").split(", "))
    assert "vae" not in named.rstrip(")").split(", ")


def test_steps_must_be_positive_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert "--steps" in refusal(tmp_path, capsys, "ddpm-digits", "--steps", "0")
