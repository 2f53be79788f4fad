"""An expansion over time: resumes and reruns (the same run or another: gate, compression, faces extra,
numpy-typed options), --overwrite, locks, Ctrl-C and full disks, and what a failed run leaves behind."""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from filelock import FileLock
from PIL import Image

import genaug.expand.pipeline as pipeline
from conftest import noise_photo, noise_pngs
from genaug.cli.expand import main as expand_main
from genaug.engine.core import Engine
from genaug.expand import ExpandError, expand_to_hdf5
from test_hdf5 import FAST as SYNTH_FAST
from test_hdf5 import synth_folder

FAST_BLOCK4 = dict(refine_steps=0, batch_size=4, block_size=4, device="cpu", progress=False)
FAST = dict(refine_steps=0, batch_size=2, block_size=2, device="cpu", progress=False, workers=1)
FAST_BLOCK1 = dict(refine_steps=0, batch_size=1, block_size=1, device="cpu", progress=False)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def faces(tmp_path) -> Path:
    return noise_pngs(tmp_path / "faces", (40, 36, 3))


def _cli(faces: Path, out: Path, bundle: Path, *extra: str) -> list[str]:
    return ["expand", str(faces), str(out), "--variants", "1", "--bundle", str(bundle), "--refine-steps", "0",
            "--device", "cpu", "--quiet", *extra]


def test_numpy_scalar_options_are_taken_and_an_int_strength_is_the_same_run(faces, tmp_path, tiny_bundle_path):
    # options from a numpy sweep (`for seed in np.arange(3)`, a config read through numpy) passed the checks, then
    # failed with "Object of type int64 is not JSON serializable" (the run key); strength=1 and strength=1.0 (the
    # CLI's) were different runs, so the CLI refused to resume or finish an API run's parts
    out = tmp_path / "o.h5"
    kw = dict(FAST_BLOCK4, bundle=tiny_bundle_path, batch_size=np.int64(2), block_size=np.int64(1))
    res = expand_to_hdf5(faces, out, np.int64(2), seed=np.int64(3), strength=np.float32(0.5), quality_threshold=None, **kw)
    assert res.n_records == 4
    with h5py.File(out) as f:
        assert f.attrs["seed"] == 3 and '"variants": 2' in f.attrs["settings"] and '"strength": 0.5' in f.attrs["settings"]
    plain = dict(FAST_BLOCK4, bundle=tiny_bundle_path, batch_size=2, block_size=1)
    assert expand_to_hdf5(faces, out, 2, seed=3, strength=0.5, **plain).blocks_done == 0  # the same run: complete
    out1 = tmp_path / "one.h5"
    expand_to_hdf5(faces, out1, 1, strength=1, **FAST_BLOCK4, bundle=tiny_bundle_path)
    assert expand_main(_cli(faces, out1, tiny_bundle_path, "--block-size", "4", "--batch-size", "4")[1:]) == 0  # already complete
    with pytest.raises(ExpandError, match="whole numbers"):
        expand_to_hdf5(faces, tmp_path / "x.h5", 1, **{**FAST_BLOCK4, "batch_size": 2.5}, bundle=tiny_bundle_path)


def test_rerunning_a_finished_expansion_with_another_compression_is_not_a_silent_no_op(faces, tmp_path, tiny_bundle_path):
    # compression is not part of the run key (parts merge into any filter), so a finished lzf file rerun with
    # --compression gzip (README: what h5dump / MATLAB need) said "already complete; nothing to do" and stayed lzf
    out = tmp_path / "o.h5"
    kw = dict(FAST_BLOCK4, bundle=tiny_bundle_path)
    expand_to_hdf5(faces, out, 1, compression="lzf", **kw)
    assert expand_to_hdf5(faces, out, 1, compression="lzf", **kw).blocks_done == 0  # the same command: nothing to do
    with pytest.raises(ExpandError, match="compressed with lzf, not gzip; pass --overwrite"):
        expand_to_hdf5(faces, out, 1, compression="gzip", **kw)
    expand_to_hdf5(faces, out, 1, compression="gzip", overwrite=True, **kw)
    with h5py.File(out) as f:
        assert (f["images"].compression, f["images"].compression_opts) == ("gzip", 4)
    assert expand_to_hdf5(faces, out, 1, compression="gzip-4", **kw).blocks_done == 0  # the same filter


def test_compression_takes_a_gzip_level_as_an_int_as_h5py_does(faces, tmp_path, tiny_bundle_path):
    # h5py's create_dataset(compression=4) is gzip at level 4 (True: gzip); expand_to_hdf5(compression=4) failed with
    # "AttributeError: 'int' object has no attribute 'startswith'" after the model was loaded
    # a numpy int (np.int64(4)) was written and then failed at the merge: "Object of type int64 is not JSON serializable"
    for given, want, name in ((4, ("gzip", 4), "gzip-4"), (True, ("gzip", 4), "gzip"), (False, (None, None), "none"),
                              (np.int64(6), ("gzip", 6), "gzip-6")):
        out = tmp_path / f"{given}.h5"
        expand_to_hdf5(faces, out, 1, compression=given, **FAST_BLOCK4, bundle=tiny_bundle_path)
        with h5py.File(out) as f:
            assert (f["images"].compression, f["images"].compression_opts) == want
            assert json.loads(f.attrs["settings"])["compression"] == name  # recorded as --compression writes it
    for bad in (12, 2.5, b"gzip"):
        with pytest.raises(ValueError, match="unknown compression"):
            expand_to_hdf5(faces, tmp_path / "x.h5", 1, compression=bad, **FAST_BLOCK4, bundle=tiny_bundle_path)


def accept_all(original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
    return torch.ones(len(original))


def reject_all(original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
    return torch.zeros(len(original))


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


def constant(value: float, original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
    return torch.full((len(original),), value)


def constant_gate(value: float):
    return lambda original, augmented: constant(value, original, augmented)


def test_a_gate_differing_only_in_what_it_captures_is_another_run(tmp_path, tiny_bundle_path):
    # a custom gate was keyed by its qualified name and code only: every functools.partial was "functools.partial",
    # and two closures of one factory were one gate, so a resume under partial(constant, 0.0) continued the parts made
    # under partial(constant, 1.0), mixing records made under two gates; the values they capture are now in the key
    from functools import partial

    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    run = dict(bundle=tiny_bundle_path, gate_threshold=0.5, **FAST)
    for name, accept, reject in (("partial", partial(constant, 1.0), partial(constant, 0.0)),
                                 ("closure", constant_gate(1.0), constant_gate(0.0))):
        out = tmp_path / f"{name}.h5"
        _interrupted(lambda: expand_to_hdf5(src, out, 1, gate=accept, **run))
        with pytest.raises(ExpandError, match=r"holds parts of a different run \(gate differ.*1\.0.*0\.0"):
            expand_to_hdf5(src, out, 1, gate=reject, **run)
        again = partial(constant, 1.0) if name == "partial" else constant_gate(1.0)  # the same gate, made again
        assert expand_to_hdf5(src, out, 1, gate=again, **run).blocks_done == 1  # resumes


def test_builtin_gates_are_keyed_by_their_own_names():
    # a gate with no Python code (a builtin such as torch.dist or F.pairwise_distance, a numpy ufunc) was keyed by its
    # type's __call__ ("?.builtin_function_or_method.__call__"): every builtin was one gate, so a resume under
    # F.cosine_similarity continued parts made under F.pairwise_distance (the key before this session named them)
    from genaug.expand.runs import gate_key

    builtins = [torch.dist, torch.nn.functional.pairwise_distance, torch.nn.functional.cosine_similarity, np.add, np.subtract]
    keys = [gate_key(g) for g in builtins]
    assert len(set(keys)) == len(keys) and all("dist" in k or "similarity" in k for k in keys[:3]), keys
    assert gate_key(torch.dist) == gate_key(torch.dist)


def test_a_gate_without_a_threshold_is_refused_not_silently_inactive(tmp_path, tiny_bundle_path):
    # expand_to_hdf5(gate=judge) without gate_threshold gated at 0.0: a gate scoring similarities in [0, 1] re-drew
    # nothing (even one rejecting every edit), and the run cost the judge's time for no effect
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=1)
    with pytest.raises(ExpandError, match="gate= needs gate_threshold="):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, gate=reject_all, bundle=tiny_bundle_path, **FAST)
    assert not (tmp_path / "o.h5").exists() and not (tmp_path / "o.h5.parts").exists()


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


def test_resuming_an_output_inside_an_imagefolder_source_is_the_same_run(tmp_path, tiny_bundle_path):
    # OUT inside the source folder: on resume its parts folder (people/out.h5.parts/) was read as an empty class,
    # which renumbered the classes after it, so the rerun was refused as "parts of a different run"
    root = tmp_path / "people"
    noise_pngs(root / "ann", (40, 40, 3), n=1), noise_pngs(root / "zed", (40, 40, 3), n=1)
    out = root / "out.h5"
    kw = dict(bundle=tiny_bundle_path, **FAST_BLOCK1)
    expand_to_hdf5(root, out, 1, shard="0/2", **kw)  # block 0 done, block 1 left: an interrupted run
    assert (root / "out.h5.parts" / "part-000000.h5").exists()
    res = expand_to_hdf5(root, out, 1, **kw)
    assert res.blocks_done == 1
    with h5py.File(out, "r") as f:
        assert f["label"][()].tolist() == [0, 1] and f.attrs["class_names"] == '["ann", "zed"]'


def test_a_run_that_stopped_before_its_first_part_does_not_block_the_corrected_rerun(tmp_path, tiny_bundle_path):
    # --size source on a folder with no readable image stopped after writing OUT.parts/manifest.json; once the user
    # added a photo, the rerun was refused: "holds parts of a different run (source differ ...)" with no part there
    root = tmp_path / "faces"
    root.mkdir()
    (root / "a.png").write_bytes(b"not an image")
    out = tmp_path / "o.h5"
    with pytest.raises(ExpandError, match="no readable images"):
        expand_to_hdf5(root, out, 1, size="source", bundle=tiny_bundle_path, **FAST_BLOCK1)
    noise_pngs(root / "x", (40, 40, 3), n=1)
    (root / "x" / "0.png").rename(root / "b.png")
    res = expand_to_hdf5(root, out, 1, size="source", bundle=tiny_bundle_path, **FAST_BLOCK1)
    assert res.n_records == 1 and [p for _, p, _ in res.skipped] == ["a.png"]


def _seed_and_rows(path) -> tuple[int, int]:
    with h5py.File(path, "r") as f:
        return int(f.attrs["seed"]), f["images"].shape[0]


def test_an_overwrite_keeps_the_old_output_until_the_new_one_is_complete(tmp_path, tiny_bundle_path, monkeypatch):
    # `genaug expand SRC OUT --overwrite` deleted OUT before rendering anything: Ctrl-C or a full disk lost the old file
    import genaug.expand.parts as parts
    import genaug.expand.pipeline as pipeline

    src, out = noise_pngs(tmp_path / "faces", (40, 40, 3), n=4), tmp_path / "o.h5"
    kw = dict(bundle=tiny_bundle_path, **FAST)
    expand_to_hdf5(src, out, 1, seed=1, **kw)
    before = out.read_bytes()

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:  # stopped before any part of the new run
        m.setattr(pipeline, "_expand_blocks", interrupted)
        with pytest.raises(KeyboardInterrupt):
            expand_to_hdf5(src, out, 1, seed=2, overwrite=True, **kw)
    assert out.read_bytes() == before and _seed_and_rows(out) == (1, 4)

    def full_disk(tmp, *a, **k):
        tmp.write_bytes(b"half")
        raise RuntimeError("Unable to flush raw data (file write failed: errno = 28, 'No space left on device')")

    with monkeypatch.context() as m:  # every part rendered, the merge fails
        m.setattr(parts, "_write_merged", full_disk)
        with pytest.raises(OSError, match="No space left"):
            expand_to_hdf5(src, out, 1, seed=2, overwrite=True, **kw)
    assert out.read_bytes() == before and not list(tmp_path.glob("o.h5.*.tmp"))
    res = expand_to_hdf5(src, out, 1, seed=2, overwrite=True, **kw)  # the same command resumes: nothing re-rendered
    assert res.blocks_done == 0 and _seed_and_rows(out) == (2, 4) and not (tmp_path / "o.h5.parts").exists()


def test_overwrite_never_deletes_an_output_path_that_is_not_hdf5(faces, tmp_path, tiny_bundle_path, capsys):
    # `genaug expand faces/ faces/0.png --overwrite` deleted the source photo (any existing OUT was unlinked)
    victim = faces / "0.png"
    before = victim.read_bytes()
    assert expand_main(_cli(faces, victim, tiny_bundle_path, "--overwrite")[1:]) == 1
    err = capsys.readouterr().err
    assert "is not an HDF5 file" in err and victim.read_bytes() == before
    with pytest.raises(ExpandError, match="not an HDF5 file"):
        expand_to_hdf5(faces, victim, 1, bundle=tiny_bundle_path, overwrite=True, **FAST_BLOCK4)
    assert victim.read_bytes() == before


def test_a_second_expansion_of_the_same_output_is_refused_while_the_first_runs(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=2)
    out = tmp_path / "o.h5"
    parts = tmp_path / "o.h5.parts"
    parts.mkdir()
    held = FileLock(parts / "lock", timeout=0)  # what a running expansion of o.h5 holds
    held.acquire()
    try:
        with pytest.raises(ExpandError, match="another expansion is writing .*o.h5"):
            expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **SYNTH_FAST)
        # another shard's lock does not block this shard
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, shard="1/2", **SYNTH_FAST)
    finally:
        held.release()
    assert not out.exists()
    res = expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **SYNTH_FAST)  # the lock is free: it runs (and resumes shard 1's blocks)
    assert res.path == out and out.exists()
    assert not parts.exists()  # merged: no folder (nor lock file) left beside the output


def test_an_early_error_leaves_no_parts_folder(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=2)
    out = tmp_path / "o.h5"
    out.write_bytes(b"not an expansion")
    with pytest.raises(ExpandError, match="is not an HDF5 file"):
        expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **SYNTH_FAST)
    assert not (tmp_path / "o.h5.parts").exists()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_merges_temporary_file_is_removed_and_a_live_ones_kept(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=2)
    out = tmp_path / "o.h5"
    stale = tmp_path / f"o.h5.{_dead_pid()}.tmp"
    stale.write_bytes(b"x" * 1000)  # what a merge killed by SIGKILL leaves
    live = tmp_path / f"o.h5.{os.getppid()}.tmp"  # a live process's: not ours to remove
    live.write_bytes(b"y")
    expand_to_hdf5(src, out, 1, bundle=tiny_bundle_path, **SYNTH_FAST)
    assert out.exists() and not stale.exists() and live.exists()


def test_a_failed_merge_only_leaves_nothing_behind(tmp_path):
    # it wrote OUT.parts/manifest.json, which then refused the real run ("parts of a different run")
    src = tmp_path / "faces"
    src.mkdir()
    for i in range(2):
        Image.fromarray(noise_photo(i, 40)).save(src / f"{i}.png")
    out = tmp_path / "o.h5"
    with pytest.raises(ExpandError, match="not finished"):
        expand_to_hdf5(src, out, 2, merge_only=True, device="cpu", progress=False)
    assert not out.exists() and not (tmp_path / "o.h5.parts").exists()
    res = expand_to_hdf5(src, out, 1, device="cpu", progress=False, framing="full")
    assert res.n_records > 0 and out.exists()


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


def test_cli_an_output_it_cannot_create_is_one_line_not_a_traceback(faces, tmp_path, tiny_bundle_path, capsys):
    # an OUT under a read-only folder (PermissionError / "Read-only file system") or under a file (NotADirectoryError)
    # ended `genaug expand` in a traceback from pathlib's mkdir of OUT.parts: only FileNotFoundError was caught
    (tmp_path / "notes.txt").write_text("x")
    out = tmp_path / "notes.txt" / "o.h5"
    assert expand_main(_cli(faces, out, tiny_bundle_path)[1:]) == 1
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
    assert expand_main(_cli(faces, tmp_path / "o.h5", tiny_bundle_path)[1:]) == 1
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
    assert expand_main(_cli(faces, out, tiny_bundle_path)[1:]) == 1
    err = capsys.readouterr().err
    assert err.startswith("genaug expand: error: writing") and "No space left on device" in err
    assert list(Path(str(out) + ".parts").glob("part-*.h5")) and not list(tmp_path.glob("o.h5.*.tmp"))


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
        *before, error = r.stderr.splitlines()  # (before it: the tiny bundle's edits that changed no pixel, counted)
        assert error.startswith(f"genaug expand: error: {what}") and r.stderr.endswith("\n"), r.stderr
        assert all("kept the unedited source: their edit changed no pixel" in line for line in before), r.stderr
        assert "File too large" in error and not out.exists()


def test_the_parts_folder_rule_has_one_home(tmp_path):
    """``OUT.parts`` was written twice: expand.runs.parts_dir_of and HDF5FaceDataset's hint (``path + ".parts"``, so
    ``out.h5/`` looked for ``out.h5/.parts``); runs imports it from expand.hdf5 (hdf5 importing runs is a circle)."""
    import re

    from genaug.expand import hdf5, runs

    assert runs.parts_dir_of is hdf5.parts_dir_of
    parts = hdf5.parts_dir_of(tmp_path / "out.h5")
    parts.mkdir()
    for name in ("out.h5", "out.h5/"):
        with pytest.raises(FileNotFoundError, match=f"unfinished: {re.escape(str(parts))} holds its parts"):
            hdf5.HDF5FaceDataset(f"{tmp_path}/{name}")
