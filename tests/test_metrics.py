"""Metrics, evaluator files and the identity gate (synthetic data; fast)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from genaug.faces import metrics
from genaug.faces.features import DEFAULT_DIR, EvaluatorConfig, EvaluatorError, FaceNet, load_evaluator, save_evaluator
from genaug.faces.metrics import (attribute_change, compute, frechet_distance, frechet_distance_from_stats, frechet_with_floor, list_metrics, register_metric, roc_auc, tar_at_far, verification_scores)

ATTRS = ["Eyeglasses", "Smiling", "Male"]


def tiny_net(kind: str = "identity", seed: int = 0) -> FaceNet:
    torch.manual_seed(seed)
    cfg = EvaluatorConfig(kind, input_size=16, widths=[4, 8], embed_dim=8, outputs=ATTRS if kind == "attributes" else [])
    return FaceNet(cfg).eval()


def images(n: int = 4, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ----------------------------------------------------------------------------- Fréchet distance
def test_frechet_identical_sets_is_zero():
    f = torch.randn(500, 6, generator=torch.Generator().manual_seed(0))
    assert frechet_distance(f, f) == pytest.approx(0.0, abs=1e-8)


def test_frechet_shifted_gaussians():
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(4000, 4, generator=g), torch.randn(4000, 4, generator=g)
    base = frechet_distance(a, b)
    shifted = frechet_distance(a, b + torch.tensor([2.0, 0, 0, 0]))
    assert 0 < base < 0.05
    assert shifted == pytest.approx(4.0, rel=0.05)
    assert frechet_distance(a, b * 2) > base  # wider covariance -> larger distance


def test_frechet_closed_form():
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance_from_stats(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-9)
    # a rotated (non-diagonal) pair gives the same answer: the distance is rotation invariant
    q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))
    got = frechet_distance_from_stats(q @ mu1, q @ np.diag(s1) @ q.T, q @ mu2, q @ np.diag(s2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-6)


def test_frechet_errors_and_floor():
    with pytest.raises(ValueError):
        frechet_distance(torch.randn(10, 3), torch.randn(10, 4))
    with pytest.raises(ValueError):
        frechet_distance(torch.randn(1, 3), torch.randn(10, 3))
    g = torch.Generator().manual_seed(2)
    real = torch.randn(400, 3, generator=g)
    res = frechet_with_floor(real, torch.randn(400, 3, generator=g) + 3)
    assert set(res) == {"fd", "floor", "ratio", "n"} and res["n"] == 200
    assert res["fd"] > 10 * res["floor"] > 0


# ----------------------------------------------------------------------------- verification
def test_roc_auc_matches_pairwise_count():
    g = torch.Generator().manual_seed(3)
    s, y = torch.randint(0, 5, (60,), generator=g).float(), torch.rand(60, generator=g) > 0.5
    pos, neg = s[y], s[~y]
    brute = ((pos[:, None] > neg[None]).float() + 0.5 * (pos[:, None] == neg[None]).float()).mean().item()
    assert roc_auc(s, y) == pytest.approx(brute)
    assert roc_auc(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])) == 1.0
    with pytest.raises(ValueError):
        roc_auc(torch.tensor([0.1, 0.2]), torch.tensor([1, 1]))


def test_tar_at_far_and_verification():
    assert tar_at_far(torch.tensor([0.9, 0.8, 0.1]), torch.linspace(0, 0.5, 1000), 1e-2) == pytest.approx(2 / 3)
    g = torch.Generator().manual_seed(4)
    centres = torch.randn(10, 16, generator=g) * 3
    labels = torch.arange(10).repeat_interleave(5)
    feats = centres[labels] + torch.randn(50, 16, generator=g) * 0.3
    res = verification_scores(feats, labels)
    assert res["auc"] > 0.99 and res["genuine_pairs"] == 100 and res["impostor_pairs"] > 0
    rnd = verification_scores(torch.randn(50, 16, generator=g), labels)
    assert 0.3 < rnd["auc"] < 0.7


# ----------------------------------------------------------------------------- registry
def test_registry():
    names = list_metrics()
    for n in ("reconstruction", "identity_similarity", "attribute_change", "frechet_distance", "verification"):
        assert n in names
    with pytest.raises(KeyError, match="unknown metric"):
        compute("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_metric("reconstruction")(lambda **kw: {})

    @register_metric("test_constant")
    def _c(value: float = 1.0) -> dict:
        return {"value": value}

    assert compute("test_constant", value=3.0) == {"value": 3.0}
    x = images(3)
    r = compute("reconstruction", original=x, reconstructed=x)
    assert r["score_mean"] == pytest.approx(1.0, abs=1e-4)


# ----------------------------------------------------------------------------- image metrics
def test_attribute_change_structure():
    net = tiny_net("attributes")
    x = images(4)
    same = attribute_change(x, x, net)
    assert list(same) == ATTRS
    assert all(v["abs_change"] == pytest.approx(0.0, abs=1e-6) for v in same.values())
    moved = compute("attribute_change", before=x, after=-x, classifier=net, attributes=["Smiling"])
    assert list(moved) == ["Smiling"] and 0 <= moved["Smiling"]["after"] <= 1


# ----------------------------------------------------------------------------- evaluator files
def test_evaluator_round_trip(tmp_path):
    net = tiny_net("attributes")
    w = save_evaluator(net, tmp_path / "ev_attr")
    assert w.suffix == ".safetensors" and w.with_suffix(".json").is_file()
    loaded = load_evaluator("attributes", tmp_path / "ev_attr.json")
    assert loaded.cfg.outputs == ATTRS and not loaded.training
    x = images(3)
    with torch.no_grad():
        assert torch.allclose(net(x), loaded(x), atol=2e-2)
    # the path form picks up the kind for resolve_feature_net
    assert metrics.resolve_feature_net(w).cfg.kind == "attributes"


def test_evaluator_bad_files(tmp_path):
    save_evaluator(tiny_net(), tmp_path / "ev")
    with pytest.raises(EvaluatorError, match="'identity' evaluator"):
        load_evaluator("attributes", tmp_path / "ev")
    with pytest.raises(FileNotFoundError):
        load_evaluator("identity", tmp_path / "missing")
    with pytest.raises(ValueError, match="kind"):
        load_evaluator("faces", tmp_path / "ev")
    (tmp_path / "ev.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(EvaluatorError, match="checksum"):
        load_evaluator("identity", tmp_path / "ev")
    cfg = json.loads((tmp_path / "ev.json").read_text())
    cfg["weights"].pop("sha256")
    (tmp_path / "ev.json").write_text(json.dumps(cfg))
    with pytest.raises(EvaluatorError, match="cannot load"):
        load_evaluator("identity", tmp_path / "ev")
    (tmp_path / "ev.json").write_text("{broken")
    with pytest.raises(EvaluatorError, match="JSON"):
        load_evaluator("identity", tmp_path / "ev")


@pytest.mark.parametrize("kind", ["identity", "attributes"])
def test_shipped_evaluators_load(kind):
    if not (DEFAULT_DIR / f"evaluator_{kind}.json").exists():
        pytest.skip(f"no shipped {kind} evaluator in {DEFAULT_DIR}")
    net = load_evaluator(kind)
    out = net(images(2, 64))
    assert out.shape == (2, net.out_dim)
    assert sum(p.numel() for p in net.parameters()) < 1.5e6
    assert (DEFAULT_DIR / f"evaluator_{kind}.safetensors").stat().st_size < 3e6
