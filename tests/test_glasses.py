"""Eyeglasses drawn by the ``eyeglasses`` image-space control (genaug.faces.glasses): where the frames
go, what they change, and the control through the transform and its serialisation."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from genaug.faces.glasses import add_glasses
from genaug.faces.landmarks import default_landmarks
from genaug.transforms import GenerativeFaceAug


def _grey(n=2, size=128, colour=(0.6, -0.2, 0.1)):
    """A flat skin-like colour: every frame colour (black to silver and gold) differs from it."""
    return torch.tensor(colour).view(1, 3, 1, 1).expand(n, 3, size, size).clone()


def test_frames_sit_on_the_eye_line_and_leave_the_rest():
    x = _grey()
    lm = default_landmarks(128, 128, 2, "model_frame")
    out = add_glasses(x, 1.0, landmarks=lm)
    changed = (out - x).abs().amax(1) > 0.02  # (N, H, W)
    eyes_y = lm[0, :4, 1].mean().item()
    eye_dist = (lm[0, 0:2].mean(0) - lm[0, 2:4].mean(0)).norm().item()
    ys, xs = torch.nonzero(changed[0], as_tuple=True)
    assert len(ys) > 200  # rims, bridge, temples
    assert (ys.float() - eyes_y).abs().max() < 0.5 * eye_dist  # nothing far above or below the eyes
    assert changed[0, : int(eyes_y - 0.5 * eye_dist)].sum() == 0 and changed[0, int(eyes_y + 0.5 * eye_dist) + 1 :].sum() == 0
    assert (out - x).abs().amax() > 0.25  # frames in a colour of their own...
    cx, cy = lm[0, 0:2].mean(0).round().long().tolist()
    ratio = ((out[0, :, cy, cx] + 1) / (x[0, :, cy, cx] + 1))
    assert ratio.max() <= 1 and ratio.max() - ratio.min() < 1e-5  # ...and lenses that dim, never paint


def test_strength_is_opacity_and_zero_is_the_input():
    x = _grey(1)
    lm = default_landmarks(128, 128, 1, "model_frame")
    assert torch.equal(add_glasses(x, 0.0, landmarks=lm), x)
    half, full = (add_glasses(x, s, landmarks=lm) for s in (0.5, 1.0))
    dh, df = (x - half).clamp(min=0).sum(), (x - full).clamp(min=0).sum()
    assert 0.4 < (dh / df).item() < 0.6


def _span(changed: torch.Tensor, dim: int) -> int:
    idx = torch.nonzero(changed.any(dim)).flatten()
    return int(idx.max() - idx.min() + 1)


def test_follows_the_landmarks_and_a_turned_face_foreshortens_them():
    x = _grey(3, size=192)
    lm = default_landmarks(128, 128, 3, "model_frame").clone() + 32  # a 128 px face in the middle of 192
    lm[1, :, 0] += 12  # the second face 12 px to the right
    centre = lm[2, :4].mean(0)
    lm[2, :4, 0] = centre[0] + (lm[2, :4, 0] - centre[0]) * 0.8  # the third turned: eyes closer in the image...
    lm[2, 4, 0] += 8  # ...and the nose off the eye midpoint
    out = add_glasses(x, 1.0, landmarks=lm)
    changed = (out - x).abs().amax(1) > 0.02
    cols = [torch.nonzero(changed[i].any(0)).flatten().float().mean() for i in range(2)]
    assert abs((cols[1] - cols[0]).item() - 12) < 1.0
    assert _span(changed[2], 0) < 0.9 * _span(changed[0], 0)  # narrower...
    assert _span(changed[2], 1) > 0.9 * _span(changed[0], 1)  # ...not lower


def test_bad_strength_is_refused():
    with pytest.raises(ValueError, match="glasses strength"):
        add_glasses(_grey(1), 1.5)


def test_the_control_in_the_transform_round_trips_and_draws_frames():
    from pathlib import Path

    from PIL import Image

    import genaug

    aug = GenerativeFaceAug(p=1.0, codes=["drawn_glasses"], device="cpu")
    again = A.from_dict(A.to_dict(aug))
    assert again.codes == ["drawn_glasses"]
    photo = np.asarray(Image.open(Path(genaug.__file__).parent / "assets" / "astronaut_face.jpg").convert("RGB"))
    out = aug(image=photo)["image"]
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert ((out.astype(int) - photo).sum(2) < -150).sum() > 30  # dark frames drawn on the face


def test_frames_are_as_sharp_as_the_photo():
    from genaug.faces.glasses import photo_blur
    from genaug.faces.shape import blur_each
    from genaug.faces.pose import fit_pose

    g = torch.Generator().manual_seed(0)
    sharp = (torch.rand(1, 3, 128, 128, generator=g) * 0.6 - 0.3)
    soft = blur_each(sharp, [3.0])
    lm = default_landmarks(128, 128, 1, "model_frame")
    pose = fit_pose(lm)
    u, v = pose.frame.pixel_grid(128, 128)
    assert photo_blur(sharp, u, v).item() < 1.0 < 1.2 < photo_blur(soft, u, v).item()

    def edge(x):  # the steepest step of the drawn change
        d = (add_glasses(x, 1.0, landmarks=lm) - x).mean(1)
        return (d[:, :, 1:] - d[:, :, :-1]).abs().amax().item()

    assert edge(soft) < 0.6 * edge(sharp)


def test_the_drawn_control_and_the_models_glasses_have_distinct_names():
    from genaug.bundle.format import load_bundle
    from genaug.engine.edits import code_index
    from genaug.faces.controls import CONTROL_NAMES

    spec = load_bundle("default").spec
    assert code_index(spec, "drawn_glasses") == len(spec.codes) + CONTROL_NAMES.index("drawn_glasses")
    assert code_index(spec, "glasses") == code_index(spec, "Eyeglasses") == 0  # the latent code (and its attribute)
