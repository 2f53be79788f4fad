"""``augment_faces(engine, photo, faces="each")`` with a colour edit (tone, shade, warmth): a camera-level change, so the
photo goes through one colour transform, as on the one-face path (``Engine.place``: ``recolour``). It pasted each
face's colour change through that face's square feathered mask: on a plain background, tinted boxes around the faces
(12,953 pixels of a grey 420 x 260 scene changed outside 3 faces' boxes, the rest kept)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.cli.demo import DEMO_FACES
from genaug.faces.identity import faces_extra_available

pytestmark = pytest.mark.skipif(not faces_extra_available(), reason='dlib extra not installed (pip install "genaug[faces]")')
GREY = 100


def _plain_scene() -> tuple[np.ndarray, np.ndarray]:
    """The demo face at 160 px and mirrored at 112 px on a plain grey 300 x 460 photo, and a bool (H, W) mask of the
    background at least 12 px from either face."""
    face = Image.open(DEMO_FACES[0]).convert("RGB")
    img = np.full((300, 460, 3), GREY, np.uint8)
    img[40:200, 30:190] = np.asarray(face.resize((160, 160), Image.LANCZOS))
    img[150:262, 300:412] = np.asarray(face.transpose(Image.FLIP_LEFT_RIGHT).resize((112, 112), Image.LANCZOS))
    background = np.ones(img.shape[:2], bool)
    background[28:212, 18:202] = background[138:274, 288:424] = False
    return img, background


@pytest.mark.parametrize("code", ["tone", "warmth"])
def test_each_faces_colour_edit_recolours_the_whole_photo_with_no_box(code):
    from genaug.align import augment_faces

    torch.set_num_threads(1)
    img, background = _plain_scene()
    out, n = augment_faces(genaug.Engine(device="cpu", refine_steps=0, seed=0, codes=[code]), img, "each",
                           torch.Generator().manual_seed(0))
    assert n == 2 and out.shape == img.shape and out.dtype == np.uint8
    colours = np.unique(out[background], axis=0)
    assert len(colours) == 1, f"the grey background came out in {len(colours)} colours (tinted boxes round the faces)"
    assert (colours[0].astype(int) != GREY).any()  # the background shifts with the faces, as one photo
    for t, b, l, r in ((40, 200, 30, 190), (150, 262, 300, 412)):
        assert (out[t:b, l:r] != img[t:b, l:r]).any(2).mean() > 0.5  # each face recoloured

