"""``genaug.identity`` is :mod:`genaug.faces.identity` (the name the documentation and older code use)."""
import sys

from .faces import identity as _module

sys.modules[__name__] = _module
