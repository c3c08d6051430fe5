"""The ``genlight`` command: LightningCLI with registry names, linked shapes, run folders and short
errors, plus ``list``, ``sample``, ``score``, ``translate`` and ``complete`` (see docs/cli.md)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from genlight._compat import quiet_run
from genlight.checkpoint_config import DEFAULT_DATAMODULE, CheckpointChoice
from genlight.cli.app import GenlightCLI
from genlight.cli.commands import COMMANDS
from genlight.cli.names import UnknownNameError, rewrite_config, rewrite_registry_names
from genlight.cli.parser import GenlightArgumentParser
from genlight.cli.runs import GenlightSaveConfig
from genlight.errors import one_line, user_error
from genlight.registry import LINKED_ATTRIBUTES

__all__ = [
    "CheckpointChoice",
    "DEFAULT_DATAMODULE",
    "GenlightArgumentParser",
    "GenlightCLI",
    "GenlightSaveConfig",
    "LINKED_ATTRIBUTES",
    "UnknownNameError",
    "main",
    "rewrite_config",
    "rewrite_registry_names",
]


def main(args: Sequence[str] | None = None) -> None:
    """Entry point of the ``genlight`` console script. Errors of the user's making (a
    :class:`~genlight.errors.GenlightError`) print ``genlight: error: ...`` and exit with code 1."""
    argv = list(sys.argv[1:] if args is None else args)
    try:
        with quiet_run():
            if argv and argv[0] in COMMANDS:
                raise SystemExit(COMMANDS[argv[0]](argv[1:]))
            cli = GenlightCLI(args=None if args is None else argv)
            if cli.subcommand in ("test", "validate"):  # its figures are random draws: say which
                print(f"seed_everything: {cli.config[cli.subcommand].get('seed_everything')} (--seed_everything N)")
        _close_process_group()
    except Exception as err:
        found = user_error(err)
        if found is None:
            raise
        sys.stderr.write(f"genlight: error: {one_line(found)}\n")  # the message says what to do
        raise SystemExit(1) from err


def _close_process_group() -> None:
    """After a distributed run (torchrun, SLURM): every process leaves the process group together,
    instead of tearing its connections down while the interpreter exits, where a peer that is slower
    to exit can abort (``terminate called without an active exception``) and leave the others waiting."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
