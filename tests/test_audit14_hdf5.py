"""A fourteenth audit of the offline expansion, as an experienced h5py / PyTorch user meets it: the output opened with
plain h5py (SWMR, libver="latest", fancy indexing, what each dataset means), a reader whose file was replaced under it,
class names stored the way h5py stores lists, and resumes or reruns with another identity gate or without dlib (each
test failed before its fix)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import genaug.expand.pipeline as pipeline
from conftest import noise_pngs
from genaug.engine.core import Engine
from genaug.expand import ExpandError, HDF5FaceDataset, expand_to_hdf5
from genaug.expand.sources import HDF5Source

FAST = dict(refine_steps=0, batch_size=2, block_size=2, device="cpu", workers=1, progress=False)


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
        for name in ("images", "label", "source_index", "source_path", "variant", "codes", "score", "skipped"):
            assert len(f[name].attrs["description"]) > 20, name
        assert "code_names" in f["codes"].attrs["description"] and "class_names" in f["label"].attrs["description"]
        assert f["images"].chunks == (1, *f["images"].shape[1:])  # one row per chunk: random access reads one row
        assert list(f["source_path"].asstr()[[0, 4, 8]]) == ["0.png", "1.png", "2.png"]
        assert f["skipped/path"].asstr()[()].tolist() == []
        rows = f["images"][[1, 4, 7]]  # h5py's fancy indexing (sorted lists)
        np.testing.assert_array_equal(rows, f["images"][()][[1, 4, 7]])
        assert f["source_index"][[1, 4, 7]].tolist() == [0, 1, 2] and f["variant"][[1, 4, 7]].tolist() == [1, 1, 1]


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


def accept_all(original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
    return torch.ones(len(original))


def reject_all(original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
    return torch.zeros(len(original))


def test_another_identity_gate_is_another_run(tmp_path, tiny_bundle_path):
    # the run key held the gate's threshold but not the gate: rerunning a finished expansion with another gate
    # returned the old file ("already complete; nothing to do"), and a resume mixed parts gated by both
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    run = dict(bundle=tiny_bundle_path, gate_threshold=0.5, **FAST)
    expand_to_hdf5(src, tmp_path / "o.h5", 1, gate=accept_all, **run)
    with pytest.raises(ExpandError, match="already exists"):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, gate=reject_all, **run)
    assert expand_to_hdf5(src, tmp_path / "o.h5", 1, gate=accept_all, **run).blocks_done == 0  # the same gate: done
    with pytest.raises(ExpandError, match="already exists"):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, gate=lambda a, b: torch.zeros(len(a)), **run)
    out = tmp_path / "p.h5"
    _interrupted(lambda: expand_to_hdf5(src, out, 1, gate=accept_all, **run))
    with pytest.raises(ExpandError, match=r"holds parts of a different run \(gate differ"):
        expand_to_hdf5(src, out, 1, gate=reject_all, **run)
    assert expand_to_hdf5(src, out, 1, gate=accept_all, **run).blocks_done == 1  # the same gate resumes


def _interrupted(expand) -> None:
    """Run ``expand`` with Ctrl-C at the second render batch (one part finished)."""
    render, calls = Engine.render_edits, []

    def ctrl_c(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return render(self, *a, **k)

    with pytest.MonkeyPatch.context() as m:
        m.setattr(Engine, "render_edits", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            expand()


def test_a_resume_after_the_faces_extra_came_or_went_is_another_run(tmp_path, tiny_bundle_path, monkeypatch):
    # with genaug[faces] (dlib) installed, framing "auto" frames a photo by its detected face and the controls place
    # their landmarks by dlib; a run resumed after installing or removing it mixed parts framed both ways
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    out = tmp_path / "o.h5"
    _interrupted(lambda: expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST))
    have = pipeline.faces_extra_available()
    monkeypatch.setattr(pipeline, "faces_extra_available", lambda: not have)
    with pytest.raises(ExpandError, match=f"faces_extra: {have!r} -> {not have!r}"):
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST)
    monkeypatch.undo()
    assert expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST).blocks_done == 1
    with h5py.File(out) as f:
        assert f["images"].shape[0] == 4 and json.loads(f.attrs["settings"])["variants"] == 1


def test_ctrl_c_keeps_a_block_whose_rows_were_all_queued_for_the_writer(tmp_path, tiny_bundle_path, monkeypatch):
    # Ctrl-C ("finished blocks are kept: rerun the same command to resume") dropped every message still queued for
    # the part writer: a block rendered in full but not yet written (a writer behind a fast GPU) was lost
    import threading

    import genaug.expand.parts as parts

    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    out = tmp_path / "o.h5"
    behind, create = threading.Event(), parts.create_records
    monkeypatch.setattr(parts, "create_records", lambda *a, **k: (behind.wait(10), create(*a, **k))[1])
    render, calls = Engine.render_edits, []

    def ctrl_c(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # block 0 queued in full (open, rows, close), the writer still opening its part
            threading.Timer(0.2, behind.set).start()
            raise KeyboardInterrupt
        return render(self, *a, **k)

    monkeypatch.setattr(Engine, "render_edits", ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST)
    assert [p.name for p in (tmp_path / "o.h5.parts").glob("part-*")] == ["part-000000.h5"]
    monkeypatch.undo()
    assert expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **FAST).blocks_done == 1


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


def test_a_gate_without_a_threshold_is_refused_not_silently_inactive(tmp_path, tiny_bundle_path):
    # expand_to_hdf5(gate=judge) without gate_threshold gated at 0.0: a gate scoring similarities in [0, 1] re-drew
    # nothing (even one rejecting every edit), and the run cost the judge's time for no effect
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=1)
    with pytest.raises(ExpandError, match="gate= needs gate_threshold="):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, gate=reject_all, bundle=tiny_bundle_path, **FAST)
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.h5.parts").exists()


@pytest.mark.parametrize("labels", [[[4], [5], [6]], [4, 5]], ids=["n-by-1", "one-short"])
def test_labels_that_are_not_one_per_image_are_named_by_the_reader_up_front(tmp_path, labels):
    # labels (N, 1) failed on the first item ("only 0-dimensional arrays can be converted", numpy's deprecation) and a
    # list one short failed in h5py at the last item of an epoch ("Index (2) out of range"); the expander named both
    path = tmp_path / "faces.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 16, 16, 3), np.uint8)
        f["labels"] = np.array(labels)
    with pytest.raises(ValueError, match=r"'labels' has shape .* but 'images' holds 3 images; it must be \(3,\)"):
        HDF5FaceDataset(path)


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
