"""The shipped default model edits real held-out faces (celeba_id200, people it never saw):
switching a bound code on adds the attribute, switching it off removes it, as judged by the
project's attribute classifier (an independent network trained on labelled CelebA faces), and
the edited faces stay the same person for an identity judge (dlib when installed, else the
distilled student) — a classifier alone "agrees" with faces an edit has destroyed.

Slow (about a minute on 2 cores): ``python -m pytest -m slow tests/test_default_edits.py``.
"""
from __future__ import annotations

import csv

import pytest
import torch

from conftest import CELEBA_ID200, need

pytestmark = pytest.mark.slow

# measured on 300 held-out faces (benchmarks/edit_success.py, in the model card), with the detail
# skip, its content directions, the gains + shifts calibrated under an identity floor and a selective
# transfer for glasses and a local regeneration for removals: adding glasses 86 %, removing them 100 %
# (of 17; 100 % of 233 calibration faces), adding bangs 48 %, removing them 96 %; since smile and mouth edits are kept
# to the lower face (smile by brightness only; edit_success_regions.json) adding a smile 89 %, removing it 82 %,
# opening the mouth 91 %, closing it 94 %. On this test's faces (2026-12-06): smile 93 / 76 %, mouth 94 / 89 %,
# bangs 58 / 93 %, glasses 88 / 100 %. The bars sit below with sampling margin (without local regeneration glasses
# were removed on 76 %, bangs on 82 %, mouth closed on 90 %).
MIN_SUCCESS = {("Smiling", 1): 0.85, ("Smiling", 0): 0.72, ("Mouth_Slightly_Open", 1): 0.85, ("Mouth_Slightly_Open", 0): 0.88,
               ("Bangs", 1): 0.38, ("Bangs", 0): 0.85, ("Eyeglasses", 1): 0.78, ("Eyeglasses", 0): 0.85}
# dlib called 90-98 % of each direction's edits the same person; the previous calibration removed
# glasses and bangs by destroying the face (40 % and 66 %), which this bar catches.
MIN_SAME_PERSON = 0.8


@pytest.fixture(scope="module")
def faces():
    from genaug.training.data import load_identity_folder

    root = need(CELEBA_ID200)
    data = load_identity_folder(root, 64)
    with open(root / "attributes.csv", newline="") as f:
        rows = list(csv.reader(f))
    names, table = rows[0][1:], {r[0]: [float(v) for v in r[1:]] for r in rows[1:]}
    idx = data.where("test")[:240]
    attrs = torch.tensor([table[data.paths[i]] for i in idx.tolist()])
    return data.images[idx].float().div(127.5).sub(1), attrs, names


@pytest.mark.data
@pytest.mark.parametrize("attribute,target", sorted(MIN_SUCCESS))
def test_switching_a_bound_code_changes_the_attribute(faces, attribute, target):
    import genaug
    from genaug.faces.metrics import attribute_names, attribute_probabilities, resolve_feature_net
    from genaug.engine.edits import Edit

    x, attrs, names = faces
    eng = genaug.Engine("default", device="cpu", seed=0)
    if attribute not in [c.attribute for c in eng.spec.codes]:
        pytest.skip(f"the default model has no code bound to {attribute}")
    rows = (attrs[:, names.index(attribute)] > 0) != bool(target)  # faces that need the change
    xs = x[rows]
    out, _ = eng.augment_tensor(xs, edits=[Edit(eng.spec.code_index(attribute), float(target))] * len(xs))
    clf = resolve_feature_net(None, "attributes")
    p = attribute_probabilities(out.cpu(), clf)[:, attribute_names(clf).index(attribute)]
    p0 = attribute_probabilities(xs, clf)[:, attribute_names(clf).index(attribute)]
    success = ((p > 0.5) if target else (p < 0.5)).float().mean().item()
    before = ((p0 > 0.5) if target else (p0 < 0.5)).float().mean().item()
    assert success >= MIN_SUCCESS[(attribute, target)], f"{attribute}->{target}: {success:.0%} of {len(xs)} faces (unedited {before:.0%})"
    assert success > before + 0.1
    from genaug.faces.identity import get_judge

    judge = get_judge("auto")
    same = (judge.distance(xs, out.cpu()) < judge.threshold).float().mean().item()
    assert same >= MIN_SAME_PERSON, f"{attribute}->{target}: {judge.name} calls only {same:.0%} of the edits the same person"
