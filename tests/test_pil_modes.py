"""PIL images in modes genaug reads through RGB (a GIF's palette "P", "CMYK", bilevel "1") come back in their own
mode (genaug.images.pil_mode): a pipeline that read the original reads the variant alike."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import demo_face

torch.set_num_threads(1)
KW = dict(variants=1, include_original=True, codes=["tone"], framing="full", refine_steps=0, device="cpu", progress=False,
          seed=0)


def grey_gif() -> Image.Image:
    """The shipped face as a grey GIF (mode "P", a palette of greys), as face sets such as Yale's come."""
    buf = io.BytesIO()
    Image.fromarray(demo_face()).convert("L").save(buf, "GIF")
    buf.seek(0)
    gif = Image.open(buf)
    gif.load()
    return gif


def test_a_grey_gif_variant_stays_a_palette_image_on_its_own_palette():
    gif = grey_gif()
    assert gif.mode == "P"
    out = genaug.GenerativeAugDataset([(gif, 1)], **KW)[1][0]
    assert out.mode == "P" and out.size == gif.size
    assert out.getpalette() == gif.getpalette()
    before, after = np.asarray(gif.convert("L"), np.float64), np.asarray(out.convert("L"), np.float64)
    assert np.abs(after - before).mean() > 0.5  # the edit survives the palette
    ref = np.asarray(genaug.GenerativeAugDataset([(gif.convert("L"), 1)], **KW)[1][0], np.float64)
    assert np.abs(after - ref).mean() < 2.0  # the same edit, to the palette's nearest greys


@pytest.mark.parametrize("mode", ["CMYK", "1", "YCbCr"])
def test_other_modes_read_through_rgb_come_back_in_their_mode(mode):
    pil = Image.fromarray(demo_face()).convert(mode)
    out = genaug.GenerativeAugDataset([(pil, 1)], **KW)[1][0]
    assert out.mode == mode and out.size == pil.size
