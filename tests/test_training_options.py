"""Training command lines as a user meets them: a bad option is refused by name before any work, a
run resumes whatever spelling of its paths the same command uses (or after the run folder moved),
and a corrupt checkpoint is one clear error."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from genaug.training.checkpoint import check_resumable, load_checkpoint
from genaug.training.data import FaceData, split_holdout
from genaug.training.detail import DetailConfig
from genaug.training.edit_loop import EditTrainConfig
from genaug.training.edit_loop import main as edit_main

from test_training import read_log, write_faces

EDIT_TINY = ["--image-size", "16", "--content-channels", "2", "--e-width", "4", "--g-width", "4", "--d-width", "4",
             "--batch-size", "4", "--holdout", "2", "--categorical", "glasses:2:Eyeglasses", "--identity-unsafe", "",
             "--continuous", "1", "--log-every", "1", "--eval-every", "1000", "--checkpoint-every", "1000",
             "--threads", "1", "--device", "cpu"]
GAN_TINY = ["--image-size", "16", "--g-width", "4", "--d-width", "4", "--e-width", "4", "--batch-size", "4",
            "--holdout", "2", "--categorical", "2", "--continuous", "1", "--predictor-steps", "1", "--steps", "1",
            "--device", "cpu"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.mark.parametrize("option, value, message", [
    ("steps", -5, "--steps must be >= 1, got -5"), ("steps", 0, "--steps must be >= 1, got 0"),
    ("batch_size", 1, "--batch-size must be >= 2, got 1"), ("minutes", -1.0, "--minutes must be >= 0, got -1"),
    ("holdout", -3, "--holdout must be >= 0, got -3"), ("limit", -1, "--limit must be >= 0, got -1"),
    ("balance", 2.0, r"--balance must be in \[0, 1\], got 2"), ("eval_every", -1, "--eval-every must be >= 0"),
])
def test_edit_kind_names_the_bad_option(option, value, message):
    with pytest.raises(ValueError, match=message):
        EditTrainConfig("faces", "run", **{option: value})


def test_detail_kind_names_the_bad_option():
    with pytest.raises(ValueError, match="--steps must be >= 1, got -2"):
        DetailConfig("default", "faces", "run", steps=-2)
    with pytest.raises(ValueError, match="--holdout must be >= 0, got -1"):
        DetailConfig("default", "faces", "run", holdout=-1)


def test_a_negative_holdout_is_refused_not_read_as_a_slice():
    """``perm[-3:]`` would have trained on 3 faces and held out all the others."""
    data = FaceData(torch.zeros(20, 3, 8, 8, dtype=torch.uint8), [f"{i}.png" for i in range(20)])
    train, held = split_holdout(data, 3)
    assert (len(train), len(held)) == (17, 3)
    with pytest.raises(ValueError, match="--holdout must be >= 0, got -3"):
        split_holdout(data, -3)


def test_resume_check_compares_paths_as_the_files_they_name(tmp_path, monkeypatch):
    (tmp_path / "faces").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "train_config.json"
    cfg.write_text(json.dumps({"data": str(tmp_path / "faces"), "out": "old/place", "lr": 1e-4}))
    for spelling in ("faces", "./faces/", str(tmp_path / "faces")):
        check_resumable(cfg, {"data": spelling, "out": "new/place", "lr": 1e-4}, set(), "another folder")
    (tmp_path / "other").mkdir()
    with pytest.raises(ValueError, match=r"different settings \(\['data', 'lr'\]\)"):
        check_resumable(cfg, {"data": "other", "out": "old/place", "lr": 1e-3}, set(), "another folder")


def test_the_same_edit_command_resumes_from_another_folder_or_after_a_move(tmp_path, monkeypatch, capsys):
    faces = write_faces(tmp_path / "faces", n=12)
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1"]) == 0
    monkeypatch.chdir(tmp_path)
    shutil.move(tmp_path / "run", tmp_path / "moved")
    capsys.readouterr()
    assert edit_main(["./faces/", "moved", *EDIT_TINY, "--steps", "2"]) == 0
    out = capsys.readouterr()
    assert "resuming moved at step 1" in out.out, out.err
    assert [r["step"] for r in read_log(tmp_path / "moved") if "eval" not in r] == [1, 2]


def test_a_corrupt_checkpoint_is_one_clear_error(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"step": 3, "w": torch.ones(2)}, ckpt)
    assert load_checkpoint(ckpt, torch.device("cpu"))["step"] == 3
    ckpt.write_bytes(ckpt.read_bytes()[:100])
    with pytest.raises(ValueError, match="checkpoint.pt: not a readable checkpoint"):
        load_checkpoint(ckpt, torch.device("cpu"))


def test_a_bound_attribute_the_data_lacks_is_named_with_a_suggestion(tmp_path, capsys):
    from genaug.models.latent import LatentSpec
    from genaug.training.cli import gan_main
    from genaug.training.edit import CodeLayout

    spec = LatentSpec.parse(4, "glasses:2:Eyeglass")
    with pytest.raises(ValueError, match=r"lacks \(did you mean Eyeglasses\?\)"):
        CodeLayout(spec, ["Eyeglasses", "Smiling"])
    with pytest.raises(ValueError, match=r"the data has no attributes.csv \(give --attributes FILE, or leave the code "
                                         r"unbound: glasses:2\)"):
        CodeLayout(spec, None)
    faces = write_faces(tmp_path / "faces", n=4)
    assert gan_main([str(faces), str(tmp_path / "run"), "--categorical", "glasses:2:Eyeglass", "--device", "cpu"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # the message, not a repr in quotes
    assert err.startswith("genaug train: error: attribute 'Eyeglass' not in the attribute file"), err


def test_a_run_folder_that_is_a_file_is_refused_before_the_data_loads(tmp_path, capsys, monkeypatch):
    """It was ``[Errno 17] File exists: 'notes.txt`` (a quote stripped) after the faces were decoded."""
    import genaug.training.edit_loop as edit_loop

    (tmp_path / "notes.txt").write_text("x")
    monkeypatch.setattr(edit_loop, "load_faces", lambda *a, **k: pytest.fail("the data loaded first"))
    assert edit_main([str(tmp_path), str(tmp_path / "notes.txt"), *EDIT_TINY, "--steps", "1"]) == 1
    assert capsys.readouterr().err.strip() == (f"genaug train --kind edit: error: run folder {tmp_path / 'notes.txt'} is a "
                                               "file; give a folder (it holds checkpoint.pt, log.jsonl, bundle/)")
