"""A twelfth user audit, the offline expansion and the command line as an h5py / shell user meets them: a huge
``--variants``, an empty or root output path, a thumbnail that fixed ``--size source``, warnings shown as Python shows
them and skip lines printed onto the progress bar (each test failed before its fix)."""
from __future__ import annotations

import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image

from conftest import noise_pngs
from genaug.cli.main import main
from genaug.expand import ExpandError, expand_to_hdf5
from genaug.expand.settings import ExpandSettings

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(refine_steps=0, batch_size=2, block_size=2, device="cpu", progress=False, workers=1)


def test_variants_beyond_the_int16_variant_column_are_refused_up_front():
    # --variants 40000 rendered 32767 variants of the first image (hours), then died with numpy's OverflowError
    # traceback ("Python integer 32768 out of bounds for int16") building the 'variant' column
    ExpandSettings(variants=32767).validate()
    with pytest.raises(ExpandError, match=r"--variants must be at most 32767 .*int16.*got 40000"):
        ExpandSettings(variants=40000).validate()


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


def test_cli_warnings_are_one_line_naming_the_command(tmp_path, tiny_bundle_path, capsys):
    # a warning (an empty class folder) showed as "/…/genaug/expand/pipeline.py:316: UserWarning: …" followed by the
    # library's source line that warned
    root = tmp_path / "people"
    noise_pngs(root / "bob", n=1)
    (root / "ann").mkdir()
    run = ["--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--device", "cpu", "--quiet", "--variants", "1"]
    assert main(["expand", str(root), str(tmp_path / "o.h5"), *run]) == 0
    err = capsys.readouterr().err
    assert re.search(r"^genaug expand: warning: .*\['ann'\] hold no images", err, re.M), err
    assert ".py:" not in err and "UserWarning" not in err and "open_source(" not in err


def test_augment_skip_lines_are_not_written_onto_the_progress_bar(tmp_path, tiny_bundle_path, capsys):
    # "augmenting:   0%|          | 0/2 [00:00<?, ?img/s]genaug augment: skipped …": print() wrote the line after the
    # bar's text; and augment had no --quiet for scripts and logs
    src = noise_pngs(tmp_path / "faces", n=1)
    (src / "00_broken.jpg").write_bytes(b"not a jpeg")
    run = ["--bundle", str(tiny_bundle_path), "--device", "cpu", "--variants", "1"]
    assert main(["augment", str(src), "--out", str(tmp_path / "a"), *run]) == 0
    err = capsys.readouterr().err
    lines = re.split(r"[\r\n]", err)
    assert any(l.startswith("genaug augment: skipped") for l in lines), err
    assert not any("genaug augment: skipped" in l and not l.startswith("genaug augment") for l in lines), err
    assert main(["augment", str(src), "--out", str(tmp_path / "b"), *run, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "augmenting" not in err and "genaug augment: skipped" in err


def _expand_with_file_size_limit(src, out, bundle, limit: int, variants: int) -> subprocess.CompletedProcess:
    """``genaug expand`` in a child whose files cannot grow past ``limit`` bytes (RLIMIT_FSIZE: writes fail with
    EFBIG as on a full disk, and the child survives to say so, or crashes: a segfault must not pass as an error)."""
    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "NO_ALBUMENTATIONS_UPDATE": "1"}
    cmd = [sys.executable, "-m", "genaug", "expand", str(src), str(out), "--bundle", str(bundle), "--refine-steps", "0",
           "--device", "cpu", "--quiet", "--workers", "1", "--compression", "none", "--block-size", "1", "--variants",
           str(variants)]
    return subprocess.run(cmd, preexec_fn=limited, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not hasattr(signal, "SIGXFSZ"), reason="needs POSIX file size limits")
def test_a_full_disk_is_one_error_line_not_a_segfault(tmp_path, tiny_bundle_path):
    # a disk filling up while a part or the merged file was written: after the one-line error the process died of
    # SIGSEGV (exit status 139, "Segmentation fault"), HDF5 flushing the failed file's cached chunks as they were
    # freed; the merge's error also spanned two lines (HDF5's "time = …\n, filename = …")
    src = noise_pngs(tmp_path / "faces", (32, 32, 3), n=2)
    out = tmp_path / "o.h5"
    for limit, variants, what in ((12_000, 6, "HDF5 writer failed"), (480_000, 80, f"writing {out} failed")):
        shutil.rmtree(tmp_path / "o.h5.parts", ignore_errors=True)
        r = _expand_with_file_size_limit(src, out, tiny_bundle_path, limit, variants)
        assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
        assert r.stderr.startswith(f"genaug expand: error: {what}") and r.stderr.count("\n") == 1, r.stderr
        assert "File too large" in r.stderr and not out.exists()


def test_a_file_given_as_a_bundle_is_named_not_its_folder(tmp_path, capsys):
    from genaug.cli.main import main

    h5 = tmp_path / "out.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert main(["info", str(h5)]) != 0
    err = capsys.readouterr().err
    assert f"{h5} is not a genaug bundle" in err and len(err.strip().splitlines()) == 1
