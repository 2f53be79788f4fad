"""What the expansion reads: class folders as torchvision's ImageFolder numbers them (empty, linked, broken
links), HDF5 sources (groups, chunks, labels and class names as stored), file names that are not UTF-8, thumbnails."""
from __future__ import annotations

import gc
import os

import h5py
import numpy as np
import pytest
import torchvision
from PIL import Image, UnidentifiedImageError

from conftest import noise_pngs
from genaug.cli.expand import main as expand_main
from genaug.cli.main import main
from genaug.expand import ExpandError, HDF5FaceDataset, expand_to_hdf5
from genaug.expand.sources import FolderSource, HDF5Source

FAST = dict(refine_steps=0, batch_size=2, block_size=2, device="cpu", progress=False, workers=1)
FAST_BLOCK1 = dict(refine_steps=0, batch_size=1, block_size=1, device="cpu", progress=False)
FAST_BLOCK4 = dict(refine_steps=0, batch_size=4, block_size=4, device="cpu", progress=False)


def test_an_empty_class_folder_keeps_its_label_as_imagefolder_numbers_it(tmp_path):
    # a class folder without images was dropped: the classes after it got labels one lower than torchvision's
    # ImageFolder gives them (allow_empty=True), so the expanded file's labels disagreed with the user's own loader
    root = tmp_path / "people"
    noise_pngs(root / "ann", n=1), (root / "bob").mkdir(), noise_pngs(root / "cy", n=1)
    with pytest.warns(UserWarning, match=r"\['bob'\] hold no images"):
        src = FolderSource(root)
    theirs = torchvision.datasets.ImageFolder(str(root), allow_empty=True)
    assert src.class_names == theirs.classes
    assert [src.label(i) for i in range(len(src))] == [t for _, t in theirs.samples] == [0, 2]


def test_a_linked_class_folder_is_read_as_imagefolder_reads_it(tmp_path):
    # a class folder that is a symlink (splits built from links) was numbered as a class but its images were never
    # listed (pathlib's rglob does not follow linked folders): a silent loss, and "holds no images" was warned
    store = noise_pngs(tmp_path / "store" / "bob", n=2)
    root = tmp_path / "people"
    noise_pngs(root / "ann", n=1)
    (root / "bob").symlink_to(store, target_is_directory=True)
    theirs = torchvision.datasets.ImageFolder(str(root))
    src = FolderSource(root)
    assert src.paths == ["ann/0.png", "bob/0.png", "bob/1.png"] and src.class_names == theirs.classes
    assert [src.label(i) for i in range(len(src))] == [t for _, t in theirs.samples] == [0, 1, 1]
    (root / "ann" / "up").symlink_to(root, target_is_directory=True)  # a link back up is not walked forever
    assert FolderSource(root).paths == src.paths


def test_a_broken_link_among_the_sources_is_listed_as_skipped_not_silently_left_out(tmp_path, tiny_bundle_path):
    # a link whose target is gone (a symlinked dataset with a file deleted from the store) vanished from the listing:
    # no record, no entry in 'skipped', nothing said — "unreadable files are skipped and listed in the file"
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=2)
    (src / "2.png").symlink_to(tmp_path / "gone.png")
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST)
    with h5py.File(out) as f:
        assert f["skipped/path"].asstr()[()].tolist() == ["2.png"] and f.attrs["n_skipped"] == 1
        assert "No such file" in f["skipped/reason"].asstr()[0] and f["images"].shape[0] == 2


def test_a_file_name_that_is_not_utf8_is_expanded_and_augmented(tmp_path, tiny_bundle_path):
    # a Latin-1 file name (an old archive): expand stopped the whole run ("'utf-8' codec can't encode character
    # '\udce9'", naming no file) and augment crashed with an IndexError traceback after a half-appended batch
    root = noise_pngs(tmp_path / "faces", (40, 40, 3), n=2)
    (root / "1.png").rename(root / os.fsdecode(b"caf\xe9.png"))
    (root / os.fsdecode(b"bad\xff.png")).write_bytes(b"not an image")
    out = tmp_path / "o.h5"
    expand_to_hdf5(root, out, 1, bundle=tiny_bundle_path, **FAST_BLOCK1)
    with h5py.File(out, "r") as f:
        assert sorted(p.decode() for p in f["source_path"][()]) == ["0.png", "caf\\xe9.png"]
        assert [p.decode() for p in f["skipped/path"][()]] == ["bad\\xff.png"]
    args = ["augment", str(root), "--out", str(tmp_path / "aug"), "--variants", "1", "--bundle", str(tiny_bundle_path),
            "--device", "cpu"]
    assert main(args) == 0
    assert (tmp_path / "aug" / os.fsdecode(b"caf\xe9_aug00.png")).is_file()


def test_size_source_is_fixed_by_the_first_usable_image_not_a_thumbnail(tmp_path, tiny_bundle_path):
    # a 10x10 thumbnail sorted first fixed the output size at 10x10: every face was skipped as "size 40x40 differs
    # from the output size 10x10", and the run ended "nothing to write"
    src = noise_pngs(tmp_path / "faces", (40, 40, 3), n=2)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(src / "+thumb.png")
    out = tmp_path / "o.h5"
    res = expand_to_hdf5(src, out, 1, size="source", bundle=tiny_bundle_path, **FAST)
    assert res.n_records == 2
    with h5py.File(out, "r") as f:
        assert f["images"].shape == (2, 40, 40, 3)
        assert [p.decode() for p in f["skipped/path"][()]] == ["+thumb.png"]
        assert "too small" in f["skipped/reason"][0].decode()


def test_an_hdf5_source_whose_images_is_a_group_is_refused_by_name(tmp_path, capsys):
    # a common per-image layout (images/0, images/1, ...) failed with AttributeError: 'Group' object has no attribute
    # 'dtype' (a traceback from `genaug expand`)
    src = tmp_path / "per_image.h5"
    with h5py.File(src, "w") as f:
        for i in range(2):
            f[f"images/{i}"] = np.zeros((40, 40, 3), np.uint8)
    with pytest.raises(ExpandError, match="'images' is a group"):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, **FAST_BLOCK4)
    assert expand_main([str(src), str(tmp_path / "o.h5"), "--device", "cpu", "--quiet"]) == 1
    assert "'images' is a group (2 members)" in capsys.readouterr().err


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


@pytest.mark.parametrize("labels, shown", [([3.0, 4.5], "4.5"), ([float("nan"), 1.0], "nan")])
def test_hdf5_source_labels_that_are_not_class_indices_are_refused(tmp_path, labels, shown):
    # float labels were cast to int64 silently: 4.5 became class 4, NaN (an unknown label) -9223372036854775808
    import h5py

    from genaug.expand import ExpandError, expand_to_hdf5

    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["images"] = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        f["labels"] = np.array(labels)
    with pytest.raises(ExpandError, match=rf"'labels' must hold whole class indices .* such as \[{shown}\]"):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, device="cpu", progress=False)
    assert not (tmp_path / "o.h5").exists()
    with h5py.File(src, "r+") as f:  # whole numbers stored as floats are class indices
        del f["labels"]
        f["labels"] = np.array([3.0, 4.0])
    from genaug.expand.sources import HDF5Source

    assert HDF5Source(src).labels.tolist() == [3, 4]


def test_string_labels_in_an_hdf5_source_are_named_not_an_int_cast_error(tmp_path):
    # labels stored as names failed with "cannot read HDF5 source (invalid literal for int() with base 10: b'a')"
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 20, 20, 3), np.uint8)
        f["labels"] = np.array([b"ann", b"bob"])
    with pytest.raises(ExpandError, match=r"'labels' must hold whole class indices.*class_names"):
        HDF5Source(path)
    with pytest.raises(ValueError, match=r"'labels' of record 0 is b'ann', not a whole class index"):
        HDF5FaceDataset(path)[0]


def test_an_hdf5_source_of_encoded_image_files_is_decoded_as_the_folder_of_those_files(tmp_path, tiny_bundle_path):
    # JPEG / PNG bytes per row (h5py.vlen_dtype(np.uint8), or np.void) - how h5py users keep large face sets - were
    # refused: "'images' must be uint8 (N,H,W) or (N,H,W,C), got object (3,)"
    folder = noise_pngs(tmp_path / "faces", (40, 36, 3), n=3)
    files = sorted(folder.iterdir())
    (folder / "1.png").write_bytes(b"not an image")  # a broken row is skipped and named, as a broken file is
    blobs = [p.read_bytes() for p in files]
    want_out = tmp_path / "folder.h5"
    expand_to_hdf5(folder, want_out, 1, **FAST_BLOCK4, bundle=tiny_bundle_path)
    with h5py.File(want_out) as f:
        want = f["images"][()]
    for name, dtype, rows in (("vlen", h5py.vlen_dtype(np.uint8), [np.frombuffer(b, np.uint8) for b in blobs]),
                              ("void", None, [np.void(b) for b in blobs])):
        src = tmp_path / f"{name}.h5"
        with h5py.File(src, "w") as f:
            if dtype is None:  # opaque rows of one length: the bytes padded to the longest, as np.void stores them
                f["images"] = np.array([np.void(b.ljust(max(map(len, blobs)), b"\0")) for b in blobs])
            else:
                d = f.create_dataset("images", (len(rows),), dtype=dtype)
                for i, r in enumerate(rows):
                    d[i] = r
            f["labels"] = np.array([0, 1, 1])
        with HDF5FaceDataset(src) as ds:  # read as pixels too (it gave each row's raw bytes as the "image")
            assert np.array_equal(ds[2][0], np.asarray(Image.open(files[2]))) and ds[2][1] == 1
        out = tmp_path / f"{name}_out.h5"
        expand_to_hdf5(src, out, 1, **FAST_BLOCK4, bundle=tiny_bundle_path)
        with h5py.File(out) as f:
            assert np.array_equal(f["images"][()], want) and f["label"][()].tolist() == [0, 1]
            assert f["skipped/path"].asstr()[()].tolist() == ["images[1]"]
            # the reason names the row's bytes, not PIL's "<_io.BytesIO object at 0x7f..>" (another address each run)
            reason = f["skipped/reason"].asstr()[0]
            assert "bytes, starting b'not an i'" in reason and " at 0x" not in reason, reason
        with HDF5FaceDataset(src) as ds, pytest.raises(UnidentifiedImageError, match=r"images\[1\] \(\d+ bytes, starting b'not an i'"):
            ds[1]


def test_hdf5_source_labels_as_an_n_by_1_column_are_read_as_n(tmp_path):
    # h5py users often store labels (N, 1): `genaug expand` refused them ("'labels' has shape (3, 1) ... it must be (3,)")
    src = tmp_path / "col.h5"
    with h5py.File(src, "w") as f:
        f["images"] = np.random.default_rng(0).integers(0, 256, (3, 20, 20, 3), dtype=np.uint8)
        f["labels"] = np.array([[2], [0], [1]])
    assert HDF5Source(src).labels.tolist() == [2, 0, 1]
    expand_to_hdf5(src, tmp_path / "o.h5", 0, include_original=True, **FAST)
    with h5py.File(tmp_path / "o.h5") as f:
        assert f["label"][:].tolist() == [2, 0, 1]
    ds = HDF5FaceDataset(src)  # the source itself read as a dataset: the column too
    assert ds.targets == [2, 0, 1] and ds[2][1] == 1
    del ds  # (its open handle: h5py refuses to open the file for writing beside it)
    gc.collect()
    for bad in (np.zeros((3, 2), np.int64), np.zeros((4,), np.int64), np.zeros((1, 3), np.int64)):
        with h5py.File(src, "r+") as f:
            del f["labels"]
            f["labels"] = bad
        shape = rf"\({bad.shape[0]}, {bad.shape[1]}\)" if bad.ndim == 2 else rf"\({bad.shape[0]},\)"
        with pytest.raises(ExpandError, match=rf"'labels' has shape {shape} but 'images' holds 3 images; it must be \(3,\) or \(3, 1\)"):
            HDF5Source(src)
        with pytest.raises(ValueError, match=rf"'labels' has shape {shape}"):
            HDF5FaceDataset(src)
