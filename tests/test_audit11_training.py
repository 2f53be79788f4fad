"""Audit 11, training a bundle on one's own faces and using it: a hand-edited bundle config with a
wrong-typed entry is one BundleError naming it (not an AttributeError / TypeError, nor a silently
truthy ``"random": "no"``), and a run folder kept inside the faces folder resumes (its sample grids
are not read as training faces). Tiny runs (16 px, a few steps)."""
from __future__ import annotations

import json
import shutil

import pytest

from genaug.bundle import BundleError, load_bundle
from genaug.cli.main import main as genaug_main
from genaug.training.cli import main as train_main
from genaug.training.edit_loop import main as edit_main

from test_training import write_faces
from test_training_options import EDIT_TINY


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    faces = write_faces(tmp_path_factory.mktemp("faces"), n=12)
    out = tmp_path_factory.mktemp("runs") / "run"
    assert edit_main([str(faces), str(out), *EDIT_TINY, "--steps", "1"]) == 0
    return out / "bundle"


def edited(trained, tmp_path, change):
    b = tmp_path / "b"
    shutil.copytree(trained, b)
    cfg = json.loads((b / "config.json").read_text())
    change(cfg)
    (b / "config.json").write_text(json.dumps(cfg))
    return b


@pytest.mark.parametrize("key, value, named", [
    ("runtime", [1, 2], "'runtime' must be an object"), ("training", [1], "'training' must be an object"),
    ("framing", "celeba", "'framing' must be an object"), ("edit_recipes", [1], "'edit_recipes' must be an object"),
    ("network", "x", "'network' must be an object"), ("runtime", {"refine_steps": "many"}, "refine_steps"),
])
def test_a_wrong_typed_config_entry_is_a_bundle_error_in_load_and_info(trained, tmp_path, capsys, key, value, named):
    """These raised AttributeError / TypeError (or failed only later, at the first augmentation)."""
    b = edited(trained, tmp_path, lambda c: c.__setitem__(key, value))
    with pytest.raises(BundleError, match=named):
        load_bundle(b)
    assert genaug_main(["info", str(b)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err


def test_a_code_flag_that_is_not_true_or_false_is_refused(trained, tmp_path):
    """``"random": "no"`` is truthy: the code silently stayed in the random set."""
    def change(c):
        c["latent"]["categorical"][0]["random"] = "no"
    with pytest.raises(BundleError, match="random must be true or false"):
        load_bundle(edited(trained, tmp_path, change))


def test_a_region_in_a_hand_edited_recipe_loads(trained, tmp_path):
    def change(c):
        c["edit_recipes"]["glasses=1"]["region"] = [0.5, 0.75, 0.3, 0.2]
    assert load_bundle(edited(trained, tmp_path, change)).recipes["glasses=1"].region == (0.5, 0.75, 0.3, 0.2)


@pytest.mark.parametrize("kind", ["edit", "infogan"])
def test_a_run_folder_inside_the_faces_folder_resumes(tmp_path, capsys, kind):
    """The same command resumed with its own sample grids read as faces: 'no attribute row for image
    run/samples/000001.png' (or, without attributes.csv, grids silently trained on)."""
    faces = write_faces(tmp_path / "faces", n=12)
    opts = [*EDIT_TINY] if kind == "edit" else ["--image-size", "16", "--g-width", "4", "--d-width", "4",
                                                "--e-width", "4", "--batch-size", "4", "--holdout", "2",
                                                "--categorical", "glasses:2:Eyeglasses", "--continuous", "1",
                                                "--predictor-steps", "1", "--sample-every", "1", "--device", "cpu"]
    for other in ("other", "run"):  # another run's folder inside the faces folder too
        for steps in ("1", "2"):
            cmd = ["--kind", kind, str(faces), str(faces / other), *opts, "--steps", steps]
            assert train_main(cmd) == 0, capsys.readouterr().err
    assert list((faces / "run" / "samples").glob("*.png"))
