"""What genaug's commands print and return: exit statuses (2 usage, 1 failure, 130 interrupted), one-line
errors and warnings, help texts."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import genaug
from conftest import noise_pngs
from genaug.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "NO_ALBUMENTATIONS_UPDATE": "1", "OMP_NUM_THREADS": "1"}


def _err(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err, err
    return err.splitlines()[-1]


def test_exit_status_two_is_a_usage_error_and_one_a_failure(tmp_path, tiny_bundle_path, trained_bundle_path, capsys):
    # a bad argument exited 2 from expand but 1 from augment / demo; a missing file 2 from expand, 1 elsewhere
    faces = noise_pngs(tmp_path / "faces", (40, 40, 3), n=1)
    ex = ["expand", str(faces), str(tmp_path / "o.h5"), "--bundle", str(tiny_bundle_path), "--device", "cpu", "--quiet",
          "--refine-steps", "0", "--variants", "1"]
    aug = ["augment", str(faces), "--out", str(tmp_path / "out"), "--bundle", str(trained_bundle_path), "--device", "cpu"]
    demo = ["demo", "--bundle", str(tiny_bundle_path), "--out", str(tmp_path / "d.png"), "--device", "cpu"]
    usage = [([*ex, "--strength", "nan"], "--strength"), ([*ex, "--codes", "nope"], "nope"), ([*ex, "--shard", "3/2"], "--shard"),
             ([*ex, "--refine-loss", "l3"], "--refine-loss"), ([*aug, "--variants", "0"], "--variants"),
             ([*aug, "--codes", "nope"], "nope"), ([*aug, "--strength", "-1"], "strength"), ([*aug, "--device", "gpu"], "unknown device"),
             ([*demo, "--max-faces", "-1"], "--max-faces"), ([*demo, "--out", str(tmp_path / "x.txt")], "'.txt'"),
             (["expand", str(tmp_path / "missing"), *ex[2:], "--strength", "inf"], "--strength")]  # before the source is read
    for argv, needle in usage:
        assert main(argv) == 2, argv
        assert needle in _err(capsys), argv
    with pytest.raises(SystemExit) as e:  # argparse's own usage errors: the same status
        main([*ex, "--framing", "centre"])
    assert e.value.code == 2
    capsys.readouterr()
    assert main(ex) == 0
    failed = [(["expand", str(tmp_path / "missing"), *ex[2:]], "source not found"),
              ([*ex, "--seed", "3"], "--overwrite"),  # another run's OUT
              ([*ex[:3], "--bundle", str(tmp_path / "nobundle"), *ex[5:], "--codes", "smile"], "not found"),
              (["augment", str(tmp_path / "missing"), *aug[2:]], "not found"),
              (["info", "--bundle", str(tmp_path / "nobundle")], "not found")]
    for argv, needle in failed:
        assert main(argv) == 1, argv
        assert needle in _err(capsys), argv


def test_every_help_states_the_exit_statuses(capsys):
    assert main(["--help"]) == 0
    assert "2 usage error" in capsys.readouterr().out
    for cmd in ("expand", "augment", "demo", "info"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert "exit status" in capsys.readouterr().out, cmd


@pytest.mark.parametrize("cmd", ["expand", "augment"])
@pytest.mark.parametrize("codes", ["", ","])
def test_cli_codes_naming_no_code_is_refused(noise_faces, tmp_path, capsys, cmd, codes):
    # `--codes ""` (an unset shell variable) silently edited the random set
    out = tmp_path / ("o.h5" if cmd == "expand" else "out")
    argv = [cmd, str(noise_faces), str(out)] if cmd == "expand" else [cmd, str(noise_faces), "--out", str(out)]
    assert main([*argv, "--codes", codes, "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"genaug {cmd}: error: --codes") and "names no code" in err, err
    assert not out.exists()


def test_bad_device_and_quality_threshold_messages(tmp_path, capsys):
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        genaug.BatchFaceAug(device="gpu")
    with pytest.raises(SystemExit) as e:  # argparse's usage error
        main(["expand", str(tmp_path), str(tmp_path / "o.h5"), "--quality-threshold", "foo"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert "expected a number or 'auto', got 'foo'" in err and "_quality" not in err


def test_ctrl_c_ends_a_command_with_one_line(noise_faces, tmp_path, capsys, monkeypatch):
    # Ctrl-C during `genaug expand` (resumable by design) printed a page of traceback from inside torch
    import genaug.expand.pipeline as pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_expand_blocks", interrupted)
    try:
        code = main(["expand", str(noise_faces), str(tmp_path / "o.h5"), "--variants", "1", "--device", "cpu", "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped genaug's command line")
    assert code == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.splitlines()[-1] == (
        "genaug expand: interrupted (finished blocks are kept: rerun the same command to resume)")


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


def test_a_file_given_as_a_bundle_is_named_not_its_folder(tmp_path, capsys):
    from genaug.cli.main import main

    h5 = tmp_path / "out.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    assert main(["info", str(h5)]) != 0
    err = capsys.readouterr().err
    assert f"{h5} is not a genaug bundle" in err and len(err.strip().splitlines()) == 1


def test_expand_help_does_not_append_default_none_to_options_that_describe_their_default(capsys):
    # "--gate-threshold ... (default: off) (default: None)", "--refine-steps ... (default: the bundle's ...) (default:
    # None)": the defaults formatter added a second, contradicting default
    with pytest.raises(SystemExit):
        main(["expand", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: None)" not in text and "(default: off)" in text and "(default: lzf)" in text


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_version_and_help_into_a_full_disk_are_one_line():
    """``genaug --version > /dev/full`` (and a closed pipe) printed a traceback from the print."""
    for opt in ("--version", "--help"):
        with open("/dev/full", "w") as full:
            r = subprocess.run([sys.executable, "-m", "genaug", opt], env=ENV, stdout=full, stderr=subprocess.PIPE,
                               text=True, timeout=120)
        assert r.returncode == 1 and r.stderr.strip() == "genaug: error: [Errno 28] No space left on device", r.stderr
