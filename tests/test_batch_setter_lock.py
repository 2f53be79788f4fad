"""BatchFaceAug's settings set from another thread wait for a call that is running (the call's lock), so one batch
is made under one set of settings; a call path's own sets (the same thread) go through."""
from __future__ import annotations

import threading

import torch

import genaug.batch as batch_module
from genaug.batch import BatchFaceAug


def _built(bundle) -> tuple[BatchFaceAug, torch.Tensor]:
    aug = BatchFaceAug(p=1.0, bundle=bundle, seed=0)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    aug(x)  # built
    return aug, x


def _call_with(aug: BatchFaceAug, x: torch.Tensor, monkeypatch, action, inside=None) -> dict:
    """Call ``aug(x)`` in a thread; while it renders, run ``action`` in another thread (given a second to finish) and
    ``inside(seen)`` in the call's own; returns what was seen mid-call (``done``: the action finished mid-call)."""
    seen, run_rows = {}, batch_module.augment_rows

    def rows_with_an_action_beside(*args, **kw):
        other = threading.Thread(target=action)
        other.start()
        other.join(timeout=1.0)  # unblocked, it is done long before
        seen["done"], seen["thread"] = not other.is_alive(), other
        if inside is not None:
            inside(seen)
        return run_rows(*args, **kw)

    monkeypatch.setattr(batch_module, "augment_rows", rows_with_an_action_beside)
    caller = threading.Thread(target=aug, args=(x,))
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive()
    seen["thread"].join(timeout=60)
    return seen


def test_a_setter_waits_for_a_call_running_in_another_thread(default_bundle, monkeypatch):
    # a setter ran at once, mid-call: aug.mode / aug.bounds changed (and the colour margins were re-made) while the
    # call was between its draws and its render
    aug, x = _built(default_bundle)
    margin = aug._margin

    def inside(seen):
        seen["mode"], seen["margin"] = aug.mode, aug._margin
        aug.p = 0.9  # the call's own thread: no deadlock

    seen = _call_with(aug, x, monkeypatch,
                      lambda: (setattr(aug, "mode", "regenerate"), setattr(aug, "bounds", {"tone": (0, 1)})), inside)
    assert not seen["done"] and seen["mode"] == "delta" and seen["margin"] is margin, seen
    assert (aug.mode, aug.bounds, aug.p) == ("regenerate", {"tone": (0, 1)}, 0.9)  # applied once the call ended
    assert aug._margin is None  # (regenerate: no colour margin)


def test_moving_the_transform_waits_for_a_running_call_too(default_bundle, monkeypatch):
    aug, x = _built(default_bundle)
    engine = aug._engine
    seen = _call_with(aug, x, monkeypatch, lambda: aug.to("meta"), lambda seen: seen.update(engine=aug._engine))
    assert not seen["done"] and seen["engine"] is engine, seen
    assert aug.device == torch.device("meta")
