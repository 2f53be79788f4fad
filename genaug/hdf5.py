"""``genaug.hdf5`` is :mod:`genaug.expand.hdf5` (the name the documentation and older code use)."""
import sys

from .expand import hdf5 as _module

sys.modules[__name__] = _module
