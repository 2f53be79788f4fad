"""Bundles: a model folder (``config.json`` + ``model.safetensors``) and its loading and saving
(:mod:`.format`)."""
from .format import (CONFIG_NAME, DEFAULT_DIR, FORMAT, FORMAT_VERSION, NAMED_BUNDLES, WEIGHTS_NAME, Bundle, BundleError,
                     gain_for, load_bundle, read_config, read_spec, save_bundle, transfer_weights)

__all__ = ["Bundle", "BundleError", "load_bundle", "save_bundle", "read_config", "read_spec", "gain_for", "transfer_weights",
           "CONFIG_NAME", "DEFAULT_DIR", "FORMAT", "FORMAT_VERSION", "NAMED_BUNDLES", "WEIGHTS_NAME"]
