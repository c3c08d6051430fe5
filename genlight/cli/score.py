"""``genlight score``: what a trained model is for, measured on a datamodule.

    genlight score --ckpt_path PATH --data digit_outliers --task ood --out scores/
    genlight score --ckpt_path PATH --task classify
    genlight score --ckpt_path PATH --task probe

``ood`` scores the test split against every outlier set of the data (AUROC, AUPRC, FPR at 95% TPR of
each score the model allows), ``classify`` measures classification with rejection (accuracy at
coverages), ``probe`` fits linear probes of the model's features. Each writes ``TASK.md``,
``TASK.json``, ``TASK.csv`` and ``TASK.png`` to ``--out`` and prints the table. The data splits follow
the checkpoint's datamodule arguments (``data_dir``, ``seed``, ``val_fraction``, ``held_out_class``)
unless given.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from genlight.cli.checkpoints import load_checked_model
from genlight.cli.errors import ShortArgumentParser
from genlight.errors import ConfigError
from genlight.registry import DATAMODULES

__all__ = ["score_command"]

TASK_CHOICES = ("ood", "classify", "probe")
#: datamodule arguments that fix the data and its splits, taken from the checkpoint when not given
DATA_ARGUMENTS = ("data_dir", "seed", "val_fraction", "held_out_class")


def _parser() -> ShortArgumentParser:
    parser = ShortArgumentParser(prog="genlight score", description="Score a trained checkpoint: outlier detection "
                                 "(ood), classification with rejection (classify) or linear probes (probe).")
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `genlight fit`, or `last`")
    parser.add_argument("--model", help="the family the checkpoint must hold (a registry name); checked")
    parser.add_argument("--data", default="digit_outliers", help="a registered datamodule (default digit_outliers)")
    parser.add_argument("--task", required=True, choices=TASK_CHOICES)
    parser.add_argument("--out", default="scores", help="folder for TASK.md/.json/.csv/.png (default scores)")
    parser.add_argument("--held_out_class", type=int, help="digit_outliers: the class left out (default: the checkpoint's)")
    parser.add_argument("--seed", type=int, help="data split seed (default: the checkpoint's datamodule seed, else 0)")
    parser.add_argument("--data_dir", help="folder of the data files (default: the checkpoint's datamodule data_dir)")
    parser.add_argument("--background", help="ood: checkpoint of a background model for the likelihood ratio")
    parser.add_argument("--max_examples", type=int, help="score at most this many examples per set (quick runs)")
    parser.add_argument("--device", default="cpu")
    return parser


def _datamodule_arguments(ckpt_path: str, cls: type[Any], ns: Any) -> dict[str, Any]:
    from genlight.checkpoint import read_checkpoint

    accepted = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            accepted |= set(inspect.signature(klass.__init__).parameters)  # type: ignore[misc]
    saved = dict(read_checkpoint(ckpt_path).get("datamodule_hyper_parameters") or {})
    kwargs = {k: saved[k] for k in DATA_ARGUMENTS if k in saved and k in accepted}
    for k in ("seed", "held_out_class", "data_dir"):
        if getattr(ns, k) is not None:
            if k not in accepted:
                raise ConfigError(f"--{k}: --data {ns.data} takes no {k}; drop it or use --data digit_outliers")
            kwargs[k] = getattr(ns, k)
    return kwargs


def score_command(argv: list[str]) -> int:
    ns = _parser().parse_args(argv)
    name = DATAMODULES.resolve(ns.data)
    if name is None:
        raise ConfigError(DATAMODULES.unknown_message(ns.data))
    data_cls = DATAMODULES.get(name)
    if ns.task == "ood" and not hasattr(data_cls, "outlier_sets"):
        raise ConfigError(f"--task ood needs data with outlier sets; --data {name} has none: use --data digit_outliers "
                          "(or fashion_outliers)")
    if ns.background and ns.task != "ood":
        raise ConfigError(f"--background is for --task ood (the likelihood ratio); drop it for --task {ns.task}")
    if ns.max_examples is not None and ns.max_examples < 10:
        raise ConfigError(f"--max_examples must be >= 10, got {ns.max_examples}")

    from genlight.evaluation import (
        TASKS,
        can_classify,
        can_score_outliers,
        classify_task,
        ood_task,
        probe_task,
        write_result,
    )
    from genlight.types import DensityModel, Featurizer

    if ns.ckpt_path == "last":
        from genlight.checkpoint import find_last_checkpoint
        from genlight.registry import MODELS

        ns.ckpt_path = str(find_last_checkpoint(Path("runs"), MODELS.resolve(ns.model) if ns.model else None))
    model = load_checked_model(ns.ckpt_path, ns.model, ns.device)
    family = type(model).__name__
    able = {"ood": can_score_outliers, "classify": can_classify, "probe": lambda m: isinstance(m, Featurizer)}[ns.task]
    if not able(model):
        raise ConfigError(f"{family} cannot be scored by --task {ns.task}: it needs {TASKS[ns.task]}")
    background = None
    if ns.background:
        background = load_checked_model(ns.background, None, ns.device)
        if not isinstance(model, DensityModel) or not isinstance(background, DensityModel):
            raise ConfigError("--background: the likelihood ratio needs density models (log_prob) for both the model and "
                              "the background; drop --background")
    datamodule = data_cls(**_datamodule_arguments(ns.ckpt_path, data_cls, ns))
    hparams = getattr(model, "hparams", {}) or {}
    for attr in ("image_shape", "num_levels"):
        if attr in hparams and hparams[attr] and tuple(_flat(hparams[attr])) != tuple(_flat(getattr(datamodule, attr))):
            raise ConfigError(f"{family} was trained on data with {attr}={hparams[attr]!r}, --data {name} has "
                              f"{getattr(datamodule, attr)!r}: pass the --data it was trained on")
    if ns.task == "ood":
        result = ood_task(model, datamodule, background=background, max_examples=ns.max_examples)
    elif ns.task == "classify":
        result = classify_task(model, datamodule, max_examples=ns.max_examples)
    else:
        result = probe_task(model, datamodule, seed=datamodule.seed, max_examples=ns.max_examples)
    header = f"genlight score --task {ns.task}: {family} ({ns.ckpt_path}) on {name} {_describe(datamodule)}"
    paths = write_result(result, Path(ns.out), header)
    print(paths["md"].read_text(), end="")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    return 0


def _flat(value: Any) -> list[Any]:
    return [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]


def _describe(datamodule: Any) -> str:
    args = {k: getattr(datamodule, k) for k in DATA_ARGUMENTS[1:] if hasattr(datamodule, k)}
    return "(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"
