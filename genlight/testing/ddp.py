"""The contract under 2-process DDP on the CPU (slow: starting the processes dominates)."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import torch

from genlight.testing.harness import Family, cpu_trainer, family_name, smoke_setup

__all__ = ["RecordRank", "check_two_process_ddp"]


class RecordRank(pl.Callback):
    """Each rank saves its final weights and its DDP settings to ``root/rank<r>.pt`` (module level:
    ``ddp_spawn`` pickles it)."""

    def __init__(self, root: str) -> None:
        self.root = root

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        wrapped = trainer.strategy.model
        torch.save(
            {
                "params": {k: v.detach().clone() for k, v in pl_module.named_parameters()},
                "buffers": {k: v.detach().clone() for k, v in pl_module.named_buffers()},
                "find_unused": bool(getattr(wrapped, "find_unused_parameters", False)),
                "world_size": trainer.world_size,
                "steps": trainer.global_step,
            },
            Path(self.root) / f"rank{trainer.global_rank}.pt",
        )


def check_two_process_ddp(family: Family, root: str | Path) -> None:
    """``ddp_spawn`` on 2 CPU processes (slow: ~40-75 s): the fit runs, both ranks end with the same
    parameters, all trained; manual-optimisation families get ``find_unused_parameters``."""
    root = Path(root)
    model, dm, trainer_kwargs = smoke_setup(family, root / "data")
    trainer = cpu_trainer(
        str(root), devices=2, strategy="ddp_spawn", max_epochs=1, limit_train_batches=2, limit_val_batches=0,
        callbacks=[RecordRank(str(root))], **trainer_kwargs,
    )  # fmt: skip
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    trainer.fit(model, datamodule=dm)
    name = family_name(family)
    r0, r1 = (torch.load(root / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["world_size"] == 2, f"{name}: world size {r0['world_size']}"
    if not model.automatic_optimization:
        assert r0["find_unused"] and r1["find_unused"], f"{name}: DDP must expect unused parameters"
    for k in r0["params"]:
        assert torch.equal(r0["params"][k], r1["params"][k]), f"{name}: ranks disagree on {k}"
    untrained = [k for k in before if torch.equal(before[k], r0["params"][k])]
    assert not untrained, f"{name}: not trained under DDP: {untrained}"
