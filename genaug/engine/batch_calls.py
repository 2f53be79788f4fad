"""How :class:`genaug.BatchFaceAug`'s calls run beside compilers and tracers: :func:`compiling` / :func:`exporting` say
when dynamo traces the call (``torch.compile`` runs it eagerly, ``torch.export`` is refused) and :func:`transformed` when
a ``torch.func`` transform wraps it (refused); :func:`eagerly` is how a compiled model runs it."""
from __future__ import annotations

from typing import Callable

import torch

from ..distenv import Turns  # noqa: F401  (its home before genaug.distenv: pickles made then name it here)


compiling = getattr(torch.compiler, "is_compiling", lambda: False)  # (torch >= 2.3; True while dynamo traces)
exporting = getattr(torch.compiler, "is_exporting", lambda: False)  # (torch.export, the dynamo-based torch.onnx.export)


def transformed() -> bool:
    """True inside a ``torch.func`` transform (``vmap``, ``grad``, ``jacrev``, ``jvp``, ``functionalize``): its tensors are
    wrappers without storage, which genaug's host reads and tables cannot take."""
    peek = getattr(getattr(torch._C, "_functorch", None), "peek_interpreter_stack", None)
    return peek is not None and peek() is not None


_EAGER: dict[Callable, Callable] = {}


def eagerly(method: Callable) -> Callable:
    """``method`` wrapped by ``torch.compiler.disable``, made on first use under ``torch.compile`` (importing dynamo up
    front costs seconds): dynamo would trace genaug's host draws and reads and recompile it nearly every call (tens of
    seconds per call for a call of 0.1 s), so a compiled model runs it eagerly, breaking its graph there."""
    if method not in _EAGER:
        _EAGER[method] = torch.compiler.disable(method)
    return _EAGER[method]
