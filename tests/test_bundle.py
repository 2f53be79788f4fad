"""Bundles: save -> load gives the same networks (also in half precision); anything malformed
fails with a BundleError that names the problem; loading never unpickles."""
from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from genaug.bundle import FORMAT_VERSION, BundleError, load_bundle, read_config, read_spec, save_bundle
from genaug.io import sha256_file

from conftest import make_tiny_bundle


@pytest.fixture()
def bundle(tiny_spec):
    b = make_tiny_bundle(tiny_spec, seed=3)
    for m in b.generator.modules():  # non-trivial BatchNorm statistics must travel too
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    return b.to("cpu")


def outputs(b, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    lat = b.spec.sample(n, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        img = b.generator(lat)
        return img, b.predictor(img)


def test_roundtrip_is_exact(bundle, tmp_path):
    path = save_bundle(bundle, tmp_path / "b")
    assert sorted(p.name for p in path.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_bundle(path)
    assert loaded.spec == bundle.spec and loaded.net == bundle.net and loaded.framing == bundle.framing
    assert loaded.name == "tiny-test" and loaded.identity == bundle.identity != "unsaved"
    for a, b in zip(outputs(bundle), outputs(loaded)):
        assert torch.equal(a, b)
    for mod in ("generator", "predictor"):
        sa, sb = getattr(bundle, mod).state_dict(), getattr(loaded, mod).state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert Path(loaded.path) == path and read_config(path)["format_version"] == FORMAT_VERSION


def test_a_bundle_prints_as_one_short_line():
    # print(load_bundle("default")) wrote 22 kB: both networks, every direction tensor, the calibration grid
    text = repr(load_bundle("default"))
    assert len(text) < 300 and "\n" not in text and "'genaug-edit-celeba64'" in text and "'edit'" in text, text


def test_half_precision_roundtrip(bundle, tmp_path):
    full = save_bundle(bundle, tmp_path / "full")
    half = save_bundle(bundle, tmp_path / "half", half=True)
    assert read_config(half)["weights"]["dtype"] == "float16"
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    loaded = load_bundle(half)
    assert next(loaded.generator.parameters()).dtype == torch.float32
    (img_a, rec_a), (img_b, rec_b) = outputs(bundle), outputs(loaded)
    assert not torch.equal(img_a, img_b)  # it really was rounded
    assert torch.allclose(img_a, img_b, atol=2e-2) and torch.allclose(rec_a, rec_b, atol=5e-2)


@pytest.fixture()
def saved(bundle, tmp_path) -> Path:
    return save_bundle(bundle, tmp_path / "b")


def edit_config(path: Path, fn) -> None:
    cfg = json.loads((path / "config.json").read_text())
    fn(cfg)
    (path / "config.json").write_text(json.dumps(cfg))


def fix_checksum(path: Path) -> None:
    edit_config(path, lambda c: c["weights"].update(sha256=sha256_file(path / "model.safetensors")))


def test_missing_folder_and_config(saved, tmp_path):
    with pytest.raises(FileNotFoundError, match="bundle not found"):
        load_bundle(tmp_path / "nowhere")
    (saved / "config.json").unlink()
    with pytest.raises(BundleError, match="config.json is missing"):
        load_bundle(saved)


@pytest.mark.parametrize(
    "text, match",
    [
        ("{not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        ("[1, 2]", "not a genaug bundle config"),
        ('{"format": "other-thing", "format_version": 1}', "format must be 'genaug-bundle'"),
    ],
)
def test_bad_config_files(saved, text, match):
    p = saved / "config.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(BundleError, match=match):
        load_bundle(saved)


def test_wrong_version_and_missing_keys(saved):
    edit_config(saved, lambda c: c.update(format_version=FORMAT_VERSION + 1))
    with pytest.raises(BundleError, match=f"version {FORMAT_VERSION + 1} is not supported"):
        load_bundle(saved)
    edit_config(saved, lambda c: (c.update(format_version=FORMAT_VERSION), c.pop("latent")))
    with pytest.raises(BundleError, match="missing required key 'latent'"):
        load_bundle(saved)


def test_invalid_latent_or_network_config(saved):
    edit_config(saved, lambda c: c["network"].update(image_size=48))
    with pytest.raises(BundleError, match="invalid latent/network config"):
        load_bundle(saved)


def test_a_misspelt_latent_key_is_refused_like_a_network_one(saved):
    """``"random_control": ["light"]`` (for ``random_controls``) was dropped without a word, so the
    bundle loaded with no control in its random set; unknown network keys were already refused."""
    edit_config(saved, lambda c: c["latent"].update(random_control=["light"]))
    with pytest.raises(BundleError, match=r"unknown latent config keys \['random_control'\]"):
        load_bundle(saved)
    with pytest.raises(BundleError, match="random_control"):
        read_spec(saved)


def test_missing_truncated_or_corrupt_weights(saved, tmp_path):
    w = saved / "model.safetensors"
    data = w.read_bytes()
    w.write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(saved)
    fix_checksum(saved)  # a truncated file whose recorded checksum matches still fails, on parsing
    with pytest.raises(BundleError, match="cannot read safetensors"):
        load_bundle(saved)
    flipped = bytearray(data)
    flipped[-10] ^= 0xFF
    w.write_bytes(bytes(flipped))
    with pytest.raises(BundleError, match="checksum mismatch"):
        load_bundle(saved)
    w.unlink()
    with pytest.raises(BundleError, match="weights missing"):
        load_bundle(saved)


def test_weights_for_another_architecture(saved, tiny_spec):
    # the config now describes a generator without BatchNorm: the stored keys do not fit it
    edit_config(saved, lambda c: c["network"].update(g_norm="none"))
    with pytest.raises(BundleError, match="generator weights do not match the config's architecture"):
        load_bundle(saved)


def test_wrong_shapes(saved):
    # one more noise dimension: the generator's first layer and the predictor's head change shape
    edit_config(saved, lambda c: c["latent"].update(noise_dim=c["latent"]["noise_dim"] + 1))
    with pytest.raises(BundleError, match=r"has shape .* the config expects"):
        load_bundle(saved)


def test_wider_weights_rejected(bundle, saved, tmp_path):
    other = tmp_path / "wide"
    shutil.copytree(saved, other)
    tensors = {f"generator.{k}": v.repeat(*([2] + [1] * (v.ndim - 1))).contiguous() if v.ndim else v
               for k, v in bundle.generator.state_dict().items()}
    tensors.update({f"predictor.{k}": v.contiguous() for k, v in bundle.predictor.state_dict().items()})
    save_file(tensors, str(other / "model.safetensors"))
    fix_checksum(other)
    with pytest.raises(BundleError, match="generator.* has shape"):
        load_bundle(other)


def test_loading_never_unpickles(saved, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("bundle loading must not unpickle")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    assert load_bundle(saved).generator is not None
    monkeypatch.undo()
    # a pickle (torch.save) posing as the weights file, with a matching checksum, is rejected
    w = saved / "model.safetensors"
    torch.save({"generator.x": torch.zeros(1)}, w)
    fix_checksum(saved)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    with pytest.raises(BundleError, match="cannot read safetensors"):
        load_bundle(saved)


def test_edit_gain_per_code_round_trips_and_bad_gains_are_refused(bundle, tmp_path):
    bundle = bundle.with_recipes({"*": {"gain": 2.5}, "glasses=1": {"gain": 0.75}})
    again = load_bundle(save_bundle(bundle, tmp_path / "b"))
    assert again.recipes == bundle.recipes
    assert again.recipe(0, 1).gain == 0.75 and again.recipe(0, 0).gain == 2.5
    for bad, match in (({"glases": {"gain": 1.0}}, "not a code"), ({"glasses=2": {"gain": 1.0}}, "CODE=CATEGORY"),
                       ({"*": {"gain": 0}}, "positive"), ({"glasses": {"gain": "2"}}, "positive"), ({"*": {"gain": -1.0}}, "positive"),
                       ({"*": {"speed": 1.0}}, "must be a table of")):
        with pytest.raises(BundleError, match=match):
            bundle.with_recipes(bad)
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    cfg["edit_recipes"]["nose"] = {"gain": 2.0}  # a hand-edited config is checked on load too
    (tmp_path / "b" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(BundleError, match="nose"):
        load_bundle(tmp_path / "b")


def test_content_directions_round_trip_and_bad_ones_are_refused(bundle, tmp_path):
    """Bundle.directions (per categorical code, (k, noise_dim)) travel in the safetensors file with
    the recipes' shifts; a direction for an unknown or continuous code, of the wrong shape or not
    finite, and a negative shift are refused."""
    nd = bundle.spec.noise_dim
    d = torch.randn(2, nd)
    bundle.directions = {"glasses": d}
    bundle = bundle.with_recipes({"glasses=1": {"shift": 2.0}, "*": {"shift": 0.5}})
    again = load_bundle(save_bundle(bundle, tmp_path / "b"))
    torch.testing.assert_close(again.directions["glasses"], d)
    assert again.recipe(0, 1).shift == 2.0 and again.recipe(0, 0).shift == 0.5
    assert again.recipe(1, 2).shift == 0.0  # no direction for c1: its edits never shift the content
    assert set(again.direction_table()) == {0}
    for bad, match in (({"nose": d}, "not a categorical code"), ({"smile": torch.randn(1, nd)}, "not a categorical code"),
                       ({"glasses": torch.randn(3, nd)}, "shape"), ({"glasses": torch.full((2, nd), float("nan"))}, "finite")):
        bundle.directions = bad
        with pytest.raises(BundleError, match=match):
            save_bundle(bundle, tmp_path / "bad")
    with pytest.raises(BundleError, match="non-negative"):
        bundle.with_recipes({"glasses=1": {"shift": -1.0}})


def test_save_and_load_read_a_home_path_alike(bundle, tmp_path, monkeypatch):
    """``save_pretrained("~/models/x")`` made a folder named ``~`` in the working folder, where
    ``load_bundle("~/models/x")`` (which expands ``~``) did not look."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert bundle.save_pretrained("~/models/x") == tmp_path / "home" / "models" / "x"
    assert not (tmp_path / "~").exists()
    assert load_bundle("~/models/x").identity == bundle.identity
