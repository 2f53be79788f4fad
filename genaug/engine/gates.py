"""The gates an edit must pass, by name: the identity gate (an identity judge's similarity of the augmented face
to the original) and the quality gate (the shipped realism critic), and the check of the identity gate's
threshold. :class:`genaug.engine.core.Engine` re-draws the rows they reject and finally keeps them unchanged.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor

Gate = Callable[[Tensor, Tensor], Tensor]


def check_gate(gate: object) -> None:
    """``gate`` is None, a judge's name or a callable(original, augmented) -> (N,); else a ValueError naming it."""
    if gate is not None and not isinstance(gate, str) and not callable(gate):
        raise ValueError(f"gate must be a judge's name or a callable(original, augmented) -> (N,), got {gate!r}")


def check_gate_threshold(gate: Gate | str | None, gate_threshold: float) -> None:
    """``gate_threshold`` is a finite similarity, at most 1 for a shipped judge (``gate`` by name)."""
    if not math.isfinite(float(gate_threshold)):  # NaN: no similarity is below it, the gate would never act
        raise ValueError(f"gate_threshold must be a finite similarity, got {gate_threshold}")
    if isinstance(gate, str) and float(gate_threshold) > 1:  # a shipped judge's similarity never passes 1
        raise ValueError(f"gate_threshold must be <= 1 for the {gate!r} judge (above it every edit is rejected), got {gate_threshold}")


def identity_gate(device: torch.device, name: str = "identity") -> Gate:
    """A gate by name: ``"identity"``, the identity-similarity gate of :mod:`genaug.faces.metrics`;
    ``"auto"``/``"dlib"``/``"student"``/``"embedder"``, a :mod:`genaug.faces.identity` judge
    (similarity = 1 - distance; its same-person threshold is ``judge.gate_threshold``)."""
    if name == "identity":
        from ..faces.metrics import IdentityGate

        return IdentityGate(device=device)
    from ..faces.identity import get_judge

    return get_judge(name, device)


def quality_gate(device: torch.device, quality: Gate | str | None, threshold: float | str) -> tuple[Gate | None, float]:
    """The quality gate and its threshold: ``"critic"`` is the shipped realism critic and
    ``threshold="auto"`` its recommended threshold; any callable with a number works too."""
    if quality is None:
        return None, 0.0
    if isinstance(quality, str):
        if quality != "critic":
            raise ValueError(f"quality must be 'critic', a callable(original, augmented) -> (N,) or None, got {quality!r}")
        from ..faces.quality import get_critic

        quality = get_critic(device)
        auto = quality.threshold
    elif threshold == "auto":
        raise ValueError("quality_threshold='auto' needs quality='critic'; give a number for your own quality gate")
    value = auto if threshold == "auto" else threshold
    if isinstance(value, str) or not math.isfinite(float(value)) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"quality_threshold must be 'auto' or a number in [0, 1], got {threshold!r}")
    return quality, float(value)
