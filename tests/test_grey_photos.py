"""Black-and-white photos stay black-and-white under colour edits - also as JPEGs, with their colour noise and tone."""
import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.demo import DEMO_FACES
from conftest import UTKFACE, need
from genaug.engine.colour import is_grey, keep_grey

UTK_BW = UTKFACE / "images" / "02862.jpg"  # a scanned black-and-white print


def _bw_jpeg(noise: float = 2.0, tone=(0.0, 0.0, 0.0), seed: int = 0) -> np.ndarray:
    """The demo face as a black-and-white print: grey, a faint tone (levels per channel), colour noise."""
    face = np.asarray(Image.open(DEMO_FACES[0]).convert("L").resize((128, 128)), np.float32)
    rng = np.random.default_rng(seed)
    rgb = face[..., None] + np.array(tone, np.float32) + rng.normal(0, noise, (*face.shape, 3))
    return rgb.clip(0, 255).round().astype(np.uint8)


def _chroma(img: np.ndarray) -> float:
    """Mean spread of the channels, levels."""
    a = img.astype(np.float32)
    return float((a.max(2) - a.min(2)).mean())


def _model(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(img.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


def test_black_and_white_jpegs_are_grey_colour_photos_are_not():
    colour = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((128, 128)))
    pale = (colour.astype(np.float32) * 0.25 + colour.mean(2, keepdims=True) * 0.75).round().astype(np.uint8)  # washed out
    dark = (colour.astype(np.float32) * 0.2).round().astype(np.uint8)  # a dark colour photo: small absolute spread
    photos = [_bw_jpeg(), _bw_jpeg(tone=(3, 1, -2)), colour, pale, dark]
    assert is_grey(torch.cat([_model(p) for p in photos])).tolist() == [True, True, False, False, False]
    assert is_grey(torch.cat([_model(p) for p in photos]) * 0.5 + 0.5, low=0.0).tolist() == [True, True, False, False, False]


def test_keep_grey_keeps_the_photos_own_tone_and_only_the_luminance_change():
    x = _model(_bw_jpeg(tone=(3, 1, -2)))
    out = (x + torch.tensor([0.2, 0.0, -0.2])[None, :, None, None] + 0.1).clamp(-1, 1)  # a warm cast and brighter
    kept = keep_grey(x, out)
    own = x - x.mean(1, keepdim=True)
    assert torch.allclose(kept - kept.mean(1, keepdim=True), own, atol=1e-5)  # the photo's tone, not the cast
    assert (kept.mean() - x.mean()).item() == pytest.approx(0.1, abs=0.01)  # the luminance change kept
    grey = x.mean(1, keepdim=True).expand_as(x).contiguous()
    assert torch.equal(keep_grey(grey, out), out.mean(1, keepdim=True).expand_as(out))  # exactly grey stays exactly grey


def _max_chroma_gain(photo: np.ndarray, codes, seeds=range(8), batch: bool = False) -> float:
    base = _chroma(photo)
    if batch:
        aug = genaug.BatchFaceAug(p=1.0, codes=codes, seed=0)
        x = torch.from_numpy(photo).permute(2, 0, 1)[None].expand(len(seeds), -1, -1, -1).contiguous()
        out = aug(x)
        return max(_chroma(o.permute(1, 2, 0).numpy()) - base for o in out)
    aug = genaug.GenerativeFaceAug(p=1.0, codes=codes)
    return max(_chroma(A.Compose([aug], seed=s)(image=photo)["image"]) - base for s in seeds)


@pytest.mark.parametrize("batch", [False, True])
def test_colour_codes_do_not_tint_a_black_and_white_jpeg(batch):
    photo = _bw_jpeg(tone=(2, 0, -2))
    assert _max_chroma_gain(photo, ["tone", "shade", "warmth"], batch=batch) < 1.0


def test_colour_codes_do_not_tint_a_real_black_and_white_photo():
    photo = np.asarray(Image.open(need(UTK_BW)).convert("RGB"))  # a scanned print: 3.3 levels of channel spread
    assert _max_chroma_gain(photo, ["tone", "shade", "warmth"]) < 1.0
