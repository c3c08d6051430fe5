"""genlight.testing fails loudly and checks meaning: each of five bugs planted in a MADE (tests/made.py)
fails the kit with a message naming the property, every failure reported, while the MADE itself passes
(the passing side for every registered family is tests/test_all_models.py)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from genlight.modules.vae import VAE
from genlight.testing import CHECKS, NotApplicable, check_bound_below_exact, check_family, chi_square
from tests.families import TestAffineFlow2D
from tests.made import MADE, MADELeaky, MADEOnePass, MADEUnnormalised, MADEWrongLevels, MADEWrongShape

#: each planted bug -> the checks that must fail it, and a property its message names
PLANTED = {
    MADEUnnormalised: ({"check_normalised", "check_sampler_matches_log_prob"}, r"normalised: exp\(log_prob\) sums to"),
    MADELeaky: ({"check_causal", "check_normalised", "check_sampler_matches_log_prob"}, r"causal: .* depends on itself"),
    MADEOnePass: ({"check_sampler_matches_log_prob"}, r"sampler matches log_prob: chi-square .* p = .* < 0.001"),
    MADEWrongLevels: ({"check_samples", "check_sampler_matches_log_prob", "check_fit_and_capabilities"}, r"sample range: .*\[0, 16\]"),
    MADEWrongShape: ({"check_samples", "check_sampler_matches_log_prob", "check_fit_and_capabilities"}, r"sample shape: .*\(6, 64\)"),
}  # fmt: skip


def failed_checks(message: str, name: str) -> set[str]:
    return {line.split(": ")[1].split(" failed")[0] for line in message.splitlines() if line.startswith(f"{name}: check_")}


@pytest.mark.parametrize("planted", list(PLANTED), ids=lambda c: c.__name__)
def test_the_kit_fails_each_planted_bug_naming_the_property(planted, tmp_path):
    expected, property_message = PLANTED[planted]
    with pytest.raises(AssertionError) as failure:
        check_family(planted, tmp_path)
    message = str(failure.value)
    assert failed_checks(message, planted.__name__) == expected, message
    assert any(__import__("re").search(property_message, line) for line in message.splitlines()), message


def test_the_kit_passes_the_made_itself(tmp_path):
    results = check_family(MADE, tmp_path)
    applied = {"check_signature", "check_samples", "check_normalised", "check_sampler_matches_log_prob", "check_causal",
               "check_fit_and_capabilities", "check_cli_instantiation", "check_bf16"}  # fmt: skip
    assert {name for name, result in results.items() if result == "passed"} == applied
    assert all(result.startswith("n/a: ") for name, result in results.items() if name not in applied), results
    assert set(results) == {c.name for c in CHECKS if not c.slow}


class InflatedVAE(VAE):
    """A "bound" half a nat above the ELBO (and IWAE): above log p(x)."""

    def log_prob(self, x: Tensor, num_samples: int | None = None, chunk_size: int = 4096) -> Tensor:
        return super().log_prob(x, num_samples, chunk_size) + 0.5


def test_a_bound_above_the_exact_value_fails(tmp_path):
    check_bound_below_exact("vae", tmp_path / "vae")  # the VAE itself passes
    with pytest.raises(AssertionError, match=r"bound below exact: the importance-sampled p\(x\) .* sums to 1\.6"):
        check_bound_below_exact(InflatedVAE, tmp_path / "inflated")


def test_a_check_that_does_not_apply_says_why(tmp_path):
    with pytest.raises(NotApplicable, match="gan is not a DensityModel"):
        check_bound_below_exact("gan", tmp_path)


def test_chi_square_pools_small_cells_and_matches_the_textbook():
    """Six cells expected 50 each: the statistic is sum (o-e)^2/e, the p-value that of chi2 with 5 degrees
    of freedom (scipy.stats.chi2.sf(16, 5) = 0.0068, sf(5, 5) = 0.4159); cells expected under 5 are pooled into one."""
    stat, dof, p = chi_square(torch.tensor([50, 50, 50, 50, 30, 70]), torch.full((6,), 1 / 6))
    assert (round(stat, 6), dof, round(p, 4)) == (16.0, 5, 0.0068)
    stat, dof, p = chi_square(torch.tensor([45, 55, 50, 50, 60, 40]), torch.full((6,), 1 / 6))
    assert (round(stat, 6), dof, round(p, 4)) == (5.0, 5, 0.4159)
    probs = torch.tensor([0.97, 0.01, 0.01, 0.01])  # with 300 draws three cells expect 3 each: pooled to 9
    _, dof, _ = chi_square(torch.tensor([291, 3, 3, 3]), probs)
    assert dof == 1


class WrongShapeFlow(TestAffineFlow2D):
    """Unregistered; its samples have one coordinate too many."""

    __test__ = False

    @torch.no_grad()
    def sample(self, n: int, *, y: Tensor | None = None) -> Tensor:
        return torch.zeros(n, 3)


class KwargsFlow(TestAffineFlow2D):
    """Hides its arguments from the CLI behind ``**kwargs``."""

    __test__ = False

    def __init__(self, image_shape: tuple[int, ...] = (2,), **kwargs) -> None:
        super().__init__(image_shape, **kwargs)


def test_a_broken_capability_names_the_family_and_the_check(tmp_path):
    with pytest.raises(AssertionError, match=r"^WrongShapeFlow: check_samples failed: .*sample shape: .*\(6, 3\)"):
        check_family(WrongShapeFlow, tmp_path)


def test_kwargs_in_init_are_refused_and_the_later_checks_still_run(tmp_path):
    with pytest.raises(AssertionError, match=r"^KwargsFlow: check_signature failed: .*no \*args/\*\*kwargs.*\['kwargs'\]") as failure:
        check_family(KwargsFlow, tmp_path)
    assert str(failure.value).count("\n") == 0  # one failure: the other checks ran, and passed
    assert (tmp_path / "check_fit_and_capabilities").is_dir()
