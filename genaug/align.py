"""``genaug.align`` is :mod:`genaug.faces.align` (the name the documentation and older code use);
``python -m genaug.align`` runs its alignment check (:mod:`genaug.faces.align_check`)."""
import sys

from .faces import align as _module

if __name__ == "__main__":
    from .faces.align_check import main

    main()
sys.modules[__name__] = _module
