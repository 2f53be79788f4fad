"""``genaug augment`` re-draws a no-face photo's variants in one pass (``unplaced_redraws``, as the Dataset and
``genaug expand`` do): the same images and counts as each variant re-drawn on its own, in random draws linear in the
variant count, not quadratic."""
from __future__ import annotations

import numpy as np
import pytest

import genaug.engine.edits as edits_module
from genaug.cli.augment import augment_chunk
from genaug.engine import Engine
from genaug.faces.identity import faces_extra_available

pytestmark = pytest.mark.skipif(not faces_extra_available(),
                                reason="needs the faces extra (dlib) for auto framing's face search")
CODES = ["glasses", "bangs", "smile", "yaw", "light"]  # 3 latent moves: re-drawn controls soon repeat them


@pytest.fixture(scope="module")
def engine():
    return Engine(device="cpu", codes=CODES, refine_steps=0)


def _noise(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (160, 200, 3), dtype=np.uint8)  # no face, not a known frame


def test_one_pass_writes_the_same_variants_as_each_re_drawn_on_its_own(engine, monkeypatch):
    images, n = [_noise(0), _noise(1)], 24
    flagged = []
    got = augment_chunk(engine, images, [5, 9], n, 0, flagged)
    method = type(engine).replace_unplaced_variant  # each variant re-drawn by itself (its earlier variants again)
    monkeypatch.setattr(type(engine), "replace_unplaced_variant",
                        lambda self, *a, redrawn=None, **k: method(self, *a, **k))
    flagged_before = []
    before = augment_chunk(engine, images, [5, 9], n, 0, flagged_before)
    assert flagged == flagged_before
    assert all(np.array_equal(a, b) for a, b in zip(sum(got, []), sum(before, [])))
    assert sum(not np.array_equal(a, images[0]) for a in got[0]) > n // 4  # (re-drawn latent moves, applied)


def test_the_random_draws_grow_linearly_with_the_variant_count(engine, monkeypatch):
    # each variant re-drew every variant before it: ~n^2 / 2 draws for a photo with no face (about 800 at n = 40)
    calls = []
    draw = edits_module.random_edits
    monkeypatch.setattr(edits_module, "random_edits", lambda *a, **k: calls.append(1) or draw(*a, **k))
    frame = engine.frame([_noise()])[1][0]
    assert frame.guessed
    for n in (20, 40):
        plan = edits_module.variant_edits(engine.spec, 0, 7, n, engine.codes, engine.bounds)
        flagged = sum(engine.unplaced(p, frame) for p in plan)
        calls.clear()
        augment_chunk(engine, [_noise()], [7], n, 0)
        assert n // 4 < flagged and len(calls) <= 2 * flagged, (n, flagged, len(calls))
