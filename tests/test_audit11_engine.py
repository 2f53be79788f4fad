"""An eleventh user audit: the lower-level Python API (``genaug.Engine``, ``AugmentInfo``) and the identity and
light helpers called directly. Each test failed before its fix."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import genaug
from genaug.faces.light import estimate_light


@pytest.fixture(scope="module")
def engine():
    return genaug.Engine(device="cpu", refine_steps=0, seed=0)


def _faces(engine, n: int = 2) -> torch.Tensor:
    """``n`` model-frame faces (the generator's own, so no data folder is needed)."""
    g = torch.Generator().manual_seed(0)
    return engine.generate(torch.randn(n, engine.spec.dim, generator=g) * 0.5).clamp(-1, 1)


def test_dir_lists_the_lazy_public_names():
    # dir(genaug) (tab completion, help) left out Engine, BatchFaceAug, ... until first used: they are lazy
    code = "import genaug; missing = set(genaug.__all__) - set(dir(genaug)); print(sorted(missing)); assert not missing"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr[-500:]


def test_generate_takes_any_float_latent_and_an_empty_batch(engine):
    # float64 latents crashed inside the generator ("expected scalar type Double"), an empty batch in torch.cat, and a
    # 1-D latent with an IndexError
    z = torch.zeros(2, engine.spec.dim)
    assert torch.equal(engine.generate(z.double()), engine.generate(z))
    assert engine.generate(z[:0]).shape == (0, engine.channels, engine.image_size, engine.image_size)
    with pytest.raises(ValueError, match="latent must be an"):
        engine.generate(z[0])


def test_render_edits_of_an_empty_batch_is_empty(engine):
    x = torch.zeros(0, engine.channels, engine.image_size, engine.image_size)
    out, info = engine.render_edits(x, torch.zeros(0, engine.spec.dim), [])
    assert out.shape == x.shape and info.edits == [] and info.descriptions == []


def test_estimate_light_of_an_empty_batch():
    # a RuntimeError ("cannot reshape tensor of 0 elements") where estimate_yaw and relight return empty results
    est = estimate_light(torch.zeros(0, 3, 64, 64))
    assert est.azimuth.shape == est.elevation.shape == est.side.shape == (0,) and est.coefficients.shape == (0, 4)


@pytest.mark.parametrize("kw, match", [(dict(refine_lr=float("nan")), "refine_lr"), (dict(refine_lr=-0.1), "refine_lr"),
                                       (dict(gate=3), "gate must be")])
def test_bad_options_fail_at_construction(kw, match):
    # a NaN / negative refine_lr failed at the first inversion (Adam's error), a gate that is not callable at the first
    # gated call ("'int' object is not callable")
    with pytest.raises(ValueError, match=match):
        genaug.Engine(device="cpu", **kw)


def test_rows_the_gate_drops_are_reported_unchanged(engine):
    # a row every try of which the gate rejected came back as the source (kept False) but AugmentInfo still described
    # the last edit tried ("tone=0.5") and its edited latent: what the row reports was not done
    e = genaug.Engine(bundle=engine.bundle, device="cpu", refine_steps=0, seed=0, gate_retries=1,
                      gate=lambda a, b: torch.tensor([1.0, 0.0])[: len(a)] if len(a) == 2 else torch.zeros(len(a)))
    x = _faces(e)
    out, info = e.augment_tensor(x, edits=[("tone", 0.5), ("tone", 0.5)])
    assert info.kept.tolist() == [True, False] and torch.equal(out[1], x[1])
    assert info.descriptions[0] == "tone=0.5" and info.descriptions[1].startswith("unchanged")
    assert torch.equal(info.edited[1], info.latent[1]) and not torch.equal(info.edited[0], info.latent[0])
