"""genaug training: every model kind trained from a face folder into a bundle.

Kinds: ``edit`` (the shipped default: an encoder + generator trained to edit real faces,
:mod:`.edit_loop`), ``infogan`` and ``began`` (a generator from noise, then an encoder - the
"latent predictor" - fitted to it, :mod:`.loop`). After training, :mod:`.calibrate_edits` measures a
bundle's edit settings and :mod:`.detail` adds a detail skip. Installed as ``genaug.training``; in a
checkout ``python -m training.X`` runs the same modules."""
from .loop import TrainConfig, Trainer, train

__all__ = ["TrainConfig", "Trainer", "train"]
