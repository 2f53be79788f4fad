"""A Dataset latent cache (``cache_path``) shared by Datasets with and without named edits: a Dataset whose codes draw
on no face keeps the face-framed latents (``ds.parts``) another Dataset saved into the file, so the next Dataset with
named edits finds them instead of inverting its misframed sources again."""
from __future__ import annotations

import pytest
from conftest import OLIVETTI, need, needs_dlib
from safetensors import safe_open
from test_named_regions import olivetti

from genaug import GenerativeAugDataset
from genaug.engine.core import Engine

pytestmark = needs_dlib
NAMES = ["s05/03.png", "s12/01.png", "s20/04.png"]


def _rows(path) -> int:
    with safe_open(str(path), framework="pt") as f:
        return f.get_slice("content").get_shape()[0]


def test_a_dataset_without_named_codes_keeps_the_face_framed_latents_it_does_not_own(tmp_path, monkeypatch):
    faces = [olivetti(need(OLIVETTI), n) for n in NAMES]
    cache = tmp_path / "faces.latents.safetensors"
    named = Engine("default", device="cpu", codes=["glasses"], refine_steps=0)
    plain = Engine("default", device="cpu", refine_steps=0)  # the default codes: no edit draws on the face
    first = GenerativeAugDataset([(f, 0) for f in faces[:2]], variants=1, engine=named, progress=False, cache_path=cache)
    assert len(first.parts) == 2 and _rows(cache) == 4  # (Olivetti frames: each source framed by its face too)
    GenerativeAugDataset([(f, 0) for f in faces[:2]], variants=1, engine=plain, progress=False, cache_path=cache)
    grown = GenerativeAugDataset([(f, 0) for f in faces], variants=1, engine=plain, progress=False, cache_path=cache)
    assert not grown.parts and _rows(cache) == 3 + 2  # a rewrite (one source inverted) kept the other Dataset's rows
    monkeypatch.setattr(named, "invert", lambda *a, **k: pytest.fail("inverted again: the cache lost a framing"))
    again = GenerativeAugDataset([(f, 0) for f in faces[:2]], variants=1, engine=named, progress=False, cache_path=cache)
    assert again.parts.keys() == first.parts.keys()
