"""The command line: genaug --help, info, demo and augment on a tiny bundle."""
import json
import subprocess
import sys

import numpy as np
from PIL import Image

from genaug.cli import main


def test_top_level_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "augment", "info", "expand", "train"):
        assert cmd in out
    assert main(["nope"]) == 2


def test_info_lists_codes(tiny_bundle_path, capsys):
    assert main(["info", "--bundle", str(tiny_bundle_path)]) == 0
    out = capsys.readouterr().out
    assert "glasses" in out and "Eyeglasses" in out and "categorical k=3" in out
    assert main(["info", "--bundle", str(tiny_bundle_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["format"] == "genaug-bundle"


def test_demo_writes_picture(tiny_bundle_path, tmp_path, capsys):
    out = tmp_path / "demo.png"
    assert main(["demo", "--bundle", str(tiny_bundle_path), "--out", str(out), "--refine-steps", "2", "--device", "cpu"]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    im = Image.open(out)
    assert im.width > 200 and im.height > 200


def test_demo_sweeps_the_image_space_controls(tiny_bundle_path):
    from genaug.bundle import load_bundle
    from genaug.cli.demo import demo_codes, demo_sweep_values
    from genaug.engine.edits import control_of

    bundle = load_bundle(str(tiny_bundle_path))
    codes = demo_codes(bundle)
    names = [control_of(bundle.spec, c).name for c in codes if control_of(bundle.spec, c) is not None]
    assert names == ["yaw", "light", "light_up", "drawn_glasses"] and len(codes) == len(bundle.spec.codes) + 4
    assert demo_sweep_values(bundle, codes[-4]) == [-30.0, -15.0, 0.0, 15.0, 30.0]
    assert demo_sweep_values(bundle, codes[-1]) == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_augment_keeps_input_sizes(tiny_bundle_path, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (218, 178, 3), dtype=np.uint8)).save(src / "a.png")
    Image.fromarray(rng.integers(0, 255, (40, 50), dtype=np.uint8)).save(src / "b.png")
    out = tmp_path / "out"
    assert main(["augment", str(src), "--bundle", str(tiny_bundle_path), "--out", str(out), "--variants", "2", "--refine-steps", "1"]) == 0
    assert Image.open(out / "a_aug01.png").size == (178, 218)
    assert Image.open(out / "b_aug00.png").size == (50, 40)
    assert (out / "contact_sheet.png").exists()


def test_missing_bundle_is_a_clear_error(tmp_path, capsys):
    assert main(["info", "--bundle", str(tmp_path / "missing")]) == 1
    assert "bundle not found" in capsys.readouterr().err


def test_module_entry_point():
    r = subprocess.run([sys.executable, "-m", "genaug", "--help"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "expand" in r.stdout


def test_output_into_a_closed_pipe_ends_quietly(tiny_bundle_path):
    """``genaug info | head -1``: the reader stops early; genaug ends without an error line."""
    import os

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "genaug", "info", "--bundle", str(tiny_bundle_path), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # before genaug writes anything: every write meets a closed pipe
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Broken pipe" not in err and "Traceback" not in err and "Exception ignored" not in err, err


def test_augment_help_is_plain_text(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["augment", "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and ":func:" not in out and "NAME_augNN.png" in out


def test_expand_help_describes_every_framing(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["expand", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "full or none (the centre square)" in out and "detect (dlib" in out


def test_info_takes_the_bundle_as_an_argument(tiny_bundle_path, tmp_path, capsys):
    """``genaug info BUNDLE`` as every other command takes its input (``--bundle`` still works)."""
    assert main(["info", str(tiny_bundle_path)]) == 0
    assert "tiny-test" in capsys.readouterr().out
    assert main(["info", str(tiny_bundle_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "tiny-test"
    assert main(["info", str(tmp_path / "missing")]) == 1
    assert "bundle not found" in capsys.readouterr().err
    try:
        main(["info", str(tiny_bundle_path), "--bundle", str(tmp_path)])
    except SystemExit as e:
        assert e.code == 2 and "two bundles given" in capsys.readouterr().err
    else:
        raise AssertionError("two different bundles were accepted")


def test_a_training_run_folder_given_as_bundle_points_to_its_bundle(tiny_bundle_path, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_bundle_path, run / "bundle")
    assert main(["info", str(run)]) == 1
    assert f"its bundle is {run / 'bundle'}" in capsys.readouterr().err


def test_info_checks_the_weights_it_describes(tiny_bundle_path, tmp_path, capsys):
    """A bundle whose weights are missing or corrupt was listed as fine, with an identity it does not have."""
    import shutil

    for name, damage, message in [("gone", lambda w: w.unlink(), "bundle weights missing"),
                                  ("bad", lambda w: w.write_bytes(w.read_bytes()[:-8]), "checksum mismatch")]:
        shutil.copytree(tiny_bundle_path, tmp_path / name)
        damage(tmp_path / name / "model.safetensors")
        assert main(["info", str(tmp_path / name)]) == 1
        assert message in capsys.readouterr().err


def test_augment_names_a_broken_link_it_skips(tiny_bundle_path, tmp_path, capsys):
    # a dangling link in the input folder was left out without a word (genaug expand lists it as unreadable)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(src / "a.png")
    (src / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    out = tmp_path / "out"
    assert main(["augment", str(src), "--bundle", str(tiny_bundle_path), "--out", str(out), "--variants", "1", "--refine-steps", "0"]) == 0
    said = capsys.readouterr()
    assert "gone.jpg" in said.out + said.err and (out / "a_aug00.png").exists()


def test_the_contact_sheet_keeps_each_photos_aspect(tiny_bundle_path, tmp_path):
    # a landscape photo was stretched into its square cell (a face in a 1024x640 scene drawn 1.6x too narrow)
    from genaug.cli.demo import CELL

    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.full((50, 200, 3), 200, np.uint8)).save(src / "wide.png")
    out = tmp_path / "out"
    assert main(["augment", str(src), "--bundle", str(tiny_bundle_path), "--out", str(out), "--variants", "1",
                 "--refine-steps", "0", "--quiet"]) == 0
    cell = np.asarray(Image.open(out / "contact_sheet.png").convert("L"))[:CELL, :CELL]
    filled = (cell > 100).any(1).nonzero()[0]
    assert 0.2 * CELL < len(filled) < 0.3 * CELL  # a 4:1 photo fills a quarter of its cell's height, centred
