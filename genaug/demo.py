"""``genaug.demo`` is :mod:`genaug.cli.demo` (the name the documentation and older code use)."""
import sys

from .cli import demo as _module

sys.modules[__name__] = _module
