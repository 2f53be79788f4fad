"""Latent spec, sweep plans and reconstruction losses."""
import pytest
import torch

from genaug.engine.edits import apply_edits, plan_edits, random_edits, sweep
from genaug.models.latent import LatentSpec
from genaug.models.recon import ReconstructionLoss, reconstruction_loss, reconstruction_score


def test_latent_sample_split_join_roundtrip():
    spec = LatentSpec.parse(5, "a:3,2", "2")
    g = torch.Generator().manual_seed(0)
    lat = spec.sample(7, generator=g)
    assert lat.shape == (7, 5 + 3 + 2 + 2)
    parts = spec.split(lat)
    assert all(((p == 0) | (p == 1)).all() and (p.sum(1) == 1).all() for p in parts.categorical)
    assert (parts.continuous.abs() <= 1).all()
    assert torch.equal(spec.join(parts.z, parts.categorical, parts.continuous), lat)
    assert torch.equal(spec.join(parts.z, spec.sample_indices(lat), parts.continuous), lat)
    assert torch.equal(spec.sample(7, generator=torch.Generator().manual_seed(0)), lat)


def test_latent_names_and_errors():
    spec = LatentSpec.parse(4, "glasses:2:Eyeglasses,3", "smile")
    assert spec.code_names == ["glasses", "c1", "smile"]
    assert spec.code_index("Eyeglasses") == 0 and spec.code_index("c2") == 2 and spec.code_index(-1) == 2
    assert spec.with_names({1: "hair"}).code_names == ["glasses", "hair", "smile"]
    assert LatentSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(KeyError, match="unknown code 'nose'"):
        spec.code_index("nose")
    with pytest.raises(ValueError, match="shape"):
        spec.split(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unique"):
        LatentSpec.parse(2, "a:2,a:3")


def test_sweep_plan_edits_one_code_at_a_time():
    spec = LatentSpec.parse(3, "c0:4", "smile")
    lat = spec.sample(2, generator=torch.Generator().manual_seed(1))
    out, edits = sweep(lat, spec, {"smile": [-1, 0, 1], "c0": "all"})
    assert out.shape == (2 * 7, spec.dim) and len(edits) == 14
    assert torch.allclose(out[:3, -1], torch.tensor([-1.0, 0.0, 1.0]))
    assert out[3:7, 3:7].argmax(1).tolist() == [0, 1, 2, 3]
    # untouched parts stay as they were
    assert torch.equal(out[:7, :3], lat[:1, :3].expand(7, -1))
    half = apply_edits(lat[:1], spec, plan_edits(spec, {"smile": [1.0]}), strength=0.5)
    assert torch.isclose(half[0, -1], (lat[0, -1] + 1) / 2)
    with pytest.raises(ValueError, match="categories 0..3"):
        plan_edits(spec, {"c0": [5]})


def test_random_edits_are_seeded_and_in_bounds():
    spec = LatentSpec.parse(3, "4", "2")
    a = random_edits(spec, 50, torch.Generator().manual_seed(3), bounds={"c1": (-0.5, 0.5)})
    b = random_edits(spec, 50, torch.Generator().manual_seed(3), bounds={"c1": (-0.5, 0.5)})
    assert a == b
    assert all(-0.5 <= e.value <= 0.5 for e in a if e.code == 1)
    assert {e.code for e in a} == {0, 1, 2}


@pytest.mark.parametrize("kind", ["mse", "ssim", "msssim", "0.5*mse+msssim"])
@pytest.mark.parametrize("size", [32, 64])
def test_reconstruction_losses_rank_similarity(kind, size):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, size, size, generator=g) * 2 - 1
    near = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    far = torch.rand(x.shape, generator=g) * 2 - 1
    ln, lf = reconstruction_loss(near, x, kind), reconstruction_loss(far, x, kind)
    assert ln.shape == (3,) and (ln < lf).all()
    assert reconstruction_loss(x, x, kind).abs().max() < 1e-4
    assert ReconstructionLoss(kind)(near, x).ndim == 0
    s = reconstruction_score(near, x)
    assert ((s > 0.5) & (s <= 1)).all()


def test_reconstruction_loss_errors():
    with pytest.raises(ValueError, match="unknown reconstruction loss"):
        ReconstructionLoss("lpips")
    with pytest.raises(ValueError, match="same shape|one shape"):
        reconstruction_loss(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 16, 16))


def test_reconstruction_score_runs_without_onednn_and_restores_it():
    from genaug.models.recon import msssim_per_image, reconstruction_score

    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 64, 64, generator=g) * 2 - 1
    y = (x + 0.2 * torch.randn(3, 3, 64, 64, generator=g)).clamp(-1, 1)
    before = torch.backends.mkldnn.enabled
    score = reconstruction_score(x, y)
    assert torch.backends.mkldnn.enabled == before  # the global switch is put back
    assert torch.allclose(score, msssim_per_image(x, y).clamp(0, 1), atol=1e-5)  # same values as with oneDNN
    assert bool((score > 0.3).all() and (score < 1).all())
