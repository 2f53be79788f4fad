"""Named latent edits (glasses, bangs, mouth, smile: recipes with a ``region``) change the part of the face they name,
at any framing: glasses on a small face in a large frame (detected, pasted back through the inverse warp) leave the
background above and beside the head alone, and a loosely framed photo taken whole by the framing rule (an Olivetti
frame) is framed by its detected face for such an edit, so the part is painted where the face has it
(:func:`genaug.engine.reframe.reframe`)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CELEBA64, CELEBA_ID200, OLIVETTI, demo_face, need, needs_dlib, noise_photo
from PIL import Image

from genaug.engine.core import Engine
from genaug.engine.edits import Edit
from genaug.faces.align import get_aligner

pytestmark = needs_dlib


@pytest.fixture(scope="module")
def engine():
    return Engine("default", device="cpu")


def face_of(photo: np.ndarray):
    """dlib's largest face of ``photo`` (uint8 HWC), found at 256 px or more: (box, 5 landmarks) in its pixels."""
    zoom = max(1, int(np.ceil(256 / min(photo.shape[:2]))))
    big = np.array(Image.fromarray(photo).resize((photo.shape[1] * zoom, photo.shape[0] * zoom), Image.BICUBIC))
    face = get_aligner(64).detect(torch.from_numpy(big).permute(2, 0, 1).float() / 255)[0]
    return np.array(face.box, float) / zoom, face.landmarks / zoom


def change(engine, photo: np.ndarray, code: str, value: int) -> np.ndarray:
    out, _ = engine.augment(photo, edits=[Edit(code, value)])
    return np.abs(out.astype(float) - photo.astype(float)).sum(-1)


def test_glasses_on_a_small_face_in_a_large_frame_stay_on_the_face(engine):
    photo = np.full((240, 320, 3), 128, np.uint8)
    photo[60:150, 40:130] = demo_face(90)
    (l, t, r, b), _ = face_of(photo)
    w = r - l  # the face: dlib's box, 10 % of its width wider at the sides and below, 30 % above (forehead hair)
    face = np.zeros(photo.shape[:2], bool)
    face[max(0, int(t - 0.3 * w)):int(np.ceil(b + 0.1 * w)), max(0, int(l - 0.1 * w)):int(np.ceil(r + 0.1 * w))] = True
    d = change(engine, photo, "glasses", 1)
    assert d[~face].sum() < 0.02 * d.sum()  # no region: 6.5 % (the aligned square's top: hair and the wall above it)


def olivetti(folder, name: str = "s05/03.png") -> np.ndarray:
    return np.asarray(Image.open(folder / name).convert("RGB"))


def test_a_loosely_framed_photo_is_framed_by_its_face_for_a_named_edit_only_where_the_rule_misplaces_it():
    from genaug.bundle.format import load_bundle
    from genaug.engine.reframe import reframe
    from genaug.engine.render import to_model_frame

    bundle = load_bundle("default")
    oli = olivetti(need(OLIVETTI))
    x, info = to_model_frame(oli, bundle)
    assert info.alignment is None  # model-sized: the rule takes it whole ...
    again = reframe(oli, bundle, info)
    assert again is not None and again[1].alignment is not None and again[0].shape == x.shape  # ... its face sits elsewhere
    celeba = np.asarray(Image.open(sorted(need(CELEBA_ID200).glob("*/*.jpg"))[0]).convert("RGB"))
    assert reframe(celeba, bundle, to_model_frame(celeba, bundle)[1]) is None  # CelebA's frame: the rule's box holds
    noise = noise_photo()
    assert reframe(noise, bundle, to_model_frame(noise, bundle)[1]) is None  # no face: as before


@pytest.mark.parametrize("name", ["s05/03.png", "s12/01.png", "s31/07.png"])
def test_named_edits_of_an_olivetti_frame_paint_the_part_they_name(engine, name):
    photo = olivetti(need(OLIVETTI), name)
    _, lm = face_of(photo)
    eyes, nose = lm[:4, 1].mean(), lm[4, 1]
    rows = np.arange(photo.shape[0]) + 0.5
    glasses = change(engine, photo, "glasses", 1).sum(1)
    assert glasses[rows > nose].sum() < 0.15 * glasses.sum()  # the rule's box: a third below the nose (on the cheeks)
    for code in ("mouth", "smile"):
        d = change(engine, photo, code, 1).sum(1)
        centre = float((d * rows).sum() / d.sum() - nose) / (nose - eyes)  # eye-to-nose distances below the nose point
        # where the regions sit on CelebA's faces: about 0.1 below the nose point; the rule's box put them on the chin
        # (0.6-1.15 below it)
        assert abs(centre) < 0.35, (code, centre)


@pytest.mark.parametrize("folder, name", [(CELEBA64, "images/000005.jpg"), (CELEBA64, "images/000061.jpg"),
                                          (CELEBA_ID200, "000/120241.jpg")])
def test_the_models_own_framing_is_not_reframed_for_a_face_of_another_size(folder, name):
    # a CelebA face 0.84 / 1.23 / 1.20 times the rule's size, centred within 0.04 of the box: read as misframed
    # (scale beyond 0.15), ~4 % of celeba_train_64 (the model's training framing) and of celeba_id200 were framed by
    # dlib for a named edit, unlike BatchFaceAug; Olivetti frames and 64 px crops are off by 0.18-0.31 of the box
    from genaug.bundle.format import load_bundle
    from genaug.engine.reframe import reframe
    from genaug.engine.render import to_model_frame

    bundle = load_bundle("default")
    photo = np.asarray(Image.open(need(folder) / name).convert("RGB"))
    assert reframe(photo, bundle, to_model_frame(photo, bundle)[1]) is None
