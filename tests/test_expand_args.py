"""expand_to_hdf5's arguments, refused up front before any work: codes, size, variants, seed and paths."""
from __future__ import annotations

import re

import numpy as np
import pytest

from conftest import noise_pngs
from genaug.cli import main
from genaug.expand import ExpandError, expand_to_hdf5
from genaug.expand.settings import ExpandSettings, check_arguments

FAST = dict(refine_steps=0, batch_size=2, block_size=2, device="cpu", progress=False, workers=1)


@pytest.mark.parametrize("codes, needle", [("smile", "the string 'smile'"), ([], "name at least one code")])
def test_expand_refuses_a_string_or_empty_codes(noise_faces, tmp_path, codes, needle):
    # codes="smile" was read letter by letter (unknown code 's'); codes=[] silently meant the random set
    with pytest.raises(ExpandError, match=needle):
        expand_to_hdf5(noise_faces, tmp_path / "o.h5", 1, codes=codes, device="cpu", progress=False)
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize("kw, needle", [(dict(size="8x8"), "--size 8x8 is too small"),
                                        (dict(variants=1.5), "--variants must be a whole number")])
def test_expand_refuses_bad_size_and_variants_up_front(noise_faces, tmp_path, kw, needle):
    # --size 8x8 failed mid-run on the first record (parts left behind); variants=1.5 was a bare TypeError
    with pytest.raises(ExpandError, match=needle):
        expand_to_hdf5(noise_faces, tmp_path / "o.h5", **{"variants": 1, **kw}, device="cpu", progress=False)
    assert not (tmp_path / "o.h5.parts").exists()


def test_expand_takes_a_size_pair_and_names_a_size_it_cannot_read(tmp_path, tiny_bundle_path):
    # size=(W, H), as PIL gives sizes, crashed with "AttributeError: 'tuple' object has no attribute 'lower'"
    import h5py

    from genaug.expand import ExpandError, expand_to_hdf5
    from test_hdf5 import FAST, synth_folder

    src, fast = synth_folder(tmp_path / "src", per_class=2), {**FAST, "refine_steps": 0, "framing": "full"}
    expand_to_hdf5(src, tmp_path / "pair.h5", 1, bundle=tiny_bundle_path, size=(40, 36), **fast)
    expand_to_hdf5(src, tmp_path / "text.h5", 1, bundle=tiny_bundle_path, size="40x36", **fast)
    with h5py.File(tmp_path / "pair.h5") as a, h5py.File(tmp_path / "text.h5") as b:
        assert a["images"].shape == (4, 36, 40, 3)
        assert a.attrs["run_key"] == b.attrs["run_key"]  # one run, however the size was spelled
        assert np.array_equal(a["images"][()], b["images"][()])
    with pytest.raises(ExpandError, match="--size must be 'model', 'source' or WIDTHxHEIGHT"):
        expand_to_hdf5(src, tmp_path / "int.h5", 1, bundle=tiny_bundle_path, size=64, **fast)


def test_expand_refuses_a_size_over_hdf5s_chunk_limit(tmp_path, tiny_bundle_path, capsys):
    # one record is one chunk of 'images', and HDF5 refuses a chunk of 4 GiB or more: 40000x40000 failed at the first
    # record written, after the source was read and the first batch rendered (the source here does not exist: the
    # size is refused before any file is read, a usage error)
    src, out = tmp_path / "missing", tmp_path / "o.h5"
    run = ["--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--device", "cpu", "--quiet"]
    assert main(["expand", str(src), str(out), *run, "--size", "40000x40000"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genaug expand: error: --size 40000x40000 is too large") and "chunk limit" in err, err
    with pytest.raises(ValueError, match="too large"):
        expand_to_hdf5(src, out, 1, size=(37838, 37838), bundle=tiny_bundle_path, device="cpu", progress=False)
    assert not out.exists()
    assert check_arguments(1, size=(37837, 37837))[0].size == "37837x37837"  # 4294915707 bytes: within the limit


def test_variants_beyond_the_int16_variant_column_are_refused_up_front():
    # --variants 40000 rendered 32767 variants of the first image (hours), then died with numpy's OverflowError
    # traceback ("Python integer 32768 out of bounds for int16") building the 'variant' column
    ExpandSettings(variants=32767).validate()
    with pytest.raises(ExpandError, match=r"--variants must be at most 32767 .*int16.*got 40000"):
        ExpandSettings(variants=40000).validate()


def test_expand_refuses_a_seed_beyond_64_bits_and_a_failed_merge_leaves_no_temp_file(noise_faces, tmp_path, monkeypatch):
    # --seed 99999999999999999999999 ran every block, then failed at the merge with h5py's traceback
    # ("Object dtype dtype('O') has no native HDF5 equivalent"), leaving OUT.<pid>.tmp beside the output
    import genaug.expand.pipeline as pipeline

    out = tmp_path / "o.h5"
    with pytest.raises(ExpandError, match="--seed must be a whole number that fits in 64 bits"):
        expand_to_hdf5(noise_faces, out, 1, seed=10**23, device="cpu", progress=False)
    assert not (tmp_path / "o.h5.parts").exists()
    attrs = pipeline._file_attrs
    monkeypatch.setattr(pipeline, "_file_attrs", lambda *a, **k: {**attrs(*a, **k), "unwritable": 10**23})
    with pytest.raises(TypeError):
        expand_to_hdf5(noise_faces, out, 1, device="cpu", progress=False)
    assert not out.exists() and not list(tmp_path.glob("o.h5*.tmp"))
    monkeypatch.setattr(pipeline, "_file_attrs", attrs)
    assert expand_to_hdf5(noise_faces, out, 1, device="cpu", progress=False).n_records == 2  # resumes and merges


def test_an_empty_or_root_output_path_and_an_empty_source_are_named(tmp_path, monkeypatch, tiny_bundle_path):
    # OUT "" / "." / "/" failed with "PosixPath('.') has an empty name"; SOURCE "" expanded the current folder
    src = noise_pngs(tmp_path / "faces", n=1)
    monkeypatch.chdir(tmp_path / "faces")
    kw = dict(bundle=tiny_bundle_path, **FAST)
    with pytest.raises(ExpandError, match="output path is empty"):
        expand_to_hdf5(src, "", 1, **kw)
    for out in (".", "/"):
        with pytest.raises(ExpandError, match=rf"output {re.escape(out)} is a folder"):
            expand_to_hdf5(src, out, 1, **kw)
    with pytest.raises(ExpandError, match="source path is empty"):
        expand_to_hdf5("", tmp_path / "o.h5", 1, **kw)
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.h5.parts").exists()


def test_expand_cli_refuses_negative_workers(noise_faces, tmp_path, capsys):
    # --workers -1 was read as one thread without a word
    assert main(["expand", str(noise_faces), str(tmp_path / "o.h5"), "--workers", "-1", "--quiet"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last == "genaug expand: error: --workers must be a whole number >= 0 (0 or 1: decode in one thread), got -1"
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize("kw, needle", [
    (dict(overwrite="no"), "overwrite must be True or False, got 'no'"),  # true in Python: it replaced a finished file
    (dict(include_original="yes"), "--include-original must be True or False, got 'yes'"),
    (dict(merge_only="no"), "merge_only must be True or False"), (dict(progress="off"), "progress must be True or False"),
    (dict(strength="1"), "--strength must be a finite number >= 0, got '1'"),  # was "must be real number, not str"
    (dict(strength=(0.2, 0.8)), r"--strength must be a finite number >= 0, got \(0.2, 0.8\)"),
    (dict(refine_steps=1.5), "--refine-steps must be a whole number >= 0, got 1.5"),
    (dict(gate_threshold="0.5"), "--gate-threshold must be a finite similarity, got '0.5'"),
    (dict(workers=-1), "--workers must be a whole number >= 0"), (dict(workers=1.5), "--workers must be a whole number")])
def test_expand_names_a_bad_flag_strength_or_worker_count_up_front(noise_faces, tmp_path, kw, needle):
    # each was taken (overwrite="no" overwrote, workers=-1 / 1.5 ran) or failed with a TypeError naming no option
    out = tmp_path / "o.h5"
    with pytest.raises(ExpandError, match=needle):
        expand_to_hdf5(noise_faces, out, 1, **{**FAST, **kw})
    assert not out.exists() and not (tmp_path / "o.h5.parts").exists()


@pytest.mark.parametrize("kw", [dict(source=5), dict(out=5)])
def test_expand_names_a_source_or_output_that_is_no_path(noise_faces, tmp_path, kw):
    # was "expected str, bytes or os.PathLike object, not int", naming neither
    args = {"source": noise_faces, "out": tmp_path / "o.h5", **kw}
    with pytest.raises(TypeError, match=rf"{next(iter(kw))} must be a path \(a str or Path\), got int 5"):
        expand_to_hdf5(args["source"], args["out"], 1, **FAST)


def test_expand_given_a_torchvision_dataset_names_its_folder_on_one_line(noise_faces, tmp_path):
    # expand_to_hdf5(ImageFolder(root), out): "source must be a path ..., got ImageFolder Dataset ImageFolder\n
    # Number of datapoints: ..." (a repr over several lines, no word of what to pass); now its .root, on one line
    from torchvision.datasets import ImageFolder

    with pytest.raises(TypeError, match=rf"got the dataset ImageFolder: pass its folder, '{noise_faces.parent}' \(its \.root\)") as e:
        expand_to_hdf5(ImageFolder(noise_faces.parent), tmp_path / "o.h5", 1, **FAST)
    assert "\n" not in str(e.value)
    with pytest.raises(TypeError, match=r"source must be a path \(a str or Path\), got list \['a\.jpg'\]$"):
        expand_to_hdf5(["a.jpg"], tmp_path / "o.h5", 1, **FAST)
