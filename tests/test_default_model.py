"""The shipped default bundle: loads offline, and on held-out real faces (celeba_id200, people the
generator never saw; skipped when the data is absent) it reconstructs, edits the attribute a named
code claims, and keeps ``delta`` output closer to the photo than ``regenerate``."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from genaug.engine import Engine
from genaug.engine.edits import Edit
from genaug.faces.features import DEFAULT_DIR
from genaug.faces.metrics import attribute_names, attribute_probabilities, identity_similarity

from conftest import CELEBA_ID200, need

BOUND = {"glasses": "Eyeglasses", "smile": "Smiling", "male": "Male"}
# measured on these 24 faces (the default: GPU-trained, then fine-tuned on the CPU): +0.054 (glasses
# are thin and faint at 64 px: a known limit, see the model card), +0.74, +0.94; rose for all 24
MIN_RISE = {"glasses": 0.025, "smile": 0.4, "male": 0.4}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine("default", device="cpu", refine_steps=10, seed=0)


@pytest.fixture(scope="module")
def faces() -> list[np.ndarray]:
    """One 178x218 CelebA frame from each of 24 held-out people."""
    root = need(CELEBA_ID200)
    people = sorted(p for p in root.iterdir() if p.is_dir())[:24]
    return [np.asarray(Image.open(sorted(p.glob("*.jpg"))[-1]).convert("RGB")) for p in people]


def test_default_bundle_is_shipped_and_described():
    b = genaug.load_bundle("default")
    assert b.image_size == 64 and b.channels == 3
    names = [c.name for c in b.spec.codes]
    for name, attr in BOUND.items():
        assert name in names and b.spec.codes[names.index(name)].attribute == attr
    assert all(c.description for c in b.spec.codes), "every shipped code says what it controls"
    assert (DEFAULT_DIR / "MODEL_CARD.md").is_file()
    assert next(b.generator.parameters()).dtype == torch.float32  # stored as float16, computed in float32


def test_reconstructs_held_out_faces(engine, faces):
    x, _ = engine.frame(faces)
    inv = engine.invert(x)
    assert inv.score.mean() > 0.65, f"mean MS-SSIM {inv.score.mean():.3f}"
    sim = identity_similarity(x, inv.recon)
    assert sim.mean() > 0.5, f"identity similarity photo<->reconstruction {sim.mean():.3f}"


def test_delta_keeps_more_of_the_photo_than_regenerate(engine, faces):
    x, _ = engine.frame(faces)
    edits = [Edit(engine.spec.code_index("smile"), 1.0)] * len(faces)
    delta, _ = engine.augment_tensor(x, edits, mode="delta")
    regen, _ = engine.augment_tensor(x, edits, mode="regenerate")
    # measured on these 24 faces (MSE, [-1, 1] scale): default (edit kind with the detail skip) delta
    # 0.0121 vs regenerate 0.0151 (before the skip 0.0096 vs 0.0159; infogan64: 0.0063 vs 0.0513) —
    # the sharper its reconstructions, the less regenerate loses, yet delta still keeps more of the photo
    assert ((delta - x) ** 2).mean() < 0.9 * ((regen - x) ** 2).mean()


@pytest.mark.parametrize("code", list(BOUND))
def test_named_codes_move_their_attribute(engine, faces, code):
    """P(attribute) by the project's attribute classifier rises when the code is switched on, and
    the predictor recovers the category that was set."""
    x, _ = engine.frame(faces)
    i, col = engine.spec.code_index(code), attribute_names().index(BOUND[code])
    p, recovered = [], []
    for value in (0.0, 1.0):
        out, info = engine.augment_tensor(x, [Edit(i, value)] * len(faces), mode="regenerate")
        p.append(attribute_probabilities(out)[:, col])
        with torch.no_grad():
            logits = engine.bundle.predictor(out)[:, engine.spec.code_slice(i)]
        recovered.append((logits.argmax(1) == int(value)).float().mean().item())
    rise = p[1] - p[0]
    assert rise.mean() > MIN_RISE[code], f"{code}: mean change of P({BOUND[code]}) {rise.mean():.3f}"
    assert (rise > 0).float().mean() > 0.7, f"{code}: P({BOUND[code]}) rose for only {(rise > 0).float().mean():.0%} of faces"
    # measured: the encoder reads back every set category on all 24 faces, except glasses switched on (88 %)
    assert min(recovered) > 0.7, f"{code}: predictor recovers the set category in {recovered}"
