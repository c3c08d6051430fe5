"""One shared place turns ``log_prob`` into the logged figure: named from ``log_prob_is_exact`` and the
data, summed over the whole split with the BitsPerDim metric, so two processes log the single-process
value even when their batches differ in size."""

from __future__ import annotations

import math

import pytest
import torch

from genlight.functional import density_label
from genlight.metrics import BitsPerDim
from tests.families import TestAffineFlow2D, TestConditionalCategorical
from tests.helpers import cpu_trainer, digits_datamodule, validation_ddp


def test_labels_follow_exactness_and_data():
    assert density_label(exact=True, discrete=True) == "bpd"
    assert density_label(exact=False, discrete=True) == "bpd_bound"
    assert density_label(exact=True, discrete=False) == "nll"
    assert density_label(exact=False, discrete=False) == "nll_bound"
    assert TestConditionalCategorical().density_label == "bpd"
    assert TestAffineFlow2D().density_label == "nll"
    from genlight import create_model

    assert create_model("vae").density_label == "bpd_bound"


def _validate(model, devices: int, batch_size: int) -> float:
    trainer = cpu_trainer(devices=devices, strategy=validation_ddp() if devices > 1 else "auto")
    (metrics,) = trainer.validate(model, datamodule=digits_datamodule(batch_size=batch_size), verbose=False)
    return metrics["val/bpd"]


def test_figure_is_the_whole_split_and_ddp_matches_one_process():
    torch.manual_seed(0)
    model = TestConditionalCategorical()
    with torch.no_grad():
        model.logits.normal_()
    dm = digits_datamodule()
    dm.setup("fit")
    x = torch.stack([dm.val_set[i][0] for i in range(len(dm.val_set))])  # 144 images
    with torch.no_grad():
        exact = float(-model.log_prob(x).double().sum() / (len(x) * 64 * math.log(2)))
    one = _validate(model, 1, batch_size=50)  # batches of 50, 50, 44: a mean of batch means would be off
    assert one == pytest.approx(exact, rel=1e-6)
    two = _validate(model, 2, batch_size=24)  # 72 images per rank
    assert two == pytest.approx(exact, rel=1e-6)


def test_bits_per_dim_metric_sums_nats_and_dimensions():
    metric = BitsPerDim()
    metric.update(torch.tensor([-10.0, -20.0]), 4)
    metric.update(torch.tensor([-30.0]), 4)
    assert float(metric.compute()) == pytest.approx(60.0 / (12 * math.log(2)))
    nats = BitsPerDim(per_dim=False)
    nats.update(torch.tensor([-1.0, -2.0, -6.0]), 2)
    assert float(nats.compute()) == pytest.approx(3.0)
