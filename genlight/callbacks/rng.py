"""Random-number state in checkpoints, so a resumed fit draws what the uninterrupted one would have.

Lightning's checkpoints restore weights, optimizers, schedulers and loop counters, but not the global
random generators: a fit resumed at an epoch boundary shuffles its next epoch (and draws its noise)
from a different state than the run that never stopped. :class:`RNGState` stores the states of
``torch`` (CPU and CUDA), ``numpy`` and ``random`` whenever a checkpoint is written and puts them back
when a fit restores the checkpoint: before Lightning builds the first training iterator, which draws
the epoch's shuffling (the sanity check in between runs under ``isolate_rng``). The ``genlight``
command adds it to every ``fit``.
"""

from __future__ import annotations

import random
from typing import Any, cast

import lightning.pytorch as pl
import numpy as np
import torch

__all__ = ["RNGState"]


class RNGState(pl.Callback):
    """Saves the global RNG states in every checkpoint and restores them when a resumed fit starts."""

    def state_dict(self) -> dict[str, Any]:
        kind, keys, pos, has_gauss, cached = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())
        version, state, gauss = random.getstate()
        out: dict[str, Any] = {
            "torch": torch.get_rng_state(),
            "numpy": {
                "kind": kind,
                "keys": torch.from_numpy(keys.astype(np.int64)),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached": float(cached),
            },
            "python": {"version": version, "state": torch.tensor(state, dtype=torch.int64), "gauss": gauss},
        }
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            out["cuda"] = torch.cuda.get_rng_state_all()
        return out

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Called by Lightning when a fit restores a checkpoint; sets the global generators at once."""
        state = state_dict
        if not state:
            return
        torch.set_rng_state(state["torch"].cpu())
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
        p = state["python"]
        random.setstate((p["version"], tuple(int(v) for v in p["state"].tolist()), p["gauss"]))
        if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state["cuda"])
