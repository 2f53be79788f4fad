"""The rendered controls on large photos: turns and light worked out at a bounded size match the full-size
render (small photos render as before, bit for bit), and drawn glasses are drawn on the head's box."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conftest import UTKFACE, need
from genaug.faces import light, pose
from genaug.faces.landmarks import default_landmarks
from genaug.faces.light import relight
from genaug.faces.pose import rotate_yaw
from genaug.faces.shape import blur_each
from test_pose_light import project, smooth_faces

torch.set_num_threads(1)
LEVEL = 1 / 127.5  # one grey level of 255 in [-1, 1]


def grainy(n: int, h: int, w: int) -> torch.Tensor:
    """Smooth colours with a 1-pixel grain: a blur, a seam or a repeated column shows in it."""
    g = torch.Generator().manual_seed(1)
    return (smooth_faces(n, h, w) * 0.8 + 0.08 * torch.randn(n, 1, h, w, generator=g)).clamp(-1, 1)


@pytest.mark.parametrize("where", ["close-up", "face in a larger photo"])
def test_a_large_photo_turns_as_a_full_size_render(monkeypatch, where):
    # a close-up is turned on the whole photo, a face in a photo much larger than its head (kept in place) on its
    # head's box; either region is larger than the work size (patched small: in the work grid the eyes lie 60-75 px
    # apart, a 12 MP close-up's 330 px at 768 x 768 - the map is smoother there still)
    if where == "close-up":
        x, lm = grainy(2, 512, 448), torch.cat([project(8.0, 180.0, (224.0, 210.0)), project(-5.0, 170.0, (230.0, 200.0))])
        work, keep_eyes = 200 * 200, True
    else:
        x, lm = grainy(2, 720, 800), torch.cat([project(8.0, 125.0, (380.0, 300.0)), project(-5.0, 120.0, (420.0, 330.0))])
        work, keep_eyes = 150 * 150, False
    degrees = torch.tensor([20.0, -15.0])
    full = rotate_yaw(x, degrees, lm, keep_eyes=keep_eyes)
    monkeypatch.setattr(pose, "WORK_PIXELS", work)
    monkeypatch.setattr(pose, "CHUNK_PIXELS", 20000)  # several bands of rows
    solve, points = pose.solve_head_x, []
    monkeypatch.setattr(pose, "solve_head_x", lambda u, *a, **k: points.append(u[0].numel()) or solve(u, *a, **k))
    small = rotate_yaw(x, degrees, lm, keep_eyes=keep_eyes)
    assert points and max(points) <= 1.02 * work  # the turn solved at the work size, not at every pixel
    assert float((full - x).abs().amax()) > 0.5  # it did turn
    d = (small - full).abs()
    # the map is smooth except at the outlines of the nose and the head, where the solved point jumps: there a pixel
    # or two differs; elsewhere by a fraction of a level (the photo is sampled at full size: as sharp)
    assert float(d.mean()) < 0.15 * LEVEL and float(torch.quantile(d.flatten()[::7], 0.99)) < 3 * LEVEL, where
    assert float((d > 8 * LEVEL).float().mean()) < 0.002, where


def test_a_close_up_turns_without_blocks_of_repeated_columns(monkeypatch):
    # the inverse table has a column every 0.0094 d: on a close-up (here 2.3 px apart; 7 px on a 2048 px photo) read
    # nearest, neighbouring pixels took the same point, the grain came out in horizontal streaks
    x, lm = grainy(1, 384, 384), project(5.0, 250.0, (190.0, 150.0))  # (the outer eye corner at x 383: inside)
    inner = (slice(None), slice(None), slice(120, 300), slice(100, 290))  # cheeks, nose and mouth
    repeated = lambda out: float((out[..., 1:] == out[..., :-1]).all(1)[inner[1:]].float().mean())
    assert repeated(rotate_yaw(x, 20.0, lm)) < 0.01
    monkeypatch.setattr(pose, "SMOOTH_READ_PX", math.inf)
    monkeypatch.setattr(pose, "SOFT_SIGMA", 0.0)  # (the move's blur beside the nose smooths the blocks there too)
    assert repeated(rotate_yaw(x, 20.0, lm)) > 0.3  # as it was


def as_before(monkeypatch):
    """The renderers without their large-photo paths: every turn at full size with the table read nearest, the
    shading change blurred at full size."""
    monkeypatch.setattr(pose, "WORK_PIXELS", 10**12)
    monkeypatch.setattr(pose, "SMOOTH_READ_PX", math.inf)
    monkeypatch.setattr(light, "COARSE_BLUR", math.inf)


@pytest.fixture
def utk_images() -> torch.Tensor:
    """The first 6 utkface_128 photos in [-1, 1]."""
    from PIL import Image

    files = sorted((need(UTKFACE) / "images").glob("*.jpg"))[:6]
    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 127.5 - 1).permute(2, 0, 1)
                        for f in files])


@pytest.mark.parametrize("crop", [None, 64])
def test_small_photos_render_as_before(monkeypatch, utk_images, crop):
    # utkface_128 photos (and their centre 64 px crops), each alone: the work size, the bilinear read and the coarse
    # blur reach none of them
    photos = utk_images[..., 32:96, 32:96].contiguous() if crop else utk_images
    now = [(rotate_yaw(x[None], 20.0), relight(x[None], 60.0, 15.0, 0.8)) for x in photos]
    as_before(monkeypatch)
    for (turned, lit), x in zip(now, photos):
        assert not torch.equal(turned, x[None]) and not torch.equal(lit, x[None])
        assert torch.equal(turned, rotate_yaw(x[None], 20.0)) and torch.equal(lit, relight(x[None], 60.0, 15.0, 0.8))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("channels", [3, 1])
def test_a_large_render_keeps_shape_and_dtype(monkeypatch, dtype, channels):
    x = grainy(2, 200, 176)[:, :channels].to(dtype)
    lm = torch.cat([project(0.0, 70.0, (88.0, 80.0)), project(10.0, 65.0, (90.0, 85.0))])
    monkeypatch.setattr(pose, "WORK_PIXELS", 64 * 64)
    monkeypatch.setattr(light, "WORK_PIXELS", 64 * 64)
    for out in (rotate_yaw(x, torch.tensor([15.0, 0.0]), lm), relight(x, 60.0, 10.0, torch.tensor([0.8, 0.0]), lm)):
        assert out.shape == x.shape and out.dtype == dtype
        assert not torch.equal(out[0], x[0]) and torch.equal(out[1], x[1])  # a value of 0 leaves its image as it was


def test_a_wide_soften_blurs_on_a_coarser_grid_as_at_full_size():
    # the shading change of a close-up shaded at the work size is blurred by ~34 px: on a grid 4 times coarser, the
    # same within 0.003 (a tenth of a level of the shading ratio), the map's borders included; narrower blurs exactly
    g = torch.Generator().manual_seed(0)
    change = torch.nn.functional.interpolate(torch.rand(2, 1, 12, 10, generator=g), size=(300, 260), mode="nearest")[:, 0]
    sigma = torch.tensor([34.0, 15.9])
    got = light._soften(change, sigma)
    assert float((got[0] - blur_each(change[:1], [34.0])[0]).abs().max()) < 0.003
    assert torch.equal(got[1], blur_each(change[1:], [15.9])[0])  # below 2 x COARSE_BLUR: the full blur


def test_a_large_relight_runs_in_bands_and_takes_the_skin_colour_small(monkeypatch):
    # a large region's per-pixel steps run a band of rows at a time (the same values), and the skin colour a darkened
    # clipped highlight takes is found at the work size (a mean): within a few levels of the full-size render there
    x = smooth_faces(2, 256, 224) * 0.7
    x[..., 120:150, 60:90] = 1.0  # a clipped highlight on a cheek
    lm, az = default_landmarks(256, 224, 2), torch.tensor([60.0, -45.0])
    full = relight(x, az, 10.0, 0.8, lm)
    monkeypatch.setattr(light, "WORK_PIXELS", 96 * 96)
    one = relight(x, az, 10.0, 0.8, lm)  # 292 rows a band: one
    monkeypatch.setattr(light, "CHUNK_PIXELS", 3000)
    assert float((relight(x, az, 10.0, 0.8, lm) - one).abs().max()) < 1e-6
    patch = (slice(None), slice(None), slice(120, 150), slice(60, 90))
    assert float((full - x)[patch].abs().max()) > 0.3  # the highlight took the skin colour
    assert float((one - full)[patch].abs().max()) < 3 * LEVEL



def test_a_large_relight_shades_the_box_of_the_faces_mask_alone(monkeypatch):
    # a close-up's pixels outside the head's mask (hair, neck, background: a third to half of a 12 MP photo) came out
    # as the input but went through every per-pixel step of the shading: they are copied now, the face's as before
    x = smooth_faces(2, 400, 320) * 0.7
    lm, az = default_landmarks(400, 320, 2) * 0.5 + torch.tensor([80.0, 100.0]), torch.tensor([60.0, -45.0])
    monkeypatch.setattr(light, "WORK_PIXELS", 64 * 64)
    shade, pixels = light._apply_shading, []
    monkeypatch.setattr(light, "_apply_shading", lambda images, *a, **k: pixels.append(images[0, 0].numel()) or shade(images, *a, **k))
    one = light.relight(x, az, 10.0, 0.8, lm)
    monkeypatch.setattr(light, "CHUNK_PIXELS", 1600)  # bands of a few rows
    banded = light.relight(x, az, 10.0, 0.8, lm)
    assert 0 < sum(pixels) < 0.6 * 2 * 400 * 320  # (both calls)
    assert float((banded - one).abs().max()) < 1e-6 and float((banded - x).abs().max()) > 0.3
    moved = (one != x).any(1).any(0)
    rows, cols = moved.any(1).nonzero()[:, 0], moved.any(0).nonzero()[:, 0]
    assert rows[0] > 20 and rows[-1] < 380 and cols[0] > 20 and cols[-1] < 300  # the mask's box: inside the photo

def test_a_large_relight_of_saturated_pixels_matches_the_full_size_render(monkeypatch):
    """A region larger than WORK_PIXELS is shaded on a small image. Made by averaging, its pixels mixed clipped and
    black channels into colours no pixel has (unclipped 'skin'), and the clipped pixels took that colour: saturated
    synthetic photos came out up to 227-255 levels off the full-size render (random 0/255 channels, 8 px colour
    blocks; 99th percentile 217 / 254). Sampled, the small image's means are the photo's own pixels'."""
    import genaug.faces.light as light
    from genaug.faces.landmarks import default_landmarks

    g = torch.Generator().manual_seed(0)
    binary = torch.randint(0, 2, (1, 3, 256, 256), generator=g).float()
    blocks = torch.randint(0, 2, (1, 3, 32, 32), generator=g).float().repeat_interleave(8, 2).repeat_interleave(8, 3)
    noise = torch.randint(0, 256, (1, 3, 256, 256), generator=g).float() / 255
    x = torch.cat([binary, blocks, noise]) * 2 - 1
    args = (torch.tensor([60.0, -45.0, 60.0]), 10.0, 0.8, default_landmarks(256, 256, 3))
    full = light.relight(x, *args)
    monkeypatch.setattr(light, "WORK_PIXELS", 96 * 96)
    off = (light.relight(x, *args) - full).abs().amax(1).flatten(1) * 127.5  # levels, per pixel
    assert float((full - x).abs().max()) > 0.3  # the light did move
    assert float(off[:2].max()) < 4 and float(off.quantile(0.99, dim=1).max()) < 4  # 2.1 / 0.5 / 41 (99 %: 1.7 / 0.3 / 2.8)
    assert float(off.mean()) < 0.3  # 0.15 (was 20)


def test_drawn_glasses_on_a_large_photo_are_drawn_on_the_heads_box(monkeypatch):
    # drawn_glasses computed its frames, the photo's sharpness and two blurs over every pixel of the photo: a face in a
    # 12 MP photo took ~18 s a call on one thread (yaw 3 s, light a few), where yaw and light work on the head's box.
    # The frames must be drawn on the head's box, with the same result as over the whole photo.
    from genaug.faces import glasses

    torch.set_num_threads(1)
    h, w = 600, 800
    rng = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 3, h, w, generator=rng) * 0.6 - 0.3)
    lm = torch.tensor([[[434.0, 300.0], [410.0, 301.0], [366.0, 300.0], [390.0, 301.0], [400.0, 331.0]]])  # d = 44 px
    seen = []
    real = glasses.frames_coverage
    monkeypatch.setattr(glasses, "frames_coverage", lambda x_, *a: seen.append(x_.shape[-2:].numel()) or real(x_, *a))
    out = glasses.add_glasses(x, 1.0, landmarks=lm)
    assert seen and max(seen) * 4 < h * w, f"frames drawn over {max(seen)} pixels of a {h * w}-pixel photo"
    monkeypatch.setattr(glasses, "head_crops", lambda *a, **k: None, raising=False)  # the whole photo, as before
    whole = glasses.add_glasses(x, 1.0, landmarks=lm)
    assert (out - whole).abs().max() < 1e-4
    assert (out - x).abs().amax(1)[0, 280:320, 330:470].max() > 0.2  # the frames are there
