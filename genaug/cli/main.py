"""The ``genaug`` command line: ``genaug COMMAND [options]``; ``genaug COMMAND --help`` for each.

Exit status, every command (:mod:`genaug.cli.common`): 0 done; 1 failed (a missing, unreadable or corrupt input,
an output that cannot be written, a full disk, a missing optional extra); 2 usage error (an unknown command or
option, a malformed or out-of-range value, an unknown code or device, contradictory options: argparse's status);
130 interrupted (Ctrl-C).
"""
from __future__ import annotations

import importlib
import os
import sys
import textwrap

from .common import EXIT_INTERRUPTED, EXIT_STATUS, EXIT_USAGE, one_line_warnings, print_or_fail

# command -> (module with a ``main(argv)``, one-line summary); imported only when used
COMMANDS = {
    "demo": ("genaug.cli.demo", "write a picture of real faces, their reconstructions and code sweeps"),
    "augment": ("genaug.cli.augment", "augment your own face images (a file or a folder) into --out"),
    "info": ("genaug.cli.info", "list a bundle's codes and what they control"),
    "expand": ("genaug.cli.expand", "expand an image folder or HDF5 file into an augmented HDF5 dataset"),
    "train": ("genaug.training.cli", "train a model into a bundle (kinds: edit = the shipped default's, infogan/began = the older kind, detail)"),
}


def usage() -> str:
    lines = ["usage: genaug COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "Run 'genaug COMMAND --help' for the options of a command.", ""]
    lines += [textwrap.fill(EXIT_STATUS, 100, subsequent_indent="  ")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        return print_or_fail("genaug", usage())
    if argv[0] in ("-V", "--version"):
        from .. import __version__

        return print_or_fail("genaug", f"genaug {__version__}")
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"genaug: unknown command {cmd!r}\n\n{usage()}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with one_line_warnings(f"genaug {cmd}"):
            return int(importlib.import_module(COMMANDS[cmd][0]).main(rest) or 0)
    except KeyboardInterrupt:  # Ctrl-C: one line, not a page of traceback from wherever the work was
        hint = " (finished blocks are kept: rerun the same command to resume)" if cmd == "expand" else ""
        print(f"genaug {cmd}: interrupted{hint}", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
