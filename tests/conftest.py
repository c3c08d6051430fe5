"""Test-suite settings: W&B never reaches a server, runs are seeded, digits data is shared."""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_DISABLE_GIT", "true")

import itertools  # noqa: E402
import multiprocessing  # noqa: E402
import socket  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from genlight.datamodules.digits import DigitsDataModule  # noqa: E402

# DDP tests that only validate start their ranks from one fork server (tests.helpers.validation_ddp) that
# has imported these once, instead of two fresh interpreters per test
multiprocessing.set_forkserver_preload(["torch", "lightning.pytorch", "genlight", "tests.families", "tests.made", "tests.helpers"])

_PORTS = itertools.count()


def free_port() -> int:
    """A port nobody listens on now, below the ephemeral range (32768-60999 on Linux) that the system
    hands out for outgoing connections and ``bind(0)``; spread by process id, so concurrent test runs
    on one machine start from different ports."""
    for _ in range(2000):
        port = 20000 + (os.getpid() * 131 + next(_PORTS)) % 12000
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-31999")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _fresh_master_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh rendezvous port for every test's DDP processes. Lightning's launcher writes the port it
    picks into this process's ``MASTER_PORT`` and every later DDP run in the session reuses it; minutes
    later another process on the machine may hold it and rank 0 fails with EADDRINUSE (the cause of
    test_density_logging's failure in a full run under load, never alone)."""
    monkeypatch.setenv("MASTER_PORT", str(free_port()))


@pytest.fixture
def digits() -> DigitsDataModule:
    dm = DigitsDataModule(batch_size=32)
    dm.setup("fit")
    return dm


import tests.families  # noqa: E402,F401  - test-only families (tag "test") join the registry-wide tests
import tests.made  # noqa: E402,F401  - so does the MADE whose planted bugs test the kit
