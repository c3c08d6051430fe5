"""The commands that are not Lightning's: ``genlight list``, ``genlight sample``, ``genlight score``
(:mod:`genlight.cli.score`) and the refusal of ``genlight predict``."""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path
from typing import Any

from genlight.cli.checkpoints import load_checked_model
from genlight.cli.errors import ShortArgumentParser
from genlight.cli.score import score_command
from genlight.errors import ConfigError
from genlight.registry import DATAMODULES, MODELS

__all__ = ["COMMANDS", "capabilities", "describe", "list_command", "predict_command", "sample_command", "score_command"]

#: what ``genlight sample --out`` writes: an image grid, or the raw tensor (``.pt``)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def describe(cls: type) -> str:
    """The first paragraph of a class's docstring on one line (its module's when the class's only points
    there), without reST markup."""
    def first(doc: str | None) -> str:
        return " ".join((doc or "").strip().split("\n\n")[0].split()).replace("``", "")

    text = first(cls.__doc__)
    if "see the module docstring" in text or len(text.split()) < 4:
        module = first(getattr(sys.modules.get(cls.__module__), "__doc__", None))
        name, sep, rest = module.partition(": ")
        text = (rest[0].upper() + rest[1:]) if sep and " " not in name and rest else module or text
    return text


def capabilities(cls: type) -> str:
    """``Sampler, DensityModel (bound), Autoencoder``: the :mod:`genlight.types` protocols a family implements."""
    from genlight import types

    protocols = (types.Sampler, types.ConditionalSampler, types.DensityModel, types.Autoencoder,
                 types.LatentGenerator, types.Translator, types.MultiDomainTranslator, types.EnergyModel,
                 types.CodeTraversable, types.TextConditionalSampler, types.PatchCompleter)
    names = []
    for protocol in protocols:
        if MODELS.name_of(cls) in _implementers(protocol):
            if protocol is types.Translator and MODELS.name_of(cls) in _implementers(types.MultiDomainTranslator):
                continue  # translate(x, target_domain), not the two-domain translate(x, "a2b")
            label = protocol.__name__
            if protocol is types.DensityModel:
                label += " (exact)" if getattr(cls, "log_prob_is_exact", False) else " (bound)"
            names.append(label)
    return ", ".join(names) or "-"


@functools.cache
def _implementers(protocol: type) -> frozenset[str]:
    return frozenset(MODELS.list(capability=protocol))


def list_command(argv: list[str]) -> int:
    from genlight.metrics.extractors import EXTRACTORS

    parser = ShortArgumentParser(prog="genlight list", description="List registered models (with their "
                                 "capabilities), datamodules or FID feature extractors.")
    parser.add_argument("kind", choices=["models", "datamodules", "extractors"])
    parser.add_argument("pattern", nargs="?", default="", help="glob filter, e.g. '*vae*'")
    ns = parser.parse_args(argv)
    registry = {"models": MODELS, "datamodules": DATAMODULES, "extractors": EXTRACTORS}[ns.kind]
    for name in registry.list(ns.pattern):
        cls = registry.get(name)
        caps = f"[{capabilities(cls)}] " if ns.kind == "models" else ""
        print(f"{name:<16} {registry.class_path(name):<48} {caps}{describe(cls)}")
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1 (the number of images to draw), got {value}")
    return value


def check_out(out: Path) -> None:
    """``--out`` names an image (``.png``/``.jpg``) or a tensor file (``.pt``) in a folder that can exist."""
    if out.suffix.lower() not in (*IMAGE_SUFFIXES, ".pt"):
        raise ConfigError(f"--out {out}: the file name must end in .png or .jpg (an image grid) or .pt (the "
                          f"raw tensor), e.g. --out samples.png")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name a file in it, e.g. --out {out / 'samples.png'}")
    blocker = next((p for p in out.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(f"--out {out}: {blocker} is a file, not a folder; choose another path, "
                          f"e.g. --out {out.name}")


def sample_command(argv: list[str]) -> int:
    parser = ShortArgumentParser(prog="genlight sample", description="Draw samples from a trained checkpoint.")
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `genlight fit`, or `last`")
    parser.add_argument("--model", help="the family the checkpoint must hold (a registry name); checked")
    parser.add_argument("-n", "--num_samples", type=_positive, default=64)
    parser.add_argument("--out", default="samples.png", help="image grid to write (.png/.jpg; .pt saves the raw tensor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", type=int, nargs="*", help="class labels for conditional models")
    parser.add_argument("--text", nargs="+", help='captions for text-conditional models (text2image), repeated to '
                        '-n, e.g. --text "a thick seven" "a thin two"')
    parser.add_argument("--device", default="cpu")
    ns = parser.parse_args(argv)
    out = Path(ns.out)
    check_out(out)

    import torch
    from PIL import Image

    from genlight.callbacks import image_grid
    from genlight.types import ConditionalSampler, Sampler, TextConditionalSampler

    model = load_checked_model(ns.ckpt_path, ns.model, ns.device)
    if not isinstance(model, Sampler):
        raise ConfigError(
            f"{type(model).__name__} cannot sample (it has no sample(n) method); samplers: "
            f"{', '.join(MODELS.list(capability=Sampler))}"
        )
    if ns.labels and not isinstance(model, ConditionalSampler):
        raise ConfigError(f"{type(model).__name__} is unconditional: drop --labels")
    if ns.text and not isinstance(model, TextConditionalSampler):
        raise ConfigError(f"{type(model).__name__} does not take text: drop --text (text-conditional models: "
                          f"{', '.join(MODELS.list(capability=TextConditionalSampler))})")
    if ns.text and ns.labels:
        raise ConfigError("pass --text or --labels, not both")
    torch.manual_seed(ns.seed)
    y = torch.tensor(ns.labels, device=ns.device).repeat(ns.num_samples)[: ns.num_samples] if ns.labels else None
    if ns.text:
        try:
            images = model.sample(ns.num_samples, text=ns.text)  # type: ignore[call-arg]
        except ValueError as err:  # an unknown word: the message lists the vocabulary
            raise ConfigError(f"--text: {err}") from err
    else:
        images = model.sample(ns.num_samples, y=y)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".pt":
        torch.save(images.cpu(), out)
    else:
        grid = image_grid(images)
        Image.fromarray((grid.permute(1, 2, 0) * 255).round().byte().numpy()).save(out)
    print(f"wrote {ns.num_samples} samples of {type(model).__name__} to {out}")
    return 0


def predict_command(argv: list[str]) -> int:
    sys.stderr.write(
        "genlight: error: `genlight predict` has nothing to predict for a generative model: draw images with "
        "`genlight sample --ckpt_path PATH -n 64`, score data with `genlight test --ckpt_path PATH`\n"
    )
    return 2


#: the commands ``genlight`` runs itself, before LightningCLI sees the arguments
COMMANDS: dict[str, Any] = {"list": list_command, "sample": sample_command, "score": score_command,
                            "predict": predict_command}
