"""A tenth user audit (2026-12-05), the albumentations transform as a pipeline with a seed uses it (each test failed
before its fix)."""
from __future__ import annotations

import albumentations as A
import pytest

import genaug


def _decisions(seed: int, n: int = 64) -> tuple[list[bool], list[bool]]:
    flip, aug = A.HorizontalFlip(p=0.5), genaug.GenerativeFaceAug(p=0.5)  # (the model is not loaded to decide p)
    A.Compose([flip, aug], seed=seed)
    return [flip.should_apply() for _ in range(n)], [aug.should_apply() for _ in range(n)]


def test_a_compose_seed_does_not_tie_the_edits_to_the_other_transforms_draws():
    # A.Compose(seed=) seeds every transform with the same number, so GenerativeFaceAug(p=0.5) applied exactly when
    # HorizontalFlip(p=0.5) before it flipped (64 of 64 decisions equal): half the flips edited, no unflipped photo ever
    flips, edits = _decisions(0)
    assert sum(f == e for f, e in zip(flips, edits)) < 48
    assert 16 < sum(edits) < 48
    assert _decisions(0) == (flips, edits) and _decisions(1)[1] != edits  # still reproduced by the seed, and by it alone


def test_a_turn_the_face_has_no_room_for_is_reported_unchanged_not_applied():
    # with bounds={"yaw": (-30, -20)} a face already turned past the 35-degree stop that way (utkface_128 00076,
    # estimated -42 degrees, its face found) was fitted to no turn: the photo came back as it was, but the transform and the Dataset
    # reported "yaw=-0.0" applied (kept True)
    import numpy as np
    from PIL import Image

    from conftest import UTKFACE, need
    from genaug.faces.identity import faces_extra_available

    if not faces_extra_available():
        pytest.skip("needs the faces extra (dlib) to find the turned face's landmarks")
    face = np.asarray(Image.open(need(UTKFACE) / "images" / "00076.jpg").convert("RGB"))
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], bounds={"yaw": (-30.0, -20.0)}, device="cpu")
    out = A.Compose([aug], seed=0)(image=face)["image"]
    info = aug.last_info
    assert np.array_equal(out, face)
    assert not bool(info.kept[0]) and info.descriptions[0].startswith("unchanged"), info.descriptions
    ds = genaug.GenerativeAugDataset([(face, 0)], variants=2, codes=["yaw"], bounds={"yaw": (-30.0, -20.0)}, device="cpu",
                                     return_meta=True)
    metas = [ds[i][-1] for i in range(len(ds))]
    assert all(m.code == -1 and m.description.startswith("unchanged") for m in metas if not m.original), metas
