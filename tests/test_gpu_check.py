"""``benchmarks/gpu_check.py``'s CPU path, as a user runs it: every registered family fits one batch in
``32-true`` and ``bf16-mixed`` with finite losses; images/s of the plain loop and of genlight + Trainer
for VAE, DCGAN and DDPM at 32x32 and 64x64 with torch.compile off and on (backend ``eager`` on the CPU);
the FID pipeline's value on the CPU twice, equal; and the results file says so. (The CUDA path, with
``16-mixed`` and ``inductor``, runs only where a GPU is.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlight.registry import MODELS

ROOT = Path(__file__).resolve().parents[1]
#: the families genlight ships (other tests register families of their own in this process)
BUILT_IN = [name for name in MODELS.list() if MODELS.get(name).__module__.startswith("genlight.")]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the script finds this checkout itself
    result = subprocess.run([sys.executable, "benchmarks/gpu_check.py", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=900, env={**env, "WANDB_MODE": "offline"})  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


@pytest.mark.slow  # ~30 s: every family twice; the kit checks bf16 per family in the default run
def test_cpu_tiny_every_family_in_32_and_bf16(tmp_path: Path) -> None:
    out = tmp_path / "gpu.md"
    run("--device", "cpu", "--tiny", "--out", str(out))
    text = out.read_text()
    rows = [line for line in text.split("## 2.")[0].splitlines() if line.startswith("| `")]
    assert {(r.split("|")[1].strip(" `"), r.split("|")[2].strip()) for r in rows} == {
        (name, precision) for name in BUILT_IN for precision in ("32-true", "bf16-mixed")}  # fmt: skip
    assert all(r.split("|")[3].strip() == "yes" for r in rows)
    assert "Failed: none." in text and "| 16-mixed |" not in text  # float16 autocast is CUDA only
    speed = [[c.strip(" `") for c in line.split("|")[1:-1]] for line in text.split("## 2.")[1].splitlines()
             if line.startswith("| `")]  # fmt: skip
    assert {(r[0], r[1], r[2]) for r in speed} == {
        (f, f"3x{s}x{s}", c) for f in ("vae", "dcgan", "ddpm") for s in (32, 64) for c in ("off", "eager")}  # fmt: skip
    for family, _, _, plain, ours, ratio, note in speed:
        assert float(plain) > 0 and float(ours) > 0 and float(ratio) > 0 and note == "", family
    assert "CPU" in text.split("## 3.")[1] and "relative gap 0.00e+00 (equal to 1e-3)" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU message is written only without CUDA")
def test_without_cuda_it_says_so_and_gives_the_command(tmp_path: Path) -> None:
    out = tmp_path / "gpu.md"
    run("--out", str(out))
    text = out.read_text()
    assert "no CUDA device was available" in text and "`python benchmarks/gpu_check.py`" in text
    assert "| `" not in text  # no figures
