"""The engine: inversion (:mod:`.invert`), edits (:mod:`.edits`; codes and option checks:
:mod:`.codes`), rendering and the model frame (:mod:`.render`), latent caches (:mod:`.cache`,
:mod:`.lazy`) and :class:`~.core.Engine`, which ties them to a bundle. ``Engine`` and ``AugmentInfo`` are imported on first use."""
from __future__ import annotations

from typing import Any

__all__ = ["Engine", "AugmentInfo"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import core

        return getattr(core, name)
    raise AttributeError(f"module 'genaug.engine' has no attribute {name!r}")
