"""BatchFaceAug's settings set from another thread wait for a call that is running (the call's lock), so one batch
is made under one set of settings; a call path's own sets (the same thread) go through."""
from __future__ import annotations

import threading

import torch

import genaug.batch as batch_module
from genaug.batch import BatchFaceAug


def test_a_setter_waits_for_a_call_running_in_another_thread(default_bundle, monkeypatch):
    # a setter ran at once, mid-call: aug.mode / aug.bounds changed (and the colour margins were re-made) while the
    # call was between its draws and its render
    aug = BatchFaceAug(p=1.0, bundle=default_bundle, seed=0)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    aug(x)  # built
    seen = {}
    run_rows = batch_module.augment_rows

    def rows_with_a_setter_beside(*args, **kw):
        setter = threading.Thread(target=lambda: (setattr(aug, "mode", "regenerate"), setattr(aug, "bounds", {"tone": (0, 1)})))
        setter.start()
        setter.join(timeout=1.0)  # unblocked, it is done long before
        seen["setter done mid-call"] = not setter.is_alive()
        seen["mode"], seen["margin"] = aug.mode, aug._margin
        aug.p = 0.9  # the call's own thread: no deadlock
        seen["thread"] = setter
        return run_rows(*args, **kw)

    monkeypatch.setattr(batch_module, "augment_rows", rows_with_a_setter_beside)
    margin = aug._margin
    caller = threading.Thread(target=aug, args=(x,))
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive()
    seen["thread"].join(timeout=60)
    assert not seen["setter done mid-call"] and seen["mode"] == "delta" and seen["margin"] is margin, seen
    assert (aug.mode, aug.bounds, aug.p) == ("regenerate", {"tone": (0, 1)}, 0.9)  # applied once the call ended
    assert aug._margin is None  # (regenerate: no colour margin)


def test_moving_the_transform_waits_for_a_running_call_too(default_bundle, monkeypatch):
    aug = BatchFaceAug(p=1.0, bundle=default_bundle, seed=0)
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    aug(x)
    seen = {}
    run_rows = batch_module.augment_rows

    def rows_with_a_move_beside(*args, **kw):
        mover = threading.Thread(target=lambda: aug.to("meta"))
        mover.start()
        mover.join(timeout=1.0)
        seen["moved mid-call"], seen["engine"] = not mover.is_alive(), aug._engine
        seen["thread"] = mover
        return run_rows(*args, **kw)

    monkeypatch.setattr(batch_module, "augment_rows", rows_with_a_move_beside)
    engine = aug._engine
    caller = threading.Thread(target=aug, args=(x,))
    caller.start()
    caller.join(timeout=60)
    seen["thread"].join(timeout=60)
    assert not seen["moved mid-call"] and seen["engine"] is engine, seen
    assert aug.device == torch.device("meta")
