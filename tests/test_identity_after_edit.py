"""Identity after an edit: the shipped default model on real held-out faces (celeba_id200, people the
generator never saw; one test-split photo per person; skipped when the data is absent).

For each face, every edit of an identity-safe code (each category of each categorical code, both
ends of each continuous code, ``delta`` mode, strength 1: what random augmentation may draw) is
scored by the project's identity evaluator against the photo; the face passes when even its *worst*
edit is more similar to the photo than the photo is to the next person's photo. Codes marked
identity-unsafe (``male``) are left out of random augmentation because they change who someone looks
like: they must move identity more than the safe ones. Measured on the current default (GPU model
fine-tuned on the CPU, 10 refinement steps): first 48 people 95.8 % pass (mean photo<->edit cosine
0.852, photo<->other person -0.016); all 200 people 90.0 % (0.848, 0.011). With the unsafe code
included, 87.5 % / 84.5 %: ``male=1`` is the worst edit for 21 of the 48. The thresholds leave room
for a few borderline faces, not for a regression."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CELEBA_ID200, need
from genaug.engine import Engine
from genaug.engine.edits import Edit
from genaug.faces.metrics import identity_similarity

pytestmark = pytest.mark.data  # every test here reads celeba_id200 (through measure)

def every_edit(spec) -> list[Edit]:
    edits = []
    for i, code in enumerate(spec.codes):
        values = range(code.k) if spec.is_categorical(i) else (code.low, code.high)
        edits += [Edit(i, float(v)) for v in values]
    return edits


def measure(n_people: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(E, N) photo<->edit similarities, (N,) photo<->next person's photo similarities and the (E,)
    mask of edits of identity-safe codes."""
    root = need(CELEBA_ID200)
    with open(root / "splits.csv") as f:
        tests = sorted((r["identity"], r["path"]) for r in csv.DictReader(f) if r["split"] == "test")
    first = {}
    for person, path in tests:
        first.setdefault(person, path)
    faces = [np.asarray(Image.open(root / first[p]).convert("RGB")) for p in sorted(first)[:n_people]]
    engine = Engine("default", device="cpu", refine_steps=10, seed=0)
    x, _ = engine.frame(faces)
    edited = [engine.augment_tensor(x, [e] * len(faces))[0] for e in every_edit(engine.spec)]
    sims = torch.stack([identity_similarity(x, out) for out in edited])
    return sims, identity_similarity(x, x.roll(1, 0)), safe_rows(engine.spec)


def safe_rows(spec) -> torch.Tensor:
    """Which rows of every_edit(spec) move an identity-safe code."""
    return torch.tensor([spec.codes[e.code].identity_safe for e in every_edit(spec)])


def check(sims: torch.Tensor, other: torch.Tensor, safe: torch.Tensor, min_pass: float) -> None:
    worst = sims[safe].min(0).values
    passed = (worst > other).float().mean().item()
    assert passed >= min_pass, f"the worst safe edit kept identity better than another person for only {passed:.1%} of faces"
    assert sims[safe].mean() > 0.82, f"mean photo<->edit identity cosine {sims[safe].mean():.3f} (measured 0.85)"
    if (~safe).any():
        assert sims[~safe].mean() < sims[safe].mean(), "identity-unsafe codes should move identity more than safe ones"
    assert other.mean() < 0.2, f"mean photo<->other person cosine {other.mean():.3f}: the evaluator no longer separates people"


def test_edits_keep_identity_on_held_out_faces():
    sims, other, safe = measure(48)
    assert sims.shape == (16, 48) and safe.sum() == 14
    check(sims, other, safe, min_pass=0.9)


@pytest.mark.slow
def test_edits_keep_identity_on_all_200_held_out_people():
    sims, other, safe = measure(200)
    check(sims, other, safe, min_pass=0.85)
