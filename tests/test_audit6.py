"""Fixes from the sixth audit round: the expansion's run lock and a killed merge's leftovers, the training
loader's cache under another spelling of the folder, attribute files with short or blank lines, and
16-bit / float grey photos read by every loader."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from filelock import FileLock
from PIL import Image

from genaug.expand import ExpandError, expand_to_hdf5
from genaug.images import eight_bit
from genaug.io import open_photo
from genaug.training.data import load_face, load_faces
from test_hdf5 import FAST, synth_folder
from test_training import write_faces


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ------------------------------------------------------------------ expansion
def test_a_second_expansion_of_the_same_output_is_refused_while_the_first_runs(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=2)
    out = tmp_path / "o.h5"
    parts = tmp_path / "o.h5.parts"
    parts.mkdir()
    held = FileLock(parts / "lock", timeout=0)  # what a running expansion of o.h5 holds
    held.acquire()
    try:
        with pytest.raises(ExpandError, match="another expansion is writing .*o.h5"):
            expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST)
        # another shard's lock does not block this shard
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, shard="1/2", **FAST)
    finally:
        held.release()
    assert not out.exists()
    res = expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST)  # the lock is free: it runs (and resumes shard 1's blocks)
    assert res.path == out and out.exists()
    assert not parts.exists()  # merged: no folder (nor lock file) left beside the output


def test_an_early_error_leaves_no_parts_folder(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=2)
    out = tmp_path / "o.h5"
    out.write_bytes(b"not an expansion")
    with pytest.raises(ExpandError, match="is not an HDF5 file"):
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST)
    assert not (tmp_path / "o.h5.parts").exists()


def test_a_killed_merges_temporary_file_is_removed_and_a_live_ones_kept(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=2)
    out = tmp_path / "o.h5"
    stale = tmp_path / f"o.h5.{_dead_pid()}.tmp"
    stale.write_bytes(b"x" * 1000)  # what a merge killed by SIGKILL leaves
    live = tmp_path / f"o.h5.{os.getppid()}.tmp"  # a live process's: not ours to remove
    live.write_bytes(b"y")
    expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST)
    assert out.exists() and not stale.exists() and live.exists()


# ------------------------------------------------------------------ training loader
def test_the_decode_cache_serves_a_relative_and_an_absolute_spelling_of_the_folder(tmp_path, monkeypatch):
    write_faces(tmp_path / "faces", n=6)
    monkeypatch.chdir(tmp_path)
    a = load_faces("faces", 16)  # decodes, caches
    b = load_faces(tmp_path / "faces", 16)  # the cache, read under the absolute spelling
    assert all(os.path.exists(f) for f in a.files + b.files)
    monkeypatch.chdir(tmp_path / "faces")
    c = load_faces(".", 16)
    assert all(os.path.exists(f) for f in c.files)  # paths as the caller spelled the folder
    assert len(list((tmp_path / "cache").glob("faces-*.npz"))) == 1
    for d in (b, c):
        assert (d.images == a.images).all() and (d.attributes == a.attributes).all()


def test_attribute_files_with_blank_or_short_lines(tmp_path):
    root = write_faces(tmp_path / "faces", n=4)
    csv = root / "attributes.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0], "", *lines[1:], "", ""]) + "\n")  # blank lines are skipped
    assert load_faces(root, 16).attributes.shape == (4, 2)
    csv.write_text("\n".join([*lines[:3], "0002.png,2", *lines[4:]]) + "\n")
    with pytest.raises(ValueError, match=r"attributes.csv: line 4 has a different number of cells than the header's 4"):
        load_faces(root, 16, cache_dir=tmp_path / "c2")
    csv.write_text("")
    with pytest.raises(ValueError, match="empty attribute file"):
        load_faces(root, 16, cache_dir=tmp_path / "c3")


# ------------------------------------------------------------------ 16-bit and float grey photos
@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_float_grey_images_are_scaled_not_clipped(tmp_path, scale):
    ramp = np.tile(np.linspace(0, 1, 64, dtype=np.float32), (48, 1))
    im = Image.fromarray(ramp * scale, mode="F")
    got = np.asarray(eight_bit(im))
    assert got.dtype == np.uint8 and np.abs(got.astype(int) - np.rint(ramp * 255)).max() <= 1
    im.save(tmp_path / "f.tif")
    assert np.abs(np.asarray(open_photo(tmp_path / "f.tif")).astype(int) - np.rint(ramp * 255)).max() <= 1


def test_the_training_loader_reads_16_bit_grey_photos(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64), (64, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    face = load_face(tmp_path / "g16.png", 32, 3)
    assert face.shape == (32, 32, 3)
    assert face.min() < 20 and face.max() > 235 and face.mean() == pytest.approx(127.5, abs=8)  # not all white
