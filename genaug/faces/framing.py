"""Framing: where the face sits in an image. A bundle's ``framing`` config names a reference frame
(e.g. CelebA 178x218) and the face box in it; :func:`face_box` scales that box to an image of the
same aspect ratio, else takes the centred square. Detected framing (dlib) lives in
:mod:`genaug.faces.align`."""
from __future__ import annotations

FRAMINGS = ("auto", "full", "none", "detect")
# The CelebA aligned 178x218 frame and the face box the shipped model was trained on.
CELEBA_FRAMING = {"reference_size": [178, 218], "box": [35, 55, 143, 163]}


def face_box(height: int, width: int, framing_cfg: dict | None, framing: str = "auto") -> tuple[int, int, int, int]:
    """Face box (left, top, right, bottom) for an image of this size.

    ``auto``: the bundle's reference box scaled to the image when the aspect ratio matches the
    bundle's reference frame (e.g. CelebA 178x218), else the centred square. ``full``/``none``/
    ``detect`` (its fallback): the centred square of the whole image.
    """
    if framing not in FRAMINGS:
        raise ValueError(f"framing must be one of {FRAMINGS}, got {framing!r}")
    if framing == "auto" and is_known_frame(height, width, framing_cfg):
        rw, rh = framing_cfg["reference_size"]
        l, t, r, b = framing_cfg["box"]
        sx, sy = width / rw, height / rh
        return round(l * sx), round(t * sy), round(r * sx), round(b * sy)
    side = min(height, width)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def is_known_frame(height: int, width: int, framing_cfg: dict | None) -> bool:
    """True when the image has the aspect ratio of the bundle's reference frame (e.g. CelebA 178x218)."""
    if not (framing_cfg and framing_cfg.get("reference_size") and framing_cfg.get("box")):
        return False
    rw, rh = framing_cfg["reference_size"]
    return abs(width / height - rw / rh) < 0.01 * rw / rh
