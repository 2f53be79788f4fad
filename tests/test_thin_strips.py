"""A photo far longer than wide (a 16 x 2000 strip) is not upsampled past :data:`~genaug.faces.landmarks.ZOOM_PIXELS`
for the detector (it was zoomed to a 256 px short side: 256 x 32000, 8 MP, searched twice at full size, 5-10 s for a
16 x 4000 one with a control under ``framing="full"``; r37 audit a19 / a20), and a picture no detector window fits is
not searched (:data:`~genaug.faces.align.NO_WINDOW`: a strip's quarter turns at 512 px, each a copy of the photo);
the landmarks come out as before."""
from __future__ import annotations

import numpy as np
import torch

import genaug.faces.identity as identity
from conftest import needs_dlib
from genaug.faces import align
from genaug.faces.landmarks import ZOOM_PIXELS, box_landmarks, detect_landmarks, refine_landmarks
from genaug.faces.views import views

torch.set_num_threads(1)


class Spy:
    """dlib's detector, recording the size of each picture it searches."""

    def __init__(self, detector):
        self.detector, self.sizes = detector, []

    def run(self, image, upsample, threshold):
        self.sizes.append((image.shape[0] << upsample, image.shape[1] << upsample))
        return self.detector.run(image, upsample, threshold)


@needs_dlib
def test_a_thin_strip_is_searched_at_a_bounded_size_with_the_same_landmarks(monkeypatch):
    spy = Spy(identity.dlib_detector())
    monkeypatch.setattr(identity, "dlib_detector", lambda: spy)
    strip = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (1, 3, 16, 2000))).float() / 127.5 - 1
    rule = box_landmarks((992, 0, 1008, 16))
    lm = detect_landmarks(strip, fallback=rule)
    assert spy.sizes and max(h * w for h, w in spy.sizes) <= ZOOM_PIXELS, spy.sizes  # before: 256 x 32000
    assert all(min(s) >= align.NO_WINDOW for s in spy.sizes), spy.sizes  # no windowless picture searched
    torch.testing.assert_close(lm, refine_landmarks(strip, rule))  # no face: the rule refined, as before


@needs_dlib
def test_no_picture_without_a_detector_window_is_searched():
    class Never:
        def run(self, *a):
            raise AssertionError(f"searched a picture of {a[0].shape}")

    for h, w, up in ((19, 4000, 0), (9, 300, 1), (4000, 19, 0)):
        assert align.find_faces(Never(), np.zeros((h, w, 3), np.uint8), up) == []
    got = [v.shape[:2] for v, _ in views(np.zeros((40, 4000, 3), np.uint8), align.NO_WINDOW)]
    assert (4000, 40) not in got and (40, 4000) in got and len(got) == 4  # upright, padded, rolled twice
    assert len(list(views(np.zeros((40, 400, 3), np.uint8), align.NO_WINDOW))) == 7  # turned at 512: 40 px, searched
