"""A bundle's config.json edited by hand: a wrong-typed entry is one BundleError naming it (load_bundle and
genaug info alike); recipes take numpy numbers."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from genaug.bundle import BundleError, load_bundle
from genaug.cli.main import main as genaug_main
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


def test_edit_recipes_take_numpy_numbers():
    # EditRecipe(gain=np.float32(0.5)) (a value measured with numpy) said "gain must be a positive number, got
    # np.float32(0.5)"; a numpy region, transfer share or np.True_ colour were refused the same way
    from genaug.bundle import EditRecipe
    from genaug.bundle.recipe import Transfer

    r = EditRecipe(gain=np.float32(0.5), shift=np.int64(1), region=np.array([0.5, 0.7, 0.3, 0.2], np.float32),
                   transfer=Transfer(content=np.float32(1.0)), luma=np.True_)
    assert r.gain == 0.5 and r.luma is True and r.region == pytest.approx((0.5, 0.7, 0.3, 0.2))
    assert EditRecipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    with pytest.raises(ValueError, match="gain"):
        EditRecipe(gain=np.float32("nan"))
