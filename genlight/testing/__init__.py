"""The family contract as a kit: check a family, registered or not, in one line.

```python
from genlight.testing import check_family, parametrize_with_checks

def test_my_family(tmp_path):
    check_family(MyFamily, tmp_path)        # every check; all failures reported together

@parametrize_with_checks([MyFamily])        # or: one pytest item per check, "n/a" where it does not apply
def test_contract(family, check, tmp_path):
    check(family, tmp_path)
```

The checks (:data:`CHECKS`) are picked by capability (:mod:`genlight.types`) and check meaning: the
signature; samples' shape, range and level grid; an exact likelihood sums to 1 over all 81 images of
1x2x2 with 3 levels; sampler frequencies agree with ``exp(log_prob)`` (chi-square, false-alarm rate
1e-3); a bound lies below the importance-sampled ``log p(x)``; autoregressive causality by autograd;
autoencoder round trips; translators; then one short fit (training, capabilities, EMA, checkpoint round
trip), the CLI, bf16, fp16 with a grad scaler (manual optimisation), and, slow, 2-process DDP. A check
builds the family from its own class attributes: ``smoke_kwargs`` (tiny widths), ``smoke_data`` /
``smoke_data_kwargs`` (the registered datamodule it runs on, made small by its ``smoke()``) and
``smoke_trainer`` (Trainer settings it needs). Everything runs on the CPU in seconds.
"""

from __future__ import annotations

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
from genlight.testing.kit import CHECKS, Check, check_family, parametrize_with_checks
from genlight.testing.meaning import (
    ALPHA,
    check_autoencoder_round_trip,
    check_bound_below_exact,
    check_causal,
    check_normalised,
    check_sampler_matches_log_prob,
    check_samples,
    check_translation,
)
from genlight.testing.spaces import NotApplicable, all_images, chi_square, tiny_model

__all__ = [
    "ALPHA",
    "CHECKS",
    "Check",
    "DDPComparison",
    "Family",
    "NotApplicable",
    "all_images",
    "check_autoencoder_round_trip",
    "check_bound_below_exact",
    "check_causal",
    "check_normalised",
    "check_sampler_matches_log_prob",
    "check_samples",
    "check_translation",
    "chi_square",
    "parametrize_with_checks",
    "tiny_model",
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
    "family_name",
    "linked_kwargs",
    "smoke_fit",
    "smoke_setup",
    "tiny_trainer",
    "uses_manual_optimisation",
]
