"""Audit 14, the command line and training as a command-line / PyTorch user meets them: ``python -m genaug.training``
exited 0 whatever happened (a missing folder too); ``genaug --version`` into a closed pipe or a full disk printed a
traceback; NaN / inf / negative training options ran (``--minutes nan`` had no budget, ``--lambda-info nan`` wrote a
bundle of NaN metrics, ``--lr nan`` failed late in torch's words); Ctrl-C of a training run exited 0 (every command
documents 130), while its resume is exact (same weights as the uninterrupted run); the train kinds' --help showed
reST markup; ``genaug augment photos/*.jpg`` was refused (one input only), a variant was written in place (Ctrl-C
left a torn PNG) and without the photo's ICC profile. Tiny runs (16 px, a few steps)."""
from __future__ import annotations

import io
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genaug.cli.main import main
from genaug.training.cli import main as train_main
from genaug.training.edit_loop import EditTrainConfig

from test_audit12_training import GAN_TINY
from test_training import write_faces
from test_training_options import EDIT_TINY

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_python_m_genaug_training_exits_with_the_commands_status(tmp_path):
    """``python -m genaug.training`` (the torchrun entry) ran ``main()`` and dropped its status: a missing folder
    was one error line and exit 0, so a job script went on as if the run had trained."""
    r = subprocess.run([sys.executable, "-m", "genaug.training", str(tmp_path / "missing"), str(tmp_path / "run")],
                       env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr.strip() == f"genaug train: error: image folder not found: {tmp_path / 'missing'}"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_version_and_help_into_a_full_disk_are_one_line():
    """``genaug --version > /dev/full`` (and a closed pipe) printed a traceback from the print."""
    for opt in ("--version", "--help"):
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-m", "genaug", opt], env=ENV, stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=120)
        assert r.returncode == 1 and r.stderr.strip() == "genaug: error: [Errno 28] No space left on device", r.stderr


@pytest.mark.parametrize("kind, option, value, message", [
    ("edit", "--lr", "nan", "argument --lr: expected a finite number, got 'nan'"),
    ("edit", "--minutes", "nan", "argument --minutes: expected a finite number, got 'nan'"),
    ("edit", "--lambda-rec", "-1", "--lambda-rec must be >= 0, got -1"),
    ("edit", "--beta1", "1.5", r"--beta1 must be in \[0, 1\), got 1.5"),
    ("infogan", "--lambda-info", "nan", "argument --lambda-info: expected a finite number, got 'nan'"),
    ("infogan", "--lambda-info", "-1", "--lambda-info must be >= 0, got -1"),
    ("infogan", "--predictor-real-weight", "-1", "--predictor-real-weight must be >= 0, got -1"),
])
def test_a_non_finite_or_negative_training_option_is_a_usage_error(tmp_path, capsys, kind, option, value, message):
    faces = write_faces(tmp_path / "faces", n=12)
    opts = [*EDIT_TINY, "--steps", "1"] if kind == "edit" else GAN_TINY
    try:
        status = train_main([str(faces), str(tmp_path / "run"), "--kind", kind, *opts, option, value])
    except SystemExit as e:  # argparse's own error
        status = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and re.search(message, err[-1]), err[-1:]
    assert not (tmp_path / "run" / "bundle").exists()


def test_the_python_api_refuses_nan_as_the_command_line_does():
    for option in ("minutes", "lr", "lambda_cycle"):
        with pytest.raises(ValueError, match=f"--{option.replace('_', '-')} must be a finite number, got nan"):
            EditTrainConfig("faces", "run", **{option: math.nan})


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


@pytest.mark.parametrize("kind", ["edit", "infogan", "detail"])
def test_each_train_kinds_help_is_plain_text(kind, capsys):
    with pytest.raises(SystemExit):
        train_main(["--kind", kind, "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:" not in out and ":class:" not in out and ":func:" not in out


def _photos(folder: Path, icc: bytes | None = None) -> Path:
    rng = np.random.default_rng(0)
    (folder / "sub").mkdir(parents=True)
    for name in ("a.JPG", "b.png", "sub/c.png"):
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(folder / name, icc_profile=icc)
    (folder / "notes.txt").write_text("not a photo")
    return folder


def _pngs(folder: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.rglob("*_aug*.png"))}


def test_augment_takes_several_inputs_and_a_glob(tiny_bundle_path, tmp_path, capsys):
    """``genaug augment photos/*`` (the shell's expansion) was 'unrecognized arguments'. Each file's variants are
    those it gets in its folder (drawn from its name below its input); a non-image the glob named is skipped and
    named in the summary; a quoted glob is expanded."""
    src = _photos(tmp_path / "in")
    common = ["--bundle", str(tiny_bundle_path), "--variants", "1", "--quiet"]
    assert main(["augment", str(src), "--out", str(tmp_path / "folder"), *common]) == 0
    assert main(["augment", *sorted(map(str, src.iterdir())), "--out", str(tmp_path / "each"), *common]) == 0
    out = capsys.readouterr()
    assert f"skipped 1 file(s) (not images, unreadable or too small): {src / 'notes.txt'}" in out.out
    folder, each = _pngs(tmp_path / "folder"), _pngs(tmp_path / "each")
    assert sorted(folder) == ["a_aug00.png", "b_aug00.png", "sub/c_aug00.png"]
    assert sorted(each) == ["a_aug00.png", "b_aug00.png", "c_aug00.png"]  # the folder in/sub/ named: c.png below it
    assert all(np.array_equal(folder[k], each[k]) for k in ("a_aug00.png", "b_aug00.png"))
    assert main(["augment", str(src / "*.png"), "--out", str(tmp_path / "glob"), *common]) == 0
    assert sorted(_pngs(tmp_path / "glob")) == ["b_aug00.png"]
    assert main(["augment", str(src / "*.gif"), "--out", str(tmp_path / "none"), *common]) == 1
    assert "no file matches" in capsys.readouterr().err


def test_augment_keeps_the_icc_profile_and_leaves_no_torn_file_on_ctrl_c(tiny_bundle_path, tmp_path, capsys,
                                                                        monkeypatch):
    """A variant was written without the photo's ICC profile (a Display P3 / Adobe RGB photo's variants showed other
    colours) and in place: Ctrl-C during a save left a torn PNG among the outputs."""
    ImageCms = pytest.importorskip("PIL.ImageCms")
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = _photos(tmp_path / "in", icc=icc)
    common = ["--bundle", str(tiny_bundle_path), "--variants", "2", "--quiet"]
    assert main(["augment", str(src), "--out", str(tmp_path / "out"), *common]) == 0
    assert all(Image.open(p).info.get("icc_profile") == icc for p in (tmp_path / "out").rglob("*_aug*.png"))

    save, calls = Image.Image.save, []

    def torn_save(self, fp, *a, **k):  # the second variant's save is half written when Ctrl-C comes
        calls.append(fp)
        if len(calls) < 2:
            return save(self, fp, *a, **k)
        buf = io.BytesIO()
        save(self, buf, format="PNG")
        Path(fp).write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", torn_save)
    assert main(["augment", str(src), "--out", str(tmp_path / "cut"), *common]) == 130
    monkeypatch.setattr(Image.Image, "save", save)
    left = sorted((tmp_path / "cut").rglob("*"))
    assert [p.name for p in left if p.is_file()] == ["a_aug00.png"]
    Image.open(left[0]).load()  # complete


def test_demo_refuses_an_out_below_a_file_before_the_work(tmp_path, monkeypatch, capsys):
    """`genaug demo --out some_file/x.png` failed only after loading the model and rendering every sweep."""
    import genaug.cli.demo as demo

    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    monkeypatch.setattr(demo, "_demo_faces", lambda *a: pytest.fail("the work started"))
    assert demo.main(["--out", str(blocker / "sub" / "x.png")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


def test_augment_names_files_an_earlier_run_with_more_variants_left(tiny_bundle_path, tmp_path, capsys):
    """A rerun with fewer --variants into the same folder left the earlier run's extra _augNN files beside the new
    ones without a word (a training set read from the folder mixes both runs): they stay, and the summary names them."""
    src = _photos(tmp_path / "in")
    common = ["--bundle", str(tiny_bundle_path), "--quiet", "--out", str(tmp_path / "out")]
    assert main(["augment", str(src), "--variants", "3", *common]) == 0
    capsys.readouterr()
    assert main(["augment", str(src), "--variants", "1", *common]) == 0
    summary = capsys.readouterr().out
    n = 3  # a.JPG, b.png, sub/c.png
    assert f"{2 * n} file(s) of an earlier run with more --variants left" in summary and "_aug02.png" in summary
    assert len(list((tmp_path / "out").rglob("*_aug02.png"))) == n  # never deleted
