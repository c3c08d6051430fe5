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
SPLIT = {"ae", "mlp_classifier", "pixelcnn", "gated_pixelcnn", "pixelrnn_row", "pixelrnn_diag"}
MIRRORED = {"vae", "nade", "dcgan", "ddpm", "realnvp", "glow", "cyclegan", "cnn_classifier"}  # noise, z, t, dropout


@pytest.mark.parametrize("name", BUILT_IN)
def test_two_processes_log_the_figures_and_weights_of_one(name: str, tmp_path: Path) -> None:
    result = check_ddp_matches_one_process(name, tmp_path)
    print(result.summary())
    assert any(k.startswith("train/") for k in result.metric_gaps), f"{name}: no figures compared"
    if name in SPLIT | MIRRORED:
        assert result.mode == ("split" if name in SPLIT else "mirrored"), result.summary()


def test_batch_norm_statistics_equal_one_process_only_with_sync_batchnorm(tmp_path: Path) -> None:
    """The CNN classifier without dropout draws nothing in training and has batch norm: split between two
    processes its running statistics (and so its weights and figures) equal one process's only with
    ``sync_batchnorm`` (Lightning's ``--trainer.sync_batchnorm true``); without it each process
    normalises by, and averages the statistics of, its own half of the batch."""
    synced = check_ddp_matches_one_process("cnn_classifier", tmp_path / "sync", dropout=0.0)
    assert (synced.mode, synced.sync_batchnorm) == ("split", True)
    with pytest.raises(AssertionError, match="differ"):
        check_ddp_matches_one_process("cnn_classifier", tmp_path / "plain", dropout=0.0, sync_batchnorm=False)
