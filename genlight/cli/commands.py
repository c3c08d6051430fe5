"""The commands that are not Lightning's: ``genlight list``, ``genlight sample``, ``genlight score``
(:mod:`genlight.cli.score`) and the refusal of ``genlight predict``."""

from __future__ import annotations

import inspect
import sys
from typing import Any

from genlight.callbacks.image_files import output_path, write_output
from genlight.catalog import capabilities, describe, samplers_taking
from genlight.checkpoint_config import open_checkpoint
from genlight.cli.checkpoints import command_parser, trust_argument
from genlight.cli.edit import complete_command, translate_command
from genlight.cli.errors import ShortArgumentParser, at_least
from genlight.cli.parser import is_number
from genlight.cli.score import score_command
from genlight.errors import ConfigError, one_line
from genlight.registry import DATAMODULES, MODELS

__all__ = ["COMMANDS", "list_command", "predict_command", "push_command", "sample_command", "score_command"]


def list_command(argv: list[str]) -> int:
    from genlight.metrics.extractors import EXTRACTORS

    parser = ShortArgumentParser(
        prog="genlight list",
        description="List registered models (with their capabilities), datamodules or FID feature extractors.",
    )
    parser.add_argument("kind", choices=["models", "datamodules", "extractors"])
    parser.add_argument("pattern", nargs="?", default="", help="glob filter, e.g. '*vae*'")
    ns = parser.parse_args(argv)
    registry = {"models": MODELS, "datamodules": DATAMODULES, "extractors": EXTRACTORS}[ns.kind]
    for name in registry.list(ns.pattern):
        cls = registry.get(name)
        caps = f"[{capabilities(cls)}] " if ns.kind == "models" else ""
        print(f"{name:<16} {registry.class_path(name):<48} {caps}{describe(cls)}")
    return 0


def check_labels(model: Any, labels: list[int]) -> None:
    """``--labels`` within the model's classes, refused in one line naming the range."""
    k = int(getattr(model, "num_classes", 0) or 0)
    bad = [v for v in labels if not 0 <= v < k] if k else []
    if bad:
        raise ConfigError(
            f"--labels {bad[0]}: {type(model).__name__} has classes 0..{k - 1}; pass labels in that range, "
            f"e.g. --labels 0 1 {min(2, k - 1)}"
        )


#: ``genlight sample`` options passed to ``model.sample`` only when given (the family's default otherwise)
SAMPLER_OPTIONS = ("sampler", "steps", "spacing", "guidance")


def sampler_options(model: Any, ns: Any) -> dict[str, Any]:
    """The ``--sampler/--steps/--spacing/--guidance`` given, refused in one line where ``model.sample`` has no
    such argument (naming the families that have it)."""
    given = {k: getattr(ns, k) for k in SAMPLER_OPTIONS if getattr(ns, k) is not None}
    accepted = inspect.signature(model.sample).parameters
    for name in given:
        if name not in accepted:
            raise ConfigError(
                f"--{name}: {type(model).__name__}.sample has no {name} argument; drop it "
                f"(families with one: {', '.join(samplers_taking(name))})"
            )
    return given


def sample_command(argv: list[str]) -> int:
    parser = command_parser("genlight sample", "Draw samples from a trained checkpoint.")
    parser.add_argument("-n", "--num_samples", type=at_least(1, "the number of images to draw"), default=64)
    parser.add_argument(
        "--out",
        help="image grid to write (.png/.jpg; .pt saves the raw tensor); default samples.png, "
        "numbered (samples_2.png, ...) beside an earlier one; a given --out is replaced with a notice",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=int, nargs="*", help="class labels for conditional models")
    parser.add_argument(
        "--text",
        nargs="+",
        help="captions for text-conditional models (text2image), repeated to "
        '-n, e.g. --text "a thick seven" "a thin two"',
    )
    parser.add_argument(
        "--sampler",
        help="the family's sampler (default: the checkpoint's): ddpm ancestral|ddim|dpm_solver, "
        "flow_matching euler|midpoint|heun, pixelcnn/gated_pixelcnn cached|naive",
    )
    parser.add_argument(
        "--steps", type=at_least(1, "the number of sampling steps"), help="sampling steps (ddpm, flow_matching, ebm)"
    )
    parser.add_argument("--spacing", help="ddpm dpm_solver's time steps: logsnr (uniform in log-SNR) or time")
    parser.add_argument(
        "--guidance", type=float, help="classifier-free guidance weight (conditional ddpm, flow_matching)"
    )
    ns = parser.parse_args(argv)
    out, notice = output_path(ns.out, "samples.png")

    import torch

    from genlight.callbacks import image_grid
    from genlight.types import ConditionalSampler, Sampler, TextConditionalSampler

    model: Any = open_checkpoint(ns.ckpt_path, ns.model, trust=ns.trust_checkpoint, pretrained=ns.pretrained).load(
        ns.device
    )
    if not isinstance(model, Sampler):
        raise ConfigError(
            f"{type(model).__name__} cannot sample (it has no sample(n) method); samplers: "
            f"{', '.join(MODELS.list(capability=Sampler))}"
        )
    if ns.labels and not isinstance(model, ConditionalSampler):
        raise ConfigError(f"{type(model).__name__} is unconditional: drop --labels")
    if ns.text and not isinstance(model, TextConditionalSampler):
        raise ConfigError(
            f"{type(model).__name__} does not take text: drop --text (text-conditional models: "
            f"{', '.join(MODELS.list(capability=TextConditionalSampler))})"
        )
    if ns.text and ns.labels:
        raise ConfigError("pass --text or --labels, not both")
    if ns.labels:
        check_labels(model, ns.labels)
    options = sampler_options(model, ns)
    torch.manual_seed(ns.seed)
    y = torch.tensor(ns.labels, device=ns.device).repeat(ns.num_samples)[: ns.num_samples] if ns.labels else None
    option = "--text" if ns.text else "--labels" if ns.labels else " ".join(f"--{k}" for k in options) or "-n"
    try:
        sample: Any = model.sample  # sample(n, text=) on a TextConditionalSampler, checked above
        images = sample(ns.num_samples, text=ns.text, **options) if ns.text else sample(ns.num_samples, y=y, **options)
    except ValueError as err:  # the family's own check (an unknown word lists the vocabulary)
        raise ConfigError(f"{option}: {one_line(err)[:300]} (`genlight sample --help`)") from err
    line = f"wrote {ns.num_samples} samples of {type(model).__name__} to {out} (--seed {ns.seed})"
    return write_output(images if out.suffix == ".pt" else image_grid(images), out, line, notice)


def push_command(argv: list[str]) -> int:
    from genlight.hub import push_to_hub, write_folder

    parser = ShortArgumentParser(prog="genlight push", description="Upload a checkpoint to the Hugging Face Hub.")
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `genlight fit`")
    parser.add_argument("--repo_id", required=True, help="the Hub repository, user/name")
    parser.add_argument("--figure", nargs="*", default=[], metavar="NAME=VALUE", help="results for the card")
    parser.add_argument("--protocol", default="", help="how the figures were measured (for the card)")
    parser.add_argument("--command", default="", help="the command that trained it (for the card)")
    parser.add_argument("--local_dir", help="write the folder here instead of uploading it")
    parser.add_argument("--private", action="store_true")
    trust_argument(parser)
    ns = parser.parse_args(argv)
    bad = [f for f in ns.figure if "=" not in f or not is_number(f.split("=", 1)[1])]
    if bad:
        raise ConfigError(f"--figure {bad[0]}: give NAME=VALUE with a number, e.g. --figure fid_train=1.7")
    args = {
        "figures": {k: float(v) for k, v in (f.split("=", 1) for f in ns.figure)},
        "protocol": ns.protocol,
        "command": ns.command,
        "trust": ns.trust_checkpoint,
    }
    if ns.local_dir:
        print(f"wrote {write_folder(ns.ckpt_path, ns.local_dir, ns.repo_id, **args)}")
    else:
        print(f"pushed {ns.ckpt_path} to {push_to_hub(ns.ckpt_path, ns.repo_id, private=ns.private, **args)}")
    return 0


def predict_command(argv: list[str]) -> int:
    sys.stderr.write(
        "genlight: error: `genlight predict` has nothing to predict for a generative model: draw images with "
        "`genlight sample --ckpt_path PATH -n 64`, score data with `genlight test --ckpt_path PATH`\n"
    )
    return 2


#: the commands ``genlight`` runs itself, before LightningCLI sees the arguments
COMMANDS: dict[str, Any] = {
    "list": list_command,
    "sample": sample_command,
    "score": score_command,
    "translate": translate_command,
    "complete": complete_command,
    "push": push_command,
    "predict": predict_command,
}
