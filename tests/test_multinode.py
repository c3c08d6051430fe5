"""Two "nodes" on localhost: ``genlight fit``/``validate`` launched by torchrun as two processes with
``--nnodes 2 --nproc_per_node 1`` and node ranks 0/1 (gloo, ``--trainer.num_nodes 2``), through
``examples/scale/torchrun_2nodes.sh``, so the documented script is the one tested.

Checked: one run folder and one set of checkpoints, metrics of the same checkpoint equal for one process
and for the 2-node launch (bits/dim exactly for a deterministic likelihood, the FID exactly, the VAE's
analytic KL exactly and its one-sample bound within Monte-Carlo noise), ``--ckpt_path last`` resuming
at the right epoch, and FID reference caches that are node-local (each node fills its own).
Slow: every launch starts two fresh interpreters (about 15 s each here).
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
import torch

from tests.conftest import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "scale" / "torchrun_2nodes.sh"
TIMEOUT = 180  # a launch takes 10-30 s here; a hung one (see docs/scaling.md) fails in 3 minutes
CSV = ["--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir"]
VAE = ["--model", "vae", "--model.hidden_channels", "4", "--model.latent_dim", "4", "--data.batch_size", "32",
       "--trainer.limit_train_batches", "3", "--seed_everything", "0"]  # fmt: skip
DCGAN = ["--model", "dcgan", "--model.latent_dim", "4", "--model.width", "4", "--data.batch_size", "32",
         "--trainer.limit_train_batches", "3", "--seed_everything", "0"]  # fmt: skip
FID = ["--trainer.callbacks+=genlight.callbacks.FIDCallback", "--trainer.callbacks.extractor", "digits",
       "--trainer.callbacks.num_samples", "100", "--trainer.callbacks.batch_size", "25",
       "--trainer.callbacks.every_n_epochs", "1"]  # fmt: skip


def _env(**extra: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path, "WANDB_MODE": "offline", "PYTHON": sys.executable,
            "OMP_NUM_THREADS": "1", **extra}  # one thread per process: two processes share the cores


def two_nodes(work: Path, args: Sequence[str], node_env: Sequence[dict[str, str]] = ({}, {})) -> list[str]:
    """Run ``torchrun_2nodes.sh ARGS`` as node 0 and node 1 on 127.0.0.1; returns both logs."""
    port, procs, logs = free_port(), [], []
    for rank in (0, 1):
        log = work.parent / f"node{rank}_{port}.log"
        env = _env(NODE_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), **node_env[rank])
        with log.open("w") as out:
            procs.append(subprocess.Popen(["bash", str(SCRIPT), *args], cwd=work, env=env, stdout=out,
                                          stderr=subprocess.STDOUT))  # fmt: skip
        logs.append(log)
    try:
        codes = [p.wait(timeout=TIMEOUT) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    texts = [log.read_text() for log in logs]
    for rank, (code, text) in enumerate(zip(codes, texts)):
        assert code == 0, f"node {rank} exited with {code}:\n{text[-4000:]}"
    return texts


def one_process(work: Path, args: Sequence[str], **env: str) -> str:
    done = subprocess.run([sys.executable, "-m", "genlight.cli", *args, "--trainer.accelerator", "cpu",
                           "--trainer.devices", "1"], cwd=work, env=_env(**env), capture_output=True, text=True,
                          timeout=TIMEOUT)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout + done.stderr


def run_folders(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.glob("*/version_*"))


def metrics(folder: Path) -> list[dict[str, float]]:
    with (folder / "metrics.csv").open() as f:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def validated(root: Path) -> dict[str, float]:
    """The one row a ``validate`` with a CSV logger under ``root`` wrote (one folder, one row)."""
    folders = run_folders(root)
    assert len(folders) == 1, folders
    (row,) = metrics(root / folders[0])
    return row


def checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def test_vae_two_nodes_one_run_same_validation_and_resume(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    cache = {"GENLIGHT_FID_CACHE": str(tmp_path / "fid")}
    two_nodes(work, ["fit", *VAE, "--trainer.max_epochs", "2"], (cache, cache))
    assert [p.name for p in work.iterdir()] == ["runs"]  # nothing written beside the run folder
    assert run_folders(work / "runs") == ["vae/version_0"]
    run = work / "runs" / "vae" / "version_0"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(ckpts) == 2 and ckpts[0].startswith("best-epoch=") and ckpts[1] == "last.ckpt", ckpts
    assert checkpoint(run / "checkpoints" / "last.ckpt")["global_step"] == 6  # 3 batches per process, 2 epochs
    assert {int(r["epoch"]) for r in metrics(run)} == {0, 1}

    # the same checkpoint validated by one process and by the 2-node launch, over the whole val split
    # (144 images: even, so the distributed sampler pads nothing)
    last = str(run / "checkpoints" / "last.ckpt")
    one_process(work, ["validate", "--ckpt_path", last, "--data.batch_size", "32", *CSV, str(tmp_path / "v1")])
    two_nodes(work, ["validate", "--ckpt_path", last, "--data.batch_size", "32", *CSV, str(tmp_path / "v2")])
    single, nodes = validated(tmp_path / "v1"), validated(tmp_path / "v2")
    assert nodes["val/kl"] == pytest.approx(single["val/kl"], rel=1e-6)  # analytic: exactly equal
    # the bound's reconstruction term uses one z ~ q(z|x) per image, drawn from each process's own RNG
    # stream, so it is equal only in expectation: within the Monte-Carlo noise of 144 draws
    assert nodes["val/bpd_bound"] == pytest.approx(single["val/bpd_bound"], abs=2e-3)

    # resume across the same launch: a new run folder that starts at epoch 2, step 6
    texts = two_nodes(work, ["fit", *VAE, "--trainer.max_epochs", "3", "--ckpt_path", "last"], (cache, cache))
    assert all("resuming from runs/vae/version_0/checkpoints/last.ckpt" in t for t in texts)
    assert run_folders(work / "runs") == ["vae/version_0", "vae/version_1"]
    resumed = work / "runs" / "vae" / "version_1"
    assert {int(r["epoch"]) for r in metrics(resumed)} == {2}
    state = checkpoint(resumed / "checkpoints" / "last.ckpt")
    assert (state["epoch"], state["global_step"]) == (2, 9)


def test_autoregressive_bits_per_dim_exactly_equal_on_two_nodes(tmp_path: Path) -> None:
    """NADE's log-likelihood is exact and deterministic: the 2-node bits/dim (nats and dims summed across
    processes) equals the one-process figure to float precision."""
    work = tmp_path / "work"
    work.mkdir()
    one_process(work, ["fit", "--model", "nade", "--model.hidden_units", "8", "--data.batch_size", "32",
                       "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "2", "--seed_everything", "0"])  # fmt: skip
    last = str(work / "runs" / "nade" / "version_0" / "checkpoints" / "last.ckpt")
    one_process(work, ["validate", "--ckpt_path", last, "--data.batch_size", "32", *CSV, str(tmp_path / "v1")])
    two_nodes(work, ["validate", "--ckpt_path", last, "--data.batch_size", "32", *CSV, str(tmp_path / "v2")])
    single, nodes = validated(tmp_path / "v1"), validated(tmp_path / "v2")
    keys = [k for k in single if k.startswith("val/")]
    assert "val/bpd" in keys
    for key in keys:
        assert nodes[key] == pytest.approx(single[key], abs=1e-5), key


def test_dcgan_two_nodes_node_local_fid_cache_same_fid_and_resume(tmp_path: Path) -> None:
    """Each node has its own FID reference cache (as ``~/.cache`` is on most clusters): both fill theirs,
    and the FID of one checkpoint is the same for one process and for the 2-node launch."""
    work = tmp_path / "work"
    work.mkdir()
    caches = [{"GENLIGHT_FID_CACHE": str(tmp_path / f"fid_node{r}")} for r in (0, 1)]
    two_nodes(work, ["fit", *DCGAN, *FID, "--trainer.max_epochs", "2"], caches)
    for r in (0, 1):
        assert len(list((tmp_path / f"fid_node{r}").glob("digits_train_*.pt"))) == 1
        assert not list((tmp_path / f"fid_node{r}").glob("*.tmp"))
    assert [p.name for p in work.iterdir()] == ["runs"]
    assert run_folders(work / "runs") == ["dcgan/version_0"]
    run = work / "runs" / "dcgan" / "version_0"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.ckpt"]
    assert sorted(int(r["epoch"]) for r in metrics(run) if "val/fid_digits" in r) == [0, 1]

    last = str(run / "checkpoints" / "last.ckpt")
    one_process(work, ["validate", "--ckpt_path", last, *FID, *CSV, str(tmp_path / "v1")], **caches[0])
    two_nodes(work, ["validate", "--ckpt_path", last, *FID, *CSV, str(tmp_path / "v2")], caches)
    single, nodes = validated(tmp_path / "v1"), validated(tmp_path / "v2")
    # chunk i of the samples is drawn with seed (seed, i) whichever process draws it
    assert nodes["val/fid_digits"] == pytest.approx(single["val/fid_digits"], abs=1e-5)

    two_nodes(work, ["fit", *DCGAN, *FID, "--trainer.max_epochs", "3", "--ckpt_path", "last"], caches)
    assert run_folders(work / "runs") == ["dcgan/version_0", "dcgan/version_1"]
    state = checkpoint(work / "runs" / "dcgan" / "version_1" / "checkpoints" / "last.ckpt")
    assert (state["epoch"], state["global_step"]) == (2, 18)  # two optimizer steps per batch


DDPM = ["--model", "ddpm", "--model.timesteps", "20", "--model.channels", "8", "--model.bound_timesteps", "5",
        "--data.batch_size", "32", "--trainer.limit_train_batches", "3", "--seed_everything", "0"]  # fmt: skip


def test_ddpm_two_nodes_one_run_same_fid_and_resume(tmp_path: Path) -> None:
    """DDPM's samples (DDIM, eta 0, chunk ``i`` seeded with ``(seed, i)``) are the same on any number of
    processes, so the FID of one checkpoint is too; so is its ``val/bpd_bound``: each process bounds its
    share of the first ``bound_examples`` images (here all 144), each image with draws seeded by itself."""
    work = tmp_path / "work"
    work.mkdir()
    cache = {"GENLIGHT_FID_CACHE": str(tmp_path / "fid")}
    two_nodes(work, ["fit", *DDPM, *FID, "--trainer.max_epochs", "2"], (cache, cache))
    assert [p.name for p in work.iterdir()] == ["runs"]
    assert run_folders(work / "runs") == ["ddpm/version_0"]
    run = work / "runs" / "ddpm" / "version_0"
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert len(ckpts) == 2 and ckpts[0].startswith("best-epoch=") and ckpts[1] == "last.ckpt", ckpts

    last = str(run / "checkpoints" / "last.ckpt")
    one_process(work, ["validate", "--ckpt_path", last, "--data.batch_size", "32", *FID, *CSV, str(tmp_path / "v1")],
                **cache)  # fmt: skip
    two_nodes(work, ["validate", "--ckpt_path", last, "--data.batch_size", "32", *FID, *CSV, str(tmp_path / "v2")],
              (cache, cache))  # fmt: skip
    single, nodes = validated(tmp_path / "v1"), validated(tmp_path / "v2")
    assert nodes["val/fid_digits"] == pytest.approx(single["val/fid_digits"], abs=1e-5)
    assert nodes["val/bpd_bound"] == pytest.approx(single["val/bpd_bound"], abs=1e-5)

    two_nodes(work, ["fit", *DDPM, *FID, "--trainer.max_epochs", "3", "--ckpt_path", "last"], (cache, cache))
    assert run_folders(work / "runs") == ["ddpm/version_0", "ddpm/version_1"]
    state = checkpoint(work / "runs" / "ddpm" / "version_1" / "checkpoints" / "last.ckpt")
    assert (state["epoch"], state["global_step"]) == (2, 9)
