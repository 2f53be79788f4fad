"""Audit 12, training one's own bundle as a practitioner would: the edit kind's progress bar shows its losses and a
spent wall-clock budget says so; ``--attributes ""`` trains without labels (was 'attribute file not found: None');
faces in CelebA's original 178x218 frame (e.g. an ImageFolder of celeba_id200) are trained on the box the bundle
records as its framing (was the centred square: another crop than the one augmentation feeds the model); every
option of the edit and detail kinds' --help says its default; a resumed run with another setting says what it was
(and another kind's folder names the kinds); --image-size 8, --ema >= 1 and --lr <= 0 are one line each; an
unreadable file's warning goes to stderr (it was printed on stdout into the decoding bar). Tiny runs (16 px, a few
steps)."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from genaug.bundle import load_bundle
from genaug.faces.framing import CELEBA_FRAMING
from genaug.training.cli import main as train_main
from genaug.training.data import load_faces
from genaug.training.edit_loop import EditTrainConfig, EditTrainer
from genaug.training.edit_loop import main as edit_main

from conftest import CELEBA_ID200, need
from test_training import write_faces
from test_training_options import EDIT_TINY

GAN_TINY = ["--image-size", "16", "--g-width", "4", "--d-width", "4", "--e-width", "4", "--batch-size", "4",
            "--holdout", "2", "--categorical", "2", "--continuous", "1", "--predictor-steps", "1", "--steps", "1",
            "--device", "cpu"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_the_edit_kind_progress_bar_shows_its_losses(tmp_path, capsys):
    """The bar showed steps and speed only (the other kinds show their losses)."""
    faces = write_faces(tmp_path / "faces", n=12)
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "2"]) == 0
    bar = capsys.readouterr().err
    assert re.search(r"edit model: .*2/2.*rec=[0-9.]+", bar), bar[-400:]


def test_a_spent_wall_clock_budget_is_reported(tmp_path, capsys):
    """The run stopped silently at some step: was it the budget, a crash or --steps?"""
    faces = write_faces(tmp_path / "faces", n=12)
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1000", "--minutes", "1e-9"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wall-clock budget of 1e-09 minutes spent at step \d+: checkpoint saved; the same command resumes",
                     out), out


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
        assert train_main([str(faces), str(tmp_path / framing), *GAN_TINY, "--holdout", "1", "--framing", framing]) == 0
    boxed, square = (d.images.float().mean() for d in seen)
    assert boxed > 250 and square < 200  # 'none': the centred square


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


def torch_sorted(*parts):
    import torch

    x = torch.cat(parts).flatten(1).numpy()
    return x[np.lexsort(x.T[::-1])]


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


def test_an_unreadable_file_is_warned_about_on_stderr(tmp_path, capsys):
    """The warning was printed on stdout, into the middle of the decoding bar's line."""
    faces = write_faces(tmp_path / "faces", n=4, attributes=False)
    (faces / "images" / "notes.png").write_text("not a picture")
    assert len(load_faces(faces, 16)) == 4
    out = capsys.readouterr()
    assert "notes.png" in out.err and "notes.png" not in out.out


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
    assert train_main([str(faces), str(run), *GAN_TINY]) == 1
    err = capsys.readouterr().err.strip()
    assert err.endswith("holds a run of kind 'edit', not 'infogan'; another kind needs another --out, or --overwrite to "
                        "start again") and "batch_size" not in err, err


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


def test_the_detail_kind_refuses_a_learning_rate_of_zero():
    from genaug.training.detail import DetailConfig

    with pytest.raises(ValueError, match="--lr must be > 0, got 0"):
        DetailConfig("default", "faces", "run", lr=0)


def test_edit_calibration_frames_a_flat_folder_of_celeba_frames_as_an_imagefolder(tmp_path):
    """A flat folder of 178x218 aligned CelebA pictures (img_align_celeba) was measured on the centred square, an
    ImageFolder of the same pictures on the face box."""
    from genaug.training.calibrate_edits import load_labelled

    faces = celeba_frames(tmp_path / "faces")
    (faces / "attributes.csv").write_text("filename,Smiling\n" + "".join(f"{i}.png,{1 - 2 * (i % 2)}\n" for i in range(6)))
    x, _, _ = load_labelled(faces, 16, None, 6, 0)
    assert x.min() > 0.9  # the white face box only, in [-1, 1]


# ----------------------------------------------------------------- audit 12, training: resume, --kind help, lock

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


@pytest.mark.parametrize("kind", ["edit", "infogan", "began", "detail"])
def test_each_kinds_help_names_its_kind_and_the_choices(kind, capsys):
    """``genaug train --kind began --help`` said '--kind KIND ... (default: infogan)' (no choices, another kind);
    the detail kind's said no kind at all."""
    with pytest.raises(SystemExit):
        train_main(["--kind", kind, "--help"])
    block = help_blocks(capsys.readouterr().out)["--kind"]
    assert "--kind {edit,infogan,began,detail}" in block and block.endswith(f"(default: {kind})"), block


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
