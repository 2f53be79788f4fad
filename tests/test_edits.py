"""Random edits: one drawing function, replayable, distinct variants per source, default codes."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from genaug import distenv
from genaug.faces.controls import CONTROL_NAMES
from genaug.models.latent import LatentSpec
from genaug.engine.edits import (Edit, all_code_names, apply_edits, default_codes, derive_seed, draw_edits, random_edits, resolve_edits, variant_edits)

SPEC = LatentSpec.parse(8, "glasses:2:Eyeglasses,3", "smile")


def test_draws_replay_from_the_same_generator_and_respect_bounds():
    a = draw_edits(SPEC, 50, torch.Generator().manual_seed(1), codes=["smile", "c1"], bounds={"smile": (0.2, 0.4)})
    b = random_edits(SPEC, 50, torch.Generator().manual_seed(1), codes=["smile", "c1"], bounds={"smile": (0.2, 0.4)})
    assert a.edits() == b and a.code.shape == a.value.shape == (50,)
    assert {e.code for e in b} == {1, 2}
    assert all(0.2 <= e.value <= 0.4 for e in b if e.code == 2)
    assert all(e.value in (0.0, 1.0, 2.0) for e in b if e.code == 1)


def test_variants_of_one_source_are_distinct_and_a_function_of_seed_and_index():
    for index in range(20):
        edits = variant_edits(SPEC, 0, index, 8)
        assert len(set(edits)) == 8, edits
        assert edits == variant_edits(SPEC, 0, index, 8)
    assert variant_edits(SPEC, 0, 1, 8) != variant_edits(SPEC, 1, 1, 8)
    assert variant_edits(SPEC, 0, 1, 8) != variant_edits(SPEC, 0, 2, 8)
    assert derive_seed(0, 5) == derive_seed(0, 5) != derive_seed(0, 6)


def test_only_categorical_codes_use_every_edit_once_then_repeat_with_a_warning(monkeypatch):
    monkeypatch.setattr(distenv, "_said", set())  # (said once per process: anew per test)
    monkeypatch.setenv(distenv.SAID_ENV, "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        three = variant_edits(SPEC, 3, 0, 3, codes=["glasses", "c1"])  # 1 + 2 moves to another category: no warning
    assert len(set(three)) == 3 and all(e.relative for e in three)
    assert sorted((e.code, e.value) for e in three) == [(0, 1.0), (1, 1.0), (1, 2.0)]
    with pytest.warns(UserWarning, match="exceed the 3 distinct edits"):
        five = variant_edits(SPEC, 3, 0, 5, codes=["glasses", "c1"])
    assert len(set(five[:3])) == 3 and set(five[3:]) <= set(five[:3])


def test_random_categorical_edits_always_change_the_face():
    """A random categorical edit is relative: it never sets the category a face already has."""
    lat = torch.zeros(6, SPEC.dim)
    sl = SPEC.code_slice("glasses")
    lat[:3, sl.start] = 1  # faces 0-2: category 0
    lat[3:, sl.start + 1] = 1  # faces 3-5: category 1
    edits = resolve_edits(lat, SPEC, [Edit(SPEC.code_index("glasses"), 1.0, relative=True)] * 6)
    assert [e.value for e in edits] == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0] and not any(e.relative for e in edits)
    draw = draw_edits(SPEC, 200, torch.Generator().manual_seed(0), codes=["c1"])
    assert set(draw.value.tolist()) == {1.0, 2.0} and bool(draw.relative.all())  # offsets, never 0
    edited = apply_edits(lat, SPEC, [Edit(SPEC.code_index("glasses"), 1.0, relative=True)] * 6)
    assert torch.equal(edited[:, sl].argmax(1), torch.tensor([1, 1, 1, 0, 0, 0]))


def test_codes_out_of_the_random_set_move_only_when_named():
    from genaug.bundle import load_bundle
    from genaug.models.latent import CategoricalCode, LatentSpec

    spec = LatentSpec(4, [CategoricalCode("a", 2), CategoricalCode("b", 2, random=False), CategoricalCode("c", 2, identity_safe=False)])
    assert spec.default_codes == [0]
    d = spec.to_dict()
    assert "random" not in d["categorical"][0] and d["categorical"][1]["random"] is False  # written only when False
    assert LatentSpec.from_dict(d) == spec
    assert {e.code for e in random_edits(spec, 20, torch.Generator().manual_seed(0), codes=["b"])} == {1}  # named: moved
    shipped = load_bundle("default").spec  # drawn glasses, bangs, an opened mouth, a smile look generated (C2ST 1.00 / 0.97 / 0.96 / 0.85)
    assert [all_code_names(shipped)[i] for i in default_codes(shipped)] == ["tone", "shade", "warmth", "light", "yaw"]
    assert [shipped.codes[i].name for i in default_codes(shipped, controls=False)] == ["tone", "shade", "warmth"]


def test_random_controls_join_the_random_set_and_round_trip():
    from genaug.models.latent import CategoricalCode, LatentSpec

    spec = LatentSpec(4, [CategoricalCode("a", 2)], random_controls=["light"])
    assert default_codes(spec) == [0, 1 + CONTROL_NAMES.index("light")]
    assert default_codes(spec, controls=False) == [0]
    assert LatentSpec.from_dict(spec.to_dict()) == spec and "random_controls" not in LatentSpec(4).to_dict()
    drawn = {e.code for e in random_edits(spec, 64, torch.Generator().manual_seed(0))}
    assert drawn == {0, 1 + CONTROL_NAMES.index("light")}
    for bad in (["sunlight"], ["light", "light"], ["a"]):
        with pytest.raises(ValueError, match="random_controls"):
            LatentSpec(4, [CategoricalCode("a", 2)], random_controls=bad)


def test_default_codes_are_the_identity_safe_ones():
    assert default_codes(SPEC) == getattr(SPEC, "default_codes", [0, 1, 2])

    class SafeSpec:
        codes, default_codes = SPEC.codes, [2]

        def __getattr__(self, name):
            return getattr(SPEC, name)

    assert {e.code for e in random_edits(SafeSpec(), 30, torch.Generator().manual_seed(0))} == {2}
    assert {e.code for e in variant_edits(SafeSpec(), 0, 0, 6)} == {2}


def test_apply_edits_is_batched_whatever_the_number_of_rows():
    """The per-row work happens on host lists; the tensor operations applied to the latents (one
    kernel launch each on a GPU) do not grow with the batch, and the result is the per-row edit."""
    from torch.overrides import TorchFunctionMode

    class Count(TorchFunctionMode):
        n = 0

        def __torch_function__(self, func, types, args=(), kwargs=None):
            Count.n += 1
            return func(*args, **(kwargs or {}))

    spec = LatentSpec.parse(6, "glasses:2,3", "smile")
    directions = {0: torch.randn(2, 6), 1: torch.randn(3, 6)}
    counts = []
    for n in (4, 64):
        g = torch.Generator().manual_seed(n)
        latent, edits = spec.sample(n, g), random_edits(spec, n, g)
        strength, shift = 2 * torch.rand(n, generator=g), torch.rand(n, generator=g)
        Count.n = 0
        with Count():
            out = apply_edits(latent, spec, edits, strength, directions, shift)
        counts.append(Count.n)
        for row in range(n):  # each row is its edit applied alone
            one = apply_edits(latent[row : row + 1], spec, edits[row : row + 1], strength[row], directions, shift[row])
            torch.testing.assert_close(out[row : row + 1], one)
    assert counts[0] == counts[1], counts
    latent = spec.sample(3, torch.Generator().manual_seed(0))
    latent[:, 6:8] = torch.tensor([1.0, 0.0])  # glasses category 0
    out = apply_edits(latent, spec, [Edit(0, 1)] * 3, 1.0, directions, torch.tensor([0.0, 1.0, 2.0]))
    for row, s in enumerate((0.0, 1.0, 2.0)):
        torch.testing.assert_close(out[row, :6], latent[row, :6] + s * (directions[0][1] - directions[0][0]))


def test_a_bare_string_of_codes_is_refused_by_name_not_read_letter_by_letter(trained_bundle_path):
    import genaug

    kw = dict(codes="smile", bundle=str(trained_bundle_path))  # was: "unknown code 's'"
    for build in (lambda: genaug.Engine(device="cpu", **kw), lambda: genaug.BatchFaceAug(**kw),
                  lambda: genaug.GenerativeAugDataset([np.zeros((32, 32, 3), np.uint8)], lazy=True, **kw)):
        with pytest.raises(ValueError, match=r"got the string 'smile' \(write \['smile'\]\)"):
            build()
    # a comma list as --codes takes it: the hint named ['smile,tone'], itself an unknown code
    with pytest.raises(ValueError, match=r"\(write \['smile', 'tone'\]\)"):
        genaug.BatchFaceAug(codes="smile, tone", bundle=str(trained_bundle_path))


def test_batch_transform_draws_the_random_sets_latent_codes_only():
    from genaug.batch import BatchFaceAug
    from genaug.bundle import load_bundle

    spec = load_bundle("default").spec
    drawn = set(BatchFaceAug(p=1.0, seed=0).draw(256).code.tolist())  # the default's set holds the light control
    assert drawn == set(default_codes(spec, controls=False)) and len(default_codes(spec)) > len(drawn)


def test_edits_repeat_is_said_once_per_run_not_per_dataloader_worker(monkeypatch):
    # every DataLoader worker said it again (N workers: N warnings per epoch); now once, as the faces-extra notice
    monkeypatch.setattr(distenv, "_said", set())
    monkeypatch.setenv(distenv.SAID_ENV, "")

    def said(*args) -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            variant_edits(SPEC, *args, codes=["glasses", "c1"])
        return sum("distinct edits" in str(w.message) for w in caught)

    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("W", (), {"id": 1})())
    assert said(3, 0, 5) == 0  # worker 1 never says it
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("W", (), {"id": 0})())
    assert said(3, 0, 5) == 1 and said(3, 1, 5) == 0  # worker 0 once, not for every source
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: None)
    monkeypatch.setattr(distenv, "_said", set())
    assert said(3, 0, 5) == 1 and said(3, 2, 5) == 0 and said(3, 0, 7) == 1  # another variants count: its own notice


def test_edits_repeat_is_not_said_again_by_a_spawned_worker_after_the_main_process(monkeypatch):
    # the notice's key names the codes as a list ("['glasses', 'c1']"): its comma split it in the mark the main
    # process leaves its workers, so a spawned worker 0 (which starts with nothing said) said it again
    import multiprocessing

    monkeypatch.setattr(distenv, "_said", set())
    monkeypatch.setenv(distenv.SAID_ENV, "")

    def said() -> int:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            variant_edits(SPEC, 3, 0, 5, codes=["glasses", "c1"])
        return sum("distinct edits" in str(w.message) for w in caught)

    assert said() == 1  # the main process
    monkeypatch.setattr(distenv, "_said", set())  # a spawned worker 0 of it
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: type("W", (), {"id": 0})())
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: type("P", (), {"pid": os.getpid()})())
    assert said() == 0
