"""A training run folder over time: the same command resumes it (nothing logged twice; exactly after Ctrl-C),
--overwrite starts again, other kinds, settings or faces and busy folders are refused, stops are reported."""
from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import last_err
from genaug.training.cli import main as train_main
from genaug.training.edit_loop import main as edit_main
from test_training import config, read_log, write_faces
from test_training_options import EDIT_TINY, GAN_TINY


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return write_faces(tmp_path_factory.mktemp("faces"), n=12)


def test_rerunning_a_finished_command_does_not_log_its_evaluation_again(faces, tmp_path):
    """The README: "the same command resumes ... log.jsonl never repeats a step". Rerunning a finished
    run (or resuming at an evaluated checkpoint) evaluated it again and appended a second
    ``{"step": N, "eval": ...}`` line each time."""
    cmd = [str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "2"]
    assert edit_main(cmd) == 0
    ckpt = (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns
    assert edit_main(cmd) == 0  # the same command again: nothing left to train
    assert edit_main(cmd) == 0
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if "eval" in r] == [2]
    assert [r["step"] for r in log if "eval" not in r] == [1, 2]
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns == ckpt  # nothing new to save
    assert (tmp_path / "run" / "bundle" / "config.json").is_file()
    assert edit_main([*cmd[:-1], "3"]) == 0  # more steps continue and evaluate the new end once
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if "eval" in r] == [2, 3] and [r["step"] for r in log if "eval" not in r] == [1, 2, 3]


def test_the_edit_kind_takes_overwrite_as_the_readme_says(faces, tmp_path, capsys):
    """README: "`--overwrite` starts a run folder again" (in the edit kind's paragraph), but
    ``genaug train --kind edit`` had no such option (argparse: unrecognized arguments), and the
    refusal of other settings only said "another folder"."""
    out = tmp_path / "run"
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--steps", "2"]) == 0
    (out / "samples" / "keep.txt").write_text("old")
    other = [str(faces), str(out), *EDIT_TINY, "--continuous", "2", "--steps", "1"]
    assert edit_main(other) == 1
    assert "--overwrite" in last_err(capsys)
    assert edit_main([*other, "--overwrite"]) == 0
    log = read_log(out)
    assert [r["step"] for r in log] == [1, 1] and "eval" in log[1]  # the old run's lines went
    assert not (out / "samples" / "keep.txt").exists()
    assert json.loads((out / "bundle" / "config.json").read_text())["training"]["steps"] == 1
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 1
    assert edit_main([*other[:-1], "2", "--no-overwrite"]) == 0  # then the same command resumes it
    assert [r["step"] for r in read_log(out) if "eval" not in r] == [1, 2]


def test_a_checkpoint_of_another_kind_or_shape_is_refused_clearly(faces, tmp_path, capsys):
    """An infogan run folder whose shared settings happen to equal the edit command's (the
    infogan config has no ``identity_unsafe``, ``lr``, ...: they read as the edit defaults) was
    resumed by the edit kind: torch's ``Error(s) in loading state_dict for EditEncoder`` traceback.
    The same with a run folder whose train_config.json is missing and whose networks differ."""
    from genaug.training.loop import train

    gan = tmp_path / "gan"
    train(config(faces, gan, image_size=16, g_width=4, d_width=4, e_width=4, content_channels=2, noise_dim=4,
                 categorical="glasses:2:Eyeglasses,male:2:Smiling", continuous="1", batch_size=4, steps=1,
                 predictor_steps=1, holdout=2, log_every=1, sample_every=1000, device="cpu"))
    capsys.readouterr()
    same = ["--categorical", "glasses:2:Eyeglasses,male:2:Smiling", "--identity-unsafe", "male", "--steps", "2"]
    assert edit_main([str(faces), str(gan), *EDIT_TINY, *same]) == 1
    err = last_err(capsys)
    assert err.startswith("genaug train --kind edit: error: ") and "kind" in err and "Traceback" not in err, err

    out = tmp_path / "run"
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--steps", "1"]) == 0
    (out / "train_config.json").unlink()  # nothing left to compare the settings with
    capsys.readouterr()
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--content-channels", "4", "--steps", "2"]) == 1
    err = last_err(capsys)
    assert "checkpoint.pt" in err and "does not fit" in err and "--overwrite" in err, err


def test_a_resumed_run_with_another_setting_says_what_it_was(tmp_path, capsys):
    """'holds a run with different settings (['lr'])' left the user to dig out the old value from train_config.json;
    another kind's folder listed ~40 settings, the kind among them."""
    faces = write_faces(tmp_path / "faces", n=12)
    run = tmp_path / "run"
    assert edit_main([str(faces), str(run), *EDIT_TINY, "--steps", "1"]) == 0
    capsys.readouterr()
    assert edit_main([str(faces), str(run), *EDIT_TINY, "--steps", "2", "--lr", "0.001"]) == 1
    err = capsys.readouterr().err.strip()
    assert "different settings (['lr']): lr was 0.0002, now 0.001; other settings need another folder" in err, err
    assert train_main([str(faces), str(run), "--kind", "infogan", *GAN_TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("holds a run of kind 'edit', not 'infogan' (resume it with --kind edit); another kind needs "
                        "another --out, or --overwrite to start again") and "batch_size" not in err, err


@pytest.mark.parametrize("kind", ["edit", "infogan"])
def test_a_resume_on_faces_added_since_the_run_started_is_refused(tmp_path, capsys, kind):
    """Faces added to FACES/ reshuffled the held-out split on resume (a permutation of all faces loaded): faces the
    run had trained on became held-out ones and the logged held-out metrics were contaminated, without a word.
    The run folder now records its faces (faces.json); a resume on others is one line, the same faces resume."""
    faces, run = write_faces(tmp_path / "faces", n=12), tmp_path / "run"
    opts = [*EDIT_TINY, "--steps", "1"] if kind == "edit" else GAN_TINY
    more = [*EDIT_TINY, "--steps", "2"] if kind == "edit" else [*GAN_TINY, "--predictor-steps", "2"]
    assert train_main([str(faces), str(run), "--kind", kind, *opts]) == 0
    held = json.loads((run / "faces.json").read_text())["holdout"]
    assert len(held) == 2 and all(h.startswith("images/") for h in held)
    write_faces(faces, n=15)  # three faces added
    capsys.readouterr()
    assert train_main([str(faces), str(run), "--kind", kind, *more]) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]  # past the decoding bar
    assert len(err) == 1 and f"{faces} changed since this run started (12 faces then, 15 now): resume on the same " \
        "faces" in err[0] and "--overwrite" in err[0], err
    assert json.loads((run / "faces.json").read_text())["holdout"] == held  # the record is kept
    for extra in ("0012", "0013", "0014"):
        (faces / "images" / f"{extra}.png").unlink()
    assert train_main([str(faces), str(run), "--kind", kind, *more]) == 0, capsys.readouterr().err
    assert "resuming" in capsys.readouterr().out


def test_a_renamed_face_is_refused_and_a_run_saved_before_faces_json_still_resumes(tmp_path, capsys):
    faces, run = write_faces(tmp_path / "faces", n=12, attributes=False), tmp_path / "run"
    opts = [*EDIT_TINY, "--attributes", "", "--categorical", "a:2"]
    assert edit_main([str(faces), str(run), *opts, "--steps", "1"]) == 0
    (faces / "images" / "0003.png").rename(faces / "images" / "0003b.png")
    assert edit_main([str(faces), str(run), *opts, "--steps", "2"]) == 1
    assert "changed since this run started (12 faces then, 12 now, other files)" in capsys.readouterr().err
    (run / "faces.json").unlink()  # a run folder written before the record: resumed as it is (and recorded now)
    assert edit_main([str(faces), str(run), *opts, "--steps", "2"]) == 0
    assert f"resuming {run} at step 1" in capsys.readouterr().out and (run / "faces.json").exists()


@pytest.mark.parametrize("kind", ["edit", "infogan"])
def test_a_run_folder_inside_the_faces_folder_resumes(tmp_path, capsys, kind):
    """The same command resumed with its own sample grids read as faces: 'no attribute row for image
    run/samples/000001.png' (or, without attributes.csv, grids silently trained on)."""
    faces = write_faces(tmp_path / "faces", n=12)
    opts = [*EDIT_TINY] if kind == "edit" else ["--image-size", "16", "--g-width", "4", "--d-width", "4",
                                                "--e-width", "4", "--batch-size", "4", "--holdout", "2",
                                                "--categorical", "glasses:2:Eyeglasses", "--continuous", "1",
                                                "--predictor-steps", "1", "--sample-every", "1", "--device", "cpu"]
    for other in ("other", "run"):  # another run's folder inside the faces folder too
        for steps in ("1", "2"):
            cmd = ["--kind", kind, str(faces), str(faces / other), *opts, "--steps", steps]
            assert train_main(cmd) == 0, capsys.readouterr().err
    assert list((faces / "run" / "samples").glob("*.png"))


def test_a_torn_last_log_line_does_not_block_the_resume(faces, tmp_path, capsys):
    """A run killed (SIGKILL, out of memory, a full disk) while appending to log.jsonl left half a
    line; the same command then failed with json's "Unterminated string starting at ..."."""
    cmd = [str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1"]
    assert edit_main(cmd) == 0
    with open(tmp_path / "run" / "log.jsonl", "a") as f:
        f.write('{"step": 2, "t": 0.1, "g_ad')
    assert edit_main([*cmd[:-1], "2"]) == 0, capsys.readouterr().err
    assert [r["step"] for r in read_log(tmp_path / "run") if "eval" not in r] == [1, 2]


def _weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(run / "bundle" / "model.safetensors")


def test_ctrl_c_of_a_training_run_exits_130_and_the_same_command_resumes_exactly(tmp_path, capsys, monkeypatch):
    """Ctrl-C stopped the run cleanly (checkpoint, bundle) but the command exited 0: ``genaug train ... && next``
    went on with a half-trained bundle. Its resume gives the uninterrupted run's weights, bit for bit."""
    from genaug.training import skeleton

    faces = write_faces(tmp_path / "faces", n=12)
    cmd = lambda out: [str(faces), str(out), "--kind", "edit", *EDIT_TINY, "--steps", "5"]  # noqa: E731
    assert train_main(cmd(tmp_path / "whole")) == 0
    logged = skeleton.Run._log_step

    def ctrl_c_at_step_2(self, *a):
        logged(self, *a)
        if self.step == 2:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(skeleton.Run, "_log_step", ctrl_c_at_step_2)
    assert train_main(cmd(tmp_path / "cut")) == 130
    assert "stopped by SIGINT at step 2: checkpoint saved; the same command resumes" in capsys.readouterr().out
    monkeypatch.setattr(skeleton.Run, "_log_step", logged)
    assert train_main(cmd(tmp_path / "cut")) == 0
    whole, cut = _weights(tmp_path / "whole"), _weights(tmp_path / "cut")
    assert whole.keys() == cut.keys() and all(np.array_equal(whole[k].numpy(), cut[k].numpy()) for k in whole)


def test_a_grid_stops_when_a_run_is_stopped_by_a_signal(tmp_path, monkeypatch):
    # train() returns None when SIGTERM / Ctrl-C stopped it (checkpoint saved): the grid recorded it as failed
    # (no metrics.json) and went on with the next runs
    from genaug.training import grid
    from genaug.training.config import TrainConfig

    calls = []

    class Stopped:  # a Trainer whose run SIGTERM stopped: train() gives None
        def __init__(self, cfg):
            calls.append(cfg.out)
            self.runner = type("Run", (), {"stopped_by": "SIGTERM"})()

        def train(self):
            return None

    monkeypatch.setattr(grid, "Trainer", Stopped)
    results = grid.run_grid(TrainConfig(data=str(tmp_path), out=str(tmp_path / "grid")), [("lambda_info", [0.5, 1.0])])
    assert len(calls) == 1 and [(r.status, r.stopped_by) for r in results] == [("interrupted", "SIGTERM")]


def test_a_spent_wall_clock_budget_is_reported(tmp_path, capsys):
    """The run stopped silently at some step: was it the budget, a crash or --steps?"""
    faces = write_faces(tmp_path / "faces", n=12)
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1000", "--minutes", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wall-clock budget of 1e-09 minutes spent at step \d+: checkpoint saved; the same command resumes",
                     out), out


def test_the_edit_kind_progress_bar_shows_its_losses(tmp_path, capsys):
    """The bar showed steps and speed only (the other kinds show their losses)."""
    faces = write_faces(tmp_path / "faces", n=12)
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "2"]) == 0
    bar = capsys.readouterr().err
    assert re.search(r"edit model: .*2/2.*rec=[0-9.]+", bar), bar[-400:]


def test_with_snapshots_the_run_reports_and_returns_its_bundle(faces, tmp_path, capsys):
    """With ``--snapshots`` the snapshot was saved after ``bundle/``, so the command ended with
    "wrote RUN/snapshots/000002" (a float16 copy) and the returned Bundle pointed there."""
    from genaug.bundle import load_bundle

    out = tmp_path / "run"
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--steps", "2", "--snapshots"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {out / 'bundle'}"
    assert (out / "snapshots" / "000002" / "config.json").is_file()
    assert json.loads((out / "bundle" / "config.json").read_text())["weights"]["dtype"] == "float32"  # not the snapshot's
    assert load_bundle(out / "bundle").training["steps"] == 2


@pytest.mark.parametrize("kind", ["edit", "infogan", "detail"])
def test_a_busy_run_folder_is_refused_before_the_faces_load(tmp_path, capsys, monkeypatch, kind):
    """The run folder's lock was taken only when the run resumed, after the faces loaded (minutes on CelebA) and the
    networks were built. It is now the first thing a kind does, and an error while building releases it."""
    import fcntl
    import os

    from genaug.training import detail, edit_loop, loop

    loaded = []

    def refused(what):
        def load(*a, **k):
            loaded.append(what)
            raise ValueError(f"no {what} here")
        return load

    for mod in (edit_loop, loop, detail):
        monkeypatch.setattr(mod, "load_faces", refused("faces"))
    monkeypatch.setattr(detail, "load_bundle", refused("bundle"))
    faces, run = write_faces(tmp_path / "faces", n=12), tmp_path / "run"
    run.mkdir()
    fd = os.open(run / ".lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # another run holds the folder
    args = {"edit": [str(faces), str(run), "--kind", "edit", *EDIT_TINY, "--steps", "1"],
            "infogan": [str(faces), str(run), "--kind", "infogan", *GAN_TINY],
            "detail": ["--kind", "detail", "default", str(faces), "--out", str(run), "--steps", "1"]}[kind]
    try:
        assert train_main(args) == 1
    finally:
        os.close(fd)
    assert "another training run is using" in capsys.readouterr().err and not loaded
    assert train_main(args) == 1 and loaded  # an error while building (here: loading) releases the folder
    fd = os.open(run / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
    os.close(fd)
    capsys.readouterr()


def test_a_failed_start_leaves_no_empty_run_folder(tmp_path, capsys):
    """The lock is taken before the faces load; a run folder it created is removed again when the start fails."""
    assert edit_main([str(tmp_path / "no-faces"), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1"]) == 1
    assert not (tmp_path / "run").exists() and "no-faces" in capsys.readouterr().err


def test_torchrun_is_refused_by_the_edit_kind(faces, tmp_path, capsys, monkeypatch):
    """``torchrun --nproc_per_node 2 -m genaug.training ... --kind edit`` ran two unsynchronised
    copies of the same run into one folder (every step logged twice, checkpoint and bundle written
    by both); only infogan / began train data-parallel."""
    import genaug.training.edit_loop as edit_loop

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setattr(edit_loop, "load_faces", lambda *a, **k: pytest.fail("the data loaded first"))
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1"]) == 1
    err = last_err(capsys)
    assert "torchrun" in err and "one process" in err, err
    assert not (tmp_path / "run" / "log.jsonl").exists()


def test_a_mismatched_init_from_is_refused_before_the_faces_load(faces, tmp_path, capsys, monkeypatch):
    """``--init-from`` a bundle of another shape was refused only after the faces had loaded (minutes on CelebA)."""
    import genaug.training.edit_loop as edit_loop

    def no_faces(*a, **k):
        raise AssertionError("the faces were loaded before --init-from was checked")

    monkeypatch.setattr(edit_loop, "load_faces", no_faces)
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1", "--init-from", "default"]) == 1
    assert "--init-from default: its networks or latent differ" in capsys.readouterr().err
