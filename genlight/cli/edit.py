"""``genlight translate`` and ``genlight complete``: a trained model applied to the user's own images.

    genlight translate --ckpt_path runs/stargan/version_0/checkpoints/last.ckpt --image 3.png --to thick thin
    genlight translate --ckpt_path runs/cyclegan/version_0/checkpoints/last.ckpt --image a.png --direction b2a
    genlight complete --ckpt_path runs/puzzlegan/version_0/checkpoints/last.ckpt --image 3.png

Each reads the ``--image`` files (any size or colour: converted to the model's channels and size),
writes one grid PNG whose rows are labelled in the picture (``translations.png`` /
``completions.png``, numbered beside an earlier one) and prints its path.
"""

from __future__ import annotations

from typing import Any

from genlight.cli.checkpoints import open_checkpoint, trust_argument
from genlight.cli.errors import ShortArgumentParser, device_type, one_line
from genlight.errors import ConfigError

__all__ = ["complete_command", "read_images", "translate_command"]


def _parser(prog: str, description: str) -> ShortArgumentParser:
    parser = ShortArgumentParser(prog=prog, description=description)
    parser.add_argument("--ckpt_path", required=True, help="a checkpoint written by `genlight fit`, or `last`")
    parser.add_argument("--model", help="the family the checkpoint must hold (a registry name); checked")
    parser.add_argument("--image", nargs="+", required=True, help="image files (PNG/JPEG), one column each")
    parser.add_argument("--out", help="the grid to write (.png/.jpg); default numbered beside an earlier one")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's random draws (default 0)")
    parser.add_argument("--device", type=device_type, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    trust_argument(parser)
    return parser


def read_images(paths: list[str], shape: tuple[int, int, int]) -> Any:
    """``(n, C, H, W)`` in [0, 1]: each file converted to ``C`` channels (grey or RGB) and resized to
    ``H x W``; a file that cannot be read is refused in one line naming it."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    c, h, w = shape
    images = []
    for path in paths:
        try:
            picture = Image.open(path).convert("L" if c == 1 else "RGB")
        except (OSError, UnidentifiedImageError) as err:
            raise ConfigError(f"--image {path}: cannot be read as an image ({one_line(err)}); pass a PNG or "
                              f"JPEG file") from err  # fmt: skip
        array = np.asarray(picture.resize((w, h), Image.BILINEAR), dtype=np.float32) / 255.0
        images.append(torch.from_numpy(array).reshape(h, w, -1).permute(2, 0, 1))  # (C, H, W)
    return torch.stack(images)


def _model_and_images(ns: Any, capability: type, command: str, needs: str) -> tuple[Any, Any]:
    model = open_checkpoint(ns.ckpt_path, ns.model, trust=ns.trust_checkpoint).load(ns.device)
    if not isinstance(model, capability):
        raise ConfigError(f"{type(model).__name__} cannot {command}: `genlight {command}` needs {needs}")
    shape = tuple(int(v) for v in model.hparams["image_shape"])
    return model, read_images(ns.image, shape).to(ns.device)  # type: ignore[arg-type]


def _write(grid_images: Any, labels: list[str], columns: int, ns: Any, default: str, what: str) -> int:
    from PIL import Image

    from genlight.callbacks.image_logging import image_grid, label_rows
    from genlight.cli.commands import check_out, output_path

    out, notice = output_path(ns.out, default)
    check_out(out)
    grid = label_rows(image_grid(grid_images.cpu(), nrow=columns), labels)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid.permute(1, 2, 0) * 255).round().byte().numpy()).save(out)
    print(f"wrote {what} of {columns} image(s) to {out} (rows: {', '.join(labels)})")
    if notice:
        print(notice)
    return 0


def translate_command(argv: list[str]) -> int:
    import torch

    from genlight.types import MultiDomainTranslator, Translator

    parser = _parser("genlight translate", "Translate images with a trained StarGAN (--to DOMAIN ...) or CycleGAN "
                     "(--direction a2b|b2a).")  # fmt: skip
    parser.add_argument("--to", nargs="+", help="StarGAN: target domains by name (default: every domain)")
    parser.add_argument("--direction", choices=["a2b", "b2a"], help="CycleGAN: the direction (default a2b)")
    ns = parser.parse_args(argv)
    model, x = _model_and_images(ns, (Translator, MultiDomainTranslator), "translate",  # type: ignore[arg-type]
                                 "a Translator (cyclegan) or a MultiDomainTranslator (stargan)")  # fmt: skip
    torch.manual_seed(ns.seed)
    with torch.no_grad():
        if isinstance(model, MultiDomainTranslator):
            if ns.direction:
                raise ConfigError(f"--direction is for two-domain translators (cyclegan); {type(model).__name__} "
                                  f"takes --to with its domains {', '.join(model.domain_names)}")  # fmt: skip
            targets = ns.to or list(model.domain_names)
            unknown = [t for t in targets if t not in model.domain_names]
            if unknown:
                raise ConfigError(f"--to {unknown[0]}: not a domain of this model; its domains: "
                                  f"{', '.join(model.domain_names)}")  # fmt: skip
            rows = [x] + [model.translate(x, model.domain_names.index(t)).to(x.dtype) for t in targets]
            labels = ["input"] + [f"to {t}" for t in targets]
        else:
            if ns.to:
                raise ConfigError(f"--to is for multi-domain translators (stargan); {type(model).__name__} takes "
                                  f"--direction a2b or b2a")  # fmt: skip
            direction = ns.direction or "a2b"
            back = "b2a" if direction == "a2b" else "a2b"
            fake = model.translate(x, direction).to(x.dtype)
            rows = [x, fake, model.translate(fake, back).to(x.dtype)]
            labels = ["input", direction, f"{back}({direction})"]
    return _write(torch.cat(rows), labels, len(x), ns, "translations.png", "translations")


def complete_command(argv: list[str]) -> int:
    import torch

    from genlight.callbacks.completion import ROWS, completion_rows
    from genlight.types import PatchCompleter

    parser = _parser("genlight complete", "Cut patches from images and complete them with a trained Puzzle-GAN.")
    ns = parser.parse_args(argv)
    model, x = _model_and_images(ns, PatchCompleter, "complete", "a PatchCompleter (puzzlegan)")  # type: ignore[arg-type]
    with torch.no_grad():
        grid = completion_rows(model, x, ns.seed)
    return _write(grid, ROWS.split(", "), len(x), ns, "completions.png", "completions")
