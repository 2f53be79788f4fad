"""A turn's photo move (keep_eyes) eases to 0 in a band EDGE_BAND times the move wide along the edge it leaves empty;
on a tight crop (utkface_128: the face fills the photo) that band spanned half the photo and stretched the face on
that side, so the turned face's landmarks read 0.84 of the turn (0.99 unmoved). The move is now shortened so the
band stays off the face: the face is the unmoved render moved by whole pixels."""
import pytest
import torch

from conftest import UTKFACE, need, needs_dlib, utk_photo
from genaug.faces.landmarks import face_landmarks
from genaug.faces.pose import rotate_yaw

pytestmark = [pytest.mark.data, needs_dlib]


@pytest.mark.parametrize("number, deg", [(174, -30.0), (638, -30.0), (3944, 30.0), (4872, 30.0)])
def test_the_photos_move_leaves_a_tight_crops_face_unstretched(number, deg):
    x = torch.from_numpy(utk_photo(need(UTKFACE), number).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    lm = face_landmarks(x)
    moved, still = rotate_yaw(x, deg, lm), rotate_yaw(x, deg, lm, keep_eyes=False)
    eyes = (lm[0, 0] - lm[0, 2]).norm()
    lo, hi = (lm[0].amin(0) - 0.6 * eyes).round().long().clamp(12, 115), (lm[0].amax(0) + 0.6 * eyes).round().long().clamp(12, 115)
    face = (slice(None), slice(None), slice(int(lo[1]), int(hi[1])), slice(int(lo[0]), int(hi[0])))

    def shifted(dx):  # the unmoved render's face, moved by dx whole pixels
        at = (slice(None), slice(None), face[2], slice(face[3].start + dx, face[3].stop + dx))
        return still[at]

    # (within a level: the move beside the nose is blurred over the whole photo, whose border reflects)
    assert any(torch.allclose(moved[face], shifted(dx), atol=2 / 255) for dx in range(-12, 13)), number
