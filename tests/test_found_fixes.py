"""The last audit's "found, not fixed" list: Ctrl-C of ``python -m genaug.training.grid`` exited 0;
``GenerativeFaceAug.p`` / ``BatchFaceAug.p`` set after construction were not validated; dlib's detector and 5-point
model were made once per user (landmarks, aligner, identity judge); ``ImageControl.fit_apply`` found a photo's
landmarks twice; the ``OUT.parts`` rule was written twice (expand.hdf5 and expand.runs)."""
from __future__ import annotations

import signal

import pytest

from genaug.training import grid

from test_audit12_training import GAN_TINY
from test_training import write_faces


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
