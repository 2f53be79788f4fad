"""genaug: generative, identity-preserving data augmentation for face datasets.

Public names are imported lazily (h5py and the engine load on first use), except the
albumentations transform: albumentations finds a saved pipeline's classes in a registry filled
when a class is defined, so ``import genaug`` defines it and ``A.load`` / ``A.from_dict`` /
``ReplayCompose.replay`` work in a fresh process.
"""
from __future__ import annotations

import importlib
import importlib.util
from typing import Any

__version__ = "0.1.0"

from .bundle import Bundle, BundleError, load_bundle, save_bundle  # noqa: E402
from .models import CategoricalCode, ContinuousCode, LatentSpec, NetConfig  # noqa: E402
from .transforms import GenerativeFaceAug  # noqa: E402  (registers it with albumentations' serialization)

_LAZY = {
    "Engine": "genaug.engine.core",
    "BatchFaceAug": "genaug.batch",
    "LatentTable": "genaug.engine.latent_table",
    "GenerativeAugDataset": "genaug.dataset",
    "expand_to_hdf5": "genaug.expand.pipeline",
    "HDF5FaceDataset": "genaug.expand.hdf5",
}

__all__ = [
    "Bundle", "BundleError", "load_bundle", "save_bundle", "CategoricalCode", "ContinuousCode", "LatentSpec",
    "NetConfig", "GenerativeFaceAug", *_LAZY,
]


def __dir__() -> list[str]:
    """The module's names and the lazy public ones (``dir(genaug)`` and tab completion list ``Engine`` before first use)."""
    return sorted(set(globals()) | set(_LAZY))


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    spec = importlib.util.find_spec(f"{__name__}.{name}") if name.isidentifier() and not name.startswith("_") else None
    if spec is not None and spec.origin is not None:  # a submodule, as the README writes them: genaug.align.augment_faces
        return importlib.import_module(f"{__name__}.{name}")  # (not a data folder, default/ or assets/: no module)
    raise AttributeError(f"module 'genaug' has no attribute {name!r}")
