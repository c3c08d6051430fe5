"""``genlight translate`` (StarGAN ``--to DOMAIN ...``, CycleGAN ``--direction a2b|b2a``) and ``genlight
complete`` (Puzzle-GAN): a trained model applied to the ``--image`` files, written as one grid PNG whose
rows are labelled in the picture."""

from __future__ import annotations

from typing import Any

from genlight.checkpoint_config import open_checkpoint
from genlight.cli.checkpoints import command_parser
from genlight.cli.errors import ShortArgumentParser
from genlight.errors import ConfigError

__all__ = ["complete_command", "translate_command"]


def _parser(prog: str, description: str) -> ShortArgumentParser:
    parser = command_parser(prog, description)
    parser.add_argument("--image", nargs="+", required=True, help="image files (PNG/JPEG), one column each")
    parser.add_argument("--out", help="the grid to write (.png/.jpg); default numbered beside an earlier one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's random draws (default 0)")
    return parser


def _model_and_images(ns: Any, capability: type | tuple[type, ...], command: str, needs: str) -> tuple[Any, Any]:
    from genlight.callbacks.image_files import read_images

    model = open_checkpoint(ns.ckpt_path, ns.model, trust=ns.trust_checkpoint, pretrained=ns.pretrained).load(ns.device)
    shape = model.hparams.get("image_shape")
    if not isinstance(model, capability):
        raise ConfigError(f"{type(model).__name__} cannot {command}: `genlight {command}` needs {needs}")
    return model, read_images(ns.image, shape).to(ns.device)


def _write(images: Any, labels: list[str], columns: int, ns: Any, default: str, what: str) -> int:
    from genlight.callbacks.image_files import output_path, write_output
    from genlight.callbacks.image_logging import image_grid, label_rows

    out, notice = output_path(ns.out, default)
    grid = label_rows(image_grid(images.cpu(), nrow=columns), labels)
    line = f"wrote {what} of {columns} image(s) to {out} (rows: {', '.join(labels)})"
    return write_output(grid, out, line, notice)


def translate_command(argv: list[str]) -> int:
    import torch

    from genlight.callbacks.translation import translation_rows
    from genlight.types import MultiDomainTranslator, Translator

    parser = _parser(
        "genlight translate",
        "Translate images with a trained StarGAN (--to DOMAIN ...) or CycleGAN (--direction a2b|b2a).",
    )
    parser.add_argument("--to", nargs="+", help="StarGAN: target domains by name (default: every domain)")
    parser.add_argument("--direction", choices=["a2b", "b2a"], help="CycleGAN: the direction (default a2b)")
    ns = parser.parse_args(argv)
    model, x = _model_and_images(
        ns,
        (Translator, MultiDomainTranslator),
        "translate",
        "a Translator (cyclegan) or a MultiDomainTranslator (stargan)",
    )
    torch.manual_seed(ns.seed)
    with torch.no_grad():
        if isinstance(model, MultiDomainTranslator):
            if ns.direction:
                raise ConfigError(
                    f"--direction is for two-domain translators (cyclegan); {type(model).__name__} "
                    f"takes --to with its domains {', '.join(model.domain_names)}"
                )
            targets = ns.to or list(model.domain_names)
            unknown = [t for t in targets if t not in model.domain_names]
            if unknown:
                raise ConfigError(
                    f"--to {unknown[0]}: not a domain of this model; its domains: {', '.join(model.domain_names)}"
                )
            rows = [x] + [model.translate(x, model.domain_names.index(t)).to(x.dtype) for t in targets]
            labels = ["input"] + [f"to {t}" for t in targets]
        else:
            if ns.to:
                raise ConfigError(
                    f"--to is for multi-domain translators (stargan); {type(model).__name__} takes "
                    f"--direction a2b or b2a"
                )
            direction = ns.direction or "a2b"
            rows = [translation_rows(model, x, direction)]  # x, translated, and back
            labels = ["input", direction, f"{'b2a' if direction == 'a2b' else 'a2b'}({direction})"]
    return _write(torch.cat(rows), labels, len(x), ns, "translations.png", "translations")


def complete_command(argv: list[str]) -> int:
    import torch

    from genlight.callbacks.completion import ROWS, completion_rows
    from genlight.types import PatchCompleter

    parser = _parser("genlight complete", "Cut patches from images and complete them with a trained Puzzle-GAN.")
    ns = parser.parse_args(argv)
    model, x = _model_and_images(ns, PatchCompleter, "complete", "a PatchCompleter (puzzlegan)")
    with torch.no_grad():
        grid = completion_rows(model, x, ns.seed)
    return _write(grid, ROWS.split(", "), len(x), ns, "completions.png", "completions")
