"""One engine per process, built on first use: what the transform and the Dataset wrapper hold.

Inside a DataLoader worker the engine is built on the CPU (forked CUDA state is unusable), from
the given keyword arguments or, for a ready engine handed in by the user, from its bundle and
options. Pickling drops a built engine whenever it can be rebuilt from its arguments.
"""
from __future__ import annotations

import os
from typing import Any

import torch


class LazyEngine:
    """Holds ``Engine(**engine_kw)`` (or a given ``engine``) and rebuilds it once per process."""

    def __init__(self, engine: Any = None, **engine_kw: Any):
        self.engine_kw = engine_kw
        self._engine = engine
        self._pid = os.getpid() if engine is not None else None

    @property
    def built(self) -> Any:
        """The engine built in this process, or None (nothing loaded yet)."""
        return self._engine if self._pid == os.getpid() else None

    def get(self) -> Any:
        """The engine, built on first use in this process (CPU inside DataLoader workers)."""
        if self.built is None:
            from .core import Engine

            kw = dict(self.engine_kw)
            if torch.utils.data.get_worker_info() is not None:
                kw["device"] = "cpu"
                if self._engine is not None:  # a user-given engine: reuse its bundle on the CPU
                    kw = {**self._engine.options, "bundle": self._engine.bundle, "device": "cpu"}
            self._engine, self._pid = Engine(**kw), os.getpid()
        return self._engine

    def __getstate__(self) -> dict[str, Any]:
        """A built engine is dropped and rebuilt from its arguments (a given engine: its options, bundle and device):
        its ``torch.Generator`` cannot be sent to a spawned DataLoader worker (macOS, Windows)."""
        state = self.__dict__.copy()
        if not self.engine_kw and hasattr(self._engine, "options"):  # a user-given engine
            e = self._engine
            state["engine_kw"] = {**e.options, "bundle": e.bundle, "device": e.device}
        if state["engine_kw"]:
            state["_engine"], state["_pid"] = None, None
        return state
