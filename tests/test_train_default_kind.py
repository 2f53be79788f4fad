"""``genaug train`` without ``--kind`` trains the shipped default model's kind (the edit-aware model), not the
older InfoGAN; ``--kind infogan`` still runs the InfoGAN command line."""
import json

import pytest

from genaug.bundle.format import DEFAULT_DIR
from genaug.cli import main


def _help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", *argv, "--help"])
    assert e.value.code == 0
    return capsys.readouterr().out


def test_train_without_a_kind_is_the_shipped_default_models_kind(capsys):
    # `genaug train FACES RUN` ran the InfoGAN trainer (DEFAULT_KIND was "infogan") while the shipped model, and every
    # command the README shows, is the edit kind
    from genaug.training.cli import DEFAULT_KIND, dispatched_kind

    shipped = json.loads((DEFAULT_DIR / "config.json").read_text())["training"]["kind"]
    assert DEFAULT_KIND == shipped == "edit" and dispatched_kind(["faces", "run"]) == "edit"
    out = _help([], capsys)
    assert out.startswith("usage: genaug train --kind edit") and "--lambda-cycle" in out and "--lambda-info" not in out


def test_the_infogan_kind_is_still_named_by_kind(capsys):
    out = _help(["--kind", "infogan"], capsys)
    assert "--lambda-info" in out and "--lambda-cycle" not in out and "(default: infogan)" in out


def test_an_infogan_run_resumed_without_a_kind_is_told_to_name_it(tmp_path, capsys):
    # the command that started an InfoGAN run (no --kind) now runs the edit kind: its folder was refused with "another
    # kind needs another folder, or --overwrite to start again" - the overwrite deletes the run the user meant to resume
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text(json.dumps({"kind": "infogan", "data": str(tmp_path), "steps": 10}))
    (run / "checkpoint.pt").write_bytes(b"")
    assert main(["train", str(tmp_path), str(run)]) == 1
    err = capsys.readouterr().err
    assert "holds a run of kind 'infogan', not 'edit' (resume it with --kind infogan);" in err, err
    assert (run / "checkpoint.pt").exists() and json.loads((run / "train_config.json").read_text())["kind"] == "infogan"
