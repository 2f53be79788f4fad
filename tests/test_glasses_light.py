"""Drawn frames lit as the face is (genaug.faces.glasses.scene_light): on a dim photo silver frames were drawn at 0.62
(glowing on skin at 0.2), under a strongly coloured light they stayed grey; a face in normal light keeps them as drawn."""
from __future__ import annotations

import pytest
import torch

import genaug.faces.glasses as glasses
from genaug.faces.glasses import COLOURS, GlassesStyle, add_glasses
from genaug.faces.landmarks import default_landmarks

torch.set_num_threads(1)
SILVER = 4


@pytest.fixture
def silver(monkeypatch):
    """Every face gets the same pair: thick silver rims (a core drawn whole), clear lenses, no shadow (only the rims
    change pixels)."""
    def style_for(images, landmarks):
        n = len(images)
        one = lambda v: torch.full((n,), v)  # noqa: E731
        return GlassesStyle(one(0.4), one(0.25), one(3.0), one(0.06), one(0.1), torch.tensor(COLOURS[SILVER]).expand(n, 3), one(0.0))
    monkeypatch.setattr(glasses, "style_for", style_for)
    monkeypatch.setattr(glasses, "SHADOW", 0.0)


def _face(rgb, size=128):
    """A flat face of the colour ``rgb`` ([0, 1]) as a [-1, 1] batch of one."""
    return (torch.tensor(rgb).view(1, 3, 1, 1) * 2 - 1).expand(1, 3, size, size).clone()


def _rim(photo):
    """The rim's colour in [0, 1]: the drawn pixel farthest from the photo's flat colour (a rim's core, drawn whole)."""
    out = add_glasses(photo, 1.0, landmarks=default_landmarks(128, 128, 1, "model_frame"))
    d = (out - photo).abs().sum(1)[0]
    y, x = divmod(int(d.argmax()), d.shape[1])
    return (out[0, :, y, x] + 1) / 2


def test_a_face_in_normal_light_keeps_the_frames_colour(silver):
    assert torch.allclose(_rim(_face((0.8, 0.6, 0.5))), torch.tensor(COLOURS[SILVER]), atol=1e-6)


def test_frames_on_a_dim_photo_are_dimmed_with_it(silver):
    skin = torch.tensor((0.8, 0.6, 0.5))
    normal, dim = _rim(_face(skin.tolist())), _rim(_face((skin * 0.3).tolist()))
    ratio = dim / normal
    assert float(ratio.max()) < 0.5, ratio  # was 1: silver at 0.62 on skin at 0.24
    assert float(ratio.min()) > 0.2 and float(ratio.max() - ratio.min()) < 1e-4  # an exposure: no tint
    assert float(dim.max()) < 0.3


def test_frames_under_a_coloured_light_take_its_colour(silver):
    red = _rim(_face((0.9, 0.3, 0.15)))  # skin under a red light: its chromaticity beyond every skin's
    assert float(red[0]) > float(red[1]) + 0.1 > float(red[2]) + 0.1, red  # was (0.62, 0.62, 0.64): grey
    blue = _rim(_face((0.25, 0.35, 0.7)))
    assert float(blue[2]) > float(blue[0]) + 0.1, blue
