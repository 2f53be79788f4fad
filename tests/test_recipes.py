"""Edit recipes (genaug.bundle.recipe): one per code and direction, read from format-1 runtime
tables, stored as one table, part of the bundle's identity."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from PIL import Image

from genaug.bundle import BundleError, EditRecipe, Transfer, load_bundle, read_config, save_bundle
from genaug.bundle.recipe import LEGACY_TABLES, edit_keys, parse_recipes, recipes_digest
from genaug.cli import main


def _old_rule(tables: dict, field: str, key: str, default):
    """Format 1: each table alone, ``code=value`` before ``code`` before ``*`` (a number: for every edit)."""
    table = tables.get(field)
    if table is None:
        return default
    if not isinstance(table, dict):
        return table
    return next((table[k] for k in (key, key.split("=")[0], "*") if k in table), default)


def test_the_shipped_default_reads_its_four_tables_into_recipes(tmp_path):
    cfg = read_config("default")
    b = load_bundle("default")
    legacy = {k: v for k, v in (cfg["runtime"] or {}).items() if k in LEGACY_TABLES}
    assert set(legacy) == set(LEGACY_TABLES) or "edit_recipes" in cfg  # the shipped config is one or the other
    assert set(b.recipes) == set(edit_keys(b.spec)) and not set(b.runtime) & set(LEGACY_TABLES)
    for key, r in b.recipes.items():
        assert r.gain == _old_rule(legacy, "edit_gain", key, 1.0) or "edit_recipes" in cfg
        assert r.shift == _old_rule(legacy, "edit_shift", key, 0.0) or "edit_recipes" in cfg
        assert r.regenerate == _old_rule(legacy, "edit_regenerate", key, 0.0) or "edit_recipes" in cfg
    assert b.recipes["glasses=1"].transfer == Transfer(0.75, 1.0, 1.0) and b.recipes["smile=1"].transfer is None
    out = save_bundle(b, tmp_path / "b", half=True)  # saved: one table, every entry complete, no format-1 tables
    saved = json.loads((out / "config.json").read_text())
    assert set(saved["edit_recipes"]) == set(edit_keys(b.spec)) and not set(saved["runtime"]) & set(LEGACY_TABLES)
    assert saved["edit_recipes"]["glasses=1"] == {"gain": 1.0, "shift": 1.0, "regenerate": 0.0,
                                                 "transfer": {"quantile": 0.75, "content": 1.0, "detail": 1.0},
                                                 "region": [0.5, 0.6, 0.7, 0.55]}
    again = load_bundle(out)
    assert again.recipes == b.recipes and recipes_digest(again.recipes) == recipes_digest(b.recipes)


def test_partial_tables_most_specific_key_wins(tiny_spec):
    r = parse_recipes(tiny_spec, {"*": {"gain": 2.0, "shift": 0.5}, "glasses": {"gain": 1.5}, "glasses=1": {"shift": 1.0}})
    assert r["glasses=1"] == EditRecipe(gain=1.5, shift=1.0) and r["glasses=0"] == EditRecipe(gain=1.5, shift=0.5)
    assert r["c1=2"] == EditRecipe(gain=2.0, shift=0.5)
    over = parse_recipes(tiny_spec, {"c1=2": {"regenerate": 0.3}}, base=r)  # over existing recipes: the rest is kept
    assert over["c1=2"] == EditRecipe(gain=2.0, shift=0.5, regenerate=0.3) and over["glasses=1"] == r["glasses=1"]
    with pytest.raises(ValueError, match="not a code"):
        parse_recipes(tiny_spec, {"nose=1": {"gain": 1.0}})


def _faces(folder, n: int = 3):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_recalibrating_a_bundle_makes_a_new_model(trained_bundle_path, tmp_path, capsys):
    """Same weights, one recipe value changed (as calibrate_edits does): a new identity (also in
    ``genaug info``), and an
    expansion into the OUT the old recipes wrote is refused with a clear error instead of handing
    back the old records; --overwrite re-renders it with the new recipes."""
    bundle_dir = tmp_path / "bundle"
    old = load_bundle(save_bundle(load_bundle(trained_bundle_path), bundle_dir))
    src, out = _faces(tmp_path / "faces"), tmp_path / "out.h5"
    run = [str(src), str(out), "--bundle", str(bundle_dir), "--variants", "1", "--refine-steps", "0", "--device", "cpu",
           "--quiet", "--codes", "glasses"]
    assert main(["expand", *run]) == 0
    with h5py.File(out, "r") as f:
        before = f["images"][()]
    assert main(["expand", *run]) == 0  # same model, same run: already complete
    capsys.readouterr()

    recal = old.with_recipes({"glasses=1": {"gain": old.recipe(0, 1).gain * 3}, "glasses=0": {"gain": old.recipe(0, 0).gain * 3}})
    save_bundle(recal, bundle_dir)  # in place, like calibrate_edits --out onto the same folder
    new = load_bundle(bundle_dir)
    assert new.training["weights_sha256"] == old.training["weights_sha256"]  # the weights did not change
    assert new.identity != old.identity and new.recipes != old.recipes
    assert main(["info", "--bundle", str(bundle_dir)]) == 0 and f"identity {new.identity}" in capsys.readouterr().out

    assert main(["expand", *run]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "another model" in err and old.identity in err and new.identity in err and "--overwrite" in err
    assert main(["expand", *run, "--overwrite"]) == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["bundle_identity"] == new.identity
        assert not np.array_equal(f["images"][()], before)  # rendered with the new recipes


def test_bad_recipe_tables_in_a_config_are_refused(trained_bundle_path, tmp_path):
    folder = save_bundle(load_bundle(trained_bundle_path), tmp_path / "b")
    cfg = json.loads((folder / "config.json").read_text())
    for table, match in (({"glasses=1": {"transfer": {"quantile": 2}}}, "in \\[0, 1\\]"), ({"glasses=1": 1.0}, "must be a table"),
                         ({"glasses=1": {"gain": 0}}, "positive"), ([1], "'edit_recipes' must be an object")):
        (folder / "config.json").write_text(json.dumps({**cfg, "edit_recipes": table}))
        with pytest.raises(BundleError, match=match):
            load_bundle(folder)


def test_a_white_balance_recipe_is_a_colour_edit_and_round_trips():
    from genaug.bundle.recipe import EditRecipe

    r = EditRecipe(colour=True, hue=True)
    assert EditRecipe.from_dict(r.to_dict()) == r and r.to_dict() == {"gain": 1.0, "shift": 0.0, "regenerate": 0.0,
                                                                      "colour": True, "hue": True}
    assert "hue" not in EditRecipe(colour=True).to_dict()  # (older bundles' digests unchanged)
    with pytest.raises(ValueError, match="hue .* colour"):
        EditRecipe(hue=True)
    with pytest.raises(ValueError, match="hue must be true or false"):
        EditRecipe(colour=True, hue="yes")


def test_a_white_balance_made_no_colour_edit_drops_its_hue():
    # the default's warmth is a white balance (colour and hue): turning its colour off over it,
    # bundle.with_recipes({"warmth": {"colour": False}}), was refused ("hue ... set colour too")
    b = load_bundle("default")
    warmth = b.spec.code_names.index("warmth")
    assert b.recipe(warmth, 0.0).hue
    for table in ({"warmth": {"colour": False}}, {"*": {"colour": False}}, {"warmth": {"luma": True, "colour": False}}):
        r = b.with_recipes(table).recipe(warmth, 0.0)
        assert not r.colour and not r.hue, table
    with pytest.raises(BundleError, match="hue .* colour"):  # a hue asked for without colour still is refused
        b.with_recipes({"warmth": {"colour": False, "hue": True}})
    assert b.with_recipes({"tone": {"hue": True}}).recipe(b.spec.code_names.index("tone"), 0.0).hue
