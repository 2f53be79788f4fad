"""How :class:`genaug.BatchFaceAug`'s calls run beside threads and compilers: threads calling one transform take turns
(:class:`Turns`; its work buffers and latent tables are shared across calls), :func:`compiling` / :func:`exporting` say
when dynamo traces the call (``torch.compile`` runs it eagerly, ``torch.export`` is refused) and :func:`transformed` when
a ``torch.func`` transform wraps it (refused)."""
from __future__ import annotations

import os
import threading
from typing import Any

import torch


class Turns:
    """A re-entrant lock that threads calling one transform take in turn; a forked process (a DataLoader worker forked
    while another thread was inside a call) gets a fresh one, not a copy held by a thread it does not have. Pickled
    (deepcopy, spawned workers) as a fresh one."""

    def __init__(self) -> None:
        self._pid, self._lock = os.getpid(), threading.RLock()

    def __enter__(self) -> None:
        if self._pid != os.getpid():
            self._pid, self._lock = os.getpid(), threading.RLock()
        self._lock.acquire()

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def __reduce__(self) -> tuple:
        return (Turns, ())


compiling = getattr(torch.compiler, "is_compiling", lambda: False)  # (torch >= 2.3; True while dynamo traces)
exporting = getattr(torch.compiler, "is_exporting", lambda: False)  # (torch.export, the dynamo-based torch.onnx.export)


def transformed() -> bool:
    """True inside a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``, ``jvp``, ``functionalize``): its tensors are
    wrappers without storage, which genaug's host reads and tables cannot take."""
    peek = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None)
    return peek is not None and peek() is not None
