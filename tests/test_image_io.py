"""Image files read and written (genaug.images, genaug.io): float grey photos are scaled, not clipped;
finished files follow the umask."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from genaug.images import eight_bit
from genaug.io import open_photo


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_grey_images_are_scaled_not_clipped(tmp_path, scale):
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    im = Image.fromarray(ramp * scale, mode="F")
    got = np.asarray(eight_bit(im))
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - np.rint(ramp * 255)).max() <= 1
    im.save(tmp_path / "f.tif")
    assert np.abs(np.asarray(open_photo(tmp_path / "f.tif")).astype(int) - np.rint(ramp * 255)).max() <= 1


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_finished_files_follow_the_umask(tmp_path):
    """A committed file gets the mode a new file would (0o666 & ~umask), not 0o644 whatever the umask:
    with umask 077 face data stays private."""
    from genaug.io import atomic_write

    old = os.umask(0o077)
    try:
        out = atomic_write(tmp_path / "private.bin", lambda p: p.write_bytes(b"x"))
        os.umask(0o002)
        shared = atomic_write(tmp_path / "shared.bin", lambda p: p.write_bytes(b"x"))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o600
    assert shared.stat().st_mode & 0o777 == 0o664


@pytest.mark.parametrize("kind", ["numpy", "pil", "tensor"])
def test_an_eight_bit_photo_comes_back_rounded_half_to_even_and_the_work_tensor_kept(kind):
    # from_chw01 writes a uint8 photo back through one float copy (a 12 MP photo's): the levels as before, halves to
    # even, the caller's float tensor untouched
    import torch

    from genaug.images import FrameInfo, from_chw01

    levels = torch.arange(-1, 257, 0.5, dtype=torch.float32)[:3 * 8 * 10] / 255  # halves, beyond 0..255
    t = levels.reshape(3, 8, 10).clamp(0, 1) if kind == "tensor" else levels.reshape(3, 8, 10)
    before = t.clone()
    want = (t * 255).round().clamp(0, 255).to(torch.uint8)
    u8 = np.zeros((8, 10, 3), np.uint8)
    original = {"numpy": u8, "pil": Image.fromarray(u8), "tensor": torch.from_numpy(u8).permute(2, 0, 1).contiguous()}[kind]
    info = FrameInfo(kind, tuple(original.shape) if kind != "pil" else (8, 10, 3), torch.uint8 if kind == "tensor"
                     else ("RGB" if kind == "pil" else np.uint8), "CHW" if kind == "tensor" else "HWC", 3, False,
                     (0, 0, 10, 8), torch.empty(0))
    got = from_chw01(t, original, info)
    got = got if kind == "tensor" else torch.from_numpy(np.array(got)).permute(2, 0, 1)
    assert torch.equal(got, want) and torch.equal(t, before)
