"""The edit-aware model kind: networks, training steps on real faces, resume, bundle round-trip and
the runtime front ends accepting it."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import CELEBA64, need
from genaug.bundle import Bundle, load_bundle, save_bundle
from genaug.faces.framing import CELEBA_FRAMING
from genaug.models.config import NetConfig
from genaug.models.editnets import EditDiscriminator, content_dim
from genaug.models.nets import init_weights
from genaug.training.edit import CodeLayout, EditObjective, d_step, edit_spec, g_step

CODES = "glasses:2:Eyeglasses,smile:2:Smiling,male:2:Male"


def tiny_net(size: int = 32) -> NetConfig:
    return NetConfig(image_size=size, g_width=4, d_width=4, e_width=4, e_norm="group", kind="edit", content_channels=4)


def tiny_edit_nets():
    """Seeded untrained (layout, E, G, D) of the edit kind at 32 px with CODES + 2 free codes."""
    torch.manual_seed(0)
    net = tiny_net()
    spec = edit_spec(net, CODES, "2")
    b = Bundle.create(spec, net)
    return CodeLayout(spec, ["Eyeglasses", "Smiling", "Male"]), b.predictor, b.generator, EditDiscriminator(spec, net)


@pytest.fixture(scope="module")
def edit_bundle(tmp_path_factory):
    torch.manual_seed(0)
    net = tiny_net()
    spec = edit_spec(net, CODES, "2")
    b = Bundle.create(spec, net, framing=CELEBA_FRAMING, name="tiny-edit")
    init_weights(b.generator)
    init_weights(b.predictor)
    path = tmp_path_factory.mktemp("bundles") / "edit"
    save_bundle(b.to("cpu"), path)
    return path


def test_spec_marks_identity_unsafe_codes_and_content_size():
    net = tiny_net()
    spec = edit_spec(net, CODES, "2", identity_unsafe="male")
    assert spec.noise_dim == content_dim(net) == 4 * 4 * 4
    assert [spec.codes[i].name for i in spec.default_codes] == ["glasses", "smile", "c3", "c4"]
    with pytest.raises(ValueError, match=r"codes the model does not have: \['beard'\]"):
        edit_spec(net, CODES, "2", identity_unsafe="beard")


def test_code_loss_is_zero_only_for_matching_codes():
    spec = edit_spec(tiny_net(), CODES, "1")
    layout = CodeLayout(spec, ["Eyeglasses", "Smiling", "Male"])
    target = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.5]])
    logits = (target[:, :6] * 40 - 20)
    good = torch.cat([logits, torch.tensor([[0.5]])], 1)
    assert layout.code_loss(good, target).item() < 1e-6
    bad = torch.cat([-logits, torch.tensor([[-0.5]])], 1)
    assert layout.code_loss(bad, target, "bound").item() > 50  # 3 codes x 40 nats
    assert abs(layout.code_loss(bad, target, "free").item() - 1.0) < 1e-6  # only the continuous MSE (1.0^2)


def test_binding_to_a_missing_attribute_is_a_clear_error():
    spec = edit_spec(tiny_net(), CODES, "1")
    with pytest.raises(ValueError, match="Male"):
        CodeLayout(spec, ["Eyeglasses", "Smiling"])


def test_one_step_updates_every_network_without_nans():
    layout, E, G, D = tiny_edit_nets()
    x = torch.rand(6, 3, 32, 32) * 2 - 1
    attrs = torch.tensor([[1, -1, 1], [-1, 1, -1]] * 3, dtype=torch.float)
    before = [m.state_dict()[k].clone() for m in (E, G, D) for k in list(m.state_dict())[:1]]
    opt = torch.optim.Adam([*E.parameters(), *G.parameters()], 1e-3)
    opt_d = torch.optim.Adam(D.parameters(), 1e-3)
    loss, own, edited, target, log = g_step(EditObjective(), layout, E, G, D, x, attrs, torch.Generator().manual_seed(0))
    opt.zero_grad(), loss.backward(), opt.step()
    loss_d, log_d = d_step(EditObjective(), layout, D, x, own, edited, target)
    opt_d.zero_grad(), loss_d.backward(), opt_d.step()
    assert all(np.isfinite(float(v)) for v in {**log, **log_d}.values())
    # own codes carry the labels for bound codes
    assert torch.equal(own[:, 0:2].argmax(1), (attrs[:, 0] > 0).long())
    after = [m.state_dict()[k] for m in (E, G, D) for k in list(m.state_dict())[:1]]
    assert all(not torch.equal(a, c) for a, c in zip(before, after))


@pytest.mark.data
def test_training_run_on_real_faces_resumes_and_writes_a_bundle(tmp_path):
    from genaug.training.edit_loop import EditTrainConfig, EditTrainer

    data = need(CELEBA64)
    kw = dict(data=str(data), out=str(tmp_path / "run"), image_size=32, content_channels=4, e_width=4, g_width=4, d_width=4,
              batch_size=4, limit=80, holdout=16, eval_every=3, log_every=1, checkpoint_every=2, threads=1, device="cpu",
              categorical=CODES, continuous="1")
    EditTrainer(EditTrainConfig(**kw, steps=3)).run()
    log = [json.loads(ln) for ln in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    evals = [r["eval"] for r in log if "eval" in r]
    assert evals and all(np.isfinite(v) for v in evals[-1].values())
    assert {"psnr", "msssim", "d_glasses_on", "d_smile_off"} <= set(evals[-1])
    trainer = EditTrainer(EditTrainConfig(**kw, steps=5, snapshots=True))  # snapshots may be switched on when resuming
    assert trainer.step == 3  # resumed, runs only the remaining steps
    bundle = trainer.run()
    assert trainer.step == 5 and bundle.kind == "edit" and not bundle.can_sample
    snaps = sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir())
    assert snaps == ["000005"]  # the final evaluation; step 3 was evaluated by the first run, without snapshots
    from safetensors import safe_open

    assert load_bundle(tmp_path / "run" / "snapshots" / "000005").training["steps"] == 5
    with safe_open(tmp_path / "run" / "snapshots" / "000005" / "model.safetensors", "pt") as f:  # stored in float16
        assert {f.get_tensor(k).dtype for k in f.keys() if f.get_tensor(k).is_floating_point()} == {torch.float16}
    with pytest.raises(ValueError, match="other settings"):
        EditTrainer(EditTrainConfig(**{**kw, "content_channels": 8}, steps=6))


def test_bundle_round_trip_gives_identical_outputs(edit_bundle, tmp_path):
    b = load_bundle(edit_bundle)
    assert b.kind == "edit" and not b.can_sample and b.default_refine_steps == 0
    cfg = json.loads((edit_bundle / "config.json").read_text())
    assert cfg["kind"] == "edit" and cfg["network"]["kind"] == "edit" and cfg["can_sample"] is False
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    lat = b.predictor(x)
    again = load_bundle(save_bundle(b, tmp_path / "copy"))
    assert torch.equal(again.predictor(x), lat)
    assert torch.equal(again.generator(lat), b.generator(lat))


def test_runtime_front_ends_accept_the_edit_kind(edit_bundle, tmp_path):
    import albumentations as A

    import genaug

    eng = genaug.Engine(str(edit_bundle), device="cpu", seed=0)
    assert eng.refine_steps == eng.bundle.default_refine_steps == 0
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    out, info = eng.augment_tensor(x)
    assert out.shape == x.shape and len(info.edits) == 4
    # one encoder pass: the inverted latent is exactly the encoder's output (of the face as it is inverted: a noise
    # image's mean colour may lie past every skin's, a coloured light taken back, genaug.engine.exposure.lift)
    from genaug.engine.exposure import lift

    assert torch.allclose(info.latent, eng.bundle.predictor(lift(x, low=-1.0)), atol=1e-6)
    face = (np.random.default_rng(0).random((218, 178, 3)) * 255).astype(np.uint8)
    aug = A.Compose([genaug.GenerativeFaceAug(bundle=str(edit_bundle), device="cpu", p=1.0)], seed=0)
    assert aug(image=face)["image"].shape == face.shape
    ds = genaug.GenerativeAugDataset([(face, 0)], variants=2, bundle=str(edit_bundle), device="cpu")
    img, label = ds[1]
    assert label == 0 and isinstance(img, np.ndarray) and img.shape == face.shape and img.dtype == np.uint8


def test_identity_loss_from_a_frozen_judge_reaches_the_generator():
    from genaug.faces.features import EvaluatorConfig, FaceNet
    from genaug.faces.identity import EmbedderJudge

    layout, E, G, D = tiny_edit_nets()
    judge = EmbedderJudge(FaceNet(EvaluatorConfig(widths=[8, 16])), "tiny", 0.5, "euclidean", 1.5)
    judge.net.requires_grad_(False)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    attrs = torch.tensor([[1, -1, 1], [-1, 1, -1]] * 2, dtype=torch.float)
    only_id = EditObjective(lambda_rec=0, lambda_cls=0, lambda_cycle=0, lambda_enc=0, lambda_identity=1.0, adv_loss="ns")
    with pytest.raises(ValueError, match="identity judge"):
        g_step(only_id, layout, E, G, D, x, attrs, torch.Generator().manual_seed(0))
    loss, _, edited, _, log = g_step(only_id, layout, E, G, D, x, attrs, torch.Generator().manual_seed(0), judge)
    ident = judge.distance(judge.embed(edited.detach()), judge.embed(x))
    assert torch.allclose(log["identity"], ident.mean(), atol=1e-4) and log["identity"] > 0
    without = EditObjective(lambda_rec=0, lambda_cls=0, lambda_cycle=0, lambda_enc=0, lambda_identity=0.0, adv_loss="ns")
    loss0 = g_step(without, layout, E, G, D, x, attrs, torch.Generator().manual_seed(0))[0]
    assert torch.allclose(loss - loss0, log["identity"], atol=1e-4)  # the term is added with its weight
    (loss - loss0).backward()  # the identity term's gradient alone
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
    assert all(p.grad is None for p in judge.net.parameters())  # the judge stays frozen


def test_diffaugment_is_seeded_shifts_whole_pixels_and_cuts_a_hole():
    from genaug.training.augment import translate_cutout

    x = torch.rand(5, 3, 16, 16, requires_grad=True)
    a = translate_cutout(x, torch.Generator().manual_seed(1), shift=0.125, cutout=0.25)
    b = translate_cutout(x, torch.Generator().manual_seed(1), shift=0.125, cutout=0.25)
    assert torch.equal(a, b) and a.shape == x.shape
    assert not torch.equal(a, translate_cutout(x, torch.Generator().manual_seed(2)))
    for img, out in zip(x.detach(), a.detach()):  # every output pixel is 0 or some input pixel of its image
        vals = set(img.flatten().tolist()) | {0.0}
        assert all(v in vals for v in out.flatten().tolist())
        assert (out.abs().sum(0) == 0).sum() >= 16  # at least the 4x4 hole
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    only_shift = translate_cutout(x.detach(), torch.Generator().manual_seed(3), shift=0.0, cutout=0.0)
    assert torch.equal(only_shift, x.detach())


def test_d_augment_changes_what_d_sees_but_not_the_losses_shape():
    layout, E, G, D = tiny_edit_nets()
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    attrs = torch.tensor([[1, -1, 1], [-1, 1, -1]] * 2, dtype=torch.float)
    plain, aug = EditObjective(), EditObjective(d_augment=True)
    _, own, edited, target, _ = g_step(plain, layout, E, G, D, x, attrs, torch.Generator().manual_seed(0))
    l0 = d_step(plain, layout, D, x, own, edited, target)[0]
    l1 = d_step(aug, layout, D, x, own, edited, target, torch.Generator().manual_seed(0))[0]
    assert torch.isfinite(l1) and not torch.isclose(l0, l1)
    with pytest.raises(ValueError, match="Generator"):
        d_step(aug, layout, D, x, own, edited, target)


@pytest.mark.data
def test_fine_tune_starts_from_a_bundle_and_warms_d_up_alone(edit_bundle, tmp_path):
    from genaug.training.edit_loop import EditTrainConfig, EditTrainer

    data = need(CELEBA64)
    kw = dict(data=str(data), image_size=32, content_channels=4, e_width=4, g_width=4, d_width=4, batch_size=4, limit=60,
              holdout=8, eval_every=100, log_every=1, checkpoint_every=100, threads=1, device="cpu", categorical=CODES,
              continuous="2", init_from=str(edit_bundle), d_warmup=2, d_augment=True)
    src = load_bundle(edit_bundle)
    t = EditTrainer(EditTrainConfig(**kw, out=str(tmp_path / "a"), steps=2))
    assert all(torch.equal(p, q) for p, q in zip(t.G.state_dict().values(), src.generator.state_dict().values()))
    d0 = [p.clone() for p in t.D.parameters()]
    g0 = [p.clone() for p in t.G.parameters()]
    t.run()
    assert all(torch.equal(p, q) for p, q in zip(t.G.parameters(), g0))  # warm-up: G frozen
    assert any(not torch.equal(p, q) for p, q in zip(t.D.parameters(), d0))  # ... D learns
    t2 = EditTrainer(EditTrainConfig(**kw, out=str(tmp_path / "a"), steps=3))
    t2.run()
    assert any(not torch.equal(p, q) for p, q in zip(t2.G.parameters(), g0))  # after it, G learns too
    with pytest.raises(ValueError, match="differ"):
        EditTrainer(EditTrainConfig(**{**kw, "content_channels": 8}, out=str(tmp_path / "b"), steps=1))
