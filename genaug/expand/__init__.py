"""Offline expansion into HDF5: sources (:mod:`.sources`), the checked settings (:mod:`.settings`), the
pipeline (:mod:`.pipeline`), run bookkeeping (:mod:`.runs`), the part files and their merge (:mod:`.parts`) and the HDF5 format and reader (:mod:`.hdf5`). The public names are
imported on first use."""
from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {"expand_to_hdf5": "pipeline", "ExpandError": "sources", "HDF5FaceDataset": "hdf5"}
__all__ = list(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(f"{__name__}.{_PUBLIC[name]}"), name)
    raise AttributeError(f"module 'genaug.expand' has no attribute {name!r}")
