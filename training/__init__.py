"""genaug training: every model kind trained from a face folder into a bundle, on one skeleton.

``genaug train --kind KIND`` (:data:`genaug.training.cli.KINDS`) dispatches to a kind; every kind
runs on :mod:`.skeleton` (resume, checkpoints, JSON-lines log, SIGTERM/SIGINT, evaluation, export).
Kinds: ``edit`` (the kind of the shipped default model: an edit-aware encoder + generator trained
to edit real faces, :mod:`.edit_loop`), ``infogan`` / ``began`` (the older kind: a generator from
noise, then an encoder fitted to it, :mod:`.loop`) and ``detail`` (adds a detail skip to an edit
bundle, :mod:`.detail`). :mod:`.calibrate_edits` measures a bundle's edit settings. Installed as
``genaug.training``; in a checkout ``python -m training.X`` runs the same modules."""
from .loop import TrainConfig, Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
