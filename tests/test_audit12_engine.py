"""A twelfth user audit: ``genaug.Engine`` used directly (augment, gates, random colour edits). Each test failed
before its fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from genaug.engine.codes import control_of
from genaug.engine.edits import Edit


@pytest.fixture(scope="module")
def engine():
    return genaug.Engine(device="cpu", refine_steps=0, seed=0)


def _noise_photos(n: int, seed: int = 0) -> list[np.ndarray]:
    """Photos with no face in them: ``framing="auto"`` looks for one, finds none and guesses the centre square."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (50, 60, 3), dtype=np.uint8) for _ in range(n)]


class _FirstTryFails:
    """A gate that rejects every row of its odd calls and passes every row of its even ones: each call's first try
    fails and its one re-draw passes."""

    def __init__(self):
        self.calls = 0

    def __call__(self, original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.full((len(original),), 0.0 if self.calls % 2 else 1.0)


def _gated(engine) -> genaug.Engine:
    return genaug.Engine(bundle=engine.bundle, device="cpu", refine_steps=0, seed=0, gate=_FirstTryFails(), gate_retries=1)


def test_a_gate_redraw_on_a_photo_without_a_face_is_no_turn_or_light(engine):
    # the first draw of a photo with no face found re-drew a yaw / light among the latent codes, but a gate's re-draw
    # did not: about 1 in 4 rejected rows came back "unchanged (no face found)" though the gate passed the re-draw
    e = _gated(engine)
    assert any(control_of(e.spec, c) is not None for c in genaug.engine.codes.default_codes(e.spec))
    photos = _noise_photos(12)
    _, frames = e.frame(photos, count=False)
    assert all(f.guessed for f in frames)
    _, info = e.augment(photos, generator=torch.Generator().manual_seed(1))
    assert e.stats["gated"] == 12 and e.stats["dropped"] == 0
    assert all(control_of(e.spec, ed.code) is None for ed in info.edits), info.descriptions
    assert info.kept.all() and not any(d.startswith("unchanged") for d in info.descriptions)


def test_a_dataset_gate_redraw_on_a_photo_without_a_face_is_no_turn_or_light(engine):
    # the Dataset (and expand, `genaug augment`) re-draw each rejected row from its own generator: same defect
    e = _gated(engine)
    ds = genaug.GenerativeAugDataset([(p, 0) for p in _noise_photos(6, seed=1)], variants=3, engine=e, progress=False,
                                     return_meta=True, seed=0)
    metas = [ds[i][-1] for i in range(len(ds))]
    assert e.stats["gated"] == len(ds) and e.stats["dropped"] == 0
    assert not any(m.description.startswith("unchanged") for m in metas), [m.description for m in metas]


def _face_photo(engine) -> np.ndarray:
    """One face photo (the generator's own face, so no data folder is needed), 8-bit RGB."""
    z = torch.randn(1, engine.spec.dim, generator=torch.Generator().manual_seed(3)) * 0.5
    face = engine.generate(z).clamp(-1, 1)[0]
    return ((face.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def _own_tone(engine, photo: np.ndarray) -> float:
    x, _ = engine.frame([photo], count=False)
    return float(engine.invert(x).latent[0, engine.spec.code_slice("tone").start])


def test_a_random_colour_edit_near_the_faces_own_value_still_recolours(engine):
    # a random tone / shade / warmth drawn within about 0.01 of the face's own code value (about 1 in 100 draws on real
    # faces) came back as the photo itself, "unchanged (the colour edit changed no pixel of this photo)": at p=1 a
    # photo was not edited
    photo = _face_photo(engine)
    own = _own_tone(engine, photo)
    drawn = [("tone", own + 0.001)]
    out, info = engine.augment([photo], edits=drawn, redraw_unplaced=True)  # drawn at random by the caller
    assert bool(info.kept[0]) and not info.descriptions[0].startswith("unchanged"), info.descriptions
    assert not np.array_equal(out[0], photo)
    applied = info.edits[0]
    assert engine.code_names[applied.code] == "tone" and applied.value == pytest.approx(own + 0.02, abs=1e-4)
    assert info.descriptions[0] == applied.describe(engine.spec)
    again, _ = engine.augment([photo], edits=drawn, redraw_unplaced=True)  # the drawn value replays to the same photo
    assert np.array_equal(again[0], out[0])
    recorded, info2 = engine.augment([photo], edits=[applied])  # so does the value recorded as applied
    assert np.array_equal(recorded[0], out[0]) and info2.edits[0] == applied
    named, info3 = engine.augment([photo], edits=drawn)  # a value the user names is applied as named
    assert info3.edits[0].value == pytest.approx(own + 0.001) and not bool(info3.kept[0])


def test_the_transform_replays_a_colour_edit_pushed_off_the_faces_own_value(engine):
    # the transform's params record the drawn value: replaying them gives the same, edited photo, and last_info the
    # value applied
    aug = genaug.GenerativeFaceAug(device="cpu", refine_steps=0, codes=["tone"], p=1.0)
    photo = _face_photo(engine)
    own = _own_tone(aug.engine, photo)
    tone = aug.engine.spec.code_index("tone")
    params = dict(edits=[Edit(tone, own - 0.001)], strengths=[1.0], gate_seed=0)
    first = aug.apply(photo, **params)
    applied = aug.last_info.edits[0]
    assert not np.array_equal(first, photo) and applied.value == pytest.approx(own - 0.02, abs=1e-4)
    assert np.array_equal(aug.apply(photo, **params), first)


def test_a_gate_redraw_beside_keypoints_is_never_a_turn(engine):
    # beside keypoints the transform leaves yaw out of its draw; a gate's re-draw drew among every code again, so
    # the head turned while the keypoints came back unmoved
    import os

    import albumentations as A
    from PIL import Image

    from genaug.demo import DEMO_FACES

    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((178, 218)))
    aug = genaug.GenerativeFaceAug(p=1.0, device="cpu", gate_threshold=0.5)
    aug._lazy._engine, aug._lazy._pid = _gated(engine), os.getpid()  # each call's first try rejected, re-drawn once
    pipe = A.Compose([aug], keypoint_params=A.KeypointParams(format="xy"), seed=0)
    names = engine.code_names
    applied = []
    for _ in range(16):
        pipe(image=face, keypoints=[(80.0, 100.0)])
        applied += [names[e.code] for e in aug.last_info.edits]
    assert len(applied) == 16 and "yaw" not in applied
