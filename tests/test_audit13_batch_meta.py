"""A thirteenth audit: ``GenerativeAugDataset.meta(i)`` reports the colour value ``ds[i]`` applies (the engine moves a
random colour edit off the face's own value, ``Engine._colour_margin``). Failed before its fix."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genaug.bundle.format import load_bundle
from genaug.dataset import GenerativeAugDataset


def _face(bundle) -> np.ndarray:
    """One 64 x 64 face, the generator's own (no data folder needed), 8-bit HWC."""
    z = torch.randn(1, bundle.spec.dim, generator=torch.Generator().manual_seed(3)) * 0.5
    with torch.no_grad():
        face = bundle.generator(z).clamp(-1, 1)[0]
    return ((face.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def test_meta_reports_the_colour_value_each_item_applies():
    # meta(i) reported the planned tone; ds[i] applied it moved at least 0.02 off the face's own (a draw nearer than
    # that: here about half of them, drawn within (own - 0.01, own + 0.05)), and its meta and HDF5 codes said so
    bundle = load_bundle("default")
    photos = [_face(bundle)]
    tone = bundle.spec.code_index("tone")
    kw = dict(bundle=bundle, device="cpu", codes=["tone"], progress=False, return_meta=True, seed=1)
    own = float(GenerativeAugDataset(photos, variants=1, **kw).latents[0, bundle.spec.code_slice(tone).start])
    ds = GenerativeAugDataset(photos, variants=12, include_original=True, bounds={"tone": (own - 0.01, own + 0.05)}, **kw)
    moved = 0
    for i in range(len(ds)):
        planned, item = ds.meta(i), ds[i][-1]
        assert (planned.code, planned.relative, planned.description) == (item.code, item.relative, item.description), i
        assert planned.value == pytest.approx(item.value, abs=1e-9) or (np.isnan(planned.value) and np.isnan(item.value)), i
        if not planned.original:
            drawn = ds._plan(0)[i - 1].value
            moved += planned.value != drawn
            assert abs(planned.value - own) >= 0.02 - 1e-6 or planned.value == drawn, (i, planned.value, drawn, own)
    assert 0 < moved < 12, moved  # some were moved, some drawn far enough
