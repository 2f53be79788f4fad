"""Bundles: a model folder (``config.json`` + ``model.safetensors``), its loading and saving
(:mod:`.format`) and the edit recipes it carries (:mod:`.recipe`)."""
from .format import (CONFIG_NAME, DEFAULT_DIR, FORMAT, FORMAT_VERSION, NAMED_BUNDLES, WEIGHTS_NAME, Bundle, BundleError,
                     load_bundle, read_config, read_spec, save_bundle)
from .recipe import EditRecipe, Transfer

__all__ = ["Bundle", "BundleError", "load_bundle", "save_bundle", "read_config", "read_spec", "EditRecipe", "Transfer",
           "CONFIG_NAME", "DEFAULT_DIR", "FORMAT", "FORMAT_VERSION", "NAMED_BUNDLES", "WEIGHTS_NAME"]
