"""genlight.testing fails loudly: a family that breaks the contract gets an AssertionError naming the
family and the check (the passing side is tests/test_all_models.py and tests/test_docs_family.py)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from genlight.testing import check_family
from tests.families import TestAffineFlow2D


class WrongShapeFlow(TestAffineFlow2D):
    """Unregistered; its samples have one coordinate too many."""

    __test__ = False

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return torch.zeros(n, 3)


class KwargsFlow(TestAffineFlow2D):
    """Hides its arguments from the CLI behind ``**kwargs``."""

    __test__ = False

    def __init__(self, image_shape: tuple[int, ...] = (2,), **kwargs) -> None:  # noqa: ANN003
        super().__init__(image_shape, **kwargs)


def test_a_broken_capability_names_the_family_and_the_check(tmp_path):
    with pytest.raises(AssertionError, match=r"^WrongShapeFlow: check_fit_and_capabilities failed: .*sample shape \(6, 3\)"):
        check_family(WrongShapeFlow, tmp_path)


def test_kwargs_in_init_are_refused_before_any_training(tmp_path):
    with pytest.raises(AssertionError, match=r"^KwargsFlow: check_signature failed: .*no \*args/\*\*kwargs.*\['kwargs'\]"):
        check_family(KwargsFlow, tmp_path)
    assert not (tmp_path / "check_fit_and_capabilities").exists()  # stopped at the first failing check
