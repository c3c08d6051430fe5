"""The checkpoint options of the commands: ``--ckpt_path`` (resolved by
:class:`~genlight.checkpoint_config.CheckpointChoice`), ``--model``, ``--device`` and ``--trust_checkpoint``."""

from __future__ import annotations

from typing import Any

from genlight.cli.errors import ShortArgumentParser, device_type

__all__ = ["LIGHTNING_CKPT_WORDS", "command_parser", "trust_argument"]

#: ``--ckpt_path`` values Lightning resolves itself (beside a file; also ``registry:...``)
LIGHTNING_CKPT_WORDS = ("best", "hpc", "registry")


def trust_argument(parser: Any) -> None:
    """``--trust_checkpoint``: load a checkpoint that needs arbitrary unpickling (only one you vouch for)."""
    parser.add_argument(
        "--trust_checkpoint",
        action="store_true",
        help="load a --ckpt_path that needs arbitrary "
        "unpickling (it could run code): only for a file you trust; off by default",
    )


def command_parser(prog: str, description: str) -> ShortArgumentParser:
    """The parser of a command that reads a checkpoint: ``--ckpt_path`` or ``--pretrained``, ``--model``,
    ``--device`` and ``--trust_checkpoint``."""
    parser = ShortArgumentParser(prog=prog, description=description)
    parser.add_argument("--ckpt_path", help="a checkpoint written by `genlight fit`, or `last`")
    parser.add_argument("--pretrained", help="instead of --ckpt_path: a shipped model, hf-hub:user/name or a folder")
    parser.add_argument("--model", help="the family the checkpoint must hold (a registry name); checked")
    parser.add_argument("--device", type=device_type, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    trust_argument(parser)
    return parser
