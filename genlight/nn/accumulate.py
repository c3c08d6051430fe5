"""Gradient accumulation under manual optimisation: ``k`` training batches per optimizer step.

Lightning refuses ``Trainer(accumulate_grad_batches=k)`` with ``automatic_optimization = False``, so the
families with a manual loop count their own windows. In a window of ``k`` batches (micro-batches) of size
``b``, every loss is scaled by ``1/k`` and back-propagated as its batch arrives, gradients are summed in
``.grad`` and each optimizer steps once, at the window's last batch: the step is that of one batch of
``k·b`` when every loss term is a mean over examples (no batch norm, minibatch statistics or in-batch
negatives). A step that needs another network's update first (the generator's step through the updated
discriminator) runs at the window's end over the inputs the window carried (:meth:`carry`), batch by batch.

The window counter runs across epochs (a window may span an epoch's end), and what an unfinished window
holds (its count, the summed gradients, the carried inputs and running sums) is saved in checkpoints
(``checkpoint["genlight_accumulation"]``, see :class:`~genlight.module.GenerativeModuleHooks`), so a resume
in the middle of a window continues it exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["AccumulationWindow"]


class AccumulationWindow:
    """The position in the current window of ``k`` batches, and what the window carries to its end.

    ``begins`` / ``ends``: whether this batch is the window's first / last; ``index``: the windows
    finished before this one (= optimizer steps taken); ``scale = 1/k``. Call :meth:`advance` once at
    the end of every training batch.
    """

    def __init__(self, k: int = 1) -> None:
        if int(k) < 1:
            raise ValueError(f"accumulate must be an integer >= 1, got {k}")
        self.k = int(k)
        self.seen = 0  # training batches seen, over every epoch
        self.carried: list[tuple[Tensor | None, ...]] = []
        self.sums: dict[str, float] = {}
        self.pending_grads: dict[str, Tensor] = {}

    @property
    def begins(self) -> bool:
        return self.seen % self.k == 0

    @property
    def ends(self) -> bool:
        return (self.seen + 1) % self.k == 0

    @property
    def index(self) -> int:
        return self.seen // self.k

    @property
    def scale(self) -> float:
        return 1.0 / self.k

    def carry(self, *tensors: Tensor | None) -> None:
        """Keep this batch's ``tensors`` (detached) for a step at the window's end."""
        self.carried.append(tuple(None if t is None else t.detach() for t in tensors))

    def add(self, **values: float | Tensor) -> None:
        """Add to the window's running sums (read them at its end, before :meth:`advance`)."""
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + float(value)

    def advance(self) -> None:
        """Count this batch; forget what the window carried once it has ended."""
        if self.ends:
            self.carried, self.sums = [], {}
        self.seen += 1

    def replay(
        self,
        manual_step: Callable[..., dict[str, Tensor]],
        optimizer: Any,
        terms_of: Callable[..., dict[str, Tensor]],
    ) -> dict[str, Tensor]:
        """At the window's end: one accumulated step of ``optimizer`` over the carried batches, each
        contributing ``terms_of(*carried)`` (named loss terms) scaled by ``1/k``, through ``manual_step``
        (:meth:`~genlight.module.GenerativeModule.manual_step`). Returns the terms' means (detached)."""
        means: dict[str, Tensor] = {}
        last = len(self.carried) - 1
        for i, carried in enumerate(self.carried):
            terms = manual_step(
                optimizer, lambda c=carried: terms_of(*c), scale=self.scale, zero_grad=i == 0, step=i == last
            )
            for name, value in terms.items():
                means[name] = means.get(name, 0.0) + value.detach().float() / len(self.carried)
        return means

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self, module: nn.Module) -> dict[str, Any]:
        """The count, and in an unfinished window the carried inputs, the sums and ``module``'s summed gradients."""
        state: dict[str, Any] = {"k": self.k, "seen": self.seen}
        if not self.begins:
            grads = {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}
            state.update(carried=[list(c) for c in self.carried], sums=dict(self.sums), grads=grads)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the gradients wait for :meth:`restore_gradients` (Lightning clears
        every gradient when a fit starts, after loading the checkpoint)."""
        self.seen = int(state.get("seen", 0))
        if int(state.get("k", self.k)) != self.k and self.seen % self.k:
            raise ValueError(
                f"the checkpoint stopped inside a window of accumulate={state['k']} batches; resume it with "
                f"accumulate={state['k']}, not {self.k}"
            )
        self.carried = [tuple(c) for c in state.get("carried", [])]
        self.sums = dict(state.get("sums", {}))
        self.pending_grads = dict(state.get("grads", {}))

    def restore_gradients(self, module: nn.Module) -> None:
        """Put the summed gradients of a loaded unfinished window back onto ``module``'s parameters (once)."""
        params = dict(module.named_parameters())
        with torch.no_grad():
            for name, grad in getattr(self, "pending_grads", {}).items():
                if name in params:
                    params[name].grad = grad.to(params[name].device, params[name].dtype).clone()
        self.pending_grads = {}
