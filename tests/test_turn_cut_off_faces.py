"""A face beside the turned one keeps the photo in place only where it is seen: landmarks of a face cut off by the
photo's edge that lie outside the photo (or NaN: not placed) are no visible face to move."""
from __future__ import annotations

import torch

from genaug.faces.pose import moves_others

FACE = torch.tensor([[40.0, 30.0], [30.0, 30.0], [60.0, 30.0], [70.0, 30.0], [50.0, 60.0]])  # 5 points, dlib order


def test_a_face_with_every_point_outside_the_photo_does_not_hold_it_in_place():
    # its points were clamped onto the photo's edge, where the move is whole: such a face counted as moved, so a turned
    # face beside a cut-off one (its landmarks found past the left edge) was turned without moving the photo
    offset = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 2.0]])
    outside = [FACE - torch.tensor([80.0, 0.0]), FACE + torch.tensor([0.0, 150.0]), torch.full((5, 2), float("nan"))]
    for face in outside:
        assert not moves_others(offset, 100, 120, face[None]).any(), face
    assert moves_others(offset, 100, 120, FACE[None]).all()  # a face inside still holds it in place
    partly = torch.cat([FACE[:2] - torch.tensor([45.0, 0.0]), FACE[2:]])[None]  # its eyes cut off, the rest seen
    assert moves_others(offset, 100, 120, partly).all()
    assert moves_others(offset, 100, 120, torch.stack([outside[0], FACE])).all()
