"""genaug train's command line and configs: a bad value or code spec is one line naming its option (exit 2;
a missing folder 1), NaN refused as on the command line, help texts that say each default."""
from __future__ import annotations

import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from genaug.training import grid
from genaug.training.cli import main as train_main
from genaug.training.edit_loop import EditTrainConfig
from test_training import config, write_faces
from test_training_options import EDIT_TINY, GAN_TINY

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("kind, bad, named", [
    ("edit", ["--image-size", "8"], "--image-size must be >= 16 for the edit kind, got 8"),
    ("edit", ["--ema", "2"], "--ema must be in [0, 1)"), ("edit", ["--ema", "1"], "--ema must be in [0, 1)"),
    ("edit", ["--lr", "-1"], "--lr must be > 0, got -1"), ("infogan", ["--ema", "1.5"], "--ema must be in [0, 1)"),
])
def test_a_bad_value_is_one_line_naming_its_option(tmp_path, capsys, kind, bad, named):
    """--image-size 8 crashed in D with torch's 'Kernel size can't be greater than actual input size' traceback;
    --ema 2 (or 1) trained and exported diverging (or untrained) averaged networks without a word; --lr -1 was
    torch's 'Invalid learning rate: -1.0'."""
    faces = write_faces(tmp_path / "faces", n=12)
    opts = [*EDIT_TINY, "--steps", "1"] if kind == "edit" else GAN_TINY
    assert train_main([str(faces), str(tmp_path / "run"), "--kind", kind, *opts, *bad]) == 2  # a usage error
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


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


def test_the_detail_kind_refuses_a_learning_rate_of_zero():
    from genaug.training.detail import DetailConfig

    with pytest.raises(ValueError, match="--lr must be > 0, got 0"):
        DetailConfig("default", "faces", "run", lr=0)


@pytest.mark.parametrize("kind, bad", [("edit", ["--steps", "-5"]), ("infogan", ["--lr-g", "0"]), ("detail", ["--lr", "0"])])
def test_genaug_train_exits_two_for_a_bad_value_and_one_for_a_missing_folder(tmp_path, capsys, kind, bad):
    """``genaug train`` exited 1 for every error, a bad ``--steps`` as a missing folder; the other commands' rule
    holds for it too: 2 for a value no file could make right, 1 for a path that is not there."""
    from genaug.training.cli import main as train_main
    from test_training_options import EDIT_TINY, GAN_TINY

    missing = str(tmp_path / "no-faces")
    args = {"edit": [missing, str(tmp_path / "run"), "--kind", "edit", *EDIT_TINY, "--steps", "1"],
            "infogan": [missing, str(tmp_path / "run"), "--kind", "infogan", *GAN_TINY],
            "detail": ["--kind", "detail", "default", missing, "--out", str(tmp_path / "run"), "--steps", "1"]}[kind]
    assert train_main([*args, *bad]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("genaug train") and bad[0] in err[0], err
    assert train_main(args) == 1  # the folder of faces is not there: a failure
    assert "no-faces" in capsys.readouterr().err


def test_python_m_genaug_training_exits_with_the_commands_status(tmp_path):
    """``python -m genaug.training`` (the torchrun entry) ran ``main()`` and dropped its status: a missing folder
    was one error line and exit 0, so a job script went on as if the run had trained."""
    r = subprocess.run([sys.executable, "-m", "genaug.training", str(tmp_path / "missing"), str(tmp_path / "run")],
                       env=ENV, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1  # (the default kind, edit, names itself)
    assert r.stderr.strip() == f"genaug train --kind edit: error: image folder not found: {tmp_path / 'missing'}"


@pytest.mark.parametrize("categorical, continuous, message", [
    ("glasses:two:Eyeglasses", "1", r"--categorical 'glasses:two:Eyeglasses': K must be a whole number, got 'two'"),
    ("glasses:2:Eyeglasses:x", "1", r"--categorical 'glasses:2:Eyeglasses:x': expected K, NAME:K or NAME:K:ATTRIBUTE"),
    ("glasses:2:Eyeglasses", "-1", r"--continuous '-1': expected a count or a comma list of NAME"),
])
def test_a_mistyped_code_spec_names_the_option_and_item(categorical, continuous, message):
    """"glasses:two:Eyeglasses" failed with int()'s "invalid literal for int() with base 10: 'two'";
    an extra ":x" was dropped silently; ``--continuous -1`` made a code named "-1"."""
    with pytest.raises(ValueError, match=message):
        EditTrainConfig("faces", "run", categorical=categorical, continuous=continuous, identity_unsafe="")
    with pytest.raises(ValueError, match=message):
        config("faces", "run", categorical=categorical, continuous=continuous)


def test_the_default_identity_unsafe_code_missing_from_the_codes_names_the_option():
    # `--categorical glasses:2:Eyeglasses` alone failed with "identity_unsafe names unknown codes ['male']": no option
    # of that name, and nothing said the user never named 'male' (it is --identity-unsafe's default)
    with pytest.raises(ValueError, match=r"--identity-unsafe names codes the model does not have: \['male'\] \(its "
                                         r"default 'male'.*or '' for none"):
        EditTrainConfig("faces", "run", categorical="glasses:2:Eyeglasses")


def test_edit_kind_refuses_a_continuous_code_bound_to_an_attribute(tmp_path):
    """The edit kind binds only categorical codes (D's code head learns ``NAME:2:ATTR``);
    ``--continuous smile:Smiling`` trained a free code but wrote ``attribute: Smiling`` into the
    bundle, so ``genaug info`` showed a binding no step ever trained."""
    with pytest.raises(ValueError, match=r"--continuous 'smile:Smiling'.*binds only categorical codes.*smile:2:Smiling"):
        EditTrainConfig("faces", "run", categorical="glasses:2:Eyeglasses", continuous="smile:Smiling",
                        identity_unsafe="")


def test_default_descriptions_go_only_to_codes_bound_as_the_default_binds_them():
    """A code's description came from its name alone: an unbound (free) ``smile:2`` or a
    ``glasses:2:Smiling`` was described as "not smiling / smiling" / "eyeglasses off / on" in the
    bundle and ``genaug info``, whatever it learned."""
    from genaug.models.config import NetConfig
    from genaug.training.edit import edit_spec

    net = NetConfig(image_size=16, kind="edit", content_channels=2)
    spec = edit_spec(net, "glasses:2:Smiling,smile:2,mouth:2:Mouth_Slightly_Open", "male", "")
    assert [c.description for c in spec.codes] == ["", "", "mouth closed (0) / slightly open (1)", ""]


def test_grid_refuses_a_bad_grid_in_one_line(tmp_path, capsys):
    """``python -m genaug.training.grid ... --grid advloss=ns`` printed a traceback."""
    from genaug.training.grid import main

    assert main([str(tmp_path), str(tmp_path / "grid"), "--grid", "advloss=ns"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("python -m genaug.training.grid: error: --grid 'advloss=ns': unknown training option 'advloss' "
                   "(see python -m genaug.training --help)"), err


def help_blocks(text):
    """``--option`` -> its help text, from an argparse help page."""
    blocks, name = {}, None
    for line in text.splitlines():
        m = re.match(r"  (-[-\w]+)", line)
        if m:
            name = m.group(1)
            blocks[name] = line
        elif name and line.startswith("      "):
            blocks[name] += " " + line.strip()
        else:
            name = None
    return blocks


@pytest.mark.parametrize("kind", ["edit", "detail"])
def test_every_option_of_a_kinds_help_says_its_default(kind, capsys):
    """``--steps STEPS``, ``--lr LR``, ``--device DEVICE``, ``--seed SEED``, ... were listed with no word (no meaning,
    no default): a practitioner could not tell how long a run is or which device it picks."""
    with pytest.raises(SystemExit):
        train_main(["--kind", kind, "--help"])
    blocks = help_blocks(capsys.readouterr().out)
    assert {"--steps", "--lr", "--device", "--seed", "--minutes"} <= set(blocks)
    silent = [o for o, text in blocks.items() if o not in ("-h", "--kind", "--out") and "default" not in text]
    assert not silent, silent
    assert "auto" in blocks["--device"] and "(default: auto)" in blocks["--device"]


@pytest.mark.parametrize("kind", ["edit", "infogan", "began", "detail"])
def test_each_kinds_help_names_its_kind_and_the_choices(kind, capsys):
    """``genaug train --kind began --help`` said '--kind KIND ... (default: infogan)' (no choices, another kind);
    the detail kind's said no kind at all."""
    with pytest.raises(SystemExit):
        train_main(["--kind", kind, "--help"])
    block = help_blocks(capsys.readouterr().out)["--kind"]
    assert "--kind {edit,infogan,began,detail}" in block and block.endswith(f"(default: {kind})"), block


@pytest.mark.parametrize("kind", ["edit", "infogan", "detail"])
def test_each_train_kinds_help_is_plain_text(kind, capsys):
    with pytest.raises(SystemExit):
        train_main(["--kind", kind, "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":mod:" not in out and ":class:" not in out and ":func:" not in out


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
