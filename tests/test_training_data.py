"""The faces a training run reads: attribute files (pandas-style, blank or short lines, values that are not
labels, none), the decode cache, CelebA's original frames, 16-bit photos, unreadable files."""
from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from conftest import CELEBA_ID200, last_err, need
from genaug.bundle import load_bundle
from genaug.faces.framing import CELEBA_FRAMING
from genaug.training.cli import main as train_main
from genaug.training.data import load_face, load_faces
from genaug.training.edit_loop import EditTrainConfig, EditTrainer
from genaug.training.edit_loop import main as edit_main
from test_training import write_faces
from test_training_options import EDIT_TINY, GAN_TINY


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))


def _attribute_folder(tmp_path, column: list[str], rows: int = 12):
    """``write_faces`` (12 images) with its Eyeglasses column replaced by ``column``; ``rows`` > 12 adds rows
    for images the folder does not hold (an attribute file for a larger set)."""
    root = write_faces(tmp_path / "faces", n=12)
    lines = [ln.split(",") for ln in (root / "attributes.csv").read_text().splitlines()]
    lines += [[f"extra{i}.png", str(i), "1", "1"] for i in range(rows - 12)]
    for r, v in zip(lines[1:], column):
        r[2] = v
    (root / "attributes.csv").write_text("\n".join(",".join(r) for r in lines) + "\n")
    return root


def test_pandas_style_labels_with_unknowns_are_read(tmp_path):
    """pandas writes a column with empty (unknown) cells as floats: "1.0", "-1.0", "" -- the README's
    mix of labelled and unlabelled faces. Such a column was not taken for an attribute at all."""
    from genaug.training.data import load_faces

    root = _attribute_folder(tmp_path, ["1.0", "-1.0", "", "1.0", "0.0", "-1.0"] * 2)
    data = load_faces(root, 16)
    col = data.attribute_names.index("Eyeglasses")
    assert data.attributes[:6, col].tolist() == [1, -1, 0, 1, -1, -1]


@pytest.mark.parametrize("bad", ["2", "yes"])
def test_a_bound_column_with_other_values_is_named_not_called_missing(tmp_path, capsys, bad):
    """A value other than -1/1/0/empty made the column silently stop being an attribute: binding a
    code to it said "attributes.csv lacks 'Eyeglasses' (it has ['Smiling'])" -- it is there. And
    only the first 200 rows were looked at: a "2" further down counted as +1, a "yes" failed
    with float()'s "could not convert string to float: 'yes'" naming neither file nor line."""
    root = _attribute_folder(tmp_path, ["1", "-1"] * 110 + [bad] + ["1"] * 9, rows=230)
    assert edit_main([str(root), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1"]) == 1
    err = last_err(capsys)
    assert "lacks" not in err and "could not convert" not in err, err
    assert "Eyeglasses" in err and f"line 222: '{bad}'" in err, err


def test_attribute_files_with_blank_or_short_lines(tmp_path):
    root = write_faces(tmp_path / "faces", n=4)
    csv = root / "attributes.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join([lines[0], "", *lines[1:], "", ""]) + "\n")  # blank lines are skipped
    assert load_faces(root, 16).attributes.shape == (4, 2)
    csv.write_text("\n".join([*lines[:3], "0002.png,2", *lines[4:]]) + "\n")
    with pytest.raises(ValueError, match=r"attributes.csv: line 4 has a different number of cells than the header's 4"):
        load_faces(root, 16, cache_dir=tmp_path / "c2")
    csv.write_text("")
    with pytest.raises(ValueError, match="empty attribute file"):
        load_faces(root, 16, cache_dir=tmp_path / "c3")


@pytest.mark.parametrize("kind", ["edit", "infogan"])
def test_an_empty_attributes_option_trains_without_labels(tmp_path, capsys, kind):
    """``--attributes ""`` (no attribute file: the faces' attributes.csv is not read) failed with 'attribute file
    not found: None'."""
    faces = write_faces(tmp_path / "faces", n=12)
    (faces / "attributes.csv").write_text("filename,Eyeglasses\nnot-an-image.png,1\n")  # would be refused if read
    assert load_faces(faces, 16, attributes="").attributes is None
    opts = [*EDIT_TINY, "--steps", "1", "--categorical", "glasses:2"] if kind == "edit" else GAN_TINY
    assert train_main([str(faces), str(tmp_path / "run"), "--kind", kind, *opts, "--attributes", ""]) == 0, \
        capsys.readouterr().err


def test_the_decode_cache_serves_a_relative_and_an_absolute_spelling_of_the_folder(tmp_path, monkeypatch):
    write_faces(tmp_path / "faces", n=6)
    monkeypatch.chdir(tmp_path)
    a = load_faces("faces", 16)  # decodes, caches
    b = load_faces(tmp_path / "faces", 16)  # the cache, read under the absolute spelling
    assert all(os.path.exists(f) for f in a.files + b.files)
    monkeypatch.chdir(tmp_path / "faces")
    c = load_faces(".", 16)
    assert all(os.path.exists(f) for f in c.files)  # paths as the caller spelled the folder
    assert len(list((tmp_path / "cache").glob("faces-*.npz"))) == 1
    for d in (b, c):
        assert (d.images == a.images).all() and (d.attributes == a.attributes).all()


def celeba_frames(root, n=6):
    """Pictures in CelebA's original 178x218 frame: white in the CelebA face box, black around it."""
    root.mkdir(parents=True)
    l, t, r, b = CELEBA_FRAMING["box"]
    for i in range(n):
        a = np.zeros((218, 178, 3), np.uint8)
        a[t:b, l:r] = 255
        Image.fromarray(a).save(root / f"{i}.png")
    return root


def test_faces_in_celebas_original_frame_are_trained_on_the_bundles_face_box(tmp_path):
    """celeba_id200-style pictures were cut to their centred square (head, hair and shoulders) while the bundle
    records CelebA's framing, so augmenting the same pictures fed the model the face box it never saw."""
    faces = celeba_frames(tmp_path / "faces")
    cfg = EditTrainConfig(str(faces), str(tmp_path / "run"), image_size=16, content_channels=2, e_width=4, g_width=4,
                          d_width=4, batch_size=4, holdout=1, categorical="glasses:2", identity_unsafe="",
                          continuous="1", steps=1, threads=1, device="cpu")
    trainer = EditTrainer(cfg)
    assert trainer.train_data.images.float().mean() > 250  # the face box only (white)
    assert load_bundle(trainer.run().path).framing == CELEBA_FRAMING


def test_an_infogan_run_frames_its_faces_as_its_framing_option_says(tmp_path, monkeypatch):
    import genaug.training.loop as loop

    faces, seen = celeba_frames(tmp_path / "faces"), []
    real = loop.load_faces
    monkeypatch.setattr(loop, "load_faces", lambda *a, **k: seen.append(real(*a, **k)) or seen[-1])
    for framing in ("celeba", "none"):
        assert train_main([str(faces), str(tmp_path / framing), "--kind", "infogan", *GAN_TINY, "--holdout", "1",
                          "--framing", framing]) == 0
    boxed, square = (d.images.float().mean() for d in seen)
    assert boxed > 250 and square < 200  # 'none': the centred square


def torch_sorted(*parts):
    import torch

    x = torch.cat(parts).flatten(1).numpy()
    return x[np.lexsort(x.T[::-1])]


def test_the_celeba_id200_folder_trains_on_the_celeba_box(tmp_path):
    """The README's ImageFolder of identities in their original frames: the faces fill the model frame."""
    people = tmp_path / "people"
    people.mkdir()
    for who in ("000", "001"):
        (people / who).symlink_to(need(CELEBA_ID200) / who, target_is_directory=True)
    boxed = load_faces(people, 32, attributes=None, framing=CELEBA_FRAMING).images.float()
    square = load_faces(people, 32, attributes=None).images.float()
    # the centred square shows the background in its corners; the box is all face and hair
    assert not np.allclose(boxed.numpy(), square.numpy())
    cfg = EditTrainConfig(str(people), str(tmp_path / "run"), image_size=32, content_channels=2, e_width=4, g_width=4,
                          d_width=4, batch_size=4, holdout=2, categorical="glasses:2", identity_unsafe="",
                          continuous="1", steps=1, threads=1, device="cpu", attributes="")
    trainer = EditTrainer(cfg)
    loaded = torch_sorted(trainer.train_data.images, trainer.held.images)
    assert np.array_equal(loaded, torch_sorted(boxed.to(dtype=trainer.train_data.images.dtype)))


def test_edit_calibration_frames_a_flat_folder_of_celeba_frames_as_an_imagefolder(tmp_path):
    """A flat folder of 178x218 aligned CelebA pictures (img_align_celeba) was measured on the centred square, an
    ImageFolder of the same pictures on the face box."""
    from genaug.training.calibrate_edits import load_labelled

    faces = celeba_frames(tmp_path / "faces")
    (faces / "attributes.csv").write_text("filename,Smiling\n" + "".join(f"{i}.png,{1 - 2 * (i % 2)}\n" for i in range(6)))
    x, _, _ = load_labelled(faces, 16, None, 6, 0)
    assert x.min() > 0.9  # the white face box only, in [-1, 1]


def test_the_training_loader_reads_16_bit_grey_photos(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 64), (64, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    face = load_face(tmp_path / "g16.png", 32, 3)
    assert face.shape == (32, 32, 3)
    assert face.min() < 20 and face.max() > 235 and face.mean() == pytest.approx(127.5, abs=8)  # not all white


def test_an_unreadable_file_is_warned_about_on_stderr(tmp_path, capsys):
    """The warning was printed on stdout, into the middle of the decoding bar's line."""
    faces = write_faces(tmp_path / "faces", n=4, attributes=False)
    (faces / "images" / "notes.png").write_text("not a picture")
    assert len(load_faces(faces, 16)) == 4
    out = capsys.readouterr()
    assert "notes.png" in out.err and "notes.png" not in out.out
