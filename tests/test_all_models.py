"""Every registered model, the moment it is registered, through the family contract of
:mod:`genlight.testing`, the kit a downstream package runs on its own family: one pytest item per family
and check (``<family>-<check>``), a check that does not apply to a family skipped as ``n/a: <reason>``.
Nothing here names a family: the test-only families of ``tests/families.py`` and ``tests/made.py``
(registered like any plug-in) pass through the same code.
"""

from __future__ import annotations

from genlight import list_models
from genlight import testing as kit
from genlight.types import DensityModel, Sampler, Translator, is_conditional

MODELS = list_models()
#: every check of the kit but check_ddp_matches_one_process, which tests/test_ddp_equivalence.py runs on
#: every built-in family with the comparison mode each must get (slow)
CHECKS = [check for check in kit.CHECKS if check.name != "check_ddp_matches_one_process"]


@kit.parametrize_with_checks(MODELS, checks=CHECKS)
def test_family_contract(family, check, tmp_path):
    check(family, tmp_path)


def test_every_registered_family_meets_every_check():
    """The items above cover each registered family with each check of the kit."""
    (mark,) = [m for m in test_family_contract.pytestmark if m.name == "parametrize"]
    pairs = {(p.values[0], p.values[1].name) for p in mark.args[1]}
    assert pairs == {(name, check.name) for name in MODELS for check in CHECKS}
    assert {check.name for check in kit.CHECKS} - {check.name for check in CHECKS} == {"check_ddp_matches_one_process"}
    slow = {p.values[1].name for p in mark.args[1] if any(m.name == "slow" for m in p.marks)}
    assert slow == {"check_two_process_ddp"}


def test_test_only_families_cover_the_kinds_the_kit_must_exercise(tmp_path):
    """Among the test-only families (registered like any plug-in), the kinds the kit must exercise,
    recognised by capability, not by name: a manual-optimisation GAN, a flow on 2-D points, a
    conditional sampler, a translator and an exact autoregressive model of discrete images."""
    test_only = list_models(tag="test")
    models = {name: kit.smoke_setup(name, tmp_path / name)[0] for name in test_only}
    kinds = {
        "manual-optimisation GAN": [n for n, m in models.items() if isinstance(m, Sampler) and not m.automatic_optimization],
        "flow on 2-D points": [
            n for n, m in models.items() if isinstance(m, DensityModel) and m.log_prob_is_exact and not m.data_is_discrete
        ],
        "conditional sampler": [n for n, m in models.items() if isinstance(m, Sampler) and is_conditional(m)],
        "translator": [n for n, m in models.items() if isinstance(m, Translator)],
        "autoregressive model": [n for n, m in models.items() if callable(getattr(m, "conditional_logits", None))],
    }  # fmt: skip
    missing = [kind for kind, names in kinds.items() if not names]
    assert not missing, f"no test-only family is a {', '.join(missing)}"
