"""The ``genaug`` command line (:func:`main`); one module per command."""
from .main import main

__all__ = ["main"]
