"""A weak face dlib finds in the upright photo (score under :data:`genaug.faces.align.WEAK`) no longer ends the search:
on a photo cut by its edge a false face at 0.15 hid the real one its padded view finds at 0.93 (nineteenth audit), and
on photos turned 60-135 degrees false faces at 0.01-0.16 hid faces read at 0.5-1.9 sideways or upside down. A weak
upright face that is the real one keeps its points against a misread weaker than WEAK."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import UTKFACE, need
from test_rolled_landmarks import controls_points, errors, turn_points, turned, utk

from genaug.faces import align
from genaug.faces.identity import faces_extra_available

pytestmark = [pytest.mark.data,  # every test reads real photos (need() skips it without them)
              pytest.mark.skipif(not faces_extra_available(), reason='needs the faces extra (pip install "genaug[faces]")')]


def aligner_points(photo: np.ndarray) -> np.ndarray:
    return align.FaceAligner(64).detect(torch.from_numpy(photo).permute(2, 0, 1).float() / 255)[0].landmarks


def test_a_weak_false_face_does_not_hide_the_real_face_of_a_photo_cut_by_its_edge():
    need(UTKFACE)
    photo = np.array(utk(5))
    truth = aligner_points(photo) - np.array([38.0, 0.0])
    assert errors(aligner_points(np.ascontiguousarray(photo[:, 38:])), truth).max() < 0.35  # was 1.2: eyes on the nose


@pytest.mark.parametrize("index, degrees", [(2900, 60), (58, 60), (4901, 135)])
def test_a_weak_false_face_does_not_hide_the_face_of_a_turned_photo(index, degrees):
    need(UTKFACE)
    photo = utk(index)
    out = turned(photo, degrees)
    truth = turn_points(controls_points(photo), degrees, photo.size, out.size)
    assert errors(controls_points(out), truth).max() < 0.15


@pytest.mark.parametrize("index, degrees", [(580, 15), (522, 30)])
def test_a_weak_upright_face_keeps_its_points_against_a_misread_under_weak(index, degrees):
    """Faces rolled 15-30 degrees found upright at 0.08 / 0.28 and misread at 0.45 / 0.31 in other views."""
    need(UTKFACE)
    photo = utk(index)
    out = turned(photo, degrees)
    truth = turn_points(controls_points(photo), degrees, photo.size, out.size)
    assert errors(controls_points(out), truth).max() < 0.15
