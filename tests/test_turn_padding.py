"""An aligned crop's constant padding (genaug.faces.padding) under the rendered controls: a head turn keeps its pixels
and shape and draws no padding colour into the face, light leaves it unlit; photos without padding render as before."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
import genaug.faces.pose as pose
from conftest import CELEBA_ID200, UTKFACE, need, needs_dlib
from genaug.faces.controls import IMAGE_CONTROLS
from genaug.faces.landmarks import face_landmarks
from genaug.faces.padding import padding_mask
from genaug.faces.pose import rotate_yaw

torch.set_num_threads(1)
GREEN = (37, 201, 90)  # a non-black padding colour no face photo holds


def _utk(root, names=(3001, 3007)) -> np.ndarray:
    return np.stack([np.asarray(Image.open(root / "images" / f"{i:05d}.jpg").convert("RGB")) for i in names])


def _padded(photos: np.ndarray, colour, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, H, W, 3) uint8 photos with constant padding painted on: ``where`` "side" (13 px on the left), "bottom"
    (11 px), or "rotated" (the photo turned 8 degrees about its centre, corners filled, as an aligner leaves it);
    and (N, H, W) bool: the padding."""
    h, w = photos.shape[1:3]
    if where == "rotated":
        turned = [Image.fromarray(p).rotate(8.0, resample=Image.BILINEAR, fillcolor=tuple(colour)) for p in photos]
        cover = np.asarray(Image.fromarray(np.full((h, w), 255, np.uint8)).rotate(8.0, resample=Image.BILINEAR))
        return np.stack([np.asarray(t) for t in turned]), np.repeat((cover == 0)[None], len(photos), 0)
    out, pad = photos.copy(), np.zeros(photos.shape[:3], bool)
    pad[:, :, :13] = where == "side"
    pad[:, h - 11 :] |= where == "bottom"
    out[pad] = colour
    return out, pad


def _float(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(0, 3, 1, 2).float() / 127.5 - 1


@needs_dlib
@pytest.mark.parametrize("colour", [(0, 0, 0), GREEN])
@pytest.mark.parametrize("where", ["side", "bottom", "rotated"])
def test_a_turn_leaves_an_aligned_crops_padding_where_it_was(colour, where):
    # rotate_yaw moved the padding with the eyes (whole pixels) and bent its edge where the jaw turned: a notch of black
    # at the chin, the edge shifted sideways; a small CNN told turned ArcFace crops from real ones at ROC AUC 0.94
    crops, pad = _padded(_utk(need(UTKFACE)), colour, where)
    x = _float(crops)
    lm = face_landmarks(x)
    found = padding_mask(x).numpy()
    assert found[pad].all() and (found & ~pad).sum() <= 0.01 * pad.sum()  # the padding, and hardly more
    for deg in (-30.0, 30.0):
        out = rotate_yaw(x, deg, lm)
        assert (out - x).abs().mean() > 0.01  # the head turned
        assert torch.equal(out.permute(0, 2, 3, 1)[torch.from_numpy(pad)], x.permute(0, 2, 3, 1)[torch.from_numpy(pad)])
        if colour == GREEN:  # no padding drawn into the face: no pixel outside it near its colour
            levels = ((out + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
            near = (np.abs(levels - np.array(colour)) <= 24).all(-1)
            assert not (near & ~pad).any(), int((near & ~pad).sum())


@needs_dlib
@pytest.mark.parametrize("size", [64, 128])
def test_photos_without_padding_turn_exactly_as_before(size, monkeypatch):
    utk = _utk(need(UTKFACE), (3001, 3002, 3005, 3007))
    celeba = sorted(need(CELEBA_ID200).glob("*/*.jpg"))[::1500][:4]
    photos = [Image.fromarray(p) for p in utk] + [Image.open(f).convert("RGB").crop((35, 55, 143, 163)) for f in celeba]
    x = _float(np.stack([np.asarray(p.resize((size, size), Image.BICUBIC)) for p in photos]))
    assert not padding_mask(x).any()
    lm = face_landmarks(x)
    for deg in (-30.0, 30.0):
        out = rotate_yaw(x, deg, lm)
        with monkeypatch.context() as m:
            m.setattr(pose, "keep_padding", lambda images: None)  # the render without the padding rule
            assert torch.equal(out, rotate_yaw(x, deg, lm))


def test_a_constant_region_of_a_real_photo_is_no_padding():
    # a flat background (clipped white, a black backdrop) wraps around the head and shoulders: what it leaves is not
    # the convex region a warped photo covers, and it is not held in place
    yy, xx = np.mgrid[0:96, 0:96]
    head = ((xx - 48) / 26.0) ** 2 + ((yy - 40) / 32.0) ** 2 <= 1
    shoulders = (yy > 74) & (np.abs(xx - 48) < 10 + (yy - 74) * 2.5)
    x = torch.where(torch.from_numpy(head | shoulders), torch.linspace(-0.5, 0.5, 96)[None], torch.tensor(1.0))
    assert not padding_mask(x.expand(1, 3, 96, 96)).any()
    wedge = torch.from_numpy(yy + xx < 30)  # a corner filled by an aligner's rotation is
    assert torch.equal(padding_mask(torch.where(wedge, torch.tensor(-1.0), x).expand(1, 3, 96, 96))[0], wedge)


@needs_dlib
def test_the_batch_path_and_the_transform_keep_uint8_and_float_padding_as_rotate_yaw_does():
    crops, pad = _padded(_utk(need(UTKFACE)), GREEN, "side")
    single = genaug.GenerativeFaceAug(p=1.0, codes=["yaw"], bounds={"yaw": (30, 30)}, device="cpu")
    for crop, p in zip(crops, pad):
        assert np.array_equal(single(image=crop)["image"][p], crop[p])  # uint8
        as_float = crop.astype(np.float32) / 255
        assert np.array_equal(single(image=as_float)["image"][p], as_float[p])  # float in [0, 1]
    batch = genaug.BatchFaceAug(p=1.0, codes=["yaw"], bounds={"yaw": (30, 30)}, seed=0, device="cpu", return_params=True)
    x = torch.from_numpy(crops).permute(0, 3, 1, 2).contiguous()
    lm = batch.find_landmarks(x)
    for images in (x, x.float() / 255):
        out, params = batch(images, landmarks=lm)
        keep = torch.from_numpy(pad)[:, None].expand_as(images)
        assert torch.equal(out[keep], images[keep])
        ref = rotate_yaw(images.float() / (255 if images.dtype == torch.uint8 else 1) * 2 - 1, params.value, lm)
        assert torch.allclose((out.float() / (255 if out.dtype == torch.uint8 else 1)), (ref + 1) / 2, atol=0.5 / 255)
    one_by_one = torch.cat([rotate_yaw(_float(crops[i : i + 1]), 30.0, lm[i : i + 1]) for i in range(len(crops))])
    assert torch.equal(rotate_yaw(_float(crops), 30.0, lm), one_by_one)  # the batch renders each as alone


@needs_dlib
def test_light_leaves_a_non_black_padding_unlit():
    # relight scales light multiplicatively (black padding stayed black), but lit a grey or coloured padding within the
    # head's reach by up to 28 levels (ArcFace crops of utkface_128, light -60 / +60)
    crops, pad = _padded(_utk(need(UTKFACE)), GREEN, "rotated")
    x = _float(crops)
    keep = torch.from_numpy(pad)[:, None].expand_as(x)
    lm = face_landmarks(x)
    for name, value in (("light", -60.0), ("light", 60.0), ("light_up", 45.0)):
        out = IMAGE_CONTROLS[name].apply(x, value, lm)
        assert (out - x).abs().mean() > 0.01  # the face was relit
        assert torch.equal(out[keep], x[keep]), name


def test_padding_runs_match_a_cumulative_product_and_a_broken_candidate_skips_the_diagonals(monkeypatch):
    # a yaw / light on a 3000x4000 close-up with a flat background spent 16.4 of its 24 s finding padding (cumprods,
    # and the diagonals of a candidate whose rows and columns already broke convexity): now 2.7 s, the same masks
    import genaug.faces.padding as padding

    g = torch.Generator().manual_seed(0)
    for shape in ((3, 7, 9), (2, 1, 5), (2, 5, 1)):
        for p in (0.0, 0.05, 0.5, 0.95, 1.0):
            m = torch.rand(shape, generator=g) < p
            for dim in (1, 2):
                u = m.to(torch.uint8)
                assert torch.equal(padding._runs(m, dim), (u.cumprod(dim) | u.flip(dim).cumprod(dim).flip(dim)).bool())
    x = torch.full((1, 3, 64, 64), -1.0)  # black corners and edges around a photo that is not convex: a black cross
    x[:, :, 8:56, 8:56] = 0.5
    x[:, :, 8:56, 28:36] = -1.0
    x[:, :, 28:36, 8:56] = -1.0
    monkeypatch.setattr(padding, "_diagonal_runs", lambda *a: pytest.fail("diagonals of a candidate already refused"))
    assert not padding_mask(x).any()
