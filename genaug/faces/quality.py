"""The quality gate's judge: a small realism critic (a CNN on the 64 px model frame) that scores
how much a face looks like a real photo rather than a genaug output (smears, blotches, a blurred
or tinted face). Shipped as ``genaug/default/evaluator_quality.{safetensors,json}`` (float16,
trained by ``python -m training.quality`` on faces the benchmarks never score).

``QualityCritic(original, augmented) -> (N,)`` is the augmented image's score, P(real) in [0, 1];
the engine re-draws rows below ``quality_threshold`` and finally keeps the source, like the
identity gate. ``critic.threshold`` is the score that 98 % of held-out real faces reach.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from .features import load_evaluator


class QualityCritic:
    """Realism score of model-frame images (NCHW in [-1, 1]); usable as the engine's quality gate."""

    def __init__(self, path: str | Path | None = None, device: str | torch.device = "cpu"):
        self.net = load_evaluator("quality", path, device)
        self.device = torch.device(device)
        self.threshold = float(self.net.cfg.training.get("threshold", 0.5))

    @torch.no_grad()
    def score(self, images: Tensor) -> Tensor:
        """P(real) per image, (N,) on the images' device."""
        return torch.sigmoid(self.net(images.to(self.device, torch.float32))[:, 0]).to(images.device)

    def __call__(self, original: Tensor, augmented: Tensor) -> Tensor:
        return self.score(augmented)


_CRITICS: dict[tuple[str, str], QualityCritic] = {}


def get_critic(device: str | torch.device = "cpu", path: str | Path | None = None) -> QualityCritic:
    """The shipped critic (or one at ``path``), loaded once per device."""
    key = (str(torch.device(device)), str(path))
    if key not in _CRITICS:
        _CRITICS[key] = QualityCritic(path, device)
    return _CRITICS[key]


def default_quality_threshold() -> float:
    """The shipped critic's recommended threshold (98 % of held-out real faces pass)."""
    return get_critic().threshold
