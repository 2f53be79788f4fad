"""The engine's identity gate: rejected rows are re-drawn (and only those), rows rejected on every
try come back unchanged; GenerativeFaceAug(gate_threshold=...) wires in the real IdentityGate."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

from genaug.engine import Engine
from genaug.faces.metrics import IdentityGate, resolve_feature_net
from genaug.transforms import GenerativeFaceAug


class ScriptedGate:
    """Scores 0 for the ``reject`` rows of batch ``x`` (found by content) during the first
    ``calls_rejecting`` calls, 1 otherwise; records what it was shown."""

    def __init__(self, x: torch.Tensor, reject: list[int], calls_rejecting: int = 1):
        self.x, self.reject, self.calls_rejecting = x, reject, calls_rejecting
        self.seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def __call__(self, original: torch.Tensor, augmented: torch.Tensor) -> torch.Tensor:
        self.seen.append((original.clone(), augmented.clone()))
        rows = [int((self.x - o).flatten(1).abs().sum(1).argmin()) for o in original]
        rejecting = len(self.seen) <= self.calls_rejecting
        return torch.tensor([0.0 if rejecting and r in self.reject else 1.0 for r in rows])


def batch(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def engine(path, **kw) -> Engine:
    return Engine(path, device="cpu", refine_steps=0, seed=0, **kw)


@pytest.mark.parametrize("strength", [1.0, torch.tensor([0.5, 1.0, 0.25, 0.75])], ids=["scalar", "per_row"])
def test_rows_rejected_once_are_redrawn_and_rendered_with_their_new_edit(trained_bundle_path, strength):
    x = batch()
    first, first_info = engine(trained_bundle_path).augment_tensor(x, strength=strength)  # the first draw
    gate = ScriptedGate(x, reject=[1, 3])
    out, info = engine(trained_bundle_path, gate=gate, gate_threshold=0.5, gate_retries=2).augment_tensor(x, strength=strength)

    assert [len(o) for o, _ in gate.seen] == [4, 2], "the second gate call must score only the re-drawn rows"
    torch.testing.assert_close(gate.seen[1][0], x[[1, 3]])
    assert info.kept.all()
    for r in (0, 2):  # accepted rows keep their first edit and image
        assert info.edits[r] == first_info.edits[r]
        torch.testing.assert_close(out[r], first[r])
    assert [info.edits[r] for r in (1, 3)] != [first_info.edits[r] for r in (1, 3)], "rejected rows need a new edit"
    # every row is exactly the rendering of the edit reported for it (independent gate-free engine)
    expected, _ = engine(trained_bundle_path).augment_tensor(x, edits=info.edits, strength=strength)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(gate.seen[1][1], expected[[1, 3]])
    assert not torch.equal(out[1], x[1]) and not torch.equal(out[3], x[3])


def test_rows_rejected_on_every_try_come_back_unchanged(trained_bundle_path):
    x = batch()
    gate = ScriptedGate(x, reject=[0, 2], calls_rejecting=99)
    e = engine(trained_bundle_path, gate=gate, gate_threshold=0.5, gate_retries=2)
    out, info = e.augment_tensor(x)
    assert [len(o) for o, _ in gate.seen] == [4, 2, 2]
    assert info.kept.tolist() == [False, True, False, True]
    assert torch.equal(out[0], x[0]) and torch.equal(out[2], x[2])
    assert not torch.equal(out[1], x[1]) and not torch.equal(out[3], x[3])
    assert e.stats == {"augmented": 4, "gated": 4, "dropped": 2, "no_face": 0, "quality_rejected": 0}


def test_no_retries_means_drop_at_once(trained_bundle_path):
    x = batch()
    gate = ScriptedGate(x, reject=[1])
    e = engine(trained_bundle_path, gate=gate, gate_threshold=0.5, gate_retries=0)
    out, info = e.augment_tensor(x)
    assert len(gate.seen) == 1 and info.kept.tolist() == [True, False, True, True]
    assert e.stats["dropped"] == 1


# ------------------------------------------------------------------ the real gate in the transform
def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)


def make(path, threshold: float | None, gate: str = "identity") -> GenerativeFaceAug:
    return GenerativeFaceAug(bundle=str(path), refine_steps=0, device="cpu", p=1.0, gate_threshold=threshold, gate=gate)


def test_transform_builds_the_shipped_identity_gate(trained_bundle_path):
    t = make(trained_bundle_path, 0.3)
    gate = t.engine.gate
    assert isinstance(gate, IdentityGate) and t.engine.gate_threshold == 0.3
    assert gate.embedder is resolve_feature_net(None, "identity")  # the shipped identity evaluator
    assert make(trained_bundle_path, None).engine.gate is None


def test_transform_auto_gate_is_the_shipped_student(trained_bundle_path):
    from genaug.faces import identity

    t = make(trained_bundle_path, 0.5, gate="auto")
    if identity.student_available():  # the fast distilled judge, never dlib in the hot path
        assert t.engine.gate is identity.get_judge("student") and t.engine.gate.name == "student"
    else:
        assert isinstance(t.engine.gate, IdentityGate)
    restored = A.from_dict(A.to_dict(A.Compose([t])))  # the gate survives serialisation
    assert restored.transforms[0].gate == "auto" and restored.transforms[0].gate_threshold == 0.5


def test_transform_gate_threshold_decides(trained_bundle_path):
    img = _image()
    never = make(trained_bundle_path, 1.0)  # no edit keeps a cosine of 1: every try rejected, image unchanged
    out = A.Compose([never], seed=0)(image=img)["image"]
    assert np.array_equal(out, img)
    assert never.engine.stats == {"augmented": 1, "gated": 2, "dropped": 1, "no_face": 0, "quality_rejected": 0}
    always = make(trained_bundle_path, -1.01)
    out = A.Compose([always], seed=0)(image=img)["image"]
    assert not np.array_equal(out, img) and always.engine.stats["gated"] == 0


def test_real_gate_keeps_only_rows_at_or_above_the_threshold(trained_bundle_path):
    """With the threshold at the median first-draw similarity, every kept row scores at least the
    threshold by an independently built IdentityGate, and dropped rows are the input."""
    x = batch(12, seed=3)
    judge = IdentityGate()
    first, _ = engine(trained_bundle_path).augment_tensor(x)
    threshold = float(judge(x, first).median())
    gated = engine(trained_bundle_path, gate=IdentityGate(), gate_threshold=threshold, gate_retries=1)
    out, info = gated.augment_tensor(x)
    score = judge(x, out)
    assert 0 < gated.stats["gated"] < 12 and info.kept.any()
    assert (score[info.kept] >= threshold - 1e-5).all()
    assert torch.equal(out[~info.kept], x[~info.kept])


def test_a_gate_threshold_above_1_is_refused_by_the_front_ends(trained_bundle_path):
    """A similarity never exceeds 1: such a threshold would return every photo unedited."""
    from genaug import GenerativeAugDataset

    with pytest.raises(ValueError, match="less than or equal to 1"):
        make(trained_bundle_path, 5.0)
    with pytest.raises(ValueError, match="gate_threshold must be a finite similarity <= 1"):
        GenerativeAugDataset([torch.zeros(3, 64, 64)], bundle=trained_bundle_path, gate_threshold=5.0)
