"""HDF5FaceDataset on expanded and other HDF5 files: indices, variant selections, labels and class names as
files store them, a context manager, files being written, replaced or unfinished; read back as h5py and
torchvision read them."""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import noise_pngs, resized
from genaug.expand import ExpandError, HDF5FaceDataset, expand_to_hdf5
from genaug.expand.sources import HDF5Source

torch.set_num_threads(1)
FAST = dict(refine_steps=0, batch_size=2, block_size=2, device="cpu", progress=False, workers=1)


@pytest.fixture(scope="module")
def expanded(tmp_path_factory, tiny_bundle_path) -> Path:
    """3 noise 'faces' with the original and 2 variants each (9 records)."""
    root = tmp_path_factory.mktemp("a14")
    out = root / "out.h5"
    expand_to_hdf5(noise_pngs(root / "src", (40, 36, 3), n=3), out, 2, bundle=tiny_bundle_path, include_original=True, **FAST)
    return out


def test_the_output_says_what_each_dataset_means_and_reads_as_plain_h5py_does(expanded):
    # the records' datasets carried no attribute at all: HDFView / h5dump / ds.attrs showed bare numbers
    with h5py.File(expanded, "r", swmr=True, libver="latest") as f:
        for name in ("images", "label", "source_index", "source_path", "variant", "codes", "score", "skipped",
                     "skipped/source_index", "skipped/path", "skipped/reason"):  # (skipped's datasets had none)
            assert len(f[name].attrs["description"]) > 20, name
        assert "code_names" in f["codes"].attrs["description"] and "class_names" in f["label"].attrs["description"]
        assert f["images"].chunks == (1, *f["images"].shape[1:])  # one row per chunk: random access reads one row
        assert list(f["source_path"].asstr()[[0, 4, 8]]) == ["0.png", "1.png", "2.png"]
        assert f["skipped/path"].asstr()[()].tolist() == []
        rows = f["images"][[1, 4, 7]]  # h5py's fancy indexing (sorted lists)
        np.testing.assert_array_equal(rows, f["images"][()][[1, 4, 7]])
        assert f["source_index"][[1, 4, 7]].tolist() == [0, 1, 2] and f["variant"][[1, 4, 7]].tolist() == [1, 1, 1]


def test_hdf5_reader_refuses_a_float_index_and_an_empty_variant_list(tmp_path):
    # ds[1.5] returned record 1 (lists, GenerativeAugDataset: TypeError); variants=[] gave an empty dataset
    import h5py
    import torch

    from genaug.expand.hdf5 import HDF5FaceDataset

    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((4, 16, 16, 3), np.uint8)
        f["label"] = np.arange(4)
        f["variant"] = np.array([1, 2, 1, 2], np.int16)
    ds = HDF5FaceDataset(path)
    with pytest.raises(TypeError, match="indices must be integers"):
        ds[1.5]
    assert ds[np.int64(1)][1] == 1 and ds[torch.tensor(2)][1] == 2 and ds[-1][1] == 3
    with pytest.raises(ValueError, match="at least one variant"):
        HDF5FaceDataset(path, variants=[])
    assert len(HDF5FaceDataset(path, variants=[2])) == 2


def test_the_hdf5_reader_takes_variants_as_a_set(tmp_path):
    # HDF5FaceDataset(path, variants={0}) raised "TypeError: unhashable type: 'set'" (numpy made the set one object)
    import h5py

    path = tmp_path / "faces.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((6, 16, 16, 3), np.uint8)
        f["label"] = np.arange(6)
        f["variant"] = np.array([0, 1, 2, 0, 1, 2], np.int16)
    assert len(genaug.HDF5FaceDataset(path, variants={0})) == 2
    assert len(genaug.HDF5FaceDataset(path, variants=range(1, 3))) == 4
    assert [genaug.HDF5FaceDataset(path, variants=frozenset({1}))[i][1] for i in range(2)] == [1, 4]


def test_the_hdf5_reader_is_a_context_manager_as_an_h5py_file_is(tmp_path):
    # `with HDF5FaceDataset(path) as ds:` was "TypeError: 'HDF5FaceDataset' object does not support the context manager
    # protocol"; an h5py user closes files that way
    import h5py
    import numpy as np

    from genaug.hdf5 import HDF5FaceDataset

    path = tmp_path / "faces.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
        f["label"] = np.array([3, 4])
    with HDF5FaceDataset(path) as ds:
        assert ds[1][1] == 4
        handle = ds._file
        assert handle is not None and bool(handle)
    assert ds._file is None and not bool(handle)  # closed at the end of the block
    assert ds[0][1] == 3  # and opened again when read later
    ds.close()


def test_hdf5_dataset_refuses_labels_that_are_not_class_indices(tmp_path):
    """``HDF5FaceDataset`` read a foreign file's float label with ``int()``: 4.5 came back as class 4, and NaN failed
    with "cannot convert float NaN to integer" naming neither file nor record. Such labels are now refused by name,
    as the expansion's HDF5 source refuses them; whole numbers stored as floats are still class indices."""
    import h5py

    from genaug.expand import HDF5FaceDataset

    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 16, 16, 3), np.uint8)
        f["labels"] = np.array([3.0, 4.5, np.nan])
    ds = HDF5FaceDataset(path)
    assert ds[0][1] == 3 and type(ds[0][1]) is int
    with pytest.raises(ValueError, match=r"foreign\.h5: 'labels' of record 1 is 4\.5, not a whole class index"):
        ds[1]
    with pytest.raises(ValueError, match=r"foreign\.h5: 'labels' of record 2 is nan, not a whole class index"):
        ds[-1]
    with pytest.raises(ValueError, match=r"foreign\.h5: 'labels' of record 1 is 4\.5, not a whole class index .*2 of 3"):
        ds.targets  # (all at once: the first named, as an item names its own)


@pytest.mark.parametrize("labels", [[[4, 0], [5, 0], [6, 0]], [4, 5]], ids=["n-by-2", "one-short"])
def test_labels_that_are_not_one_per_image_are_named_by_the_reader_up_front(tmp_path, labels):
    # a list one short failed in h5py at the last item of an epoch ("Index (2) out of range"); the expander named it
    # (labels (N, 1), refused here too until r38, are read as (N,): test_expand_sources.py)
    path = tmp_path / "faces.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 16, 16, 3), np.uint8)
        f["labels"] = np.array(labels)
    with pytest.raises(ValueError, match=r"'labels' has shape .* but 'images' holds 3 images; it must be \(3,\) or \(3, 1\)"):
        HDF5FaceDataset(path)


def _h5(path, **datasets):
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 8, 8, 3), np.uint8)
        for k, v in datasets.items():
            f[k] = np.asarray(v)
    return path


def test_label_and_labels_are_read_alike_by_the_source_and_the_dataset(tmp_path):
    # HDF5Source read 'labels' first and HDF5FaceDataset 'label' first: one file gave the expansion one set of labels
    # and the Dataset another
    same = _h5(tmp_path / "same.h5", label=[0, 1, 2], labels=[0, 1, 2])
    assert [HDF5Source(same).label(i) for i in range(3)] == [HDF5FaceDataset(same)[i][1] for i in range(3)] == [0, 1, 2]
    other = _h5(tmp_path / "other.h5", label=[0, 1, 2], labels=[2, 1, 0])
    with pytest.raises(ExpandError, match="both 'label' and 'labels'"):
        HDF5Source(other)
    with pytest.raises(ValueError, match="both 'label' and 'labels'"):
        HDF5FaceDataset(other)
    one = _h5(tmp_path / "one.h5", labels=[4, 5, 6])
    assert [HDF5Source(one).label(i) for i in range(3)] == [HDF5FaceDataset(one)[i][1] for i in range(3)] == [4, 5, 6]


def _names_file(path: Path, names) -> Path:
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 16, 16, 3), np.uint8)
        f["labels"] = np.array([0, 1])
        f.attrs["class_names"] = names
    return path


@pytest.mark.parametrize("names", [["alice", "bob"], np.array([b"alice", b"bob"]), '["alice", "bob"]'],
                         ids=["vlen", "fixed", "json"])
def test_class_names_stored_as_h5py_stores_a_list_are_read_by_the_reader_too(tmp_path, names):
    # f.attrs["class_names"] = ["alice", "bob"] (h5py's own way) was read by the expander's HDF5 source, but the
    # reader crashed on it: "TypeError: the JSON object must be str, bytes or bytearray, not ndarray"
    path = _names_file(tmp_path / "faces.h5", names)
    assert HDF5FaceDataset(path).class_names == ["alice", "bob"] == HDF5Source(path).class_names
    with pytest.raises(ValueError, match="attribute 'class_names' must be a JSON list or an array of names"):
        HDF5FaceDataset(_names_file(tmp_path / "bad.h5", "alice"))


def test_an_expanded_file_still_being_written_is_named_with_what_to_do(tmp_path):
    """HDF5FaceDataset on a file another process holds open for writing raised h5py's bare 'unable to lock file,
    errno = 11' — nothing said which process or what to do."""
    import subprocess
    import sys

    path = tmp_path / "faces.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 8, 8, 3), np.uint8)
    writer = subprocess.Popen([sys.executable, "-c", "import h5py, sys; f = h5py.File(sys.argv[1], 'a'); print('open', "
                               "flush=True); sys.stdin.read()", str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "open"
        with pytest.raises(OSError, match=r"open for writing in another process .*HDF5_USE_FILE_LOCKING=FALSE"):
            genaug.HDF5FaceDataset(path)
    finally:
        writer.communicate("")
    assert len(genaug.HDF5FaceDataset(path)) == 2  # the writer gone: readable


def test_a_reader_whose_file_was_replaced_refuses_to_read_the_new_one(tmp_path, expanded):
    # `genaug expand --overwrite` renames a new file into place: a reader made before (its length and variant rows
    # counted on the old file) silently read the new file's records, or failed in h5py with a bare index error
    path = tmp_path / "data.h5"
    path.write_bytes(expanded.read_bytes())
    ds = HDF5FaceDataset(path, variants=[0])
    first = ds[0][0]
    ds.close()
    with h5py.File(tmp_path / "new.h5", "w") as f:
        f["images"] = np.full((20, 32, 32, 3), 9, np.uint8)
        f["variant"] = np.zeros(20, np.int16)
    os.replace(tmp_path / "new.h5", path)
    with pytest.raises(RuntimeError, match="was replaced or rewritten since this HDF5FaceDataset read it"):
        ds[0]
    assert len(HDF5FaceDataset(path, variants=[0])) == 20  # a new reader reads the new file
    assert not np.array_equal(first, HDF5FaceDataset(path)[0][0])


def test_a_reader_of_an_unfinished_expansion_says_so(tmp_path):
    (tmp_path / "out.h5.parts").mkdir()
    with pytest.raises(FileNotFoundError, match=r"expansion into it is unfinished: .*out\.h5\.parts holds its parts"):
        HDF5FaceDataset(tmp_path / "out.h5")


def test_a_reader_of_an_expansion_still_running_says_to_wait_not_to_rerun(tmp_path):
    # opened while `genaug expand` was writing its parts, the reader said "unfinished ... rerun the same command", and
    # the rerun was refused ("another expansion is writing"); now it says a run is writing it (holding the run's lock)
    from filelock import FileLock

    parts = tmp_path / "out.h5.parts"
    parts.mkdir()
    lock = FileLock(parts / "lock", timeout=0)
    with lock:
        with pytest.raises(FileNotFoundError, match=r"no such HDF5 file: .*out\.h5 yet: an expansion is writing it now "
                                                    r"\(it holds .*lock\).*wait for it to finish"):
            HDF5FaceDataset(tmp_path / "out.h5")
    with pytest.raises(FileNotFoundError, match=r"expansion into it is unfinished"):  # the run stopped: rerun it
        HDF5FaceDataset(tmp_path / "out.h5")


def test_real_faces_read_back_as_torchvision_imagefolder_numbers_them(tmp_path):
    """Three people of celeba_id200 (two photos each, linked in): the originals read back through a DataLoader with
    two workers carry the labels and order of ``torchvision.datasets.ImageFolder`` on the same folder."""
    from torch.utils.data import DataLoader
    from torchvision.datasets import ImageFolder

    from conftest import CELEBA_ID200, need

    people = tmp_path / "people"
    for who in ("007", "003", "005"):
        (people / who).mkdir(parents=True)
        for photo in sorted((need(CELEBA_ID200) / who).glob("*.jpg"))[:2]:
            (people / who / photo.name).symlink_to(photo)
    out = tmp_path / "people.h5"
    expand_to_hdf5(people, out, 1, include_original=True, **FAST)
    folder = ImageFolder(people)
    with HDF5FaceDataset(out, variants=[0], return_meta=True) as ds:
        assert ds.class_names == folder.classes == ["003", "005", "007"]
        got = [(int(lab), path) for _, labels, meta in DataLoader(ds, batch_size=4, num_workers=2)
               for lab, path in zip(labels, meta["source_path"])]
    assert got == [(t, Path(p).relative_to(people).as_posix()) for p, t in folder.samples]
    with h5py.File(out) as f:
        assert f["images"].shape == (12, 64, 64, 3) and f["variant"][()].tolist() == [0, 1] * 6


def test_an_expanded_file_of_wild_photos_read_with_h5py(tmp_path, utk_photos):
    """``expand_to_hdf5(..., compression="gzip")`` of a folder of photos as they come (wide, grey, RGBA, two faces,
    a flat picture): h5py reads gzip images, ordered records, JSON attributes; the grey source stays grey; the flat
    picture (no face) never records a rendered control; ``HDF5FaceDataset`` reads the same records by any index."""
    import h5py

    from genaug.expand.pipeline import expand_to_hdf5

    a, b = utk_photos[:2]
    src = tmp_path / "wild"
    src.mkdir()
    Image.fromarray(resized(a, 200, 120)).save(src / "a_wide.png")
    Image.fromarray(a).convert("L").save(src / "b_grey.png")
    Image.fromarray(np.dstack([b, np.full(b.shape[:2], 255, np.uint8)])).save(src / "c_rgba.png")
    Image.fromarray(np.concatenate([a, b], 1)).save(src / "d_two.png")
    Image.fromarray(np.full((100, 100, 3), 77, np.uint8)).save(src / "e_flat.png")
    out = tmp_path / "wild.h5"
    expand_to_hdf5(src, out, 2, include_original=True, codes=["yaw", "light", "tone"], compression="gzip",
                   device="cpu", workers=0, progress=False)
    with h5py.File(out, "r") as f:
        images, names = f["images"], json.loads(f.attrs["code_names"])
        assert images.dtype == np.uint8 and images.shape == (15, 64, 64, 3) and images.compression == "gzip"
        assert f["variant"][()].tolist() == [0, 1, 2] * 5
        paths = [p.decode() for p in f["source_path"][()]]
        assert paths == [p for p in ("a_wide.png", "b_grey.png", "c_rgba.png", "d_two.png", "e_flat.png") for _ in range(3)]
        assert json.loads(f.attrs["settings"])["compression"] == "gzip" and json.loads(f.attrs["class_names"]) == []
        grey = images[3:6].astype(int)
        assert (grey == grey[..., :1]).all(), "a grey source's records are grey"
        codes = f["codes"][()]
        controls = [names.index("yaw"), names.index("light")]
        assert np.isnan(codes[12:15][:, controls]).all(), "a control recorded on a photo without a face"
        assert np.isnan(codes[0::3]).all() and not np.isnan(codes[1::3]).all(axis=1).any()
        stored = images[()]
    with genaug.HDF5FaceDataset(out, return_meta=True) as ds:
        assert np.array_equal(ds[np.int64(-1)][0], stored[-1]) and ds[-1][2]["source_path"] == "e_flat.png"
        assert np.array_equal(ds[torch.tensor(4)][0], stored[4])
        with pytest.raises(TypeError, match="indices must be integers"):
            ds[0:2]


@pytest.mark.parametrize("path", [5, None, ["a.h5"]])
def test_a_path_that_is_no_path_is_named(path):
    # was Python's "expected str, bytes or os.PathLike object, not int", naming no argument
    with pytest.raises(TypeError, match="path must be an HDF5 file's path"):
        HDF5FaceDataset(path)
