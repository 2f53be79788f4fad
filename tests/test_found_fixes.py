"""The last audit's "found, not fixed" list: Ctrl-C of ``python -m genaug.training.grid`` exited 0;
``GenerativeFaceAug.p`` / ``BatchFaceAug.p`` set after construction were not validated; dlib's detector and 5-point
model were made once per user (landmarks, aligner, identity judge); ``ImageControl.fit_apply`` found a photo's
landmarks twice; the ``OUT.parts`` rule was written twice (expand.hdf5 and expand.runs)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.training import grid

from test_audit12_training import GAN_TINY
from test_training import write_faces

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "genaug" / "assets" / "astronaut_face.jpg"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}


def _faces_extra() -> None:
    from genaug.faces.identity import faces_extra_available

    if not faces_extra_available():
        pytest.skip('needs the faces extra (pip install "genaug[faces]")')


def _astronaut(size: int = 128) -> torch.Tensor:
    """The shipped face as a (1, 3, size, size) batch in [-1, 1]."""
    rgb = np.array(Image.open(ASTRONAUT).convert("RGB").resize((size, size), Image.BICUBIC))
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 127.5 - 1


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 0)], ids=["ctrl-c", "sigterm"])
def test_a_grid_stopped_by_a_signal_exits_as_genaug_train_does(tmp_path, capsys, monkeypatch, sig, status):
    """Ctrl-C of ``python -m genaug.training.grid`` stopped the run cleanly (checkpoint saved) but exited 0, so
    ``grid ... && next`` went on with half the grid; SIGTERM (a scheduler's stop, as asked) stays 0 as for a run."""
    from genaug.training import skeleton

    faces = write_faces(tmp_path / "faces", n=12)
    logged = skeleton.Run._log_step

    def signal_at_step_1(self, *a):
        logged(self, *a)
        signal.raise_signal(sig)

    monkeypatch.setattr(skeleton.Run, "_log_step", signal_at_step_1)
    cmd = [str(faces), str(tmp_path / "grid"), "--grid", "lambda_info=0.5,1", *GAN_TINY, "--steps", "3", "--log-every", "1"]
    assert grid.main(cmd) == status
    assert "grid interrupted at lambda_info-0.5: the same command resumes it" in capsys.readouterr().out
    monkeypatch.setattr(skeleton.Run, "_log_step", logged)
    assert grid.main(cmd) == 0
    assert (tmp_path / "grid" / "lambda_info-1.0" / "metrics.json").exists()


def test_ctrl_c_outside_a_training_step_is_one_line_and_130(tmp_path, capsys, monkeypatch):
    """Ctrl-C while a run loaded its faces (before its signal handlers) was a page of traceback."""
    def ctrl_c(cfg):
        raise KeyboardInterrupt

    monkeypatch.setattr(grid, "Trainer", ctrl_c)
    assert grid.main([str(tmp_path), str(tmp_path / "grid"), "--grid", "lambda_info=0.5,1"]) == 130
    assert capsys.readouterr().err.strip() == ("python -m genaug.training.grid: interrupted (finished runs are kept: "
                                               "the same command resumes)")


def test_a_grid_that_cannot_write_its_folder_is_one_line_and_1(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert grid.main([str(tmp_path), str(tmp_path / "file" / "grid"), "--grid", "lambda_info=0.5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m genaug.training.grid: error: "), err


BAD_P = [2, -0.1, float("nan"), float("inf"), "x", None]


@pytest.mark.parametrize("value", BAD_P, ids=repr)
def test_a_bad_p_set_after_construction_is_refused_naming_p(value):
    """``aug.p = 2`` (or NaN, a string) was taken as it came, while the other later-set arguments are validated:
    p = 2 always applied, NaN never, "x" failed at the first image (perhaps in a DataLoader worker)."""
    import genaug

    aug = genaug.GenerativeFaceAug(codes=["tone"], p=0.5, device="cpu")
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        aug.p = value
    assert aug.p == 0.5
    batch = genaug.BatchFaceAug(p=0.5)
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]"):
        batch.p = value
    assert batch.p == 0.5


def test_a_good_p_set_later_is_read_as_a_float_and_serialises():
    import albumentations as A
    import numpy as np

    import genaug

    aug = genaug.GenerativeFaceAug(codes=["tone"], p=0.5, device="cpu")
    aug.p = np.float32(0.25)
    assert type(aug.p) is float and aug.p == 0.25
    assert A.from_dict(A.to_dict(aug)).p == 0.25
    aug.p = 0.0  # skipped: the photo back unchanged, no model loaded
    image = np.full((64, 64, 3), 128, np.uint8)
    assert np.array_equal(A.Compose([aug], seed=0)(image=image)["image"], image) and aug._engine is None
    batch = genaug.BatchFaceAug(p=0.5)
    batch.p = np.float32(0.25)
    assert type(batch.p) is float and batch.p == 0.25 and "p=0.25" in repr(batch)


def test_one_dlib_detector_and_5_point_model_serve_landmarks_aligners_and_the_judge(monkeypatch):
    """The landmarks' cache, each FaceAligner and the DlibJudge each made their own (a 5-point model: ~9 MB)."""
    _faces_extra()
    from genaug.faces import align, landmarks
    from genaug.faces.identity import DlibJudge

    used, detect = [], align.detect_faces
    monkeypatch.setattr(align, "detect_faces", lambda det, pred, *a: used.append((det, pred)) or detect(det, pred, *a))
    landmarks.detect_landmarks(_astronaut())
    (detector, predictor), = used
    aligners = align.FaceAligner(64), align.FaceAligner(128, "each")
    assert all(a.detector is detector and a.landmarker is predictor for a in aligners)
    assert DlibJudge().landmarker is predictor


RACE = f"""
import threading
import numpy as np
from PIL import Image
from genaug.faces.align import FaceAligner
detector = FaceAligner(64).detector
face = Image.open({str(ASTRONAUT)!r}).convert("RGB")
photos = [np.asarray(face.resize((s, s))) for s in (128, 160, 200, 240)]
photos += [np.ascontiguousarray(p[:, ::-1]) for p in photos]
boxes = lambda p: [(r.left(), r.top(), r.right(), r.bottom()) for r in detector(p, 1)]
alone = [boxes(p) for p in photos]
wrong = []
def run(order):
    for _ in range(20):
        wrong.extend(i for i in order if boxes(photos[i]) != alone[i])
threads = [threading.Thread(target=run, args=(o,)) for o in (range(8), range(7, -1, -1))]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(wrong))
"""


def test_threads_sharing_the_face_detector_take_turns():
    """dlib's detector is not safe to call from two threads at once (its scanner keeps the photo's pyramid, and the
    call lets go of the GIL): two threads on one aligner's detector (get_aligner shares one per size) found other
    boxes or crashed the process (free(): invalid pointer, a segfault). Now that one detector serves every user,
    its calls take turns."""
    _faces_extra()
    r = subprocess.run([sys.executable, "-c", RACE], env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.strip() == "0", (r.returncode, r.stdout[-200:], r.stderr[-500:])


@pytest.mark.parametrize("name, value, drawn", [("yaw", 20.0, None), ("yaw", 25.0, (-30.0, 30.0)), ("drawn_glasses", 0.8, None)])
def test_fit_apply_finds_a_photos_landmarks_once(monkeypatch, name, value, drawn):
    """``fit_apply(x, v)`` without landmarks ran dlib's detector twice on the photo: once for the face's room (fit),
    again to render (apply). The same values and pixels as fit, then apply."""
    _faces_extra()
    from genaug.faces import landmarks
    from genaug.faces.controls import IMAGE_CONTROLS

    control, x = IMAGE_CONTROLS[name], _astronaut()
    fitted = control.fit(x, value, drawn=drawn)
    alone = control.apply(x, fitted)
    calls, detect = [], landmarks.detect_landmarks
    monkeypatch.setattr(landmarks, "detect_landmarks", lambda *a, **k: calls.append(1) or detect(*a, **k))
    out, values = control.fit_apply(x, value, drawn=drawn)
    assert len(calls) == 1 and torch.equal(values, fitted) and torch.equal(out, alone)
    assert control.fit_apply(x, value, drawn=drawn)[0] is not out and len(calls) == 2  # found again on the next call


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
