"""The ``genlight`` command: LightningCLI with registry names, linked shapes and run folders.

    genlight fit --model vae --data digits --trainer.max_epochs 5
    genlight fit -c examples/digits/vae.yaml
    genlight list models|datamodules|extractors
    genlight test --model vae --ckpt_path last
    genlight sample --ckpt_path runs/vae/version_0/checkpoints/last.ckpt -n 64 --out samples.png
    genlight score --ckpt_path runs/vae/version_0/checkpoints/last.ckpt --task ood --out scores/

Every ``fit`` writes ``checkpoints/last.ckpt`` (the end of the last completed epoch) and the best
checkpoint on the family's validation metric, stops at the first NaN/Inf loss, and stores the RNG
state so that a resume is exact. Mistakes in the command (a misspelt option, a value out of range, a
checkpoint of another family, a missing package) are reported before training as
``genlight: error: ...`` in at most three lines.

One job a file: :mod:`~genlight.cli.names` (registry names on the command line and in YAML),
:mod:`~genlight.cli.parser` and :mod:`~genlight.cli.errors` (the parser, its short errors),
:mod:`~genlight.cli.checkpoints` (``--ckpt_path``), :mod:`~genlight.cli.runs` (run folders),
:mod:`~genlight.cli.checks` (settings no type can check), :mod:`~genlight.cli.callbacks` (what a fit
adds), :mod:`~genlight.cli.quiet` (upstream noise), :mod:`~genlight.cli.commands` (``list``,
``sample``), :mod:`~genlight.cli.score` (``score``), :mod:`~genlight.cli.app` (``GenlightCLI``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from genlight.cli.app import DEFAULT_DATAMODULE, GenlightCLI
from genlight.cli.callbacks import LastCheckpoint, default_fit_callbacks
from genlight.cli.checkpoints import LINKED_ATTRIBUTES, CheckpointChoice
from genlight.cli.commands import COMMANDS
from genlight.cli.errors import one_line, user_error
from genlight.cli.names import UnknownNameError, rewrite_config, rewrite_registry_names
from genlight.cli.parser import GenlightArgumentParser
from genlight.cli.quiet import quiet_run
from genlight.cli.runs import GenlightSaveConfig

__all__ = [
    "CheckpointChoice",
    "DEFAULT_DATAMODULE",
    "GenlightArgumentParser",
    "GenlightCLI",
    "GenlightSaveConfig",
    "LINKED_ATTRIBUTES",
    "LastCheckpoint",
    "UnknownNameError",
    "default_fit_callbacks",
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
