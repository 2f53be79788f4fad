"""genaug: generative, identity-preserving data augmentation for face datasets."""
from __future__ import annotations

__version__ = "0.1.0"

from .bundle import Bundle, BundleError, load_bundle, save_bundle
from .latent import CategoricalCode, ContinuousCode, LatentSpec
from .nets import NetConfig
