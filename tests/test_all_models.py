"""Every registered model, the moment it is registered, through the family contract of
:mod:`genlight.testing` (the kit a downstream package runs on its own family): built on its own smoke
data, one short fit, every capability it declares, its likelihood figure, a checkpoint round trip, bf16,
the CLI. Nothing here names a family: the test-only families of ``tests/families.py`` pass through the
same code.
"""

from __future__ import annotations

import pytest

from genlight import list_models
from genlight import testing as kit
from genlight.types import DensityModel, Sampler, Translator, is_conditional

MODELS = list_models()
# the manual-optimisation families (kit.uses_manual_optimisation says the same; tags keep collection cheap)
MANUAL = [name for name in MODELS if name in list_models(tag="adversarial") or name == "test_mlp_gan"]


@pytest.mark.parametrize("name", MODELS)
def test_signature_and_hyperparameters(name, tmp_path):
    kit.check_signature(name, tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_fit_capabilities_and_checkpoint(name, tmp_path):
    kit.check_fit_and_capabilities(name, tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_cli_instantiates_with_linked_shapes(name, tmp_path):
    kit.check_cli_instantiation(name, tmp_path)


@pytest.mark.parametrize("name", MODELS)
def test_trains_under_bf16_autocast(name, tmp_path):
    kit.check_bf16(name, tmp_path)


@pytest.mark.parametrize("name", MANUAL)
def test_manual_optimisation_under_fp16_autocast_with_a_grad_scaler(name, tmp_path):
    kit.check_fp16_manual_optimisation(name, tmp_path)


@pytest.mark.slow  # ~40-75 s each: starting the two spawned processes dominates
@pytest.mark.parametrize("name", [n for n in MANUAL if n not in ("dcgan", "wgan_gp")])  # those two: test_adversarial.py
def test_manual_optimisation_families_under_two_process_ddp(name, tmp_path):
    kit.check_two_process_ddp(name, tmp_path)


def test_manual_list_is_every_manual_optimisation_family(tmp_path):
    """The tag-based ``MANUAL`` list above misses no family that steps its own optimizers."""
    manual = [name for name in MODELS if kit.uses_manual_optimisation(name, tmp_path / name)]
    assert manual == MANUAL


def _parametrised(test) -> list[str]:
    (mark,) = [m for m in test.pytestmark if m.name == "parametrize"]
    return list(mark.args[1])


def test_test_only_families_are_in_the_harness(tmp_path):
    """The harness above runs every test-only family (registered like any plug-in), and among them the
    four kinds it must exercise, recognised by capability, not by name: a manual-optimisation GAN, a
    flow on toy2d, a conditional sampler and a translator."""
    harness = _parametrised(test_fit_capabilities_and_checkpoint)
    test_only = list_models(tag="test")
    assert test_only and not set(test_only) - set(harness), "test-only families left out of the harness"
    models = {name: kit.smoke_setup(name, tmp_path / name)[0] for name in test_only}
    kinds = {
        "manual-optimisation GAN": [
            n for n, m in models.items() if isinstance(m, Sampler) and not m.automatic_optimization
            and n in _parametrised(test_manual_optimisation_under_fp16_autocast_with_a_grad_scaler)
        ],
        "flow on toy2d": [
            n for n, m in models.items()
            if isinstance(m, DensityModel) and m.log_prob_is_exact and type(m).smoke_data == "toy2d"
        ],
        "conditional sampler": [n for n, m in models.items() if isinstance(m, Sampler) and is_conditional(m)],
        "translator": [n for n, m in models.items() if isinstance(m, Translator)],
    }  # fmt: skip
    missing = [kind for kind, names in kinds.items() if not names]
    assert not missing, f"no test-only family is a {', '.join(missing)}"
