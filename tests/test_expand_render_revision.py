"""A resume across a change in how genaug renders records (the run key's ``render`` revision): parts started by
another revision are refused with a message naming it, not continued into a file of records made two ways; the same
code resumes, and the finished file records its revision."""
from __future__ import annotations

import hashlib
import json

import h5py
import pytest

import genaug.expand.pipeline as pipeline
from conftest import noise_pngs
from genaug.expand import ExpandError, expand_to_hdf5
from genaug.expand.hdf5 import RENDER_REVISION
from test_expand_runs import FAST, _interrupted


def _as_made_before_revisions(parts) -> None:
    """Rewrite a run folder as a genaug that recorded no render revision wrote it (its manifest and parts)."""
    manifest = json.loads((parts / "manifest.json").read_text())
    key_info = {k: manifest[k] for k in ("bundle", "seed", "settings", "source", "layout_version", "gate", "faces_extra")}
    old_key = hashlib.sha256(json.dumps(key_info, sort_keys=True).encode()).hexdigest()[:16]
    manifest.pop("render", None)
    (parts / "manifest.json").write_text(json.dumps({**manifest, "run_key": old_key}))
    for p in parts.glob("part-*.h5"):
        with h5py.File(p, "a") as f:
            f.attrs["run_key"] = old_key


def test_a_resume_across_render_revisions_is_refused_naming_it(tmp_path, tiny_bundle_path):
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    run = dict(bundle=tiny_bundle_path, **FAST)
    out = tmp_path / "o.h5"
    _interrupted(lambda: expand_to_hdf5(src, out, 1, **run))
    _as_made_before_revisions(tmp_path / "o.h5.parts")
    with pytest.raises(ExpandError, match=rf"render differ: render revision 1 -> {RENDER_REVISION}: the parts were "
                                          r"rendered by genaug .*resume it with the genaug that started it"):
        expand_to_hdf5(src, out, 1, **run)
    assert not out.exists() and len(list((tmp_path / "o.h5.parts").glob("part-*.h5"))) == 1  # nothing discarded


def test_a_later_revision_refuses_this_ones_parts_and_the_same_code_resumes(tmp_path, tiny_bundle_path, monkeypatch):
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    run = dict(bundle=tiny_bundle_path, **FAST)
    out = tmp_path / "o.h5"
    _interrupted(lambda: expand_to_hdf5(src, out, 1, **run))
    with monkeypatch.context() as m:
        m.setattr(pipeline, "RENDER_REVISION", RENDER_REVISION + 1)
        with pytest.raises(ExpandError, match=rf"render revision {RENDER_REVISION} -> {RENDER_REVISION + 1}"):
            expand_to_hdf5(src, out, 1, **run)
    res = expand_to_hdf5(src, out, 1, **run)  # the code that started it resumes
    assert res.blocks_done == 1 and res.n_records == 4
    with h5py.File(out) as f:
        assert f.attrs["render_revision"] == RENDER_REVISION


def test_a_finished_file_of_another_revision_is_not_taken_for_this_runs(tmp_path, tiny_bundle_path):
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=2)
    run = dict(bundle=tiny_bundle_path, **FAST)
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 1, **run)
    assert expand_to_hdf5(src, out, 1, **run).blocks_done == 0  # this revision's: complete, nothing to do
    with h5py.File(out, "a") as f:  # as a genaug before revisions wrote it (its run key without one)
        del f.attrs["render_revision"]
        f.attrs["run_key"] = "0" * 16
    with pytest.raises(ExpandError, match=rf"rendered by genaug .* \(render revision 1\).*revision {RENDER_REVISION}.*--overwrite"):
        expand_to_hdf5(src, out, 1, **run)
    assert expand_to_hdf5(src, out, 1, overwrite=True, **run).blocks_done == 1


@pytest.mark.parametrize("manifest", ["{not json", "[1, 2]"])
def test_parts_whose_manifest_cannot_be_read_are_not_said_to_be_another_revisions(tmp_path, tiny_bundle_path, manifest):
    # an unreadable manifest read as every setting differing: "render revision 1 -> 2: the parts were rendered by
    # genaug ?, ...; resume it with the genaug that started it" (a JSON list: AttributeError)
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    run = dict(bundle=tiny_bundle_path, **FAST)
    out = tmp_path / "o.h5"
    _interrupted(lambda: expand_to_hdf5(src, out, 1, **run))
    (tmp_path / "o.h5.parts" / "manifest.json").write_text(manifest)
    with pytest.raises(ExpandError, match=r"manifest.json cannot be read, so which run made them is unknown; pass "
                                          r"--overwrite to discard them$"):
        expand_to_hdf5(src, out, 1, **run)
    assert len(list((tmp_path / "o.h5.parts").glob("part-*.h5"))) == 1  # nothing discarded
    assert expand_to_hdf5(src, out, 1, overwrite=True, **run).n_records == 4


def test_another_revisions_file_or_parts_of_other_settings_too_are_not_said_to_differ_only_in_revision(tmp_path,
                                                                                                        tiny_bundle_path):
    # before: "... (render revision 2), and this genaug (revision 3) renders the same settings otherwise" though the
    # seed differed too, which the message hid (the finished file and the parts alike)
    src = noise_pngs(tmp_path / "src", (40, 36, 3), n=4)
    run = dict(bundle=tiny_bundle_path, **FAST)
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 1, seed=3, **run)
    with h5py.File(out, "a") as f:  # as the previous revision wrote it
        f.attrs["render_revision"] = RENDER_REVISION - 1
        f.attrs["run_key"] = "0" * 16
    with pytest.raises(ExpandError) as caught:
        expand_to_hdf5(src, out, 1, seed=4, **run)
    said = str(caught.value)
    assert "seed: 3 -> 4" in said and f"render revision {RENDER_REVISION - 1} -> {RENDER_REVISION}" in said, said
    assert "same settings otherwise" not in said, said
    _interrupted(lambda: expand_to_hdf5(src, tmp_path / "p.h5", 1, seed=3, **run))
    _as_made_before_revisions(tmp_path / "p.h5.parts")
    with pytest.raises(ExpandError) as caught:
        expand_to_hdf5(src, tmp_path / "p.h5", 1, seed=4, **run)
    said = str(caught.value)
    assert "seed: 3 -> 4" in said and f"render revision 1 -> {RENDER_REVISION}" in said, said
    assert "same settings otherwise" not in said and "and its settings" in said, said
