"""``repeats_another`` (a variant re-drawn for want of a face repeats another variant's edit): the same answers as its
definition (each other variant re-drawn on its own), in work linear in the variant count, not quadratic."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import genaug.engine.edits as edits_module
from genaug.dataset import repeats_another
from genaug.engine import Engine
from genaug.engine.codes import control_of
from genaug.engine.edits import derive_seed, variant_edits
from genaug.faces.identity import faces_extra_available

pytestmark = pytest.mark.skipif(not faces_extra_available(),
                                reason="needs the faces extra (dlib) for auto framing's face search")
CODES = ["glasses", "bangs", "smile", "yaw", "light"]  # 3 latent moves: re-drawn controls soon repeat them


def _noise() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (160, 200, 3), dtype=np.uint8)  # no face, not a known frame


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
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    e, frame = setup
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(_noise()).save(src / "noise.png")
    n = 12
    expand_to_hdf5(src, tmp_path / "x.h5", n, codes=CODES, size="source", device="cpu", progress=False, seed=0)
    plan, seed_of, drawn = _case(e, frame, n)
    expected = sum(_definition(e, plan, frame, v, drawn[v], seed_of) for v in range(n))
    found = re.search(r"(\d+) variant\(s\) repeat another variant of their source", capsys.readouterr().err)
    assert expected > 0 and found and int(found.group(1)) == expected, (expected, found)
