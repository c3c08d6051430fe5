"""The contract under 2-process DDP on the CPU (slow: starting the processes dominates).

:func:`check_two_process_ddp`: the fit runs and the ranks agree. :func:`check_ddp_matches_one_process`:
a 2-process fit logs the same figures and ends with the same weights as one process.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from genlight.testing.harness import Family, cpu_trainer, family_name, smoke_setup

__all__ = ["DDPComparison", "RecordRank", "check_ddp_matches_one_process", "check_two_process_ddp"]


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
                "metrics": {
                    k: float(v) for k, v in trainer.callback_metrics.items() if torch.is_tensor(v) and v.numel() == 1
                },
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
        str(root),
        devices=2,
        strategy="ddp_spawn",
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[RecordRank(str(root))],
        **trainer_kwargs,
    )
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


#: global optimizer steps of :func:`check_ddp_matches_one_process` (one epoch), and validation batches
STEPS, VAL_BATCHES = 3, 2
#: the tolerances of :func:`check_ddp_matches_one_process`: weights (absolute, after ``STEPS`` steps)
#: and logged figures (relative); both only absorb float summation order (DDP averages gradients with
#: an all-reduce, one process sums a batch twice the size)
WEIGHT_ATOL, METRIC_RTOL = 1e-5, 1e-5


def _train_loader(dm: Any, as_ddp: bool) -> DataLoader:
    """``dm``'s training set in the order a 2-process fit reads it. Lightning gives a distributed fit a
    shuffled ``DistributedSampler`` seeded with the global seed, whatever the loader's own sampler;
    ``as_ddp`` gives one process the same permutation (``num_replicas=1``), whose batches of ``2B`` are
    then the unions of the two processes' batches of ``B``. Otherwise the images come in order (a
    distributed fit replaces that sampler; a mirrored one, without distributed sampler, keeps it)."""
    loader = type(dm).train_dataloader(dm)
    sampler: DistributedSampler | None = None
    if as_ddp:
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        sampler = DistributedSampler(loader.dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        shuffle=False,
        sampler=sampler,
        drop_last=False,
        collate_fn=loader.collate_fn,
    )


def has_batch_norm(model: nn.Module) -> bool:
    """Whether ``model`` holds a batch-norm layer (whose statistics DDP keeps per process)."""
    norms = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
    return any(isinstance(m, norms) for m in model.modules())


def _fit(
    family: Family,
    root: Path,
    *,
    devices: int,
    batch_size: int,
    mirrored: bool = False,
    sync_batchnorm: bool = False,
    draw_seed: int = 1,
    overrides: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Fit ``family`` for :data:`STEPS` steps on ``devices`` CPU processes (``ddp_spawn`` for 2) from
    the same initial weights (seed 0), each process reading ``batch_size`` images per step in order
    (``mirrored``: every process reads the same images); random draws start from ``draw_seed`` in
    every process. Returns what :class:`RecordRank` saved, one dict per rank."""
    root.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(0, verbose=False)
    model, dm, trainer_kwargs = smoke_setup(family, root.parent / "data", **(overrides or {}))
    dm.batch_size = batch_size
    dm.train_dataloader = functools.partial(_train_loader, dm, devices == 1 and not mirrored)  # picklable (ddp_spawn)
    trainer = cpu_trainer(
        str(root),
        devices=devices,
        strategy="ddp_spawn" if devices > 1 else "auto",
        max_epochs=1,
        limit_train_batches=STEPS,
        limit_val_batches=VAL_BATCHES,
        num_sanity_val_steps=0,
        use_distributed_sampler=not mirrored,
        sync_batchnorm=sync_batchnorm,
        callbacks=[RecordRank(str(root)), *trainer_kwargs.pop("callbacks", [])],
        **trainer_kwargs,
    )
    pl.seed_everything(draw_seed, verbose=False)  # DDP processes re-seed with it too (Lightning's reset_seed)
    trainer.fit(model, datamodule=dm)
    return [torch.load(root / f"rank{r}.pt", weights_only=False) for r in range(devices)]


def _weight_gap(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, str]:
    """The largest absolute difference between the parameters and float buffers of two runs, and where."""
    gaps = [
        ((x.double() - b[kind][k].double()).abs().max().item() if x.numel() else 0.0, k)
        for kind in ("params", "buffers")
        for k, x in a[kind].items()
        if x.is_floating_point()
    ]
    return max(gaps, default=(0.0, ""))


def _metric_gaps(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    """Relative gaps of the figures both runs logged (``inf`` for one logged by only one of them)."""
    keys = set(a) | set(b)
    return {k: (abs(a[k] - b[k]) / max(abs(a[k]), 1e-8) if k in a and k in b else math.inf) for k in keys}


@dataclass
class DDPComparison:
    """What :func:`check_ddp_matches_one_process` compared, and how."""

    name: str
    #: ``split``: the 2 processes read the two halves of the one-process batch; ``mirrored``: each
    #: process reads the whole one-process batch (for families that draw random numbers in training)
    mode: str
    reason: str
    sync_batchnorm: bool
    weight_gap: float = 0.0
    weight_gap_at: str = ""
    metric_gaps: dict[str, float] = field(default_factory=dict)

    def summary(self) -> str:
        worst = max(self.metric_gaps.values(), default=0.0)
        return (
            f"{self.name}: {self.mode}{' + sync_batchnorm' if self.sync_batchnorm else ''}: weights within "
            f"{self.weight_gap:.1e}, {len(self.metric_gaps)} figures within {worst:.1e} (relative); {self.reason}"
        )


def check_ddp_matches_one_process(
    family: Family, root: str | Path, batch_size: int = 8, *, sync_batchnorm: bool | None = None, **overrides: Any
) -> DDPComparison:
    """A 2-process ``ddp_spawn`` fit (gloo, CPU) of ``family`` logs the same figures (every value in
    ``callback_metrics``: ``val/...`` and the ``train/..._epoch`` means) and ends with the same weights
    and buffers as one process, within :data:`METRIC_RTOL` / :data:`WEIGHT_ATOL` (slow: ~1 minute).

    Which comparison is exact depends on the family, found by two one-process fits that differ only in
    the seed of their random draws:

    * training draws nothing (the PixelCNNs, the autoencoder, the MLP classifier): **split**,
      the real thing: one process with batches of ``2 * batch_size`` against 2 processes with
      ``batch_size`` each, the distributed sampler dealing out the same images (Lightning shuffles a
      distributed training set with the global seed; the one process reads that permutation).
    * training draws noise, latents, timesteps, dequantisation or dropout (VAEs, GANs, flows, DDPM,
      EBM, NADE's orderings): each process draws from its own generator, started from the same seed,
      so 2 processes draw two copies of ``batch_size`` values where one process draws ``2 * batch_size``
      different ones: the runs agree in distribution, never in value. Then **mirrored**: both processes
      read the same batches of ``batch_size`` (no distributed sampler) and must reproduce the
      one-process fit with that batch, which checks everything DDP adds (gradient averaging, buffer
      broadcast, reduced figures).
    * batch norm without random draws (the CNN classifier without dropout): batch statistics over each
      process's half differ from those over the whole batch unless synchronised
      (``sync_batchnorm=True``, Lightning's ``--trainer.sync_batchnorm true``), which torch runs on CUDA
      only; on the CPU such a family is compared **mirrored** (``sync_batchnorm=False`` forces the split
      comparison: its weights and statistics then differ).

    ``overrides``: ``__init__`` arguments.
    """
    root = Path(root)
    name = family_name(family)
    fit = functools.partial(_fit, family, overrides=overrides)
    probe = fit(root / "probe1", devices=1, batch_size=2 * batch_size, mirrored=True, draw_seed=1)[0]
    other = fit(root / "probe2", devices=1, batch_size=2 * batch_size, mirrored=True, draw_seed=2)[0]
    draws = _weight_gap(probe, other)[0] > 0.0
    batch_norm = has_batch_norm(smoke_setup(family, root / "data", **overrides)[0])
    sync = batch_norm if sync_batchnorm is None else sync_batchnorm
    if not draws and (not batch_norm or sync_batchnorm is not None):
        reference = fit(root / "one", devices=1, batch_size=2 * batch_size, draw_seed=1)[0]
        ranks = fit(root / "ddp", devices=2, batch_size=batch_size, sync_batchnorm=sync, draw_seed=1)
        result = DDPComparison(name, "split", "training draws no random numbers", sync)
    else:
        reference = fit(root / "one", devices=1, batch_size=batch_size, mirrored=True, draw_seed=1)[0]
        ranks = fit(root / "ddp", devices=2, batch_size=batch_size, mirrored=True, draw_seed=1)
        why = (
            "training draws random numbers (one stream per process)"
            if draws
            else "batch norm: SyncBatchNorm, which would make a split comparison exact, runs on CUDA only"
        )
        result = DDPComparison(name, "mirrored", why, False)
    assert ranks[0]["world_size"] == 2 and ranks[0]["steps"] == reference["steps"], f"{name}: steps differ"
    for k in ranks[0]["params"]:
        assert torch.equal(ranks[0]["params"][k], ranks[1]["params"][k]), f"{name}: ranks disagree on {k}"
    result.weight_gap, result.weight_gap_at = _weight_gap(reference, ranks[0])
    result.metric_gaps = _metric_gaps(reference["metrics"], ranks[0]["metrics"])
    assert result.weight_gap <= WEIGHT_ATOL, (
        f"{name} ({result.mode}): weights differ by {result.weight_gap:.2e} at {result.weight_gap_at}"
    )
    bad = {k: v for k, v in result.metric_gaps.items() if v > METRIC_RTOL}
    assert not bad, f"{name} ({result.mode}): figures differ from one process: {bad}"
    return result
