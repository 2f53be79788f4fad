"""The benchmark scripts' --quick paths on a tiny synthetic ImageFolder with a tiny bundle."""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.features import EvaluatorConfig, FaceNet, save_evaluator

ROOT = Path(__file__).resolve().parents[1]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up while the script loads
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def faces_folder(tmp_path, monkeypatch) -> Path:
    """5 'people' x 6 images, 64x64: a per-person colour pattern plus noise."""
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "people"
    yy, xx = np.mgrid[0:64, 0:64]
    for p in range(5):
        base = np.stack([(np.sin(xx / (4 + p)) + 1) * 100, (np.cos(yy / (3 + p)) + 1) * 100, np.full((64, 64), 40 * p)], -1)
        for i in range(6):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            (root / f"p{p}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / f"p{p}" / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def evaluator_paths(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("evaluators")
    torch.manual_seed(0)
    ident = save_evaluator(FaceNet(EvaluatorConfig("identity", 16, widths=[4, 8], embed_dim=8)), d / "identity")
    attrs = save_evaluator(FaceNet(EvaluatorConfig("attributes", 16, widths=[4, 8], outputs=["Eyeglasses", "Smiling"])), d / "attrs")
    return ident, attrs


def test_help_documents_commands(capsys):
    for name in ("face_recognition", "augmentation_quality"):
        with pytest.raises(SystemExit) as e:
            load_script(name).main(["--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "--bundle" in out and "--out" in out


def test_face_recognition_quick(faces_folder, tiny_bundle_path, tmp_path):
    fr = load_script("face_recognition")
    out = tmp_path / "fr.json"
    report = fr.main(["--data", str(faces_folder), "--quick", "--bundle", str(tiny_bundle_path), "--device", "cpu",
                      "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved["arms"] == list(fr.ARMS) == list(report["results"])
    assert saved["data"]["identities"] == 5 and saved["data"]["test_images"] == 10
    for arm in fr.ARMS:
        r = saved["results"][arm]["1"]
        assert 0 <= r["top1_mean"] <= 1 and 0 <= r["auc_mean"] <= 1 and r["train_s_mean"] >= 0
        assert len(r["runs"]) == 1 and set(r["runs"][0]) >= {"top1", "val_top1", "auc", "tar@far=1e-2", "train_s"}
    assert set(saved["prep_s"]) == {"genaug", "classical+genaug", "classical+genaug-online"}
    assert saved["engine_stats"]["augmented"] > 0
    assert saved["config"]["seeds"] == 1 and saved["wall_s"] > 0


def test_face_recognition_same_settings_and_seeding(faces_folder):
    fr = load_script("face_recognition")
    data = fr.load_identity_folder(faces_folder, 64)
    splits = fr.make_splits(data)
    assert not set(splits["test"].tolist()) & set(splits["train"].tolist())
    a = fr.pick_shots(data.labels, splits["train"], 2, seed=0)
    assert torch.equal(a, fr.pick_shots(data.labels, splits["train"], 2, seed=0))
    assert len(a) == 10 and torch.bincount(data.labels[a]).tolist() == [2] * 5
    assert [len(v) for v in splits.values()] == [15, 5, 10]
    x = data.images[:4]
    aug = fr.Augmenter("classical", 0, None, None, 0.5)
    y = aug(x, torch.arange(4))
    assert y.shape == x.shape and y.dtype == torch.uint8
    assert torch.equal(y, fr.Augmenter("classical", 0, None, None, 0.5)(x, torch.arange(4)))
    assert torch.equal(fr.Augmenter("none", 0, None, None, 0.5)(x, torch.arange(4)), x)


def test_augmentation_quality_quick(faces_folder, tiny_bundle_path, evaluator_paths, tmp_path, tiny_spec):
    aq = load_script("augmentation_quality")
    out = tmp_path / "aq.json"
    ident, attrs = evaluator_paths
    aq.main(["--quick", "--data", str(faces_folder), "--bundle", str(tiny_bundle_path), "--device", "cpu",
             "--identity-weights", str(ident), "--attribute-weights", str(attrs), "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["n"] == 16 and 0 <= r["reconstruction"]["score"] <= 1
    assert list(r["codes"]) == tiny_spec.code_names
    glasses = r["codes"]["glasses"]
    assert glasses["attribute"] == "Eyeglasses" and "bound_attribute_spread" in glasses
    assert len(glasses["values"]) == 2 and "P(Eyeglasses)" in glasses["values"][0]
    assert len(r["codes"]["smile"]["values"]) == 2
    for k in ("random_samples", "reconstruction", "random_edits"):
        assert set(r["frechet_identity_features"][k]) == {"fd", "floor", "ratio", "n"}
    assert {"reconstruction", "different_people"} <= set(r["identity"])
    size = r["edit_size"]
    assert set(size) == {"genaug_random_edits", "classical_pipeline", "other_photo_same_person"}
    assert size["other_photo_same_person"]["pairs"] > 0
    assert all(v["abs_change_255"] >= 0 and -1.001 <= v["identity_similarity"] <= 1.001 for v in size.values()), size
    assert size["classical_pipeline"]["abs_change_255"] > 0 and size["other_photo_same_person"]["abs_change_255"] > 0


@pytest.mark.parametrize("faces", ["generated", "folder"])
def test_speed_runs_and_compares_at_equal_score(faces, faces_folder, tiny_bundle_path, tmp_path):
    out = tmp_path / "speed.json"
    data = "generated" if faces == "generated" else str(faces_folder)
    r = load_script("speed").main(["--bundle", str(tiny_bundle_path), "--device", "cpu", "--batch-size", "4", "--steps", "0", "3",
                                   "--max-steps", "20", "--repeats", "1", "--data", data, "--out", str(out)])
    assert json.loads(out.read_text())["batch_size"] == 4
    assert r["faces"].startswith("real" if faces == "folder" else "generated")
    k0, k3 = r["inversion"]
    assert (k0["K"], k3["K"]) == (0, 3) and k3["score"] >= k0["score"] - 1e-3  # refinement does not make it worse
    final = r["random_start_final"]
    for row in (k0, k3):
        assert row["reached"] == (row["random_start_steps"] is not None)
        assert row["reached"] or final["score"] < row["score"]
        assert row["speedup_at_equal_score"] > 0
    assert final["steps"] <= 20
