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
