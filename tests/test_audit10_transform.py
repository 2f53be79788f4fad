"""A tenth user audit (2026-12-05), the albumentations transform as a pipeline with a seed uses it (each test failed
before its fix)."""
from __future__ import annotations

import albumentations as A

import genaug


def _decisions(seed: int, n: int = 64) -> tuple[list[bool], list[bool]]:
    flip, aug = A.HorizontalFlip(p=0.5), genaug.GenerativeFaceAug(p=0.5)  # (the model is not loaded to decide p)
    A.Compose([flip, aug], seed=seed)
    return [flip.should_apply() for _ in range(n)], [aug.should_apply() for _ in range(n)]


def test_a_compose_seed_does_not_tie_the_edits_to_the_other_transforms_draws():
    # A.Compose(seed=) seeds every transform with the same number, so GenerativeFaceAug(p=0.5) applied exactly when
    # HorizontalFlip(p=0.5) before it flipped (64 of 64 decisions equal): half the flips edited, no unflipped photo ever
    flips, edits = _decisions(0)
    assert sum(f == e for f, e in zip(flips, edits)) < 48
    assert 16 < sum(edits) < 48
    assert _decisions(0) == (flips, edits) and _decisions(1)[1] != edits  # still reproduced by the seed, and by it alone
