"""The processes of a ``ddp_spawn`` test fit leave their process group when the fit ends,
instead of leaving it to the interpreter's exit, where a gloo group can abort the process (SIGABRT)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch.distributed as dist

from genlight.testing.harness import LeaveProcessGroup, cpu_trainer


def test_ddp_spawn_trainers_leave_the_process_group_and_single_process_ones_are_untouched():
    spawned = cpu_trainer(devices=2, strategy="ddp_spawn", callbacks=[pl.Callback()])
    assert sum(isinstance(c, LeaveProcessGroup) for c in spawned.callbacks) == 1
    assert not any(isinstance(c, LeaveProcessGroup) for c in cpu_trainer().callbacks)


def test_the_group_is_left_at_teardown(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    assert dist.is_initialized()
    LeaveProcessGroup().teardown(None, None, "fit")
    assert not dist.is_initialized()
    LeaveProcessGroup().teardown(None, None, "fit")  # no group: nothing to do
