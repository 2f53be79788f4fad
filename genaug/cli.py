"""The ``genaug`` command line: ``genaug COMMAND [options]``; ``genaug COMMAND --help`` for each."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, Callable

# command -> (module with a ``main(argv)``, one-line summary); imported only when used
COMMANDS = {
    "demo": ("genaug.demo", "write a picture of real faces, their reconstructions and code sweeps"),
    "augment": ("genaug.augment_cli", "augment your own face images (a file or a folder) into --out"),
    "info": ("genaug.info", "list a bundle's codes and what they control"),
    "expand": ("genaug.expand_cli", "expand an image folder or HDF5 file into an augmented HDF5 dataset"),
    "train": ("training.cli", "train a controllable generator + latent predictor into a bundle"),
}


def usage() -> str:
    lines = ["usage: genaug COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run 'genaug COMMAND --help' for the options of a command."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"genaug {__version__}")
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"genaug: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return int(importlib.import_module(COMMANDS[cmd][0]).main(rest) or 0)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The options every command that runs the model shares."""
    parser.add_argument("--bundle", default="default", help="bundle folder or 'default' (the model shipped with genaug)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--refine-steps", type=int, default=None, help="latent refinement steps after the predictor "
                        "(default: the bundle's, 0 for the edit kind and 20 otherwise)")


def run_guarded(prog: str, run: Callable[[Any], Any], args: Any) -> int:
    """Run a command: a user-facing problem (missing or unreadable file, bad value) becomes one
    line ``PROG: error: ...`` on stderr and exit status 1, never a traceback."""
    try:
        run(args)
    except (OSError, ValueError) as e:  # BundleError, ExpandError and PIL's errors are among these
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
