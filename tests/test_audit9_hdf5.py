"""A ninth user audit (2026-12-05), as an h5py user of the offline expansion would meet it: `genaug expand` and
`expand_to_hdf5` on unwritable outputs, odd HDF5 sources, numpy-typed options and reruns (each test failed before its
fix)."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import noise_pngs
from genaug.cli.expand import main
from genaug.expand import ExpandError, expand_to_hdf5

FAST = dict(refine_steps=0, batch_size=4, block_size=4, device="cpu", progress=False)


@pytest.fixture()
def faces(tmp_path) -> Path:
    return noise_pngs(tmp_path / "faces", (40, 36, 3))


def _cli(faces: Path, out: Path, bundle: Path, *extra: str) -> list[str]:
    return ["expand", str(faces), str(out), "--variants", "1", "--bundle", str(bundle), "--refine-steps", "0",
            "--device", "cpu", "--quiet", *extra]


def test_cli_an_output_it_cannot_create_is_one_line_not_a_traceback(faces, tmp_path, tiny_bundle_path, capsys):
    # an OUT under a read-only folder (PermissionError / "Read-only file system") or under a file (NotADirectoryError)
    # ended `genaug expand` in a traceback from pathlib's mkdir of OUT.parts: only FileNotFoundError was caught
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "notes.txt" / "o.h5"
    assert main(_cli(faces, out, tiny_bundle_path)[1:]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genaug expand: error:") and "Not a directory" in err and "Traceback" not in err


def test_cli_a_full_disk_mid_run_is_one_line_not_a_traceback(faces, tmp_path, tiny_bundle_path, capsys, monkeypatch):
    # a disk filling up while a part is written (h5py: RuntimeError "... file write failed: ... errno = 28, error
    # message = 'No space left on device'") reached the user as RuntimeError("HDF5 writer failed: ...") and a traceback
    import genaug.expand.parts as parts

    def full_disk(f, skipped):
        raise RuntimeError("Can't decrement id ref count (file write failed: errno = 28, error message = "
                           "'No space left on device')")

    monkeypatch.setattr(parts, "write_skipped", full_disk)
    assert main(_cli(faces, tmp_path / "o.h5", tiny_bundle_path)[1:]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genaug expand: error: HDF5 writer failed") and "No space left on device" in err
    assert not list(Path(str(tmp_path / "o.h5") + ".parts").glob("*.tmp"))  # the half-written part is removed


def test_cli_a_full_disk_at_the_merge_is_one_line_and_keeps_the_parts(faces, tmp_path, tiny_bundle_path, capsys, monkeypatch):
    # the merge on a full disk (h5py: RuntimeError "Unable to flush raw data (... 'No space left on device')") ended
    # `genaug expand` in a traceback too
    import genaug.expand.parts as parts

    def full_disk(tmp, *a, **k):
        Path(tmp).write_bytes(b"half")
        raise RuntimeError("Unable to flush raw data (file write failed: errno = 28, error message = 'No space left on device')")

    monkeypatch.setattr(parts, "_write_merged", full_disk)
    out = tmp_path / "o.h5"
    assert main(_cli(faces, out, tiny_bundle_path)[1:]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genaug expand: error: writing") and "No space left on device" in err
    assert list(Path(str(out) + ".parts").glob("part-*.h5")) and not list(tmp_path.glob("o.h5.*.tmp"))


def test_an_hdf5_source_whose_images_is_a_group_is_refused_by_name(tmp_path, capsys):
    # a common per-image layout (images/0, images/1, ...) failed with AttributeError: 'Group' object has no attribute
    # 'dtype' (a traceback from `genaug expand`)
    src = tmp_path / "per_image.h5"
    with h5py.File(src, "w") as f:
        for i in range(2):
            f[f"images/{i}"] = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ExpandError, match="'images' is a group"):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, **FAST)
    assert main([str(src), str(tmp_path / "o.h5"), "--device", "cpu", "--quiet"]) == 1
    assert "'images' is a group (2 members)" in capsys.readouterr().err


def test_numpy_scalar_options_are_taken_and_an_int_strength_is_the_same_run(faces, tmp_path, tiny_bundle_path):
    # options from a numpy sweep (`for seed in np.arange(3)`, a config read through numpy) passed the checks, then
    # failed with "Object of type int64 is not JSON serializable" (the run key); strength=1 and strength=1.0 (the
    # CLI's) were different runs, so the CLI refused to resume or finish an API run's parts
    out = tmp_path / "o.h5"
    kw = dict(FAST, bundle=tiny_bundle_path, batch_size=np.int64(2), block_size=np.int64(1))
    res = expand_to_hdf5(faces, out, np.int64(2), seed=np.int64(3), strength=np.float32(0.5), quality_threshold=None, **kw)
    assert res.n_records == 4
    with h5py.File(out) as f:
        assert f.attrs["seed"] == 3 and '"variants": 2' in f.attrs["settings"] and '"strength": 0.5' in f.attrs["settings"]
    plain = dict(FAST, bundle=tiny_bundle_path, batch_size=2, block_size=1)
    assert expand_to_hdf5(faces, out, 2, seed=3, strength=0.5, **plain).blocks_done == 0  # the same run: complete
    out1 = tmp_path / "one.h5"
    expand_to_hdf5(faces, out1, 1, strength=1, **FAST, bundle=tiny_bundle_path)
    assert main(_cli(faces, out1, tiny_bundle_path, "--block-size", "4", "--batch-size", "4")[1:]) == 0  # already complete
    with pytest.raises(ExpandError, match="whole numbers"):
        expand_to_hdf5(faces, tmp_path / "x.h5", 1, **{**FAST, "batch_size": 2.5}, bundle=tiny_bundle_path)


def test_rerunning_a_finished_expansion_with_another_compression_is_not_a_silent_no_op(faces, tmp_path, tiny_bundle_path):
    # compression is not part of the run key (parts merge into any filter), so a finished lzf file rerun with
    # --compression gzip (README: what h5dump / MATLAB need) said "already complete; nothing to do" and stayed lzf
    out = tmp_path / "o.h5"
    kw = dict(FAST, bundle=tiny_bundle_path)
    expand_to_hdf5(faces, out, 1, compression="lzf", **kw)
    assert expand_to_hdf5(faces, out, 1, compression="lzf", **kw).blocks_done == 0  # the same command: nothing to do
    with pytest.raises(ExpandError, match="compressed with lzf, not gzip; pass --overwrite"):
        expand_to_hdf5(faces, out, 1, compression="gzip", **kw)
    expand_to_hdf5(faces, out, 1, compression="gzip", overwrite=True, **kw)
    with h5py.File(out) as f:
        assert (f["images"].compression, f["images"].compression_opts) == ("gzip", 4)
    assert expand_to_hdf5(faces, out, 1, compression="gzip-4", **kw).blocks_done == 0  # the same filter


def test_a_chunked_compressed_hdf5_source_inflates_each_chunk_once(tmp_path, monkeypatch):
    # load() reopened f["images"] per image, which drops HDF5's chunk cache: with chunks spanning many images (h5py's
    # own chunking of `create_dataset(..., compression="gzip")`) each image re-read and inflated every chunk it
    # touches, 65 ms instead of 1-2 ms per 128 px face here, the loader far behind the GPU. Counted in bytes read.
    import io

    from genaug.expand.sources import HDF5Source

    src = tmp_path / "faces.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("images", data=np.random.default_rng(0).integers(0, 256, (40, 48, 48, 3), dtype=np.uint8),
                         chunks=(20, 16, 16, 3), compression="gzip")
    source = HDF5Source(src)
    read = [0]

    class Counted(io.FileIO):
        def readinto(self, b):
            n = super().readinto(b)
            read[0] += n or 0
            return n

    real = h5py.File
    monkeypatch.setattr(h5py, "File", lambda path, mode="r", **kw: real(Counted(path, "rb"), mode, **kw))
    for i in range(len(source)):
        assert source.load(i, 3).shape == (48, 48, 3)
    source.close()
    assert read[0] < 2 * src.stat().st_size, f"read {read[0]} bytes from a {src.stat().st_size}-byte file"


def test_class_names_stored_as_a_fixed_length_string_attribute_are_read_as_json(tmp_path):
    # a JSON list in a fixed-length (bytes) string attribute (h5py `attrs.create(..., dtype="S32")`, C / MATLAB writers)
    # was iterated byte by byte: class_names ['91', '34', '97', ...] went silently into the expanded file
    from genaug.expand.sources import HDF5Source

    src = tmp_path / "faces.h5"
    with h5py.File(src, "w") as f:
        f["images"] = np.zeros((2, 20, 20, 3), np.uint8)
        f["labels"] = [0, 1]
        f.attrs["class_names"] = np.bytes_(b'["alice", "bob"]')
    assert HDF5Source(src).class_names == ["alice", "bob"]


def test_overwrite_never_deletes_an_output_path_that_is_not_hdf5(faces, tmp_path, tiny_bundle_path, capsys):
    # `genaug expand faces/ faces/0.png --overwrite` deleted the source photo (any existing OUT was unlinked)
    victim = faces / "0.png"
    before = victim.read_bytes()
    assert main(_cli(faces, victim, tiny_bundle_path, "--overwrite")[1:]) == 1
    err = capsys.readouterr().err
    assert "is not an HDF5 file" in err and victim.read_bytes() == before
    with pytest.raises(ExpandError, match="not an HDF5 file"):
        expand_to_hdf5(faces, victim, 1, bundle=tiny_bundle_path, overwrite=True, **FAST)
    assert victim.read_bytes() == before
