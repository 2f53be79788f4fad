"""``repeats_another`` (a variant re-drawn for want of a face repeats another variant's edit): the same answers as its
definition (each other variant re-drawn on its own), in work linear in the variant count, not quadratic; and
``Engine.replace_unplaced_variant`` given the source's one pass (``unplaced_redraws``): the same edits and gate draws,
so ``genaug expand`` draws a no-face source's variants once, not ~n^2 / 2 times."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import genaug.engine.edits as edits_module
from genaug.engine import Engine
from genaug.engine.codes import control_of
from genaug.engine.edits import derive_seed, redraw_distinct, variant_edits
from genaug.engine.variants import repeats_another, unplaced_redraws
from genaug.faces.identity import faces_extra_available

pytestmark = pytest.mark.skipif(not faces_extra_available(),
                                reason="needs the faces extra (dlib) for auto framing's face search")
CODES = ["glasses", "bangs", "smile", "yaw", "light"]  # 3 latent moves: re-drawn controls soon repeat them


def _noise() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)  # no face, not a known frame


def _expand_noise(tmp_path, n: int, **kw) -> None:
    """``genaug expand`` of a folder holding the one no-face photo, ``n`` variants of it."""
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(_noise()).save(src / "noise.png")
    expand_to_hdf5(src, tmp_path / "x.h5", n, codes=CODES, size="source", device="cpu", progress=False, seed=0, **kw)


@pytest.fixture(scope="module")
def setup():
    e = Engine(device="cpu", codes=CODES)
    return e, e.frame([_noise()])[1][0]


def _seed_of(i: int):
    return lambda v: derive_seed(derive_seed(0, i), v + 1)  # as ``genaug expand`` seeds variant v of source i


def _definition(e, plan, frame, v, edit, seed_of) -> bool:
    """The answer as first written: every other variant re-drawn by itself (quadratic per variant)."""
    if not (frame.guessed and e.unplaced(plan[v], frame) and control_of(e.spec, edit.code) is None):
        return False
    return edit in [e.replace_unplaced_variant(plan, frame, j, torch.Generator().manual_seed(seed_of(j)), seed_of)
                    for j in range(len(plan)) if j != v]


def _case(e, frame, n: int, i: int = 0):
    plan, seed_of = variant_edits(e.spec, 0, i, n, e.codes, e.bounds), _seed_of(i)
    drawn = [e.replace_unplaced_variant(plan, frame, v, torch.Generator().manual_seed(seed_of(v)), seed_of)
             for v in range(n)]
    return plan, seed_of, drawn


def test_same_answers_as_the_definition_with_many_variants(setup):
    e, frame = setup
    assert frame.guessed
    plan, seed_of, drawn = _case(e, frame, 24)
    expected = [_definition(e, plan, frame, v, drawn[v], seed_of) for v in range(24)]
    assert [repeats_another(e, plan, frame, v, drawn[v], seed_of) for v in range(24)] == expected
    assert 0 < sum(expected) < 24  # (both answers occur)


def test_the_work_per_variant_grows_linearly_with_the_variant_count(setup, monkeypatch):
    # each call re-drew every other variant by itself, each re-draw re-drawing the variants before it: ~n^2 / 2
    # random draws per call (about 300 at n = 40), so ~n^3 for a source's variants
    e, frame = setup
    calls = []
    draw = edits_module.random_edits
    monkeypatch.setattr(edits_module, "random_edits", lambda *a, **k: calls.append(1) or draw(*a, **k))
    per_call = {}
    for n in (20, 40):
        plan, seed_of, drawn = _case(e, frame, n)
        v = max(j for j in range(n) if e.unplaced(plan[j], frame))
        calls.clear()
        repeats_another(e, plan, frame, v, drawn[v], seed_of)
        per_call[n] = len(calls)
        assert per_call[n] <= sum(e.unplaced(p, frame) for p in plan), (n, per_call[n])  # one draw per re-drawn variant
    assert per_call[40] <= 2.5 * per_call[20], per_call


def test_expand_counts_the_repeats_the_definition_finds(setup, tmp_path, capsys):
    e, frame = setup
    n = 12
    _expand_noise(tmp_path, n)
    plan, seed_of, drawn = _case(e, frame, n)
    expected = sum(_definition(e, plan, frame, v, drawn[v], seed_of) for v in range(n))
    found = re.search(r"(\d+) variant\(s\) repeat another variant of their source", capsys.readouterr().err)
    assert expected > 0 and found and int(found.group(1)) == expected, (expected, found)


def _replace_unplaced_variant_before(e, plan, frame, v, generator, seed_of, roomless=None):
    """``Engine.replace_unplaced_variant`` as it was: every variant before ``v`` re-drawn again on each call
    (``roomless``: the codes a control without room on the face is re-drawn among)."""
    redraw = [e.unplaced(p, frame) for p in plan]
    redraw[v] = redraw[v] or bool(roomless)
    codes = roomless or e._latent_codes()
    if not redraw[v] or not codes:
        return plan[v]
    gens = [generator if j == v else torch.Generator().manual_seed(seed_of(j)) for j in range(v + 1)]
    return redraw_distinct(e.spec, plan, redraw, gens, codes, e.bounds)[v]


def test_one_pass_per_source_draws_the_same_edits_and_leaves_the_same_gate_draws(setup):
    e, frame = setup
    n = 40
    plan, seed_of = variant_edits(e.spec, 0, 3, n, e.codes, e.bounds), _seed_of(3)
    redrawn = unplaced_redraws(e, plan, frame, seed_of)
    assert 10 < sum(e.unplaced(p, frame) for p in plan) < n  # many re-drawn variants among planned latent moves
    for v in range(n):
        for roomless in (None, e._latent_codes()):  # (roomless on a latent move: the re-draw path taken for v alone)
            gens = [torch.Generator().manual_seed(seed_of(v)) for _ in range(3)]
            before = _replace_unplaced_variant_before(e, plan, frame, v, gens[0], seed_of, roomless)
            assert e.replace_unplaced_variant(plan, frame, v, gens[1], seed_of, roomless=roomless) == before, (v, roomless)
            assert e.replace_unplaced_variant(plan, frame, v, gens[2], seed_of, roomless=roomless, redrawn=redrawn) == before
            after = [torch.rand(4, generator=g) for g in gens]  # a gate's re-draws continue from the same state
            assert torch.equal(after[0], after[1]) and torch.equal(after[0], after[2]), (v, roomless)


def test_expand_draws_each_no_face_variant_once_per_pass(setup, tmp_path, monkeypatch):
    # expand's planned() re-drew every earlier variant of the source for each row (and repeats_another once more per
    # source): ~n^2 / 2 random draws for a photo with no face; now one pass per source plus one draw per re-drawn row
    e, frame = setup
    n = 30
    plan = variant_edits(e.spec, 0, 0, n, e.codes, e.bounds)
    flagged = sum(e.unplaced(p, frame) for p in plan)
    calls = []
    draw = edits_module.random_edits
    monkeypatch.setattr(edits_module, "random_edits", lambda *a, **k: calls.append(1) or draw(*a, **k))
    _expand_noise(tmp_path, n, refine_steps=0, batch_size=8)  # (rows in several batches: the source's pass serves them all)
    assert flagged > 8 and len(calls) <= 2 * flagged, (flagged, len(calls))
