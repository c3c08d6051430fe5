"""``genlight`` leaves the process group of a distributed run before the interpreter exits (torchrun and
SLURM launches; ``tests/test_multinode.py`` runs them): without it, a process tearing its gloo
connections down at exit could abort while its peer waited for it."""

from __future__ import annotations

import torch.distributed as dist

from genlight.cli import main


def test_main_closes_the_process_group(tmp_path, monkeypatch):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    monkeypatch.chdir(tmp_path)
    main(["fit", "--model", "vae", "--model.hidden_channels", "4", "--model.latent_dim", "4",
          "--trainer.fast_dev_run", "true", "--trainer.accelerator", "cpu", "--trainer.devices", "1"])  # fmt: skip
    assert not dist.is_initialized()

