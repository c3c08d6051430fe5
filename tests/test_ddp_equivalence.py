"""Every registered family under 2-process DDP logs the figures and ends with the weights of one process
(``genlight.testing.check_ddp_matches_one_process``; slow: ~30-60 s a family, starting the processes
dominates). How each family is compared, and why, is printed (``pytest -s``) and documented in
docs/scaling.md: families whose training draws random numbers can only be compared with both processes
reading the same batches, the others with the batch split between the processes, batch norm synchronised."""

from __future__ import annotations

from pathlib import Path

import pytest

from genlight.registry import MODELS
from genlight.testing import check_ddp_matches_one_process

pytestmark = pytest.mark.slow

BUILT_IN = [name for name in MODELS.list() if MODELS.get(name).__module__.startswith("genlight.")]
#: families whose training draws no random numbers, compared with the batch split between the processes
#: (a family not named here is compared either way, as the probe finds)
SPLIT = {"ae", "mlp_classifier", "pixelcnn", "gated_pixelcnn"}
MIRRORED = {"vae", "nade", "dcgan", "ddpm", "realnvp", "glow", "cyclegan", "cnn_classifier", "pixelrnn_row"}  # noise, z, t, dropout


@pytest.mark.parametrize("name", BUILT_IN)
def test_two_processes_log_the_figures_and_weights_of_one(name: str, tmp_path: Path) -> None:
    result = check_ddp_matches_one_process(name, tmp_path)
    print(result.summary())
    assert any(k.startswith("train/") for k in result.metric_gaps), f"{name}: no figures compared"
    if name in SPLIT | MIRRORED:
        assert result.mode == ("split" if name in SPLIT else "mirrored"), result.summary()


def test_batch_norm_statistics_differ_between_processes_without_sync_batchnorm(tmp_path: Path) -> None:
    """The CNN classifier without dropout draws nothing in training but has batch norm. Split between two
    processes each normalises by, and averages into its running statistics, its own half of the batch,
    so weights and statistics differ from one process's; ``sync_batchnorm`` (Lightning's
    ``--trainer.sync_batchnorm true``) would synchronise them, but torch's SyncBatchNorm runs on CUDA
    only. Compared mirrored, it matches."""
    mirrored = check_ddp_matches_one_process("cnn_classifier", tmp_path / "auto", dropout=0.0)
    assert (mirrored.mode, mirrored.sync_batchnorm) == ("mirrored", False) and "SyncBatchNorm" in mirrored.reason
    with pytest.raises(AssertionError, match=r"cnn_classifier \(split\): weights differ"):
        check_ddp_matches_one_process("cnn_classifier", tmp_path / "plain", dropout=0.0, sync_batchnorm=False)
    with pytest.raises(Exception, match="SyncBatchNorm layers only work with GPU modules"):
        check_ddp_matches_one_process("cnn_classifier", tmp_path / "sync", dropout=0.0, sync_batchnorm=True)
