"""Without the ``faces`` extra (dlib), a named edit that draws on the face (glasses, mouth, ...) is drawn in the framing
rule's box, which misplaces it on an Olivetti frame or a tight crop: said once, naming the extra, by every front end;
never for the colour codes (they never need the detector), nor in CelebA's own frame (the rendered controls give the
same warning: tests/test_controls_without_faces_extra.py)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from genaug import GenerativeAugDataset
from genaug.engine import reframe as reframe_module
from genaug.engine.core import Engine
from genaug.faces import identity


@pytest.fixture(autouse=True)
def without_extra(monkeypatch):
    monkeypatch.setattr(identity, "faces_extra_available", lambda: False)
    monkeypatch.setattr(reframe_module, "_warned", False, raising=False)  # (once per process: anew per test)


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _said(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if "faces extra" in str(w.message)]


def test_a_named_edit_says_once_that_it_is_drawn_in_the_rules_box():
    e = Engine(device="cpu", codes=["glasses", "mouth"], refine_steps=0)
    said = _said(lambda: [e.augment(_photo(h, w, s)) for s, (h, w) in enumerate([(64, 64), (112, 92), (64, 64)])])
    assert len(said) == 1, said
    assert 'pip install "genaug[faces]"' in said[0] and ("(glasses)" in said[0] or "(mouth)" in said[0]) and "rule's box" in said[0]
    ds = GenerativeAugDataset([_photo(112, 92, s) for s in range(3)], variants=2, engine=e, progress=False)
    assert _said(lambda: [ds[i] for i in range(len(ds))]) == []  # (once per process)


def test_the_dataset_says_it_once_for_its_sources():
    e = Engine(device="cpu", codes=["bangs"], refine_steps=0)
    def run():
        ds = GenerativeAugDataset([_photo(64, 64, s) for s in range(3)], variants=2, engine=e, progress=False)
        return [ds[i] for i in range(len(ds))]

    said = _said(run)
    assert len(said) == 1 and "face (bangs)" in said[0], said


def test_the_colour_codes_say_nothing():
    e = Engine(device="cpu", codes=["tone", "warmth"], refine_steps=0)
    assert _said(lambda: [e.augment(_photo(64, 64, s)) for s in range(4)]) == []


def test_celebas_own_frame_says_nothing():
    e = Engine(device="cpu", codes=["glasses"], refine_steps=0)
    assert _said(lambda: e.augment(_photo(218, 178))) == []
