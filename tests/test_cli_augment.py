"""genaug augment: its inputs (folders, several files, globs, names differing only in case), what it writes
(alpha and transparency, ICC profiles, no torn file, reruns) and what it prints."""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import UTKFACE, need, needs_dlib, noise_pngs
from genaug.cli import main
from genaug.cli.augment import output_stems
from genaug.demo import DEMO_FACES


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


def test_augment_names_inputs_whose_names_differ_only_in_case_or_suffix_apart(tmp_path):
    # a.jpg + a.JPG both became "a_jpg", and b.png's "b_png" met b_png.jpg's own stem: five inputs, three outputs
    # ("wrote 5 augmented images"), the others overwritten
    files = [tmp_path / n for n in ("a.jpg", "a.JPG", "b.jpg", "b.png", "b_png.jpg", "sub/c.png")]
    names = output_stems({f: f.relative_to(tmp_path) for f in files})
    assert len({n.as_posix().lower() for n in names.values()}) == len(files), names
    assert names[tmp_path / "b.jpg"] == Path("b_jpg") and names[tmp_path / "sub/c.png"] == Path("sub/c")


def test_augment_cli_skips_its_own_output_inside_the_input(tmp_path):
    from genaug.cli.main import main

    src = tmp_path / "faces"
    src.mkdir()
    Image.open(DEMO_FACES[0]).save(src / "a.png")
    for _ in range(2):
        assert main(["augment", str(src), "--out", str(src / "aug"), "--variants", "1"]) == 0
    assert sorted(p.name for p in (src / "aug").rglob("*.png") if p.name != "contact_sheet.png") == ["a_aug00.png"]


def test_augment_names_the_users_photos_it_leaves_out_inside_out(tmp_path, tiny_bundle_path, capsys):
    # `genaug augment photos --out photos/sub` left photos/sub/*.jpg out without a word ("wrote 1 augmented images")
    src = noise_pngs(tmp_path / "photos", (40, 40, 3), n=1)
    noise_pngs(src / "sub", (40, 40, 3), n=2)
    common = ["--variants", "1", "--bundle", str(tiny_bundle_path), "--device", "cpu", "--quiet"]
    for _ in range(2):  # the second run finds its own variants there too: those are not named
        assert main(["augment", str(src), "--out", str(src / "sub"), *common]) == 0
        out = capsys.readouterr().out
        assert "2 image(s) inside --out" in out and str(src / "sub" / "1.png") in out and "_aug00.png" not in out, out


def test_augment_writes_into_a_folder_above_its_input(tmp_path, tiny_bundle_path):
    # `genaug augment photos/raw --out photos` (or one photo of it) was refused as "no input images in photos/raw
    # outside --out photos": every input lies below --out, taken for an --out inside the input folder
    raw = noise_pngs(tmp_path / "photos" / "raw", (40, 40, 3), n=1)
    common = ["--variants", "1", "--bundle", str(tiny_bundle_path), "--device", "cpu"]
    assert main(["augment", str(raw), "--out", str(tmp_path / "photos"), *common]) == 0
    assert main(["augment", str(raw / "0.png"), "--out", str(tmp_path), *common]) == 0
    assert (tmp_path / "photos" / "0_aug00.png").is_file() and (tmp_path / "0_aug00.png").is_file()
    assert main(["augment", str(raw), "--out", str(raw), *common]) == 1  # inside (here: at) the input: still refused


def test_augment_gives_a_file_the_same_variants_whatever_else_the_folder_holds(tmp_path):
    """Image k of a chunk drew its edits from (seed, chunk start + k-th readable file): a file added or unreadable
    before it changed the variants written for it. Now a file's path below the input folder picks them."""
    from PIL import Image

    from genaug.cli.main import main

    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "c.png", "d.png"):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(src / name)
    args = ["--variants", "2", "--refine-steps", "0", "--framing", "full", "--device", "cpu"]  # the default model
    assert main(["augment", str(src), "--out", str(tmp_path / "one"), *args]) == 0
    (src / "b.png").write_bytes(b"not an image")  # sorts before c and d
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(src / "bb.png")
    assert main(["augment", str(src), "--out", str(tmp_path / "two"), *args]) == 0
    read = lambda p: np.asarray(Image.open(p))  # noqa: E731
    for stem in ("c", "d"):
        for v in range(2):
            assert np.array_equal(read(tmp_path / "one" / f"{stem}_aug{v:02d}.png"), read(tmp_path / "two" / f"{stem}_aug{v:02d}.png"))
    first, second = (read(tmp_path / "one" / f"c_aug{v:02d}.png").astype(int) for v in (0, 1))
    assert np.abs(first - second).mean() > 0.5  # the variants do follow the draw (else the test could not fail)


def test_augment_writes_a_grey_photo_with_alpha_back_as_grey_with_alpha(tmp_path, capsys):
    # an "LA" PNG (grey + transparency) came back RGBA, while "L" stays "L" and the transform keeps PIL "LA"
    d = tmp_path / "faces"
    d.mkdir()
    rng = np.random.default_rng(0)
    la = np.dstack([rng.integers(0, 255, (40, 40), dtype=np.uint8), np.full((40, 40), 200, np.uint8)])
    Image.fromarray(la, "LA").save(d / "ga.png")
    assert main(["augment", str(d), "--out", str(tmp_path / "out"), "--device", "cpu", "--variants", "1"]) == 0
    out = Image.open(tmp_path / "out" / "ga_aug00.png")
    assert out.mode == "LA" and out.size == (40, 40)
    assert np.array_equal(np.asarray(out)[..., 1], la[..., 1])  # alpha kept


@pytest.mark.parametrize("mode", ["P", "L"])
def test_augment_keeps_the_transparency_of_a_palette_or_grey_cut_out(tmp_path, mode):
    # a PNG whose transparency is a palette entry or a tRNS grey level was read as RGB / L: the variants came back
    # opaque, the cut-out's background painted in
    from genaug.cli.augment import _read

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(30, 220, (40, 40, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / "cut.png"
    rgb.save(path, transparency=int(np.asarray(rgb)[0, 0]))  # a palette index / grey level the image uses
    want = np.asarray(Image.open(path).convert("RGBA"))[..., 3]
    assert want.min() == 0 < want.max()
    img = _read(path).pixels
    assert img.shape == (40, 40, 4) and np.array_equal(img[..., 3], want)
    if mode == "L":  # grey kept grey, written back as grey with alpha
        assert np.array_equal(img[..., 0], img[..., 1])


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


def test_augment_names_a_seed_beyond_64_bits(noise_faces, tmp_path, capsys):
    # was "genaug augment: error: Overflow when unpacking long long", naming no option
    assert main(["augment", str(noise_faces), "--out", str(tmp_path / "out"), "--seed", str(10**23), "--device", "cpu"]) == 2
    assert "--seed must fit in 64 bits" in capsys.readouterr().err


def test_augment_skip_lines_are_not_written_onto_the_progress_bar(tmp_path, tiny_bundle_path, capsys):
    # "augmenting:   0%|          | 0/2 [00:00<?, ?img/s]genaug augment: skipped …": print() wrote the line after the
    # bar's text; and augment had no --quiet for scripts and logs
    src = noise_pngs(tmp_path / "faces", n=1)
    (src / "00_broken.jpg").write_bytes(b"not a jpeg")
    run = ["--bundle", str(tiny_bundle_path), "--device", "cpu", "--variants", "1"]
    assert main(["augment", str(src), "--out", str(tmp_path / "a"), *run]) == 0
    err = capsys.readouterr().err
    lines = re.split(r"[\r\n]", err)
    assert any(l.startswith("genaug augment: skipped") for l in lines), err
    assert not any("genaug augment: skipped" in l and not l.startswith("genaug augment") for l in lines), err
    assert main(["augment", str(src), "--out", str(tmp_path / "b"), *run, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "augmenting" not in err and "genaug augment: skipped" in err


@needs_dlib
def test_augment_names_photos_whose_named_control_had_no_room_on_the_face(tmp_path, capsys):
    # `genaug augment --codes yaw` on near-profile photos (utkface_128 02863 and 01236: -54 and -47 degrees; turns stop
    # there) wrote the photos unchanged and said "wrote 2 augmented images" without a word, as it names photos without
    # a face; a frontal photo beside them is turned and not named
    root = need(UTKFACE) / "images"
    src = tmp_path / "in"
    src.mkdir()
    for name in ("02863.jpg", "01236.jpg", "03018.jpg"):
        Image.open(root / name).save(src / name.replace(".jpg", ".png"))
    assert main(["augment", str(src), "--out", str(tmp_path / "out"), "--codes", "yaw", "--variants", "1",
                 "--device", "cpu", "--quiet"]) == 0
    summary = capsys.readouterr().out
    assert "2 image(s) with variants written unchanged (no room for the control on the face" in summary, summary
    assert "02863.png" in summary and "01236.png" in summary and "03018.png" not in summary
    for name in ("02863", "01236"):
        same = np.asarray(Image.open(tmp_path / "out" / f"{name}_aug00.png").convert("RGB"))
        np.testing.assert_array_equal(same, np.asarray(Image.open(src / f"{name}.png").convert("RGB")))


def test_augment_reads_jpegs_saved_as_jfif_and_avif_photos(tiny_bundle_path, tmp_path, capsys):
    # a browser's download "face.jfif" (a JPEG) was "not an image file" when named and left out of a folder without a
    # word, as was an AVIF photo, though PIL reads both
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    from PIL import features

    files = (("a.jfif", "JPEG"), ("b.jpe", "JPEG"), ("d.jpg", "JPEG")) + ((("c.avif", "AVIF"),) if features.check("avif") else ())
    for name, fmt in files:
        Image.fromarray(rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(src / name, format=fmt)
    common = ["--bundle", str(tiny_bundle_path), "--variants", "1", "--refine-steps", "0", "--quiet"]
    assert main(["augment", str(src), "--out", str(tmp_path / "out"), *common]) == 0
    assert sorted(_pngs(tmp_path / "out")) == sorted(f"{n[0]}_aug00.png" for n, _ in files)
    assert main(["augment", str(src / "a.jfif"), "--out", str(tmp_path / "one"), *common]) == 0
    assert sorted(_pngs(tmp_path / "one")) == ["a_aug00.png"]


def test_augment_names_a_heic_photo_it_cannot_read_and_why(tiny_bundle_path, tmp_path, capsys):
    # an iPhone's IMG_0001.HEIC in the folder was left out without a word (a folder of them: "no images found")
    try:
        import pillow_heif  # noqa: F401
        pytest.skip("pillow-heif installed: HEIC photos are read")
    except ImportError:
        pass
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 36, 3), dtype=np.uint8)).save(src / "a.jpg")
    (src / "IMG_0001.HEIC").write_bytes(b"\0\0\0\x18ftypheic" + bytes(64))
    assert main(["augment", str(src), "--bundle", str(tiny_bundle_path), "--out", str(tmp_path / "out"), "--variants", "1",
                 "--refine-steps", "0", "--quiet"]) == 0
    said = capsys.readouterr()
    assert "IMG_0001.HEIC" in said.out and "pip install pillow-heif" in said.err, said
