"""``ds.meta(i)`` says what ``ds[i]`` returns: an edit whose render changes no pixel of the photo (a colour edit of a
black photo, a named edit of a near-black one, any edit of a palette "P" or 1-bit "1" PIL photo that takes the result
back on its own colours, a tiny ``strength``) is "unchanged (...)" in both, not the planned ``tone=+0.4`` /
``smile=1`` (r37 audit a12 / a22); one that changes pixels is named the same in both."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import demo_face
from genaug.engine.photos import NO_PIXEL

torch.set_num_threads(1)


def _items_and_metas(images, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (one distinct edit of a named code: variants repeat)
        ds = genaug.GenerativeAugDataset(images, variants=2, return_meta=True, device="cpu", refine_steps=0,
                                         progress=False, seed=0, **kw)
        return [(ds[i][0], ds[i][1], ds.meta(i)) for i in range(len(ds))]


def _agree(planned, meta) -> bool:
    return (planned.edit, planned.description) == (meta.edit, meta.description)


def _same(a, b) -> bool:
    return np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("codes", [["tone"], ["smile"]])
def test_meta_says_unchanged_where_the_item_is_its_photo(codes):
    face = Image.fromarray(demo_face()).resize((64, 64))
    images = [np.zeros((64, 64, 3), np.uint8), np.full((64, 64, 3), 1, np.uint8), face.convert("P"),
              face.convert("1")]
    for i, (item, meta, planned) in enumerate(_items_and_metas(images, codes=codes)):
        src = images[i // 2]
        assert _agree(planned, meta), (i, planned.description, meta.description)  # before: tone=+0.39 / smile=1
        assert (meta.description == NO_PIXEL) == _same(item, src), (i, meta.description)
    black = [d for _, d, _ in _items_and_metas(images[:1], codes=codes)]
    assert all(m.description == NO_PIXEL and m.edit is None for m in black)


def test_meta_names_an_edit_that_changes_pixels_and_a_tiny_strength_that_does_not():
    face = demo_face()
    for item, meta, planned in _items_and_metas([face], codes=["tone"]):
        assert _agree(planned, meta) and meta.edit is not None and not _same(item, face)
    for item, meta, planned in _items_and_metas([face], codes=["tone"], strength=0.001):
        assert _agree(planned, meta) and meta.description == NO_PIXEL and _same(item, face)  # before: tone=...
