"""Without the ``faces`` extra (dlib), a named edit that draws on the face (glasses, mouth, ...) is drawn in the framing
rule's box, which misplaces it on an Olivetti frame or a tight crop, and a rendered control (yaw, light, ...) is placed
by that box (on a 64 px UTKFace crop or an Olivetti face the eyes land on the nose, the light's lit half ~10 px low):
said once per process and not again by DataLoader workers (worker 0 alone where the main process did not), naming the
extra, by every front end and by the one warning
(:func:`genaug.engine.reframe.warn_rule_frames`); never for the colour codes (they never need the detector), nor in
CelebA's own 178x218 frame, where the box is right."""
from __future__ import annotations

import multiprocessing
import os
import warnings

import albumentations as A
import numpy as np
import pytest
import torch

from genaug import GenerativeAugDataset, GenerativeFaceAug, distenv
from genaug.engine.core import Engine
from genaug.engine.edits import Edit
from genaug.faces import identity


@pytest.fixture(autouse=True)
def without_extra(monkeypatch):
    monkeypatch.setattr(identity, "faces_extra_available", lambda: False)
    monkeypatch.setattr(distenv, "_said", set())  # (once per process: anew per test)
    monkeypatch.setenv(distenv.SAID_ENV, "")


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _said(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if "faces extra" in str(w.message)]


def test_a_named_edit_says_once_that_it_is_drawn_in_the_rules_box():
    e = Engine(device="cpu", codes=["glasses", "mouth"], refine_steps=0)
    said = _said(lambda: [e.augment(_photo(h, w, s)) for s, (h, w) in enumerate([(64, 64), (112, 92), (64, 64)])])
    assert len(said) == 1, said
    assert 'pip install "genaug[faces]"' in said[0] and ("(glasses)" in said[0] or "(mouth)" in said[0]) and "rule's box" in said[0]
    ds = GenerativeAugDataset([_photo(112, 92, s) for s in range(3)], variants=2, engine=e, progress=False)
    assert _said(lambda: [ds[i] for i in range(len(ds))]) == []  # (once per process)


def test_the_dataset_says_it_once_for_its_sources():
    e = Engine(device="cpu", codes=["bangs"], refine_steps=0)
    def run():
        ds = GenerativeAugDataset([_photo(64, 64, s) for s in range(3)], variants=2, engine=e, progress=False)
        return [ds[i] for i in range(len(ds))]

    said = _said(run)
    assert len(said) == 1 and "face (bangs)" in said[0], said


def test_celebas_own_frame_says_nothing():
    e = Engine(device="cpu", codes=["glasses"], refine_steps=0)
    assert _said(lambda: e.augment(_photo(218, 178))) == []


@pytest.mark.parametrize("code", ["yaw", "light"])
def test_a_control_placed_by_the_rule_says_so_once(code):
    e = Engine(device="cpu", codes=[code], refine_steps=0)
    edit = [Edit(e.code_names.index(code), 20.0)]
    said = _said(lambda: [e.augment(_photo(h, w, s), edits=edit) for s, (h, w) in enumerate([(64, 64), (112, 92), (64, 64)])])
    assert len(said) == 1, said
    assert f"({code})" in said[0] and 'pip install "genaug[faces]"' in said[0] and "turn or light" in said[0]
    assert _said(lambda: e.augment(_photo(64, 64), edits=edit)) == []  # (once per process)


def test_the_default_codes_and_the_dataset_say_it_once():
    e = Engine(device="cpu", refine_steps=0)  # codes=None: the random set draws yaw and light
    def run():
        ds = GenerativeAugDataset([_photo(64, 64, s) for s in range(4)], variants=5, engine=e, progress=False)
        return [ds[i] for i in range(len(ds))]

    said = _said(run)
    assert len(said) == 1 and ("(yaw)" in said[0] or "(light)" in said[0]), said


def test_celebas_box_in_its_own_frame_says_nothing_other_boxes_do():
    e = Engine(device="cpu", codes=["yaw"], refine_steps=0)
    edit = [Edit(e.code_names.index("yaw"), 20.0)]
    assert _said(lambda: e.augment(_photo(218, 178), edits=edit)) == []
    assert len(_said(lambda: e.augment(_photo(218, 178), edits=edit, framing="full"))) == 1  # the centre square: a guess


def test_the_colour_codes_say_nothing():
    e = Engine(device="cpu", codes=["tone", "shade", "warmth"], refine_steps=0)
    assert _said(lambda: [e.augment(_photo(64, 64, s)) for s in range(4)]) == []


class _Photos(torch.utils.data.Dataset):
    def __init__(self, aug):
        self.aug = aug

    def __len__(self):
        return 4

    def __getitem__(self, i):
        return torch.as_tensor(self.aug(image=_photo(112, 92, i))["image"])


def _no_extra_in_worker(_):
    identity.faces_extra_available = lambda: False  # (the fixture's patch does not reach a spawned process)
    torch.set_num_threads(1)


def test_spawned_dataloader_workers_say_it_once_and_not_after_the_main_process(capfd):
    # each spawned worker said it again, every epoch: N workers, N warnings per epoch
    aug = A.Compose([GenerativeFaceAug(codes=["glasses"], p=1.0, refine_steps=0)], seed=0)
    def epoch():
        loader = torch.utils.data.DataLoader(_Photos(aug), batch_size=1, num_workers=2,
                                             multiprocessing_context="spawn", worker_init_fn=_no_extra_in_worker)
        assert len(list(loader)) == 4
        return capfd.readouterr().err.count("faces extra (dlib) is not installed")

    assert epoch() == 1  # said by worker 0 (only the workers saw a photo)
    assert len(_said(lambda: aug(image=_photo(112, 92)))) == 1  # said in the main process ...
    assert epoch() == 0  # ... not again by the workers it starts


def test_a_worker_says_it_only_when_first_and_the_main_process_has_not(monkeypatch):
    e = Engine(device="cpu", codes=["glasses"], refine_steps=0)
    for worker in (1, 0):
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("W", (), {"id": worker})())
        assert len(_said(lambda: [e.augment(_photo(112, 92, s)) for s in range(2)])) == (worker == 0)
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: type("P", (), {"pid": 4321})())
    monkeypatch.setattr(distenv, "_said", set())  # a fresh worker 0, started after the main process (4321) said it
    monkeypatch.setenv(distenv.SAID_ENV, "4321:rule_frames")
    assert _said(lambda: e.augment(_photo(112, 92))) == []


def test_a_program_the_main_process_runs_says_it_in_its_own_workers(monkeypatch):
    # the main process's mark reached every program it ran (a training script started from a notebook that had
    # warned): their DataLoader workers took it for their own main process's and never said it
    e = Engine(device="cpu", codes=["glasses"], refine_steps=0)
    assert len(_said(lambda: e.augment(_photo(112, 92)))) == 1  # said in this (main) process, which marks it
    for parent, says in ((5555, 1), (os.getpid(), 0)):  # a worker of a program this process ran, then one of its own
        monkeypatch.setattr(distenv, "_said", set())
        monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("W", (), {"id": 0})())
        monkeypatch.setattr(multiprocessing, "parent_process", lambda: type("P", (), {"pid": parent})())
        assert len(_said(lambda: e.augment(_photo(112, 92)))) == says, parent
