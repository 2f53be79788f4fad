"""Faces: identity judges (:mod:`.identity`, evaluator networks in :mod:`.features`), detection and
alignment (:mod:`.align`, the optional ``faces`` extra), framing rules (:mod:`.framing`), the
metrics that score faces (:mod:`.metrics`), and the rendered pose and light controls on a generic 3D
face (:mod:`.shape`, :mod:`.pose`, :mod:`.light`)."""
