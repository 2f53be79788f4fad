"""A photo the framing rule frames wrongly for an edit that draws on the face (:func:`reframe`): an Olivetti frame or
a tight crop taken whole puts the model's glasses on the cheeks and its mouth on the chin; framed by the detected face
instead (used by :meth:`genaug.engine.Engine.frame_part`, so by every front end)."""
from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import torch
from torch import Tensor

from ..distenv import say_once
from ..images import FrameInfo, match_channels, to_chw01


MISFRAMED = 0.15  # a face whose centre lies more than this share of the box's side from the rule's (Olivetti frames,
# tight crops: 0.18-0.31), or whose scale differs from the rule's by more than MISSCALED, is misplaced by the rule's box
MISSCALED = 0.4  # (the model's own CelebA framing: scales 0.85-1.34 and centres within 0.07 for 99 % of faces)


def reframe(image: Any, bundle: Any, info: FrameInfo, names: Any = ()) -> tuple[Tensor, FrameInfo] | None:
    """A photo framed by the framing rule (a known frame's box, a model-sized photo taken whole) whose face, found by
    dlib (the ``faces`` extra), lies elsewhere in it than the rule's box puts the model's face (:data:`MISFRAMED`,
    :data:`MISSCALED`): ``(x, FrameInfo)`` framed by that face, as ``framing="detect"`` frames it; None where the rule's
    box holds, no face is found, the photo was framed by a detected face or by a guess, or without the extra (said
    once: :func:`warn_rule_frames`, for the edits' code ``names``). A named regional edit (``EditRecipe.region``) in
    the rule's box of such a photo paints its part where the model's face would be."""
    from ..faces.identity import faces_extra_available

    if info.alignment is not None or info.no_face or info.guessed:
        return None
    if not faces_extra_available():
        warn_rule_frames(bundle, info, names)
        return None
    from ..faces.align import CANONICAL_LANDMARKS, get_aligner

    t = to_chw01(image)[0]
    aligner = get_aligner(bundle.image_size)
    faces = aligner.detect(t[: info.channels])
    if not faces:
        return None
    al = aligner.alignment(faces[0], tuple(t.shape[-2:]))
    l, top, r, _ = info.box
    size, side = bundle.image_size, r - l
    scale = math.sqrt(abs(float(al.matrix[0, 0] * al.matrix[1, 1] - al.matrix[0, 1] * al.matrix[1, 0]))) * side / size
    centre = CANONICAL_LANDMARKS.mean(0) * size  # the model's face centre, back in the photo by either frame
    inv = torch.linalg.inv(torch.tensor(al.matrix[:, :2]))
    found = inv @ (torch.tensor(centre, dtype=torch.float64) - torch.tensor(al.matrix[:, 2]))
    rule = torch.tensor([l, top], dtype=torch.float64) + torch.tensor(centre, dtype=torch.float64) * side / size
    if abs(scale - 1) <= MISSCALED and float((found - rule).norm()) <= MISFRAMED * side:
        return None
    colour = t[: info.channels]
    x = match_channels(aligner.crop(colour, al), bundle.channels) * 2 - 1
    return x.contiguous(), dataclasses.replace(info, box=tuple(int(v) for v in al.face.box), model_in=x, alignment=al)


def warn_rule_frames(bundle: Any, info: FrameInfo, names: Any) -> None:
    """Say once (:func:`genaug.distenv.say_once`: once per process, not again in DataLoader workers) that without the
    ``faces`` extra, edits of ``names`` that draw on the face (named latent edits framed by :func:`reframe`,
    image-space controls placed by :func:`genaug.engine.render.apply_control`) are placed where the framing rule's box
    puts the face, which misplaces them on photos framed unlike the bundle's reference frame. Not for the one photo
    the rule's box is right on: the reference frame's box in a photo of that frame's own size (CelebA's aligned
    178x218 crops); a model-sized photo taken whole may be any crop."""
    if own_frame(bundle, info) or not say_once("rule_frames"):
        return
    warnings.warn(f"the faces extra (dlib) is not installed, so edits that draw on the face ({', '.join(names)}) "
                  "are placed where the framing rule's box puts the face (CelebA's box in its frame, a "
                  "model-sized photo whole, else the centre square), not where the face is: on photos framed unlike "
                  "CelebA's aligned crops (Olivetti frames, tight crops, photos in the wild) named edits land off the "
                  "face (glasses on the cheeks, a mouth on the chin) and a rendered turn or light is centred on the "
                  'lower face. pip install "genaug[faces]" to place them on the detected face', stacklevel=2)


def own_frame(bundle: Any, info: FrameInfo) -> bool:
    """Whether a photo is framed by the bundle's reference frame's box at that frame's own size (CelebA's aligned
    178x218 crops): the one photo the rule's box is right on without looking for the face."""
    cfg = getattr(bundle, "framing", None) or {}
    h, w = info.shape[-2:] if info.layout == "CHW" else info.shape[:2]
    return cfg.get("reference_size") is not None and [w, h] == list(cfg["reference_size"]) and list(info.box) == list(cfg.get("box", ()))
