"""Every command: a missing path, a corrupt file and out-of-range numbers give one clear line on
stderr and a non-zero exit (corrupt files inside a folder are skipped and reported), never a
traceback."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genaug.cli import main


def _one_line_error(capsys, prog: str, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    last = err.splitlines()[-1]
    assert last.startswith(f"genaug {prog}: error: "), err
    for n in needles:
        assert n in last, last
    return last


@pytest.fixture()
def folder(tmp_path):
    """One good face and one corrupt file."""
    d = tmp_path / "faces"
    d.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(d / "good.png")
    (d / "broken.jpg").write_bytes(b"\xff\xd8 this is not a jpeg")
    return d


def test_info(tmp_path, capsys):
    assert main(["info", "--bundle", str(tmp_path / "missing")]) == 1
    _one_line_error(capsys, "info", "bundle not found")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "config.json").write_text("{not json")
    assert main(["info", "--bundle", str(tmp_path / "bad")]) == 1
    _one_line_error(capsys, "info", "not valid JSON")


def test_demo(tiny_bundle_path, tmp_path, folder, capsys):
    run = ["demo", "--bundle", str(tiny_bundle_path), "--out", str(tmp_path / "d.png"), "--refine-steps", "1",
           "--generated", "0", "--device", "cpu"]
    assert main([*run, "--images", str(tmp_path / "missing")]) == 1
    _one_line_error(capsys, "demo", "not found")
    assert main([*run, "--images", str(folder / "broken.jpg")]) == 1
    _one_line_error(capsys, "demo", "broken.jpg")
    assert main([*run, "--images", str(folder)]) == 0
    assert "skipped" in capsys.readouterr().err and (tmp_path / "d.png").is_file()
    assert main([*run, "--max-faces", "-1"]) == 1
    _one_line_error(capsys, "demo", "--max-faces")


def test_augment(trained_bundle_path, tmp_path, folder, capsys):
    run = ["--bundle", str(trained_bundle_path), "--out", str(tmp_path / "out"), "--refine-steps", "0", "--device", "cpu"]
    assert main(["augment", str(tmp_path / "missing"), *run]) == 1
    _one_line_error(capsys, "augment", "not found")
    (tmp_path / "empty").mkdir()
    assert main(["augment", str(tmp_path / "empty"), *run]) == 1
    _one_line_error(capsys, "augment", "no images")
    assert main(["augment", str(folder / "broken.jpg"), *run]) == 1
    _one_line_error(capsys, "augment", "could be read")
    assert main(["augment", str(folder), *run, "--variants", "0"]) == 1
    _one_line_error(capsys, "augment", "--variants")
    assert main(["augment", str(folder), *run, "--variants", "3"]) == 0
    assert "skipped" in capsys.readouterr().err
    outs = [np.asarray(Image.open(tmp_path / "out" / f"good_aug{i:02d}.png")) for i in range(3)]
    assert all(not np.array_equal(outs[i], outs[j]) for i in range(3) for j in range(i)), "variants must differ"


def test_expand(tiny_bundle_path, tmp_path, folder, capsys):
    run = ["--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--device", "cpu", "--quiet"]
    assert main(["expand", str(tmp_path / "missing"), str(tmp_path / "o.h5"), *run]) == 2
    _one_line_error(capsys, "expand", "source not found")
    (tmp_path / "fake.h5").write_bytes(b"not hdf5")
    assert main(["expand", str(tmp_path / "fake.h5"), str(tmp_path / "o.h5"), *run]) == 2
    _one_line_error(capsys, "expand", "neither")
    assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, "--variants", "0"]) == 2
    _one_line_error(capsys, "expand", "--variants")
    assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, "--codes", "nope"]) == 2
    _one_line_error(capsys, "expand", "nope")
    assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, "--variants", "2"]) == 0
    assert "broken.jpg" in capsys.readouterr().err


def test_train(tmp_path, folder, capsys):
    assert main(["train", str(tmp_path / "missing"), str(tmp_path / "run")]) == 1
    _one_line_error(capsys, "train", "not found")
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_text("not an image")
    assert main(["train", str(only_bad), str(tmp_path / "run"), "--device", "cpu"]) == 1
    _one_line_error(capsys, "train", "no readable images")
    assert main(["train", str(folder), str(tmp_path / "run"), "--steps", "-5"]) == 1
    _one_line_error(capsys, "train", "steps")
