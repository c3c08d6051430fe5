"""Gradient accumulation under manual optimisation (``accumulate: k``), on every family with its own manual
loop (found by capability: an ``accumulate`` argument; every manual-optimisation family must have one):
``k`` batches of ``b`` give the gradients and weights of one batch of ``k·b`` at every optimizer step, and a
fit stopped in the middle of a window resumes exactly.

For the comparison every loss term must be a mean of per-example terms, so the test turns batch statistics
off the way ``model.eval()`` does for them (batch norm on its running statistics, spectral norm without its
power iteration, no dropout, one-example groups for the minibatch standard deviation) and applies the
family's ``per_example_kwargs``; and it makes random draws periodic in the batch: the i-th row of a draw of
``n`` rows is row ``i mod b`` of a fixed table, so the i-th example of every batch of ``b`` draws what the
i-th example of the ``k·b`` batch draws at the same place (a categorical draw over a batch takes its most
likely category). Python's ``random`` (CycleGAN's image pool) is seeded alike in both runs.
"""

from __future__ import annotations

import inspect
import zlib
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn

from genlight import list_models
from genlight.callbacks import default_fit_callbacks
from genlight.nn.progressive import MinibatchStdDev
from genlight.registry import MODELS
from genlight.testing import cpu_trainer, linked_kwargs, smoke_setup

K = 2


def accumulating_families() -> list[str]:
    return [n for n in list_models() if "accumulate" in inspect.signature(MODELS.get(n).__init__).parameters]


FAMILIES = accumulating_families()


class PeriodicDraws:
    """Within the context, ``torch.randn / rand / randint (/_like)`` without a ``generator`` return row
    ``i mod b`` of a fixed table for row ``i``, and ``torch.multinomial`` the most likely category of each
    row (of a 1-D distribution: periodic draws)."""

    names = ("randn", "rand", "randint", "randn_like", "rand_like", "multinomial")

    def __init__(self, b: int) -> None:
        self.b = b
        self.original = {name: getattr(torch, name) for name in self.names}
        self.tables: dict[tuple[Any, ...], Tensor] = {}

    def _rows(self, kind: str, size: tuple[int, ...], extra: tuple[Any, ...], make: Any, device: Any) -> Tensor:
        key = (kind, size[1:], *extra)
        if key not in self.tables:
            g = torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))
            self.tables[key] = make((self.b, *size[1:]) if size else (), g)
        table = self.tables[key]
        if not size:
            return table.to(device)
        return table[torch.arange(size[0]) % self.b].to(device)

    @staticmethod
    def _size(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[int, ...]:
        if "size" in kwargs:
            return tuple(kwargs.pop("size"))
        if len(args) == 1 and isinstance(args[0], (tuple, list, torch.Size)):
            return tuple(args[0])
        return tuple(int(a) for a in args)

    def _continuous(self, kind: str) -> Any:
        def draw(*args: Any, **kwargs: Any) -> Tensor:
            if kwargs.get("generator") is not None:
                return self.original[kind](*args, **kwargs)
            size = self._size(args, dict(kwargs))
            dtype, device = kwargs.get("dtype") or torch.float32, kwargs.get("device")
            return self._rows(
                kind, size, (dtype,), lambda s, g: self.original[kind](s, generator=g, dtype=dtype), device
            )

        return draw

    def _like(self, kind: str) -> Any:
        def draw(x: Tensor, **kwargs: Any) -> Tensor:
            return getattr(torch, kind)(tuple(x.shape), dtype=kwargs.get("dtype") or x.dtype, device=x.device)

        return draw

    def _randint(self, *args: Any, **kwargs: Any) -> Tensor:
        if kwargs.get("generator") is not None:
            return self.original["randint"](*args, **kwargs)
        kwargs = dict(kwargs)
        size = self._size(args[-1:], kwargs) if "size" not in kwargs else self._size((), kwargs)
        bounds = [int(a) for a in (args[:-1] if "size" not in kwargs else args)]
        if "high" in kwargs:
            bounds = [int(kwargs.get("low", 0)), int(kwargs["high"])]
        low, high = (0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
        return self._rows(
            "randint",
            size,
            (low, high),
            lambda s, g: self.original["randint"](low, high, s, generator=g),
            kwargs.get("device"),
        )

    def _multinomial(self, weights: Tensor, num_samples: int, replacement: bool = False, **kwargs: Any) -> Tensor:
        if kwargs.get("generator") is not None:
            return self.original["multinomial"](weights, num_samples, replacement, **kwargs)
        if weights.dim() == 2:  # one draw per example of the batch: its most likely category
            return weights.argmax(1, keepdim=True).expand(-1, num_samples)
        table = self.original["multinomial"](
            weights.detach().cpu().float(), self.b, True, generator=torch.Generator().manual_seed(7)
        )
        return table[torch.arange(num_samples) % self.b].to(weights.device)

    def __enter__(self) -> PeriodicDraws:
        self._saved = {name: getattr(torch, name) for name in self.names}
        torch.randn, torch.rand = self._continuous("randn"), self._continuous("rand")
        torch.randn_like, torch.rand_like = self._like("randn"), self._like("rand")
        torch.randint, torch.multinomial = self._randint, self._multinomial
        return self

    def __exit__(self, *exc: Any) -> None:
        for name, fn in self._saved.items():
            setattr(torch, name, fn)


class BatchStatisticsOff(pl.Callback):
    """Before every training batch: batch norm, spectral norm's power iteration and dropout in eval mode;
    the minibatch standard deviation over groups of one; and every optimizer step's gradients recorded.
    Adam's ``eps`` is raised to 1, so that a step is proportional to the gradient (Adam's first step is
    ``lr · sign(g)``, which flips on gradients at rounding level and would hide a wrong scale)."""

    def __init__(self) -> None:
        self.grads: list[list[Tensor]] = []

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["eps"] = 1.0

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        for m in pl_module.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.Dropout)) or "SpectralNorm" in type(m).__name__:
                m.eval()
            if isinstance(m, MinibatchStdDev):
                m.group_size = 1

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any) -> None:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        self.grads.append([torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in params])


def _batches(name: str, root: Path, b: int) -> tuple[list[list[Tensor]], Any]:
    """``K`` batches of ``b`` from the family's smoke data, and its datamodule; integer parts (labels,
    captions, domains) are the first batch's in every batch, so that in-batch pairings (wrong captions)
    agree at every size."""
    _, dm, _ = smoke_setup(name, root)
    found = [[t[:b] for t in batch] for batch in dm.train_dataloader() if len(batch[0]) >= b][:K]
    assert len(found) == K, f"{name}: its smoke data give fewer than {K} batches of {b}"
    first = found[0]
    return [[t if t.is_floating_point() else first[i] for i, t in enumerate(batch)] for batch in found], dm


def _fit(name: str, dm: Any, batches: list[list[Tensor]], b: int, accumulate: int) -> tuple[nn.Module, Any]:
    cls = MODELS.get(name)
    pl.seed_everything(0)
    kwargs = {**cls.smoke_kwargs, **linked_kwargs(cls, dm), **getattr(cls, "per_example_kwargs", {})}
    model, trainer_kwargs = cls(**kwargs, accumulate=accumulate), dict(cls.smoke_trainer)
    if hasattr(model, "n_critic"):
        model.n_critic = 1
    record = BatchStatisticsOff()
    trainer = cpu_trainer(max_epochs=1, limit_val_batches=0, callbacks=[record], **trainer_kwargs)
    with PeriodicDraws(b):
        pl.seed_everything(1)
        trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(batches, batch_size=None))
    return model, record


@pytest.mark.parametrize("name", FAMILIES)
def test_k_batches_equal_one_batch_of_k_times_b(name: str, tmp_path: Path) -> None:
    """accumulate=K over K batches of b: the same gradient at every optimizer step, and the same weights
    after them, as accumulate=1 on one batch of K·b (every optimizer steps exactly once either way)."""
    small, dm = _batches(name, tmp_path, b=6)
    big = [[torch.cat([batch[i] for batch in small]) for i in range(len(small[0]))]]
    acc_model, acc = _fit(name, dm, small, 6, accumulate=K)
    one_model, one = _fit(name, dm, big, 6, accumulate=1)
    assert len(acc.grads) == len(one.grads) >= 2, (len(acc.grads), len(one.grads))  # every optimizer, once
    for step, (ga, gb) in enumerate(zip(acc.grads, one.grads, strict=True)):
        for i, (a, b) in enumerate(zip(ga, gb, strict=True)):
            assert _close(a, b), f"{name}: gradient {i} of optimizer step {step} differs by {_gap(a, b)}"
    one_state = one_model.state_dict()
    for key, value in acc_model.state_dict().items():
        if value.is_floating_point():
            assert _close(value, one_state[key]), f"{name}: {key} differs by {_gap(value, one_state[key])}"


def _gap(a: Tensor, b: Tensor) -> str:
    return f"{float((a - b).abs().max()):.3g} (largest value {float(b.abs().max()):.3g})"


def _close(a: Tensor, b: Tensor) -> bool:
    """Equal up to float32 rounding of sums in another order: within 1e-4 of the tensor's largest value (and 1e-6)."""
    return bool((a - b).abs().max() <= 1e-4 * b.abs().max() + 1e-6)


def test_every_manual_optimisation_family_accumulates() -> None:
    """A family with its own manual loop takes ``accumulate`` (so the test above covers it)."""
    manual = []
    for name in list_models():
        cls = MODELS.get(name)
        if not cls.__module__.startswith("genlight."):  # families registered by other tests
            continue
        try:
            model = cls(**cls.smoke_kwargs)
        except Exception:  # noqa: BLE001 - a family that needs its data to build is checked by its test
            continue
        if not model.automatic_optimization:
            manual.append(name)
    assert manual and set(manual) <= set(FAMILIES), sorted(set(manual) - set(FAMILIES))


def _resume_fit(root: Path, epochs: int, ckpt_path: str | None = None) -> tuple[nn.Module, pl.Trainer]:
    pl.seed_everything(0, workers=True)
    options = {"accumulate": K, "augment": "ada", "lecam_weight": 0.3, "r1_gamma": 1.0, "r1_every": 2}
    model, dm, _ = smoke_setup("dcgan", root / "data", **options)
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        limit_train_batches=3, limit_val_batches=0, num_sanity_val_steps=0, deterministic=True,
        max_epochs=epochs, default_root_dir=str(root / "run"), callbacks=default_fit_callbacks(model),
    )  # fmt: skip
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt_path)
    return model, trainer


def test_resume_in_the_middle_of_a_window_is_exact(tmp_path: Path) -> None:
    """dcgan with accumulate=2 and every trick over epochs of 3 batches: the checkpoint after epoch 1 falls
    one batch into a window (its gradients, carried codes and sums are saved); resuming it to epoch 2
    gives the weights, optimizer states, ADA p and LeCam anchors of a run that never stopped."""
    full, full_trainer = _resume_fit(tmp_path / "full", epochs=2)
    _resume_fit(tmp_path / "part", epochs=1)
    last = tmp_path / "part" / "run" / "checkpoints" / "last.ckpt"
    saved = torch.load(last, weights_only=False)["genlight_accumulation"]
    assert saved["seen"] == 3 and len(saved["carried"]) == 1 and saved["grads"]  # in the middle of a window
    resumed, trainer = _resume_fit(tmp_path / "resumed", epochs=2, ckpt_path=str(last))
    assert trainer.global_step == full_trainer.global_step == 6  # 6 batches: 3 windows, each a D and a G step
    for key, value in full.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    for a, b in zip(full_trainer.optimizers, trainer.optimizers, strict=True):
        for k, state in a.state_dict()["state"].items():
            for field, value in state.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b.state_dict()["state"][k][field]))
    assert full.ada.state_dict() == resumed.ada.state_dict()
    assert full.lecam_anchors.state_dict() == resumed.lecam_anchors.state_dict()
    assert full.accumulation.seen == resumed.accumulation.seen == 6
