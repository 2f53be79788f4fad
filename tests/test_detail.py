"""The edit kind's detail skip (``NetConfig.detail_channels``, ``genaug.training.detail``): it changes nothing
until trained, refuses what it cannot extend, round-trips, runs through the front ends, learns to
reconstruct real faces while keeping each edit's change, and resumes."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import CELEBA64, make_tiny_bundle, need
from genaug.bundle import Bundle, load_bundle, save_bundle
from genaug.faces.framing import CELEBA_FRAMING
from genaug.models.config import NetConfig
from genaug.models.editnets import content_dim
from genaug.training.detail import DetailConfig, DetailTrainer, add_detail, main
from genaug.training.edit import edit_spec


def tiny_edit_bundle(size: int = 32) -> Bundle:
    torch.manual_seed(0)
    net = NetConfig(image_size=size, g_width=4, d_width=4, e_width=4, e_norm="group", kind="edit", content_channels=4)
    spec = edit_spec(net, "glasses:2:Eyeglasses,smile:2:Smiling", "1", identity_unsafe="")
    b = Bundle.create(spec, net, framing=CELEBA_FRAMING, name="tiny-edit")  # PyTorch's default init: signals pass
    b.directions = {"glasses": torch.randn(2, spec.noise_dim)}
    b.runtime = {"edit_gain": {"*": 1.5}, "edit_shift": {"glasses=1": 1.0}}
    return evaluating(b.to("cpu"))


def evaluating(b: Bundle) -> Bundle:
    b.generator.eval(), b.predictor.eval()
    return b


def test_a_fresh_detail_map_changes_nothing_and_extends_the_latent():
    b = tiny_edit_bundle()
    d = evaluating(add_detail(b, 3))
    assert d.net.detail_channels == 3 and d.spec.noise_dim == content_dim(d.net) == b.spec.noise_dim + 3 * 8 * 8
    assert d.spec.code_names == b.spec.code_names and d.runtime == b.runtime
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        lat0, lat = b.predictor(x), d.predictor(x)
        n0 = b.spec.noise_dim
        assert torch.equal(lat[:, :n0], lat0[:, :n0]) and torch.equal(lat[:, -b.spec.code_dim:], lat0[:, n0:])
        assert lat[:, n0 : d.spec.noise_dim].abs().sum() > 0  # the detail map is there ...
        assert torch.allclose(d.generator(lat), b.generator(lat0), atol=1e-6)  # ... and does nothing yet
    assert torch.equal(d.directions["glasses"][:, :n0], b.directions["glasses"])
    assert d.directions["glasses"][:, n0:].abs().sum() == 0


def test_add_detail_refuses_other_kinds_and_a_second_map(tiny_spec):
    with pytest.raises(ValueError, match="only edit-kind"):
        add_detail(make_tiny_bundle(tiny_spec), 4)
    with pytest.raises(ValueError, match="already has"):
        add_detail(add_detail(tiny_edit_bundle(), 2), 2)
    with pytest.raises(ValueError, match="detail_channels"):
        NetConfig(detail_channels=4)  # a dcgan network has no detail map
    with pytest.raises(ValueError, match="channels"):
        DetailConfig(bundle="b", data="d", out="o", channels=0)


def test_detail_bundle_round_trips_and_serves_the_front_ends(tmp_path):
    import albumentations as A

    import genaug

    d = add_detail(tiny_edit_bundle(), 2)
    torch.nn.init.normal_(d.generator.detail_in.weight, 0, 0.05)  # make the map matter
    save_bundle(d, tmp_path / "b")
    cfg = json.loads((tmp_path / "b" / "config.json").read_text())
    assert cfg["network"]["detail_channels"] == 2 and cfg["latent"]["noise_dim"] == d.spec.noise_dim
    loaded = evaluating(load_bundle(tmp_path / "b"))
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(loaded.generator(loaded.predictor(x)), evaluating(d).generator(d.predictor(x)), atol=1e-6)
    eng = genaug.Engine(str(tmp_path / "b"), device="cpu", seed=0)
    out, info = eng.augment_tensor(x)
    assert out.shape == x.shape and info.latent.shape == (3, d.spec.dim) and torch.isfinite(out).all()
    face = (np.random.default_rng(0).random((218, 178, 3)) * 255).astype(np.uint8)
    aug = A.Compose([genaug.GenerativeFaceAug(bundle=str(tmp_path / "b"), device="cpu", p=1.0)], seed=0)
    assert aug(image=face)["image"].shape == face.shape


@pytest.fixture(scope="module")
def faces_folder(tmp_path_factory):
    """64 real celeba_train_64 faces copied into a temporary folder (never into the repository)."""
    src = sorted((need(CELEBA64) / "images").glob("*.jpg"))[:64]
    dst = tmp_path_factory.mktemp("faces")
    for p in src:
        shutil.copy(p, dst / p.name)
    return dst


def without_detail(b: Bundle) -> Bundle:
    """The shipped default as it was before its detail skip: same weights, no detail map."""
    from dataclasses import replace

    from genaug.models.registry import build_generator, build_predictor

    net = replace(b.net, detail_channels=0)
    spec = replace(b.spec, noise_dim=content_dim(net))
    g, p = build_generator(spec, net), build_predictor(spec, net)
    for new, old in ((g, b.generator), (p, b.predictor)):
        new.load_state_dict({k: v for k, v in old.float().state_dict().items() if not k.startswith(("detail.", "detail_in."))})
    return replace(b, spec=spec, net=net, generator=g, predictor=p, path=None,
                   directions={k: v[:, : spec.noise_dim] for k, v in b.directions.items()})


def test_detail_training_learns_real_faces_keeps_edits_and_resumes(faces_folder, tmp_path):
    base = load_bundle("default")
    if not base.net.detail_channels:
        pytest.skip("the shipped default has no detail skip")
    save_bundle(without_detail(base), tmp_path / "base")
    args = [str(tmp_path / "base"), str(faces_folder), "--out", str(tmp_path / "run"), "--channels", "8", "--lr", "1e-3",
            "--batch-size", "8", "--holdout", "12", "--eval-every", "1000", "--log-every", "10", "--device", "cpu"]
    assert main(args + ["--steps", "40"]) == 0
    ev = load_bundle(tmp_path / "run" / "bundle").training["detail"]["holdout"]
    assert all(np.isfinite(v) for v in ev.values())
    assert ev["psnr"] > ev["psnr_base"] + 0.15  # held-out faces: the shipped model's reconstruction improved
    # what the edits change stays what it was (same scale as the reconstruction error would be: far below it)
    assert ev["edit_error"] < 0.1 * (1 - ev["msssim_base"]) + 0.02
    trainer = DetailTrainer(DetailConfig(str(tmp_path / "base"), str(faces_folder), str(tmp_path / "run"), channels=8,
                                         lr=1e-3, batch_size=8, holdout=12, eval_every=1000, log_every=10, device="cpu",
                                         steps=50))
    assert trainer.step == 40  # resumed from the checkpoint
    trainer.run()
    assert load_bundle(tmp_path / "run" / "bundle").training["detail"]["steps"] == 50
    steps = [json.loads(ln)["step"] for ln in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == 50
    with pytest.raises(ValueError, match="different settings"):
        DetailTrainer(DetailConfig(str(tmp_path / "base"), str(faces_folder), str(tmp_path / "run"),
                                                    channels=8, holdout=12, device="cpu"))


def test_a_bundle_with_a_detail_map_trains_it_further_or_refuses_another_size(faces_folder, tmp_path):
    if not load_bundle("default").net.detail_channels:
        pytest.skip("the shipped default has no detail skip")
    common = dict(batch_size=4, holdout=12, eval_every=1000, log_every=10, device="cpu", steps=3)
    with pytest.raises(ValueError, match="already has a 16-channel detail map"):
        DetailTrainer(DetailConfig("default", str(faces_folder), str(tmp_path / "a"), channels=8, **common))
    trainer = DetailTrainer(DetailConfig("default", str(faces_folder), str(tmp_path / "b"), channels=16, **common))
    ev = trainer.evaluate()  # before any step: the copy is the bundle itself
    assert ev["psnr"] == pytest.approx(ev["psnr_base"], abs=1e-4) and ev["edit_error"] < 1e-5
    trainer.run()
    out = load_bundle(tmp_path / "b" / "bundle")
    assert out.training["detail"]["continued"] and out.spec.noise_dim == load_bundle("default").spec.noise_dim
