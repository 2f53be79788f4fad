"""What every ``genaug`` command shares: the model options and the one-line error exit."""
from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from typing import Any, Callable, Iterator

from ..faces.identity import FacesExtraMissing


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """The options every command that runs the model shares."""
    parser.add_argument("--bundle", default="default", help="bundle folder or 'default' (the model shipped with genaug)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--refine-steps", type=int, default=None, help="latent refinement steps after the encoder "
                        "(default: the bundle's, 0 for the edit kind and 20 otherwise)")


def run_guarded(prog: str, run: Callable[[Any], Any], args: Any) -> int:
    """Run a command: a user-facing problem (missing or unreadable file, bad value) becomes one
    line ``PROG: error: ...`` on stderr and exit status 1, never a traceback. A missing optional
    extra (``faces``, e.g. for ``--framing detect``) is such a problem too."""
    try:
        run(args)
    except BrokenPipeError:  # the output's reader stopped (``genaug info | head``): end quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        return 1
    except (OSError, ValueError, FacesExtraMissing) as e:  # BundleError, ExpandError and PIL's errors are among these
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 1
    return 0


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
