"""The identity judges (genaug.faces.identity): dlib's descriptor on real pairs, the torch judges, the gate."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CELEBA_ID200, need
from genaug.engine import Engine
from genaug.faces import identity
from genaug.faces.identity import EmbedderJudge, FacesExtraMissing, faces_extra_available, get_judge
from genaug.faces.metrics import compute

needs_dlib = pytest.mark.skipif(not faces_extra_available(), reason='dlib extra not installed (pip install "genaug[faces]")')


def celeba_face(rel: str, size: int = 64) -> torch.Tensor:
    """One celeba_id200 photo in the model frame (CelebA box 35,55,143,163), CHW in [-1, 1]."""
    im = Image.open(CELEBA_ID200 / rel).convert("RGB").crop((35, 55, 143, 163)).resize((size, size), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im, np.float32) / 127.5 - 1).permute(2, 0, 1)


@pytest.fixture(scope="module")
def real_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """The first two test photos of each of the first six people (sorted folder names)."""
    need(CELEBA_ID200)
    by_person: dict[str, list[str]] = {}
    with open(CELEBA_ID200 / "splits.csv", newline="") as f:
        for r in csv.DictReader(f):
            if r["split"] == "test":
                by_person.setdefault(r["identity"], []).append(r["path"])
    people = sorted(by_person)[:6]
    a = torch.stack([celeba_face(by_person[p][0]) for p in people])
    b = torch.stack([celeba_face(by_person[p][1]) for p in people])
    return a, b


@needs_dlib
def test_dlib_judge_same_person_and_different_people_on_real_pairs(real_pairs):
    a, b = real_pairs
    judge = get_judge("dlib")
    assert judge.name == "dlib" and judge.threshold == 0.6
    ea, eb = judge.embed(a), judge.embed(b)
    assert ea.shape == (6, 128) and ea.device.type == "cpu" and ea.dtype == torch.float32
    assert judge.same_person(ea, eb).all(), judge.distance(ea, eb)  # same person, other photo
    other = eb.roll(1, 0)  # each photo against someone else's
    assert not judge.same_person(ea, other).any(), judge.distance(ea, other)
    sim = judge.similarity(a[:2], b[:2])  # the gate: higher = more alike, above gate_threshold when same
    assert sim.shape == (2,) and (sim > judge.gate_threshold).all()
    assert (judge.similarity(a[:2], b.roll(1, 0)[:2]) < judge.gate_threshold).all()


@needs_dlib
def test_dlib_judge_accepts_other_sizes_grayscale_and_rejects_bad_input(real_pairs):
    a, _ = real_pairs
    judge = get_judge("dlib")
    big = torch.nn.functional.interpolate(a[:2], size=(128, 128), mode="bilinear", align_corners=False)
    d = judge.distance(judge.embed(a[:2]), judge.embed(big))
    assert (d < 0.25).all(), d  # the same photo at another size: nearly the same descriptor
    gray = a[:2].mean(1, keepdim=True)
    assert judge.embed(gray).shape == (2, 128)
    lm = judge.landmarks(a[:1])
    assert lm.shape == (1, 5, 2) and (lm >= 0).all() and (lm <= 64).all()
    for bad in (a[0], a[:1] * 3, a[:1, :2], a[:1].to(torch.uint8)):
        with pytest.raises(ValueError):
            judge.embed(bad)
    assert judge.embed(a[:0]).shape == (0, 128)


@needs_dlib
def test_a_pickled_dlib_judge_and_a_dlib_gated_engine(real_pairs, tiny_bundle_path):
    # DlibJudge held the dlib module and its own descriptor model: neither it nor an Engine(gate="dlib") could be
    # pickled ("cannot pickle 'module' object"); pickled without dlib's models, it takes the process's shared ones
    import pickle

    a, b = real_pairs
    judge = get_judge("dlib")
    data = pickle.dumps(judge)
    copy = pickle.loads(data)
    assert len(data) < 10_000 and copy.encoder is identity.dlib_encoder() and copy.landmarker is identity.dlib_predictor()
    assert torch.equal(copy.embed(a[:2]), judge.embed(a[:2])) and torch.equal(copy.landmarks(b[:2]), judge.landmarks(b[:2]))
    engine = pickle.loads(pickle.dumps(Engine(tiny_bundle_path, device="cpu", gate="dlib", gate_threshold=0.4)))
    assert engine.gate.name == "dlib" and torch.equal(engine.gate(a[:2], b[:2]), judge.similarity(a[:2], b[:2]))


def test_judge_as_frechet_feature_network(real_pairs):
    a, b = real_pairs
    judge = get_judge("embedder")
    net = judge.feature_net()
    assert torch.equal(net(a), judge.embed(a)) and not list(net.parameters())
    real, flipped = torch.cat([a, b]), torch.cat([b, a]).flip(-1)
    res = compute("frechet_distance", real=real, generated=flipped, feature_net=net)
    assert res["fd"] > 0 and res["floor"] >= 0 and res["n"] == 6


def test_get_judge_names_and_missing_extra(monkeypatch):
    with pytest.raises(ValueError, match="unknown identity judge"):
        get_judge("arcface")
    auto = get_judge("auto")
    assert auto.name == ("dlib" if faces_extra_available() else "student" if identity.student_available() else "embedder")
    monkeypatch.setattr(identity, "faces_extra_available", lambda: False)
    monkeypatch.setattr(identity, "_JUDGES", {})
    with pytest.raises(FacesExtraMissing, match=r"genaug\[faces\]"):
        get_judge("dlib")
    assert get_judge("auto").name in ("student", "embedder")


def test_embedder_judge_gates_the_engine(tiny_bundle_path):
    judge = get_judge("embedder")
    assert isinstance(judge, EmbedderJudge) and judge.metric == "cosine"
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    e = judge.embed(x)
    assert e.shape == (4, 128) and torch.allclose(judge.distance(e, e), torch.zeros(4), atol=1e-5)
    assert judge.same_person(e, e).all()
    y = x.clone().requires_grad_(True)  # usable as an identity loss: gradients reach the image
    judge.distance(judge.embed_with_grad(y), e.roll(1, 0)).sum().backward()
    assert y.grad is not None and y.grad.abs().sum() > 0
    eng = Engine(tiny_bundle_path, device="cpu", refine_steps=0, seed=0, gate=judge, gate_threshold=1.01)
    out, info = eng.augment_tensor(x)  # no augmentation can be this similar: all dropped, returned unchanged
    assert eng.stats["dropped"] == 4 and not info.kept.any() and torch.equal(out.cpu(), x)
    eng = Engine(tiny_bundle_path, device="cpu", refine_steps=0, seed=0, gate=judge, gate_threshold=-1.0)
    out, info = eng.augment_tensor(x)
    assert eng.stats["dropped"] == 0 and info.kept.all()


def test_student_judge_when_shipped(real_pairs):
    if not identity.student_available():
        pytest.skip("no distilled student shipped in genaug/default (python -m genaug.training.distill)")
    a, b = real_pairs
    judge = get_judge("student")
    assert judge.name == "student" and judge.metric == "euclidean" and 0.2 < judge.threshold < 1.2
    ea, eb = judge.embed(a), judge.embed(b)
    assert ea.shape == (6, 128)
    genuine, impostor = judge.distance(ea, eb), judge.distance(ea, eb.roll(1, 0))
    assert genuine.mean() < impostor.mean(), (genuine, impostor)


class _CountingJudge(identity.IdentityJudge):
    """A stand-in teacher: mean colour per channel tiled to 128-d; fails once after ``fail_after`` faces."""

    name = "counting"

    def __init__(self, fail_after: int | None = None):
        self.seen, self.fail_after = 0, fail_after

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail_after is not None and self.seen >= self.fail_after:
            raise KeyboardInterrupt("interrupted")
        self.seen += len(x)
        return x.float().mean((2, 3)).repeat(1, 43)[:, :128]


def test_teacher_cache_is_resumable_and_refuses_other_settings(tmp_path):
    from genaug.training.distill import describe_faces, read_teacher, teacher_subset

    images = torch.randint(0, 256, (40, 3, 64, 64), dtype=torch.uint8)
    idx = teacher_subset(40, 25, seed=0)
    assert torch.equal(idx, teacher_subset(40, 25, seed=0)) and len(set(idx.tolist())) == 25
    cache = tmp_path / "teacher.safetensors"
    with pytest.raises(KeyboardInterrupt):
        describe_faces(images, idx, cache, "faces", 0, save_every=10, judge=_CountingJudge(fail_after=20))
    assert len(read_teacher(cache)[1]) == 20  # two chunks were saved before the interruption
    judge = _CountingJudge()
    got_idx, desc = describe_faces(images, idx, cache, "faces", 0, save_every=10, judge=judge)
    assert judge.seen == 5 and torch.equal(got_idx, idx)  # only the missing faces were described
    assert torch.allclose(desc, _CountingJudge().embed(images[idx].float() / 127.5 - 1), atol=1e-6)
    with pytest.raises(ValueError, match="other settings"):
        describe_faces(images, teacher_subset(40, 25, seed=1), cache, "faces", 1, judge=_CountingJudge())
    more, judge = teacher_subset(40, 32, seed=0), _CountingJudge()  # more faces extend the same cache
    assert torch.equal(more[:25], idx)
    got_idx, desc = describe_faces(images, more, cache, "faces", 0, save_every=10, judge=judge)
    assert judge.seen == 7 and len(desc) == 32 and torch.equal(read_teacher(cache)[0], more)


def test_agreement_threshold_matches_the_teachers_same_person_rate():
    from genaug.training.distill import agreement_threshold

    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(60, 128, generator=g) * 0.07  # pair distances around 1.1 ...
    teacher[1::2] = teacher[::2] + torch.randn(30, 128, generator=g) * 0.02  # ... 30 pairs close (< 0.6)
    cal = agreement_threshold(teacher * 2.0, teacher)  # a judge with the teacher's distances doubled
    assert cal["dlib_same_rate"] > 0 and abs(cal["threshold"] / 2.0 - 0.6) < 0.35 and cal["agrees_on_dlib_same"] > 0.9
