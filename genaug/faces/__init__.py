"""Faces: identity judges (:mod:`.identity`, evaluator networks in :mod:`.features`), detection and
alignment (:mod:`.align`, the optional ``faces`` extra), framing rules (:mod:`.framing`) and the
metrics that score faces (:mod:`.metrics`)."""
