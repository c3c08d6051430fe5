"""The commands that are not Lightning's: ``genlight list``, ``genlight sample``, ``genlight score``
(:mod:`genlight.cli.score`) and the refusal of ``genlight predict``."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from genlight.cli.checkpoints import command_parser, open_checkpoint
from genlight.cli.edit import complete_command, translate_command
from genlight.cli.errors import ShortArgumentParser, at_least, one_line
from genlight.cli.parser import first_paragraph
from genlight.cli.score import score_command
from genlight.errors import ConfigError
from genlight.registry import DATAMODULES, MODELS

__all__ = ["COMMANDS", "capabilities", "describe", "list_command", "predict_command", "sample_command", "score_command"]

#: what ``genlight sample --out`` writes: an image grid, or the raw tensor (``.pt``)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def describe(cls: type) -> str:
    """The first paragraph of a class's docstring on one line (its module's when the class's only points
    there), without reST literals."""
    text = first_paragraph(cls.__doc__).replace("``", "")
    if "see the module docstring" in text or len(text.split()) < 4:
        module = first_paragraph(getattr(sys.modules.get(cls.__module__), "__doc__", None)).replace("``", "")
        name, sep, rest = module.partition(": ")
        text = (rest[0].upper() + rest[1:]) if sep and " " not in name and rest else module or text
    return text


def capabilities(cls: type) -> str:
    """``Sampler, DensityModel (bound), Autoencoder``: the :mod:`genlight.types` protocols a family implements."""
    from genlight import types

    protocols = (
        types.Sampler,
        types.ConditionalSampler,
        types.DensityModel,
        types.Autoencoder,
        types.LatentGenerator,
        types.Translator,
        types.MultiDomainTranslator,
        types.EnergyModel,
        types.CodeTraversable,
        types.TextConditionalSampler,
        types.PatchCompleter,
    )
    names = []
    for protocol in protocols:
        if MODELS.name_of(cls) in _implementers(protocol) or _instance_is(cls, protocol):
            if protocol is types.Translator and MODELS.name_of(cls) in _implementers(types.MultiDomainTranslator):
                continue  # translate(x, target_domain), not the two-domain translate(x, "a2b")
            label = protocol.__name__
            switch = getattr(cls, "conditional_with", None)
            if protocol is types.ConditionalSampler and switch:
                label += f" (with {switch})"  # only instances built so take labels
            if protocol is types.DensityModel:
                exact, estimate = getattr(cls, "log_prob_is_exact", False), getattr(cls, "log_prob_is_estimate", False)
                label += " (exact)" if exact else " (estimate)" if estimate else " (bound)"
            names.append(label)
    return ", ".join(names) or "-"


@functools.cache
def _instance_is(cls: type, protocol: type) -> bool:
    """An :class:`~genlight.types.EnergyModel` whose ``energy`` is a network set in ``__init__`` (ebm) is
    one only as an instance: asked of a tiny one (``smoke_kwargs``) when its ``__init__`` sets an
    ``energy``. Other protocols are judged on the class."""
    from genlight import types

    init = getattr(cls, "__init__", None)
    if protocol is not types.EnergyModel or "energy" not in getattr(getattr(init, "__code__", None), "co_names", ()):
        return False
    try:
        return isinstance(cls(**getattr(cls, "smoke_kwargs", {})), protocol)
    except Exception:  # noqa: BLE001 - only a listing
        return False


@functools.cache
def _implementers(protocol: type) -> frozenset[str]:
    return frozenset(MODELS.list(capability=protocol))


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


def check_out(out: Path) -> None:
    """``--out`` names an image (``.png``/``.jpg``) or a tensor file (``.pt``) in a folder that can exist."""
    if out.suffix.lower() not in (*IMAGE_SUFFIXES, ".pt"):
        raise ConfigError(
            f"--out {out}: the file name must end in .png or .jpg (an image grid) or .pt (the "
            f"raw tensor), e.g. --out samples.png"
        )
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder: name a file in it, e.g. --out {out / 'samples.png'}")
    blocker = next((p for p in out.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise ConfigError(f"--out {out}: {blocker} is a file, not a folder; choose another path, e.g. --out {out.name}")


def free_path(path: Path) -> Path:
    """``path`` if no file is there, else the first free numbered name beside it (``samples_2.png``, ...)."""
    n = 1
    found = path
    while found.exists():
        n += 1
        found = path.with_name(f"{path.stem}_{n}{path.suffix}")
    return found


def output_path(given: str | None, default: str) -> tuple[Path, str]:
    """Where a command writes (checked: :func:`check_out`) and the notice to print: a given ``--out`` is
    replaced with a notice; the default name is numbered beside an earlier file (never overwritten)."""
    out = Path(given) if given is not None else free_path(Path(default))
    check_out(out)
    if given is not None:
        return out, (f"note: replaced the earlier {out}" if out.is_file() else "")
    return out, (
        f"note: kept the earlier {default}; this one is {out} (--out FILE to choose)" if out.name != default else ""
    )


def write_output(images: Any, out: Path, line: str, notice: str) -> int:
    """Save ``images`` (a grid ``(3, H, W)``, or any tensor to a ``.pt`` file) to ``out``, print ``line``
    and ``notice``."""
    import torch

    from genlight.callbacks.image_files import save_grid

    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(images.cpu(), out) if out.suffix == ".pt" else save_grid(images, out)
    print(line)
    if notice:
        print(notice)
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
    ns = parser.parse_args(argv)
    out, notice = output_path(ns.out, "samples.png")

    import torch

    from genlight.callbacks import image_grid
    from genlight.types import ConditionalSampler, Sampler, TextConditionalSampler

    model: Any = open_checkpoint(ns.ckpt_path, ns.model, trust=ns.trust_checkpoint).load(ns.device)
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
    torch.manual_seed(ns.seed)
    y = torch.tensor(ns.labels, device=ns.device).repeat(ns.num_samples)[: ns.num_samples] if ns.labels else None
    option = "--text" if ns.text else "--labels" if ns.labels else "-n"
    try:
        sample: Any = model.sample  # sample(n, text=) on a TextConditionalSampler, checked above
        images = sample(ns.num_samples, text=ns.text) if ns.text else sample(ns.num_samples, y=y)
    except ValueError as err:  # the family's own check (an unknown word lists the vocabulary)
        raise ConfigError(f"{option}: {one_line(err)[:300]} (`genlight sample --help`)") from err
    line = f"wrote {ns.num_samples} samples of {type(model).__name__} to {out} (--seed {ns.seed})"
    return write_output(images if out.suffix == ".pt" else image_grid(images), out, line, notice)


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
    "predict": predict_command,
}
