"""An eleventh user audit (2026-12-05), the offline expansion and the command line as a demanding h5py / shell user
meets them: linked class folders, an output inside the source, file names that are not UTF-8, string labels and the
help text (each test failed before its fix)."""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torchvision

from conftest import noise_pngs
from genaug.cli.main import main
from genaug.expand import ExpandError, HDF5FaceDataset, expand_to_hdf5
from genaug.expand.sources import FolderSource, HDF5Source

FAST = dict(refine_steps=0, batch_size=1, block_size=1, device="cpu", progress=False)


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

def test_resuming_an_output_inside_an_imagefolder_source_is_the_same_run(tmp_path, tiny_bundle_path):
    # OUT inside the source folder: on resume its parts folder (people/out.h5.parts/) was read as an empty class,
    # which renumbered the classes after it, so the rerun was refused as "parts of a different run"
    root = tmp_path / "people"
    noise_pngs(root / "ann", (40, 40, 3), n=1), noise_pngs(root / "zed", (40, 40, 3), n=1)
    out = root / "out.h5"
    kw = dict(bundle=tiny_bundle_path, **FAST)
    expand_to_hdf5(root, out, 1, shard="0/2", **kw)  # block 0 done, block 1 left: an interrupted run
    assert (root / "out.h5.parts" / "part-000000.h5").exists()
    res = expand_to_hdf5(root, out, 1, **kw)
    assert res.blocks_done == 1
    with h5py.File(out, "r") as f:
        assert f["label"][()].tolist() == [0, 1] and f.attrs["class_names"] == '["ann", "zed"]'


def test_a_file_name_that_is_not_utf8_is_expanded_and_augmented(tmp_path, tiny_bundle_path):
    # a Latin-1 file name (an old archive): expand stopped the whole run ("'utf-8' codec can't encode character
    # '\udce9'", naming no file) and augment crashed with an IndexError traceback after a half-appended batch
    root = noise_pngs(tmp_path / "faces", (40, 40, 3), n=2)
    (root / "1.png").rename(root / os.fsdecode(b"caf\xe9.png"))
    (root / os.fsdecode(b"bad\xff.png")).write_bytes(b"not an image")
    out = tmp_path / "o.h5"
    expand_to_hdf5(root, out, 1, bundle=tiny_bundle_path, **FAST)
    with h5py.File(out, "r") as f:
        assert sorted(p.decode() for p in f["source_path"][()]) == ["0.png", "caf\\xe9.png"]
        assert [p.decode() for p in f["skipped/path"][()]] == ["bad\\xff.png"]
    args = ["augment", str(root), "--out", str(tmp_path / "aug"), "--variants", "1", "--bundle", str(tiny_bundle_path),
            "--device", "cpu"]
    assert main(args) == 0
    assert (tmp_path / "aug" / os.fsdecode(b"caf\xe9_aug00.png")).is_file()


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


def test_expand_help_does_not_append_default_none_to_options_that_describe_their_default(capsys):
    # "--gate-threshold ... (default: off) (default: None)", "--refine-steps ... (default: the bundle's ...) (default:
    # None)": the defaults formatter added a second, contradicting default
    with pytest.raises(SystemExit):
        main(["expand", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: off)" in text and "(default: lzf)" in text


def test_augment_writes_into_a_folder_above_its_input(tmp_path, tiny_bundle_path):
    # `genaug augment photos/raw --out photos` (or one photo of it) was refused as "no input images in photos/raw
    # outside --out photos": every input lies below --out, taken for an --out inside the input folder
    raw = noise_pngs(tmp_path / "photos" / "raw", (40, 40, 3), n=1)
    common = ["--variants", "1", "--bundle", str(tiny_bundle_path), "--device", "cpu"]
    assert main(["augment", str(raw), "--out", str(tmp_path / "photos"), *common]) == 0
    assert main(["augment", str(raw / "0.png"), "--out", str(tmp_path), *common]) == 0
    assert (tmp_path / "photos" / "0_aug00.png").is_file() and (tmp_path / "0_aug00.png").is_file()
    assert main(["augment", str(raw), "--out", str(raw), *common]) == 1  # inside (here: at) the input: still refused


def test_demo_does_not_write_its_picture_over_one_of_the_images(tmp_path, tiny_bundle_path, capsys):
    # `genaug demo --images me.jpg --out me.jpg` replaced the user's photo with the demo picture
    photo = noise_pngs(tmp_path / "me", (40, 40, 3), n=1) / "0.png"
    before = photo.read_bytes()
    assert main(["demo", "--images", str(photo), "--out", str(photo), "--bundle", str(tiny_bundle_path), "--device", "cpu"]) == 1
    assert photo.read_bytes() == before and "is one of the --images" in capsys.readouterr().err


def test_a_run_that_stopped_before_its_first_part_does_not_block_the_corrected_rerun(tmp_path, tiny_bundle_path):
    # --size source on a folder with no readable image stopped after writing OUT.parts/manifest.json; once the user
    # added a photo, the rerun was refused: "holds parts of a different run (source differ ...)" with no part there
    root = tmp_path / "faces"
    root.mkdir()
    (root / "a.png").write_bytes(b"not an image")
    out = tmp_path / "o.h5"
    with pytest.raises(ExpandError, match="no readable images"):
        expand_to_hdf5(root, out, 1, size="source", bundle=tiny_bundle_path, **FAST)
    noise_pngs(root / "x", (40, 40, 3), n=1)
    (root / "x" / "0.png").rename(root / "b.png")
    res = expand_to_hdf5(root, out, 1, size="source", bundle=tiny_bundle_path, **FAST)
    assert res.n_records == 1 and [p for _, p, _ in res.skipped] == ["a.png"]
