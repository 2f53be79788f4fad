"""The views of a photo that the face search (:func:`genaug.faces.align.detect_faces`) looks in when its upright
pixels show no face: turned by quarter turns (a phone photo held sideways, or loaded without its EXIF orientation;
upside down), padded (a face cut by the photo's edge) and rolled (a face rolled between what upright and a quarter
turn find)."""
from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

TURNED_SIDE = 512  # a photo with no upright face is searched in its other views (turned, padded, rolled) at this long side at most
QUARTER_TURNS = (1, 3, 2)  # np.rot90 turns a photo with no upright face is searched in: sideways both ways, upside down
EDGE_PAD = 0.25  # ... then upright with a border of this fraction of each side (a face cut by the photo's edge)
ROLLS = (45, -45)  # ... then rolled by these degrees (a face rolled between what upright and a quarter turn find)


def _turn_matrix(k: int, h: int, w: int) -> np.ndarray:
    """The (2, 3) matrix taking (h, w) photo pixels (x, y) to pixels of ``np.rot90(photo, k)``."""
    return {1: np.array([[0.0, 1, 0], [-1, 0, w - 1]]), 2: np.array([[-1.0, 0, w - 1], [0, -1, h - 1]]),
            3: np.array([[0.0, -1, h - 1], [1, 0, 0]])}[k % 4]


def _canvas(rgb: np.ndarray, degrees: float, pad: float) -> tuple[np.ndarray, np.ndarray]:
    """``rgb`` turned by ``degrees`` (counter-clockwise) on a canvas holding all of it and a border of ``pad`` of its
    sides, filled with the mean of its edge pixels; and the (2, 3) matrix taking its pixels to the canvas's."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), degrees, 1.0)
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64) @ m[:, :2].T + m[:, 2]
    lo, hi = corners.min(0), corners.max(0)
    margin = np.round(pad * np.array([w, h]))
    m[:, 2] += margin - lo
    size = tuple(int(v) for v in np.ceil(hi - lo + 2 * margin) + 1)
    edge = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]]).reshape(-1, rgb.shape[2])
    fill = tuple(float(v) for v in edge.mean(0))
    return cv2.warpAffine(rgb, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=fill), m


def searched_side(h: int, w: int, side: int) -> int:
    """The short side of an ``h`` x ``w`` picture searched at ``side`` long side at most (area-downsampled as
    :func:`genaug.faces.align.find_faces` does)."""
    scale = max(h, w) / side
    return min(h, w) if scale <= 1 else max(1, round(min(h, w) / scale))


def views(rgb: np.ndarray, least: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The views of ``rgb`` (H, W, 3), each made when reached: (pixels, the (2, 3) matrix taking photo pixels to the
    view's). The upright photo, then turned by :data:`QUARTER_TURNS`, then (from the photo at :data:`TURNED_SIDE` at
    most) padded by :data:`EDGE_PAD` and rolled by :data:`ROLLS`. ``least``: the turned views are left out when,
    searched at :data:`TURNED_SIDE`, their short side is under it (no detector window fits there: a thin strip's
    quarter turns, each a copy of the whole photo, found nothing at any cost)."""
    h, w = rgb.shape[:2]
    yield rgb, np.eye(2, 3)
    for k in QUARTER_TURNS if searched_side(h, w, TURNED_SIDE) >= least else ():
        yield np.ascontiguousarray(np.rot90(rgb, k)), _turn_matrix(k, h, w)
    zoom = min(1.0, TURNED_SIDE / max(h, w))
    small = cv2.resize(rgb, (max(1, round(w * zoom)), max(1, round(h * zoom))), interpolation=cv2.INTER_AREA) if zoom < 1 else rgb
    to_small = np.diag([small.shape[1] / w, small.shape[0] / h, 1.0])
    for degrees, pad in ((0, EDGE_PAD), *((r, 0) for r in ROLLS)):
        view, m = _canvas(small, degrees, pad)
        yield view, m @ to_small
