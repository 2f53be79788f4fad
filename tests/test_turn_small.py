"""A small turn of a turned face changes little: the mirrored face fills in only from turns of a few degrees on
(:func:`genaug.faces.pose.mirror_share`)."""
from __future__ import annotations

import pytest
import torch

from genaug.faces.pose import rotate_yaw
from test_pose_light import project

torch.set_num_threads(1)


@pytest.mark.parametrize("yaw, turn", [(30.0, 1.0), (-30.0, -1.0), (20.0, 1.5)])
def test_a_small_outward_turn_does_not_paint_the_mirror_on_the_far_cheek(yaw, turn):
    # the far cheek of a turned face is seen grazing and its mirror squarely: it was filled with the mirror (up to 0.8)
    # on any outward turn, however small: a 1-degree turn repainted the cheek beside the nose (utkface_128 04749 at 34
    # degrees, hard-set audit); now the mirror's share grows with the turn, none at 1 degree, full from 10
    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128) * 2 - 1  # a texture whose mirror differs everywhere
    lm = project(yaw, scale=40.0, centre=(64.0, 50.0))
    with_mirror, without = rotate_yaw(x, turn, lm, keep_eyes=False), rotate_yaw(x, turn, lm, keep_eyes=False, symmetry=0.0)
    assert float((with_mirror - without).abs().amax(1).gt(0.05).float().mean()) < 0.002


def test_a_turn_across_frontal_still_fills_the_far_cheek_with_the_mirror():
    # from 15 degrees to -25 the far cheek turns into view: there the mirror still fills (the face's symmetry), as before
    torch.manual_seed(0)
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    lm = project(15.0, scale=40.0, centre=(64.0, 50.0))
    with_mirror, without = rotate_yaw(x, -40.0, lm, keep_eyes=False), rotate_yaw(x, -40.0, lm, keep_eyes=False, symmetry=0.0)
    assert float((with_mirror - without).abs().amax(1).gt(0.05).float().mean()) > 0.02
