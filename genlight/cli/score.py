"""``genlight score --task ood|classify|probe``: what a trained model is for, measured on a datamodule
(the tasks are :mod:`genlight.evaluation.tasks`; docs/evaluation.md). The data splits follow the
checkpoint's datamodule arguments unless given; every random draw comes from ``--score_seed``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from genlight.checkpoint import sha256_of
from genlight.checkpoint_config import CheckpointChoice, init_defaults, open_checkpoint
from genlight.cli.checkpoints import command_parser
from genlight.cli.errors import ShortArgumentParser, at_least
from genlight.errors import ConfigError, GenlightError, one_line
from genlight.registry import DATAMODULES

__all__ = ["score_command"]

TASK_CHOICES = ("ood", "classify", "probe")
#: datamodule arguments that fix the data and its splits, taken from the checkpoint when not given
DATA_ARGUMENTS = ("data_dir", "seed", "val_fraction", "held_out_class")


def _parser() -> ShortArgumentParser:
    from genlight.evaluation.draws import DEFAULT_DRAWS

    parser = command_parser(
        "genlight score",
        "Score a trained checkpoint: outlier detection (ood), classification with rejection (classify) or linear "
        "probes (probe).",
    )
    add = parser.add_argument
    add("--data", default="digit_outliers", help="a registered datamodule (default digit_outliers)")
    add("--task", required=True, choices=TASK_CHOICES)
    add("--out", help="folder for TASK.md/.json/.csv/.png (default scores, earlier results kept as TASK_2.* ...)")
    add("--held_out_class", type=int, help="digit_outliers: the class left out (default: the checkpoint's)")
    add("--seed", type=int, help="data split seed (default: the checkpoint's datamodule seed, else 0)")
    seed_help = "seed of every random draw of the scoring (default 0; recorded in the output)"
    add("--score_seed", "--seed_everything", dest="score_seed", type=int, default=0, help=seed_help)
    draws_help = (
        f"draws of a Monte Carlo score (a VAE's or DDPM's bound), averaged, with its SE (default {DEFAULT_DRAWS})"
    )
    add("--draws", type=at_least(1), default=DEFAULT_DRAWS, help=draws_help)
    add("--data_dir", help="folder of the data files (default: the checkpoint's datamodule data_dir)")
    add("--background", help="ood: a model of the same family for the likelihood ratio (evaluation.train_background)")
    add("--max_examples", type=at_least(10), help="score at most this many examples per set (quick runs)")
    add("--more_sets", action="store_true", help="ood: also genlight's transformed, mixed and noisy outlier sets")
    add("--ensemble", nargs="+", default=[], metavar="CKPT", help="ood: more checkpoints of the family, for WAIC")
    return parser


def _datamodule_arguments(checkpoint: CheckpointChoice, cls: type, ns: Any) -> dict[str, Any]:
    accepted = init_defaults(cls, inherited=True)
    kwargs = checkpoint.data_arguments(cls, DATA_ARGUMENTS)
    for k in ("seed", "held_out_class", "data_dir"):
        if getattr(ns, k) is not None:
            if k not in accepted:
                other = " or use --data digit_outliers" if ns.data != "digit_outliers" else ""
                raise ConfigError(f"--{k}: --data {ns.data} takes no {k}; drop --{k}{other}")
            kwargs[k] = getattr(ns, k)
    return kwargs


def score_command(argv: list[str]) -> int:
    ns = _parser().parse_args(argv)
    name = DATAMODULES.resolve(ns.data)
    if name is None:
        raise ConfigError(DATAMODULES.unknown_message(ns.data))
    data_cls = DATAMODULES.get(name)
    if ns.task == "ood" and not hasattr(data_cls, "outlier_sets"):
        raise ConfigError(
            f"--task ood needs data with outlier sets; --data {name} has none: use --data digit_outliers "
            "(or fashion_outliers)"
        )
    if ns.out is not None and Path(ns.out).exists() and not Path(ns.out).is_dir():
        raise ConfigError(
            f"--out {ns.out} is a file: --out names a folder for {ns.task}.md/.json/.csv/.png, e.g. --out scores"
        )
    for flag in ("background", "more_sets", "ensemble"):
        if getattr(ns, flag) and ns.task != "ood":
            raise ConfigError(f"--{flag} is for --task ood; drop it for --task {ns.task}")

    from genlight.evaluation import TASKS, can_run, result_paths, run_task, write_result

    checkpoint = open_checkpoint(ns.ckpt_path, ns.model, trust=ns.trust_checkpoint, pretrained=ns.pretrained)
    ns.ckpt_path, model = checkpoint.path, checkpoint.load(ns.device)
    family = type(model).__name__
    if not can_run(ns.task, model):
        raise ConfigError(f"{family} cannot be scored by --task {ns.task}: it needs {TASKS[ns.task]}")
    background, notes = None, []
    if ns.background:
        background = _same_family(ns.background, model, ns, "--background", "the likelihood ratio", "background")
        notes.append(f"background: {ns.background} (sha256 {sha256_of(ns.background)})")
    ensemble = [_same_family(path, model, ns, "--ensemble", "WAIC", "checkpoint") for path in ns.ensemble]
    arguments = _datamodule_arguments(checkpoint, data_cls, ns)
    try:
        datamodule = data_cls(**arguments)
    except ValueError as err:  # a datamodule argument out of range (--held_out_class 12)
        raise ConfigError(f"--data {name}: {one_line(err)} (check --held_out_class / --seed / --data_dir)") from err
    checkpoint.check_trained_on(datamodule, ("image_shape", "num_levels"))
    result = run_task(
        ns.task,
        model,
        datamodule,
        background=background,
        seed=ns.score_seed,
        draws=ns.draws,
        max_examples=ns.max_examples,
        more_sets=ns.more_sets,
        ensemble=ensemble or None,
    )
    result.notes.extend(notes)
    header = (
        f"genlight score --task {ns.task}: {family} ({ns.ckpt_path}) on {name} {_describe(datamodule)}, "
        f"--score_seed {ns.score_seed}"
    )
    out = Path(ns.out or "scores")
    plain = result_paths(out, ns.task, replace=True)
    existed = [p for p in plain.values() if p.exists()]
    paths = write_result(result, out, header, replace=ns.out is not None)
    print(paths["md"].read_text(), end="")
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if existed and ns.out is not None:
        print(
            f"note: replaced {out / ns.task}.* of an earlier run (without --out, earlier results are kept and "
            f"new ones numbered)"
        )
    elif existed:
        print(
            f"note: kept the earlier {plain['md']} and the rest; this run is {paths['md'].stem}.* (--out DIR to "
            f"choose the folder)"
        )
    return 0


def _same_family(path: str, model: Any, ns: Any, flag: str, use: str, what: str) -> Any:
    """The model of ``--background`` / ``--ensemble`` checkpoint ``path``: a density model of ``model``'s family
    (``use`` compares statistics only between models of the same family)."""
    from genlight.types import DensityModel

    try:
        other = open_checkpoint(path, trust=ns.trust_checkpoint).load(ns.device)
    except GenlightError as err:
        raise ConfigError(f"{flag}: {one_line(err)}") from err
    family = type(model).__name__
    if not isinstance(model, DensityModel) or not isinstance(other, DensityModel):
        raise ConfigError(f"{flag}: {use} needs density models (log_prob) for the model and {flag}; drop {flag}")
    if type(other) is not type(model):
        raise ConfigError(
            f"{flag} {path} holds {type(other).__name__}, the model is {family}: {use} compares models of the same "
            f"family only; pass a {family} {what} (genlight.evaluation.train_background trains one)"
        )
    return other


def _describe(datamodule: Any) -> str:
    args = {k: getattr(datamodule, k) for k in DATA_ARGUMENTS[1:] if hasattr(datamodule, k)}
    return "(" + ", ".join(f"{k}={v}" for k, v in args.items()) + ")"
