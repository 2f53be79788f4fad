"""IdentityGate, identity_similarity and the Fréchet metric with custom feature nets, checked
against values computed independently (numpy cosines, scipy's matrix square root, known Gaussians)."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

from genaug.faces.features import EvaluatorConfig, FaceNet, save_evaluator
from genaug.faces.metrics import IdentityGate, compute, frechet_distance, identity_similarity


def linear_embedder(seed: int = 0, dim: int = 5, size: int = 8) -> tuple[nn.Module, np.ndarray]:
    """A known linear map of the flattened image, and its weight matrix."""
    w = np.random.default_rng(seed).normal(size=(dim, 3 * size * size))
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * size * size, dim, bias=False))
    with torch.no_grad():
        net[1].weight.copy_(torch.from_numpy(w))
    return net, w


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def pairs(n: int = 7, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    a = torch.rand(n, 3, size, size, generator=g, dtype=torch.float32) * 2 - 1
    return a, (a + 0.7 * torch.randn(a.shape, generator=g)).clamp(-1, 1)


def test_identity_similarity_is_the_cosine_of_the_embeddings():
    net, w = linear_embedder()
    a, b = pairs()
    expected = cosines(a.flatten(1).numpy() @ w.T, b.flatten(1).numpy() @ w.T)
    assert expected.std() > 0.05  # the pairs really differ from each other
    for batch_size in (256, 3):  # small batches must not reorder or mix pairs
        got = identity_similarity(a, b, net, batch_size=batch_size)
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(identity_similarity(a, a, net).numpy(), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="paired"):
        identity_similarity(a, b[:3], net)


def test_identity_gate_with_a_module_and_with_a_weights_file(tmp_path):
    net, w = linear_embedder(seed=2)
    a, b = pairs()
    gate = IdentityGate(net)
    np.testing.assert_allclose(gate(a, b).numpy(), cosines(a.flatten(1).numpy() @ w.T, b.flatten(1).numpy() @ w.T), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        gate(a, b[:3])
    # a saved evaluator: the gate scores with its embeddings (computed here with numpy from the
    # module's outputs, which are unit-norm so the cosine is their dot product)
    torch.manual_seed(0)
    face = FaceNet(EvaluatorConfig("identity", input_size=16, widths=[4, 8], embed_dim=8)).eval()
    save_evaluator(face, tmp_path / "ev", half=False)
    with torch.no_grad():
        ea, eb = face(a).numpy(), face(b).numpy()
    np.testing.assert_allclose(IdentityGate(tmp_path / "ev.safetensors")(a, b).numpy(), (ea * eb).sum(1), atol=1e-5)


def test_frechet_distance_matches_scipy_on_correlated_features():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(300, 4)) @ rng.normal(size=(4, 4))
    b = rng.normal(size=(250, 4)) @ rng.normal(size=(4, 4)) + rng.normal(size=4)
    mu1, mu2, c1, c2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(c1 + c2 - 2 * scipy.linalg.sqrtm(c1 @ c2).real)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)


class ChannelMeans(nn.Module):
    """Feature net: the mean of each channel, times 4."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 4 * x.mean((2, 3))


def test_frechet_metric_with_a_custom_net_recovers_known_gaussians():
    """Images whose channel means are drawn from two known Gaussians: the metric, given the custom
    net, must report their population distance |mu|^2 + sum (1 - s)^2 and a near-zero floor."""
    g = torch.Generator().manual_seed(4)
    n = 4000
    mu, s = torch.tensor([1.0, 0.0, -0.5]), torch.tensor([1.0, 2.0, 0.5])
    real_feats = torch.randn(n, 3, generator=g)
    fake_feats = mu + s * torch.randn(n, 3, generator=g)
    to_images = lambda f: (f / 4)[:, :, None, None].expand(-1, -1, 6, 6).contiguous()  # noqa: E731
    res = compute("frechet_distance", real=to_images(real_feats), generated=to_images(fake_feats), feature_net=ChannelMeans())
    population = float((mu**2).sum() + ((1 - s) ** 2).sum())  # 2.5
    assert res["n"] == n // 2
    assert res["fd"] == pytest.approx(population, rel=0.08)
    assert res["floor"] < 0.02
