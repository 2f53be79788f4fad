"""What every ``genaug`` command shares: the model options, the exit statuses and the one-line error exit.

Exit status (:data:`EXIT_STATUS`): 0 done; 1 the work failed (a missing, unreadable or corrupt input, an output
that cannot be written, a full disk, a missing optional extra); 2 a usage error: an argument that no file could
make right (malformed, out of range, options that contradict each other, a code or device that does not exist),
as argparse's own errors; 130 interrupted (Ctrl-C). Arguments are checked before any input is read.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import warnings
from typing import Any, Callable, Iterator

from ..faces.identity import FacesExtraMissing


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_STATUS = ("exit status: 0 done; 1 failed (a missing, unreadable or corrupt input, an output that cannot be "
               "written, a full disk, a missing extra); 2 usage error (a malformed or out-of-range value, an unknown "
               "code or device, contradictory options); 130 interrupted (Ctrl-C)")
FRAMING_HELP = ("how faces are framed for the model: auto (CelebA's box for 178x218 frames, a photo of the model's size "
                "whole, else the detected face with genaug[faces] or the centre square; with genaug[faces] a named edit "
                "that draws on the face (glasses, bangs, mouth, smile, male) on a face that box misplaces is framed by "
                "the detected face), full or none (the centre square), detect (dlib's detector + 5-point alignment; "
                "photos without a face unchanged)")


class UsageError(ValueError):
    """An argument that cannot be used whatever the files hold: exit status 2, as argparse's errors."""


@contextlib.contextmanager
def checking_arguments() -> Iterator[None]:
    """Inside, a ``ValueError`` (a library's check of a value) is a :class:`UsageError`. Read no file inside: a
    missing bundle (``BundleError``, a ValueError too) is a failure, not a usage error."""
    try:
        yield
    except UsageError:
        raise
    except ValueError as e:
        raise UsageError(str(e)) from None


def parse_codes(text: str | None) -> list[str] | None:
    """``--codes smile,yaw`` -> ``["smile", "yaw"]``; None (no option) -> None; :class:`UsageError` for one naming none
    or with an empty entry (``glasses,,smile``: the library refuses a code ``""`` too)."""
    if text is None:
        return None
    codes = [c.strip() for c in text.split(",")]
    if not any(codes):
        raise UsageError(f"--codes {text!r} names no code: name some (smile,yaw) or leave --codes out for the random set")
    if "" in codes:
        raise UsageError(f"--codes {text!r}: entry {codes.index('') + 1} of {len(codes)} is empty (a doubled, leading "
                         f"or trailing comma): name the codes separated by single commas ({','.join(c for c in codes if c)})")
    return codes


def check_model_args(bundle: str, device: str, refine_steps: int | None, codes: list[str] | None = None) -> None:
    """The shared model options and ``codes`` (:class:`UsageError` for a bad one): ``refine_steps`` >= 0, a
    device torch knows and has, and codes the bundle has (its config is read, after the other checks)."""
    from ..bundle.format import read_spec
    from ..device import resolve_device
    from ..engine.codes import check_code_list, check_codes

    with checking_arguments():
        if refine_steps is not None and refine_steps < 0:
            raise ValueError(f"--refine-steps must be >= 0, got {refine_steps}")
        resolve_device(device)
        check_code_list(codes)
    if codes is not None:
        spec = read_spec(bundle)  # a missing or broken bundle: a failure (1)
        with checking_arguments():
            check_codes(spec, codes)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The options every command that runs the model shares."""
    parser.add_argument("--bundle", default="default", help="bundle folder or 'default' (the model shipped with genaug)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--refine-steps", type=int, default=None, help="latent refinement steps after the encoder "
                        "(default: the bundle's, 0 for the edit kind and 20 otherwise)")


def run_guarded(prog: str, run: Callable[[Any], Any], args: Any) -> int:
    """Run a command: a user-facing problem becomes one line ``PROG: error: ...`` on stderr, never a
    traceback, and the exit status of the module docs: 2 for a :class:`UsageError`, 1 for the others (a missing
    or unreadable file, bad data, an I/O error, a missing optional extra such as ``faces`` for ``--framing detect``).
    A ``run`` that returns an int returns its own status (:func:`stop_status`); else 0."""
    try:
        status = run(args)
    except BrokenPipeError:  # the output's reader stopped (``genaug info | head``): end quietly, as other tools do
        return _quiet_stdout()
    except (OSError, ValueError, FacesExtraMissing) as e:  # BundleError, ExpandError and PIL's errors are among these
        print(f"{prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE if isinstance(e, UsageError) else EXIT_FAILED
    return status if isinstance(status, int) else EXIT_OK


def stop_status(stopped_by: str | None) -> int:
    """The exit status of a training run that ended: 130 when Ctrl-C (SIGINT) stopped it (its checkpoint saved: the
    same command resumes), as every command's Ctrl-C; 0 when it ran its steps or budget, or SIGTERM stopped it (a
    scheduler's stop of a run that checkpointed as asked)."""
    return EXIT_INTERRUPTED if stopped_by == "SIGINT" else EXIT_OK


def plain_doc(doc: str | None) -> str:
    """A module docstring as a help page's plain text: reST roles (``:mod:`x```) and double backquotes dropped."""
    return re.sub(r"``(.+?)``", r"'\1'", re.sub(r":\w+:`~?(.+?)`", r"\1", doc or ""), flags=re.S)


def _quiet_stdout() -> int:
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
    return EXIT_FAILED


def print_or_fail(prog: str, text: str) -> int:
    """Print ``text`` (a help page, the version): 0, or as :func:`run_guarded` ends when stdout cannot take it (a
    closed pipe: 1 quietly; a full disk: one line, 1)."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        return _quiet_stdout()
    except OSError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return _quiet_stdout()
    return EXIT_OK


@contextlib.contextmanager
def one_line_warnings(prog: str) -> Iterator[None]:
    """Show a warning as one line ``PROG: warning: ...`` on stderr (written above any progress bar), not as Python
    shows it: the library's file path and line number, then the source line that warned."""
    def show(message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        from tqdm.auto import tqdm

        tqdm.write(f"{prog}: warning: {message}", file=sys.stderr if file is None else file)

    saved = warnings.showwarning
    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = saved
