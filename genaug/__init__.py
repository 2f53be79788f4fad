"""genaug: generative, identity-preserving data augmentation for face datasets.

Public names are imported lazily so ``import genaug`` stays light (albumentations, h5py and
the engine load on first use).
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

from .bundle import Bundle, BundleError, load_bundle, save_bundle  # noqa: E402
from .models import CategoricalCode, ContinuousCode, LatentSpec, NetConfig  # noqa: E402

_LAZY = {
    "Engine": "genaug.engine.core",
    "GenerativeFaceAug": "genaug.transforms",
    "GenerativeAugDataset": "genaug.dataset",
    "expand_to_hdf5": "genaug.expand.pipeline",
    "HDF5FaceDataset": "genaug.expand.hdf5",
}

__all__ = [
    "Bundle", "BundleError", "load_bundle", "save_bundle", "CategoricalCode", "ContinuousCode", "LatentSpec",
    "NetConfig", *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'genaug' has no attribute {name!r}")
