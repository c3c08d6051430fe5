"""DPM-Solver++(2M) for DDPM against closed forms: Gaussian data ``N(m, s²)`` per dimension, whose exact
ε-predictor is known, so the probability-flow ODE's solution is known too. Its error falls at 2nd order as
the steps double (ratio ~4), DDIM's at 1st (ratio ~2); the classifier-free guided form, the spacings and
the one-line refusals of bad arguments."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from genlight import create_model
from genlight.errors import ConfigError
from genlight.modules.ddpm import DDPM
from genlight.nn.diffusion import ddim_timesteps
from genlight.nn.diffusion_solvers import interp_log_alpha, log_snr, solver_times, time_of_log_alpha
from tests.test_cli_errors import assert_user_error, run

STD = 0.5
MEANS = (-0.4, 0.1, 0.3)  # class means (a conditional stub); the "no label" token has mean 0


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def exact_eps(x: Tensor, alpha_bar: Tensor, mean: Tensor | float) -> Tensor:
    """``E[ε | x_t]`` for data ``N(mean, STD²)``: ``√(1-ᾱ) (x_t - √ᾱ m) / (ᾱ s² + 1 - ᾱ)``."""
    return (1 - alpha_bar).sqrt() * (x - alpha_bar.sqrt() * mean) / (alpha_bar * STD**2 + 1 - alpha_bar)


def flow(x: Tensor, bar_from: Tensor, bar_to: Tensor, mean: Tensor | float) -> Tensor:
    """The probability-flow ODE's exact solution for Gaussian data: ``(x_t - √ᾱ_t m) / √(ᾱ_t s² + 1 - ᾱ_t)``
    is constant along it."""
    z = (x - bar_from.sqrt() * mean) / (bar_from * STD**2 + 1 - bar_from).sqrt()
    return bar_to.sqrt() * mean + (bar_to * STD**2 + 1 - bar_to).sqrt() * z


class GaussianEps(nn.Module):
    """The exact ε at real timesteps ``t`` of the interpolated schedule (class ``y`` has mean ``MEANS[y]``,
    the "no label" token and ``y = None`` mean 0); records the batch size of every call."""

    def __init__(self, log_alphas: Tensor) -> None:
        super().__init__()
        self.log_alphas = log_alphas
        self.means = torch.tensor([*MEANS, 0.0], dtype=torch.float64)
        self.calls: list[int] = []

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        self.calls.append(len(x))
        shape = (-1, *([1] * (x.dim() - 1)))
        bar = (2 * interp_log_alpha(t.cpu(), self.log_alphas)).exp().view(shape)
        mean = 0.0 if y is None else self.means[y].view(shape)
        return exact_eps(x.double(), bar, mean).to(x.dtype)


def analytic(timesteps: int = 1000, schedule: str = "cosine", **kwargs) -> tuple[DDPM, Tensor]:
    model = create_model("ddpm", num_levels=17, timesteps=timesteps, schedule=schedule, channels=8, **kwargs).eval()
    log_alphas = 0.5 * model.alphas_cumprod.double().log()
    model.net = GaussianEps(log_alphas)
    return model, log_alphas


def reference(model: DDPM, noise: Tensor, log_alphas: Tensor, mean: Tensor | float = 0.0) -> Tensor:
    """What an exact solver returns: the exact flow from ``t = T-1`` to ``t = 0``, then the exact data
    prediction there (both samplers end with that step to ``σ = 0``)."""
    bar = (2 * log_alphas).exp()
    x = flow(noise.double(), bar[-1], bar[0], mean)
    return (x - (1 - bar[0]).sqrt() * exact_eps(x, bar[0], mean)) / bar[0].sqrt()


def errors(model: DDPM, noise: Tensor, ref: Tensor, steps: tuple[int, ...], **kwargs) -> list[float]:
    return [(model.generate(noise, steps=k, clip=False, **kwargs).double() - ref).abs().max().item() for k in steps]


@pytest.mark.parametrize("spacing", ["logsnr", "time"])
def test_dpm_solver_error_falls_at_second_order_and_ddim_at_first(spacing):
    """T = 1000, cosine schedule, 20 -> 40 -> 80 -> 160 steps: DDIM's largest error halves (ratio 2 ± 0.2)
    each time, DPM-Solver++'s falls about fourfold (3.3-4.8) over the last two doublings and is below DDIM's
    at equal model calls from 40 on (at 20 the ``time`` spacing is still worse: 0.21 against 0.16)."""
    model, log_alphas = analytic()
    noise = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ref = reference(model, noise, log_alphas)
    steps = (20, 40, 80, 160)
    dpm = errors(model, noise, ref, steps, sampler="dpm_solver", spacing=spacing)
    ddim = errors(model, noise, ref, steps, sampler="ddim")
    dpm_ratios = [a / b for a, b in zip(dpm, dpm[1:])]
    ddim_ratios = [a / b for a, b in zip(ddim, ddim[1:])]
    assert all(1.8 < r < 2.2 for r in ddim_ratios), ddim_ratios
    assert all(3.3 < r < 4.8 for r in dpm_ratios[1:]), dpm_ratios
    assert all(a < b for a, b in zip(dpm[1:], ddim[1:])), (dpm, ddim)  # time spacing, 20 steps: not yet
    assert dpm[-1] < 1e-2


def test_guided_form_solves_the_guided_ode_and_equals_the_unguided_at_guidance_zero():
    """With labels, ``ε̃ = (1+w) ε(x, y) - w ε(x, ∅)`` of two Gaussian ε-predictors (means ``m_y`` and 0) is
    the exact ε of ``N((1+w) m_y, s²)``: guided DPM-Solver++ converges to that flow at 2nd order. At
    ``w = 0`` it is the unguided solver: one network call of the batch per step (no "no label" branch),
    and the same samples as ``w -> 0``."""
    model, log_alphas = analytic(conditional=True, num_classes=3)
    noise = torch.randn(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.arange(12) % 3
    w = 2.0
    mean = ((1 + w) * torch.tensor(MEANS, dtype=torch.float64)[y]).view(-1, 1, 1, 1)
    ref = reference(model, noise, log_alphas, mean)
    errs = errors(model, noise, ref, (40, 80, 160), sampler="dpm_solver", y=y, guidance=w)
    assert 3.3 < errs[1] / errs[2] < 4.8 and errs[2] < 1e-2, errs

    model.net.calls.clear()
    plain = model.generate(noise, y=y, sampler="dpm_solver", steps=10, guidance=0.0, clip=False)
    assert model.net.calls == [12] * 10
    near = model.generate(noise, y=y, sampler="dpm_solver", steps=10, guidance=1e-6, clip=False)
    assert model.net.calls[10:] == [24] * 10  # the guided form: conditional and "no label" in one batch
    torch.testing.assert_close(plain, near, atol=1e-4, rtol=0)
    unguided_ref = reference(model, noise, log_alphas, torch.tensor(MEANS, dtype=torch.float64)[y].view(-1, 1, 1, 1))
    assert (plain.double() - unguided_ref).abs().max() < 0.1


def test_first_step_is_ddim_and_time_spacing_calls_ddims_timesteps():
    """One step of DPM-Solver++ then the final data prediction (2 steps) is DDIM with 2 steps (its first step
    is 1st order, DDIM's update); the ``time`` spacing is DDIM's grid, ``logsnr`` is uniform in λ."""
    model, log_alphas = analytic(timesteps=100, schedule="linear")
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    for clip in (False, True):
        a = model.generate(noise, sampler="dpm_solver", spacing="time", steps=2, clip=clip)
        b = model.generate(noise, sampler="ddim", steps=2, clip=clip)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert solver_times(log_alphas, 10, "time").tolist() == ddim_timesteps(100, 10).double().tolist()
    times = solver_times(log_alphas, 10, "logsnr")
    assert times[0] == 99 and times[-1] == 0 and (times.diff() < 0).all()
    lam = log_snr(interp_log_alpha(times, log_alphas))
    torch.testing.assert_close(lam.diff(), torch.full((9,), (lam[-1] - lam[0]).item() / 9, dtype=torch.float64))
    # the interpolation passes through the integer steps and inverts
    grid = torch.arange(100, dtype=torch.float64)
    torch.testing.assert_close(interp_log_alpha(grid, log_alphas), log_alphas)
    torch.testing.assert_close(time_of_log_alpha(interp_log_alpha(times, log_alphas), log_alphas), times)


def test_sample_with_a_network_and_the_hyper_parameters():
    """A real (random) U-Net: ``sample(n, sampler="dpm_solver", steps=k)`` draws images on the level grid,
    deterministic given the seed; ``sampler: dpm_solver`` as the default; ``eta`` with it is refused."""
    torch.manual_seed(0)
    model = create_model("ddpm", num_levels=17, timesteps=20, channels=8, sampler="dpm_solver", sample_steps=4).eval()
    for spacing in ("logsnr", "time"):
        torch.manual_seed(3)
        a = model.sample(3, spacing=spacing)
        torch.manual_seed(3)
        b = model.sample(3, sampler="dpm_solver", steps=4, spacing=spacing)
        assert a.shape == (3, 1, 8, 8) and torch.equal(a, b)
        assert torch.equal(a * 16, (a * 16).round()) and 0 <= a.min() and a.max() <= 1
    with pytest.raises(ConfigError, match="deterministic") as err:
        create_model("ddpm", sampler="dpm_solver", eta=0.5)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"sampler": "heun"}, "unknown sampler 'heun'; choose ddim, ancestral, dpm_solver"),
        ({"sampler": "dpm_solver", "steps": 0}, "steps must be an integer in [1, 20]"),
        ({"sampler": "dpm_solver", "steps": 21}, "steps must be an integer in [1, 20]"),
        ({"steps": 2.5}, "steps must be an integer in [1, 20]"),
        ({"sampler": "dpm_solver", "spacing": "karras"}, "unknown spacing 'karras'; choose time or logsnr"),
    ],
)
def test_bad_sampling_arguments_get_one_line(kwargs, needle):
    model = create_model("ddpm", num_levels=17, timesteps=20, channels=8).eval()
    model.net = None  # refused before the network is used
    with pytest.raises(ValueError) as err:
        model.sample(2, **kwargs)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_cli_takes_the_solver_and_refuses_bad_names(capsys):
    from genlight.cli import GenlightCLI

    args = ["--model", "ddpm", "--data", "digits", "--model.channels", "8", "--model.sampler", "dpm_solver",
            "--model.sample_steps", "20", "--model.spacing", "time", "--trainer.logger", "false"]  # fmt: skip
    model = GenlightCLI(args=args, run=False).model
    assert (model.hparams.sampler, model.sample_steps, model.hparams.spacing) == ("dpm_solver", 20, "time")
    for option, value, needle in [("sampler", "heun", "dpm_solver"), ("spacing", "karras", "logsnr"),
                                  ("sample_steps", "0", "sample_steps")]:  # fmt: skip
        code, _, err = run(capsys, "fit", "--model", "ddpm", "--data", "digits", f"--model.{option}", value)
        assert_user_error(code, err, needle, strict=False)


def test_logsnr_spacing_reaches_the_data_law_in_ten_steps():
    """T = 250, cosine schedule (the digits recipe), ten model calls: DPM-Solver++ on the log-SNR grid gives
    samples of the Gaussian data with its standard deviation to 2% (measured 0.998 s), where DDIM shrinks it
    (0.84 s) and DPM-Solver++ on DDIM's time grid overshoots (1.20 s: its last steps are long in λ)."""
    model, _ = analytic(timesteps=250, schedule="cosine")
    noise = torch.randn(256, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    spread = {}
    for name, kwargs in [("logsnr", {"sampler": "dpm_solver", "spacing": "logsnr"}), ("ddim", {"sampler": "ddim"}),
                         ("time", {"sampler": "dpm_solver", "spacing": "time"})]:  # fmt: skip
        x = model.generate(noise, steps=10, clip=False, **kwargs)
        assert abs(x.mean().item()) < 0.02 and math.isfinite(x.abs().max().item()), name
        spread[name] = abs(x.std().item() / STD - 1)
    assert spread["logsnr"] < 0.02 < 0.1 < min(spread["ddim"], spread["time"]), spread


@pytest.mark.slow
def test_benchmark_script_scores_and_renders(tmp_path, digits):
    """``benchmarks/ddpm_solvers.py score`` and ``time`` on a one-step checkpoint, tiny n: rows in the .json,
    the table and the target lines in the .md."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from tests.helpers import cpu_trainer

    model = create_model("ddpm", num_levels=17, timesteps=50, channels=8)
    trainer = cpu_trainer(max_steps=1, limit_val_batches=0)
    trainer.fit(model, datamodule=digits)
    ckpt = tmp_path / "ddpm.ckpt"
    trainer.save_checkpoint(ckpt)
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = tmp_path / "solvers"
    rows = "DDIM-50;DDIM-20;DDIM-10;DPM-Solver++ 20, logsnr;DPM-Solver++ 20, time;DPM-Solver++ 10, logsnr"
    for cmd in (["score", "digits", str(ckpt), "--n", "20", "--rows", rows],
                ["time", "digits", str(ckpt), "--n", "4", "--rounds", "1"]):  # fmt: skip
        result = subprocess.run([sys.executable, "benchmarks/ddpm_solvers.py", *cmd, "--out", str(out)], cwd=root,
                                env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
        assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads(out.with_suffix(".json").read_text())
    assert set(saved["digits"]) == set(rows.split(";")) and saved["_timing_digits"]["n"] == 4
    assert all(math.isfinite(r["fid_train"]) and r["s_per_1000"] > 0 for r in saved["digits"].values())
    text = out.with_suffix(".md").read_text()
    assert "| DPM-Solver++ 20, logsnr | 20 |" in text and "Target (issue 26), DPM-Solver++ 20, time" in text
