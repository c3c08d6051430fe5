"""What the GAN results tables share (``gan_mnist5k.py``, ``gan_digits.py``): row keys with small-data
tricks, the check that a trick's option exists, and the figures beyond FID at equal n.

A row key is ``family`` or ``family+trick[+trick...]``; each trick adds model overrides (``TRICKS``), e.g.
``dcgan+diffaugment`` trains ``dcgan`` with ``--model.augment diffaugment``. A row whose option the family
does not have (yet) is refused with one line before anything is trained (:func:`missing_option`).
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from genlight import get_model_class
from genlight.metrics import ClassificationAccuracyScore, IntraClassFID
from genlight.metrics.functional import density_coverage, precision_recall

#: small-data tricks of the adversarial base: model overrides, as ``--model.<name>`` values
TRICKS: dict[str, dict[str, Any]] = {
    "diffaugment": {"augment": "diffaugment"},  # Zhao et al. 2020: colour, translation, cutout
    "ada": {"augment": "ada", "ada_target": 0.6},  # Karras et al. 2020, r_t = 0.6
    "lecam": {"lecam_weight": 0.3},  # Tseng et al. 2021
    "r1": {"r1_gamma": 10.0, "r1_every": 16},  # Mescheder et al. 2018, lazy every 16 D steps
}
#: k of the k-NN balls: precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020)
PR_K, DC_K = 3, 5
#: CAS classifier (an MLP of genlight.nn.classifier_nets) training steps
CAS_STEPS = 500


def parse_row(key: str) -> tuple[str, dict[str, Any]]:
    """``"dcgan+diffaugment"`` -> ``("dcgan", {"augment": "diffaugment"})``; unknown tricks fail in one line."""
    family, *tricks = key.split("+")
    overrides: dict[str, Any] = {}
    for trick in tricks:
        if trick not in TRICKS:
            raise SystemExit(f"row {key!r}: unknown trick {trick!r}; choose from {', '.join(TRICKS)}")
        overrides.update(TRICKS[trick])
    return family, overrides


def init_parameters(cls: type) -> set[str]:
    """The ``__init__`` argument names of ``cls`` and of every class it derives from."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p for p in inspect.signature(init).parameters if p != "self"}
    return names


def missing_option(key: str) -> str | None:
    """One line naming the option a row needs that its family lacks, else ``None``."""
    family, overrides = parse_row(key)
    cls = get_model_class(family)
    missing = sorted(set(overrides) - init_parameters(cls))
    if not missing:
        return None
    options = ", ".join(f"--model.{m}" for m in missing)
    return (
        f"row {key!r} not run: {cls.__name__} has no {options} in this checkout (the adversarial base's "
        f"small-data options are not merged yet); run it again once they are"
    )


def cli_overrides(overrides: dict[str, Any]) -> list[str]:
    """``{"augment": "ada"}`` -> ``["--model.augment=ada"]``."""
    return [f"--model.{k}={v}" for k, v in overrides.items()]


def manifold_figures(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Precision, recall (k = ``PR_K``), density and coverage (k = ``DC_K``) of ``fake`` features against
    ``real`` features: call it with sets of the same size, as the floor is scored."""
    precision, recall = precision_recall(real, fake, PR_K)
    density, coverage = density_coverage(real, fake, DC_K)
    return {
        "precision": float(precision),
        "recall": float(recall),
        "density": float(density),
        "coverage": float(coverage),
    }


def intra_fid(
    real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor, classes: int
) -> dict[str, Any]:
    """Intra-class FID (:class:`~genlight.metrics.IntraClassFID`): mean and per class."""
    metric = IntraClassFID(classes, real.shape[1])
    metric.update(real, real_labels, real=True)
    metric.update(fake, fake_labels, real=False)
    out = metric.compute()
    return {"intra_fid": float(out["mean"]), "intra_fid_per_class": [round(v, 3) for v in out["per_class"].tolist()]}


def cas(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, classes: int
) -> float:
    """Classification accuracy score (:class:`~genlight.metrics.ClassificationAccuracyScore`): an MLP trained
    on ``train`` (samples, or real images for the ceiling) for ``CAS_STEPS`` steps, accuracy on ``test``."""
    metric = ClassificationAccuracyScore(classes, net="mlp", steps=CAS_STEPS)
    metric.update(train, train_labels, torch.arange(len(train)), real=False)
    metric.update(test, test_labels, torch.arange(len(test)), real=True)
    return float(metric.compute())
