"""The family contract as a kit: check a family, registered or not, in one line.

```python
from genlight.testing import check_family

def test_my_family(tmp_path):
    check_family(MyFamily, tmp_path)
```

:func:`check_family` runs every check below on one class and raises an ``AssertionError`` that names
the family and the check that failed. Each check also works alone (``tests/test_all_models.py``
parametrises them over ``list_models()``). A check builds the family from its own class attributes:
``smoke_kwargs`` (tiny widths), ``smoke_data`` / ``smoke_data_kwargs`` (the registered datamodule it
runs on, made small by its ``smoke()``) and ``smoke_trainer`` (Trainer settings it needs). Everything
runs on the CPU in seconds.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from genlight.testing.checks import (
    check_bf16,
    check_capabilities,
    check_checkpoint_round_trip,
    check_cli_instantiation,
    check_fit_and_capabilities,
    check_fp16_manual_optimisation,
    check_signature,
    check_training,
)
from genlight.testing.ddp import DDPComparison, RecordRank, check_ddp_matches_one_process, check_two_process_ddp
from genlight.testing.harness import (
    Family,
    SmokeFit,
    cpu_trainer,
    family_name,
    linked_kwargs,
    smoke_fit,
    smoke_setup,
    tiny_trainer,
    uses_manual_optimisation,
)

__all__ = [
    "DDPComparison",
    "RecordRank",
    "SmokeFit",
    "check_bf16",
    "check_capabilities",
    "check_checkpoint_round_trip",
    "check_cli_instantiation",
    "check_ddp_matches_one_process",
    "check_family",
    "check_fit_and_capabilities",
    "check_fp16_manual_optimisation",
    "check_signature",
    "check_training",
    "check_two_process_ddp",
    "cpu_trainer",
    "linked_kwargs",
    "smoke_fit",
    "smoke_setup",
    "tiny_trainer",
    "uses_manual_optimisation",
]


@contextmanager
def _folder(tmp_path: str | Path | None) -> Iterator[Path]:
    if tmp_path is not None:
        Path(tmp_path).mkdir(parents=True, exist_ok=True)
        yield Path(tmp_path)
    else:
        with tempfile.TemporaryDirectory(prefix="genlight-check-") as folder:
            yield Path(folder)


def check_family(family: Family, tmp_path: str | Path | None = None, *, ddp: bool = False) -> None:
    """Run every check of the family contract on ``family`` (a class, registered or not, or a registry
    name): :func:`check_signature`, :func:`check_fit_and_capabilities` (fit, capabilities, checkpoint
    round trip), :func:`check_cli_instantiation`, :func:`check_bf16`, and for manual-optimisation
    families :func:`check_fp16_manual_optimisation` (and :func:`check_two_process_ddp` with ``ddp=True``);
    with ``ddp=True`` every family also :func:`check_ddp_matches_one_process` (slow: about a minute).
    Files go under ``tmp_path`` (a temporary folder if ``None``).

    Raises:
        AssertionError: ``"<family>: <check> failed: <why>"``, the original error chained.
    """
    name = family_name(family)
    with _folder(tmp_path) as root:
        checks: list[Callable[[Family, Path], Any]] = [
            check_signature, check_fit_and_capabilities, check_cli_instantiation, check_bf16
        ]
        if uses_manual_optimisation(family, root):
            checks.append(check_fp16_manual_optimisation)
            if ddp:
                checks.append(check_two_process_ddp)
        if ddp:
            checks.append(check_ddp_matches_one_process)
        for check in checks:
            folder = root / check.__name__
            folder.mkdir(exist_ok=True)
            try:
                check(family, folder)
            except Exception as error:
                raise AssertionError(f"{name}: {check.__name__} failed: {type(error).__name__}: {error}") from error
