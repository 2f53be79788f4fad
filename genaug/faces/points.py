"""Checks of 5 landmarks' geometry (dlib's order), shared by detection (:mod:`.align`) and given landmarks
(:mod:`.landmarks`); numpy or torch."""
from __future__ import annotations

from torch import Tensor


def landmarks_in_order(lm: Tensor) -> Tensor:
    """(N,) bool: in the eyes' frame the nose (point 4) lies below the eye line and each eye's inner corner
    (points 1, 3) nearer the eyes' midpoint than its outer one (points 0, 2) - dlib's 5-point order. ``lm`` (N, 5, 2):
    a tensor, or a numpy array (then a numpy result: checks on the host without tensor operations)."""
    right, left = lm[:, 0:2].mean(1), lm[:, 2:4].mean(1)
    centre, axis = (right + left) / 2, right - left
    d2 = (axis * axis).sum(1)
    u = ((lm - centre[:, None]) * axis[:, None]).sum(-1) / d2[:, None]  # in eye distances
    nose = lm[:, 4] - centre
    v = (nose[:, 1] * axis[:, 0] - nose[:, 0] * axis[:, 1]) / d2  # along the eye line's normal (image down)
    return (v >= 0.15) & (abs(u[:, 1]) < abs(u[:, 0])) & (abs(u[:, 3]) < abs(u[:, 2]))
