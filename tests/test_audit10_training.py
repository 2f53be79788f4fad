"""Audit 10, training your own bundle as the README's "Train your own bundle" and docs/training.md
describe it: the same command resumes (log.jsonl never repeats a step), ``--overwrite`` starts again,
a folder of another kind or shape is refused clearly, bad attribute files and code specs are named,
and torchrun is refused by the kinds that train in one process. Tiny runs (16 px, a few steps)."""
from __future__ import annotations

import json

import pytest
import torch

from genaug.training.edit_loop import EditTrainConfig
from genaug.training.edit_loop import main as edit_main

from test_training import config, read_log, write_faces
from test_training_options import EDIT_TINY


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return write_faces(tmp_path_factory.mktemp("faces"), n=12)


def last_err(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def test_rerunning_a_finished_command_does_not_log_its_evaluation_again(faces, tmp_path):
    """The README: "the same command resumes ... log.jsonl never repeats a step". Rerunning a finished
    run (or resuming at an evaluated checkpoint) evaluated it again and appended a second
    ``{"step": N, "eval": ...}`` line each time."""
    cmd = [str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "2"]
    assert edit_main(cmd) == 0
    ckpt = (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns
    assert edit_main(cmd) == 0  # the same command again: nothing left to train
    assert edit_main(cmd) == 0
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if "eval" in r] == [2]
    assert [r["step"] for r in log if "eval" not in r] == [1, 2]
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns == ckpt  # nothing new to save
    assert (tmp_path / "run" / "bundle" / "config.json").is_file()
    assert edit_main([*cmd[:-1], "3"]) == 0  # more steps continue and evaluate the new end once
    log = read_log(tmp_path / "run")
    assert [r["step"] for r in log if "eval" in r] == [2, 3] and [r["step"] for r in log if "eval" not in r] == [1, 2, 3]


def test_the_edit_kind_takes_overwrite_as_the_readme_says(faces, tmp_path, capsys):
    """README: "`--overwrite` starts a run folder again" (in the edit kind's paragraph), but
    ``genaug train --kind edit`` had no such option (argparse: unrecognized arguments), and the
    refusal of other settings only said "another folder"."""
    out = tmp_path / "run"
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--steps", "2"]) == 0
    (out / "samples" / "keep.txt").write_text("old")
    other = [str(faces), str(out), *EDIT_TINY, "--continuous", "2", "--steps", "1"]
    assert edit_main(other) == 1
    assert "--overwrite" in last_err(capsys)
    assert edit_main([*other, "--overwrite"]) == 0
    log = read_log(out)
    assert [r["step"] for r in log] == [1, 1] and "eval" in log[1]  # the old run's lines went
    assert not (out / "samples" / "keep.txt").exists()
    assert json.loads((out / "bundle" / "config.json").read_text())["training"]["steps"] == 1
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 1
    assert edit_main([*other[:-1], "2", "--no-overwrite"]) == 0  # then the same command resumes it
    assert [r["step"] for r in read_log(out) if "eval" not in r] == [1, 2]


def test_a_checkpoint_of_another_kind_or_shape_is_refused_clearly(faces, tmp_path, capsys):
    """An infogan run folder whose shared settings happen to equal the edit command's (the
    infogan config has no ``identity_unsafe``, ``lr``, ...: they read as the edit defaults) was
    resumed by the edit kind: torch's ``Error(s) in loading state_dict for EditEncoder`` traceback.
    The same with a run folder whose train_config.json is missing and whose networks differ."""
    from genaug.training.loop import train

    gan = tmp_path / "gan"
    train(config(faces, gan, image_size=16, g_width=4, d_width=4, e_width=4, content_channels=2, noise_dim=4,
                 categorical="glasses:2:Eyeglasses,male:2:Smiling", continuous="1", batch_size=4, steps=1,
                 predictor_steps=1, holdout=2, log_every=1, sample_every=1000, device="cpu"))
    capsys.readouterr()
    same = ["--categorical", "glasses:2:Eyeglasses,male:2:Smiling", "--identity-unsafe", "male", "--steps", "2"]
    assert edit_main([str(faces), str(gan), *EDIT_TINY, *same]) == 1
    err = last_err(capsys)
    assert err.startswith("genaug train --kind edit: error: ") and "kind" in err and "Traceback" not in err, err

    out = tmp_path / "run"
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--steps", "1"]) == 0
    (out / "train_config.json").unlink()  # nothing left to compare the settings with
    capsys.readouterr()
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--content-channels", "4", "--steps", "2"]) == 1
    err = last_err(capsys)
    assert "checkpoint.pt" in err and "does not fit" in err and "--overwrite" in err, err


def test_a_torn_last_log_line_does_not_block_the_resume(faces, tmp_path, capsys):
    """A run killed (SIGKILL, out of memory, a full disk) while appending to log.jsonl left half a
    line; the same command then failed with json's "Unterminated string starting at ..."."""
    cmd = [str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1"]
    assert edit_main(cmd) == 0
    with open(tmp_path / "run" / "log.jsonl", "a") as f:
        f.write('{"step": 2, "t": 0.1, "g_ad')
    assert edit_main([*cmd[:-1], "2"]) == 0, capsys.readouterr().err
    assert [r["step"] for r in read_log(tmp_path / "run") if "eval" not in r] == [1, 2]


def test_torchrun_is_refused_by_the_edit_kind(faces, tmp_path, capsys, monkeypatch):
    """``torchrun --nproc_per_node 2 -m genaug.training ... --kind edit`` ran two unsynchronised
    copies of the same run into one folder (every step logged twice, checkpoint and bundle written
    by both); only infogan / began train data-parallel."""
    import genaug.training.edit_loop as edit_loop

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setattr(edit_loop, "load_faces", lambda *a, **k: pytest.fail("the data loaded first"))
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1"]) == 1
    err = last_err(capsys)
    assert "torchrun" in err and "one process" in err, err
    assert not (tmp_path / "run" / "log.jsonl").exists()


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


def test_grid_refuses_a_bad_grid_in_one_line(tmp_path, capsys):
    """``python -m genaug.training.grid ... --grid advloss=ns`` printed a traceback."""
    from genaug.training.grid import main

    assert main([str(tmp_path), str(tmp_path / "grid"), "--grid", "advloss=ns"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("python -m genaug.training.grid: error: --grid 'advloss=ns': unknown training option 'advloss' "
                   "(see python -m genaug.training --help)"), err


def test_with_snapshots_the_run_reports_and_returns_its_bundle(faces, tmp_path, capsys):
    """With ``--snapshots`` the snapshot was saved after ``bundle/``, so the command ended with
    "wrote RUN/snapshots/000002" (a float16 copy) and the returned Bundle pointed there."""
    from genaug.bundle import load_bundle

    out = tmp_path / "run"
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--steps", "2", "--snapshots"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"wrote {out / 'bundle'}"
    assert (out / "snapshots" / "000002" / "config.json").is_file()
    assert json.loads((out / "bundle" / "config.json").read_text())["weights"]["dtype"] == "float32"  # not the snapshot's
    assert load_bundle(out / "bundle").training["steps"] == 2


def test_a_mismatched_init_from_is_refused_before_the_faces_load(faces, tmp_path, capsys, monkeypatch):
    """``--init-from`` a bundle of another shape was refused only after the faces had loaded (minutes on CelebA)."""
    import genaug.training.edit_loop as edit_loop

    def no_faces(*a, **k):
        raise AssertionError("the faces were loaded before --init-from was checked")

    monkeypatch.setattr(edit_loop, "load_faces", no_faces)
    assert edit_main([str(faces), str(tmp_path / "run"), *EDIT_TINY, "--steps", "1", "--init-from", "default"]) == 1
    assert "--init-from default: its networks or latent differ" in capsys.readouterr().err
