"""A random turn scaled into a face's room never comes closer than ``min_step`` to 0 where a side reaches that far
(``ImageControl.fit``): a face at its 35-degree stop drew a turn of -0.02 degrees, a no-op recorded as a yaw edit
(``genaug expand --codes yaw,light,tone``, HDF5 ``codes`` yaw -0.023 on an ArcFace-style 112 px crop turned -37)."""
from dataclasses import replace

import pytest
import torch

from genaug.faces.controls import IMAGE_CONTROLS


def yaw_with_room(room: list[list[float]]):
    return replace(IMAGE_CONTROLS["yaw"], room=lambda x, landmarks, framing: torch.tensor(room))


@pytest.mark.parametrize("value, room, want", [
    (-2.5, [0.0, 18.3], 2.0),   # at the stop one way, a short way back: the least turn the other way (was -0.0)
    (-2.2, [5.0, 1.0], -2.0),   # a little room its own way: the least turn there (was -0.37)
    (2.1, [5.0, 1.0], -2.0),    # the other way (was +0.07)
    (-5.0, [0.0, 18.3], 3.04),  # far enough: scaled as before
    (3.0, [0.0, 0.0], 0.0),     # no room either way: nothing (reported unchanged, re-drawn)
    (0.6, [28.0, 30.0], 0.6),   # a strength of 0.25 brought a drawn 2.4 here: as scaled
    (-0.5, [0.0, 18.3], 0.0),   # ... and the face's room takes it to 0 (unchanged, re-drawn), as before
])
def test_a_drawn_turn_stays_min_step_from_zero(value, room, want):
    control = yaw_with_room([room])
    got = float(control.fit(torch.zeros(1, 3, 8, 8), [value], torch.zeros(1, 5, 2), drawn=(-30.0, 30.0))[0])
    assert got == pytest.approx(want, abs=0.01)
    assert got == 0.0 or abs(got) >= control.min_step - 1e-6 or abs(value) < control.min_step
