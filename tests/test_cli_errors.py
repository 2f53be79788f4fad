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
    assert main([*run, "--max-faces", "-1"]) == 2
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
    assert main(["augment", str(folder), *run, "--variants", "0"]) == 2
    _one_line_error(capsys, "augment", "--variants")
    assert main(["augment", str(folder), *run, "--variants", "3"]) == 0
    assert "skipped" in capsys.readouterr().err
    outs = [np.asarray(Image.open(tmp_path / "out" / f"good_aug{i:02d}.png")) for i in range(3)]
    assert all(not np.array_equal(outs[i], outs[j]) for i in range(3) for j in range(i)), "variants must differ"


def test_expand(tiny_bundle_path, tmp_path, folder, capsys):
    run = ["--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--device", "cpu", "--quiet"]
    assert main(["expand", str(tmp_path / "missing"), str(tmp_path / "o.h5"), *run]) == 1
    _one_line_error(capsys, "expand", "source not found")
    # a quoted glob, as `genaug augment` takes, said only "source not found: faces/*.png"
    assert main(["expand", str(folder / "*.png"), str(tmp_path / "o.h5"), *run]) == 1
    _one_line_error(capsys, "expand", "source not found", "not a glob pattern")
    (tmp_path / "fake.h5").write_bytes(b"not hdf5")
    assert main(["expand", str(tmp_path / "fake.h5"), str(tmp_path / "o.h5"), *run]) == 1
    _one_line_error(capsys, "expand", "neither")
    assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, "--variants", "0"]) == 2
    _one_line_error(capsys, "expand", "--variants")
    assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, "--codes", "nope"]) == 2
    _one_line_error(capsys, "expand", "nope")
    assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, "--variants", "2"]) == 0
    assert "broken.jpg" in capsys.readouterr().err


def test_train(tmp_path, folder, capsys):  # (the default kind, edit, names itself: "genaug train --kind edit: error: ")
    assert main(["train", str(tmp_path / "missing"), str(tmp_path / "run")]) == 1
    _one_line_error(capsys, "train --kind edit", "not found")
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.png").write_text("not an image")
    assert main(["train", str(only_bad), str(tmp_path / "run"), "--device", "cpu"]) == 1
    _one_line_error(capsys, "train --kind edit", "no readable images")
    assert main(["train", str(folder), str(tmp_path / "run"), "--steps", "-5"]) == 2  # a usage error
    _one_line_error(capsys, "train --kind edit", "steps")


def test_expand_refuses_what_would_lose_data(tiny_bundle_path, tmp_path, folder, capsys):
    import h5py

    run = ["--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--device", "cpu", "--quiet"]
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["images"] = np.random.default_rng(1).integers(0, 255, (3, 32, 32, 3), dtype=np.uint8)
    assert main(["expand", str(src), str(src), *run, "--overwrite"]) == 1
    _one_line_error(capsys, "expand", "source file itself")
    assert src.exists() and h5py.File(src, "r")["images"].shape == (3, 32, 32, 3), "the source must survive"
    (tmp_path / "outdir").mkdir()
    assert main(["expand", str(folder), str(tmp_path / "outdir"), *run]) == 1
    _one_line_error(capsys, "expand", "is a folder")
    with h5py.File(tmp_path / "bad_labels.h5", "w") as f:
        f["images"] = np.zeros((3, 32, 32, 3), np.uint8)
        f["labels"] = np.arange(2)
    assert main(["expand", str(tmp_path / "bad_labels.h5"), str(tmp_path / "o.h5"), *run]) == 1
    _one_line_error(capsys, "expand", "'labels' has shape (2,)")
    for opt, value, needle in (("--strength", "nan", "--strength"), ("--strength", "inf", "--strength"),
                               ("--compression", "gzip-12", "gzip-12"), ("--compression", "gzip-x", "gzip-x"),
                               ("--device", "gpu", "unknown device"), ("--gate-threshold", "nan", "--gate-threshold")):
        assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, opt, value]) == 2, opt
        _one_line_error(capsys, "expand", needle)
    assert not (tmp_path / "o.h5").exists()


def test_expand_skips_tiny_images_and_names_an_all_unusable_source(tiny_bundle_path, tmp_path, folder, capsys):
    import h5py

    run = ["--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--device", "cpu", "--quiet"]
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(folder / "tiny.png")
    assert main(["expand", str(folder), str(tmp_path / "o.h5"), *run, "--variants", "1"]) == 0
    assert "tiny.png" in capsys.readouterr().err
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f["images"].shape[0] == 1 and sorted(p.decode() for p in f["skipped/path"][()]) == ["broken.jpg", "tiny.png"]
    (folder / "good.png").unlink()
    assert main(["expand", str(folder), str(tmp_path / "none.h5"), *run]) == 1
    _one_line_error(capsys, "expand", "none of the 2 source image(s) could be used", "too small")
    assert not (tmp_path / "none.h5").exists()


def test_augment_keeps_inputs_with_one_name_apart(trained_bundle_path, tmp_path, capsys):
    d = tmp_path / "faces"
    rng = np.random.default_rng(0)
    for rel in ("a/x.png", "b/x.png", "b/x.jpg", "tiny.png"):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8, 3) if "tiny" in rel else (48, 40, 3), dtype=np.uint8)).save(d / rel)
    out = tmp_path / "out"
    run = ["--bundle", str(trained_bundle_path), "--out", str(out), "--refine-steps", "0", "--device", "cpu"]
    assert main(["augment", str(d), *run, "--variants", "2"]) == 0
    assert "tiny.png" in capsys.readouterr().err
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*_aug*.png"))
    assert written == ["a/x_aug00.png", "a/x_aug01.png", "b/x_jpg_aug00.png", "b/x_jpg_aug01.png",
                       "b/x_png_aug00.png", "b/x_png_aug01.png"]
    assert main(["augment", str(d), *run[:-4], "--out", str(out / "a" / "x_aug00.png")]) == 1
    _one_line_error(capsys, "augment", "is a file")
    assert main(["augment", str(d), *run, "--device", "gpu"]) == 2
    _one_line_error(capsys, "augment", "unknown device")


@pytest.mark.parametrize("command", ["augment", "expand"])
def test_detect_framing_without_the_faces_extra(command, trained_bundle_path, tmp_path, folder, monkeypatch, capsys):
    """``--framing detect`` without dlib (simulated: the extra reports itself missing and no aligner
    is cached) is one error line naming the install command and exit status 1, not a traceback."""
    from genaug.faces import align, identity

    monkeypatch.setattr(identity, "faces_extra_available", lambda: False)
    monkeypatch.setattr(align, "_ALIGNERS", {})
    (folder / "broken.jpg").unlink()
    out = ["--out", str(tmp_path / "out")] if command == "augment" else [str(tmp_path / "out.h5"), "--variants", "1"]
    code = main([command, str(folder), *out, "--bundle", str(trained_bundle_path), "--framing", "detect",
                 "--refine-steps", "0", "--device", "cpu"])
    assert code == 1  # a missing extra is a failure (1), not a usage error (2)
    _one_line_error(capsys, command, 'pip install "genaug[faces]"')


def test_augment_names_codes_and_strength_and_keeps_a_grey_photo_grey(trained_bundle_path, tmp_path, capsys):
    d = tmp_path / "faces"
    d.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 40), dtype=np.uint8)).save(d / "grey.png")
    run = ["augment", str(d), "--bundle", str(trained_bundle_path), "--out", str(tmp_path / "out"), "--refine-steps", "0",
           "--device", "cpu", "--variants", "1"]
    assert main([*run, "--codes", "nope"]) == 2
    _one_line_error(capsys, "augment", "nope")
    assert main([*run, "--codes", "smile", "--strength", "0"]) == 0
    out = Image.open(tmp_path / "out" / "grey_aug00.png")  # was written as RGB
    assert out.mode == "L" and np.array_equal(np.asarray(out), np.asarray(Image.open(d / "grey.png")))  # strength 0


def test_expand_refuses_an_unknown_framing_before_reading_the_source(tiny_bundle_path, tmp_path, folder, capsys):
    with pytest.raises(SystemExit):
        main(["expand", str(folder), str(tmp_path / "o.h5"), "--bundle", str(tiny_bundle_path), "--framing", "centre"])
    err = capsys.readouterr().err
    assert "invalid choice: 'centre'" in err and "broken.jpg" not in err
