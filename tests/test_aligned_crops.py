"""benchmarks/aligned.py: face-recognition training crops (ArcFace 112x112, SphereFace 112x96, FaceNet 160) made from
genaug's dlib 5 points, and the realism benchmark's aligned sets."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import UTKFACE, need, needs_dlib
from test_benchmarks import load_script


def _dlib_points(left_eye, right_eye, d=40.0) -> np.ndarray:
    """dlib's 5-point order (image-right eye outer, inner corner, image-left eye outer, inner corner, nose base)."""
    (lx, ly), (rx, ry) = left_eye, right_eye
    return np.array([[rx + 0.2 * d, ry], [rx - 0.2 * d, ry], [lx - 0.2 * d, ly], [lx + 0.2 * d, ly],
                     [(lx + rx) / 2, (ly + ry) / 2 + 0.77 * d]], np.float64)


@pytest.mark.parametrize("template, shape", [("arcface112", (112, 112)), ("sphereface112x96", (112, 96)),
                                             ("facenet160", (160, 160))])
def test_crops_put_the_eye_centres_on_the_template(template, shape):
    aligned = load_script("aligned")
    photo = np.full((200, 180, 3), 128, np.uint8)
    lm = _dlib_points((70.0, 95.0), (112.0, 91.0), d=42.0)  # a rolled face
    crops, mats, found = aligned.aligned_crops([photo], template, landmarks=lm[None])
    assert crops[0].shape == (*shape, 3) and found.all()
    eyes = aligned.eye_centres(lm[None])[0] @ mats[0][:, :2].T + mats[0][:, 2]
    want = aligned.TEMPLATES[template][1]
    if want is not None:  # the eye centres (the corners' means) land on insightface's template
        assert np.allclose(eyes, want, atol=1e-6)
    else:  # a loose crop: centred, level as the photo, the eyes a third of the width apart or less
        assert abs(eyes.mean(0)[0] - shape[1] / 2) < 1 and np.linalg.norm(eyes[1] - eyes[0]) < shape[1] / 3
    with pytest.raises(ValueError, match="template"):
        aligned.crop_matrix(lm, "arcface128")


@needs_dlib
def test_the_realism_arcface_set_holds_aligned_utkface_crops():
    need(UTKFACE / "images")
    realism, aligned = load_script("realism"), load_script("aligned")
    fs = realism.load_set("utkface_arcface112", 6)
    assert fs.size == 112 and 5 <= len(fs.photos) <= 6 and all(p.shape == (112, 112, 3) for p in fs.photos)
    lm, found = aligned.detect(fs.photos)  # found again on the crops, the eyes where the template puts them
    err = np.linalg.norm(aligned.eye_centres(lm) - aligned.ARCFACE_112[None, :2], axis=2)
    assert found.all() and np.median(err) < 1.5
