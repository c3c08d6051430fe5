"""The family contract as a list of named checks: :data:`CHECKS`, run on one family by
:func:`check_family` (every failure reported) or turned into one pytest item per (family, check) by
:func:`parametrize_with_checks`, as scikit-learn's ``parametrize_with_checks`` does for estimators."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlight.testing.checks import (
    check_bf16,
    check_cli_instantiation,
    check_fit_and_capabilities,
    check_fp16_manual_optimisation,
    check_signature,
)
from genlight.testing.ddp import check_ddp_matches_one_process, check_two_process_ddp
from genlight.testing.harness import Family, family_name, uses_manual_optimisation
from genlight.testing.meaning import (
    check_autoencoder_round_trip,
    check_bound_below_exact,
    check_causal,
    check_normalised,
    check_sampler_matches_log_prob,
    check_samples,
    check_translation,
)
from genlight.testing.spaces import NotApplicable

__all__ = ["CHECKS", "Check", "check_family", "parametrize_with_checks"]


@dataclass(frozen=True)
class Check:
    """One check of the contract: ``fn(family, folder)`` raises ``AssertionError`` (fails) or
    :class:`NotApplicable` (n/a, with the reason). ``manual_only``: applies to families that step their
    own optimizers; ``slow``: kept out of the default run by :func:`parametrize_with_checks`."""

    fn: Callable[[Family, Path], Any]
    manual_only: bool = False
    slow: bool = False

    @property
    def name(self) -> str:
        return self.fn.__name__

    def run(self, family: Family, folder: str | Path) -> None:
        """Run the check in ``folder`` (created); raises :class:`NotApplicable` where it does not apply."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if self.manual_only and not uses_manual_optimisation(family, folder / "probe"):
            raise NotApplicable(f"{family_name(family)} uses automatic optimisation")
        self.fn(family, folder)

    def __call__(self, family: Family, folder: str | Path) -> None:
        """Under pytest: run it, a check that does not apply is skipped as ``n/a: <reason>``."""
        import pytest

        try:
            self.run(family, folder)
        except NotApplicable as reason:
            pytest.skip(f"n/a: {reason}")


#: every check, fast meaning checks first (each runs on its own, on an untrained family)
CHECKS: tuple[Check, ...] = (
    Check(check_signature),
    Check(check_samples),
    Check(check_normalised),
    Check(check_sampler_matches_log_prob),
    Check(check_bound_below_exact),
    Check(check_causal),
    Check(check_autoencoder_round_trip),
    Check(check_translation),
    Check(check_fit_and_capabilities),
    Check(check_cli_instantiation),
    Check(check_bf16),
    Check(check_fp16_manual_optimisation, manual_only=True),
    Check(check_two_process_ddp, manual_only=True, slow=True),
    Check(check_ddp_matches_one_process, slow=True),
)


@contextmanager
def _folder(tmp_path: str | Path | None) -> Iterator[Path]:
    if tmp_path is not None:
        Path(tmp_path).mkdir(parents=True, exist_ok=True)
        yield Path(tmp_path)
    else:
        with tempfile.TemporaryDirectory(prefix="genlight-check-") as folder:
            yield Path(folder)


def check_family(family: Family, tmp_path: str | Path | None = None, *, ddp: bool = False) -> dict[str, str]:
    """Run every check of :data:`CHECKS` on ``family`` (a class, registered or not, or a registry name),
    the two slow DDP checks only with ``ddp=True``; files go under ``tmp_path`` (a temporary folder if
    ``None``). Returns ``{check: "passed" | "n/a: <reason>"}``.

    Raises:
        AssertionError: after all checks ran, one line per failed check,
            ``"<family>: <check> failed: <error>: <message>"``, the first failure chained.
    """
    name = family_name(family)
    results: dict[str, str] = {}
    failures: list[tuple[str, BaseException]] = []
    with _folder(tmp_path) as root:
        for check in CHECKS:
            if check.slow and not ddp:
                continue
            try:
                check.run(family, root / check.name)
            except NotApplicable as reason:
                results[check.name] = f"n/a: {reason}"
            except Exception as error:  # noqa: BLE001 - every failure is reported, not only the first
                results[check.name] = "failed"
                failures.append((check.name, error))
            else:
                results[check.name] = "passed"
    if failures:
        lines = [f"{name}: {check} failed: {type(error).__name__}: {error}" for check, error in failures]
        raise AssertionError("\n".join(lines)) from failures[0][1]
    return results


def parametrize_with_checks(families: Iterable[Family], *, checks: Iterable[Check] = CHECKS) -> Any:
    """A ``pytest.mark.parametrize("family, check", ...)`` decorator: one item per family and check,
    named ``<family>-<check>``, the slow checks marked ``slow``. The test calls ``check(family,
    tmp_path)``; a check that does not apply is skipped as ``n/a: <reason>``.

    ```python
    @parametrize_with_checks(["my_family"])
    def test_contract(family, check, tmp_path):
        check(family, tmp_path)
    ```
    """
    import pytest

    checks = tuple(checks)
    params = [
        pytest.param(
            family, check, id=f"{family_name(family)}-{check.name}", marks=[pytest.mark.slow] if check.slow else []
        )
        for family in families
        for check in checks
    ]
    return pytest.mark.parametrize("family, check", params)
