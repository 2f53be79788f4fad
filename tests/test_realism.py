"""benchmarks/realism.py: the classifier two-sample test's pieces and its --quick path."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.test_benchmarks import load_script


@pytest.fixture(scope="module")
def realism():
    return load_script("realism")


@pytest.fixture(scope="module")
def c2st():
    return load_script("c2st")


def test_roc_auc_closed_form_and_deal_is_disjoint(c2st):
    assert c2st.roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)
    assert c2st.roc_auc(np.array([1.0, 1.0]), np.array([0, 1])) == 0.5  # ties count half
    with pytest.raises(ValueError, match="both classes"):
        c2st.roc_auc(np.array([0.1, 0.2]), np.array([1, 1]))
    people = np.repeat(np.arange(20), 3)
    quarters = c2st.deal(people, seed=0)
    assert sum(len(q) for q in quarters) == 60
    sets = [set(people[q].tolist()) for q in quarters]
    assert all(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1:])  # no person in two quarters
    assert [q.tolist() for q in c2st.deal(people, 1)] != [q.tolist() for q in quarters]


def test_summary_interval_contains_mean(realism):
    s = realism.summarise([0.6, 0.7, 0.8])
    assert s["mean"] == pytest.approx(0.7) and s["n"] == 3
    assert s["ci95_low"] == pytest.approx(0.7 - 4.302653 * 0.1 / 3 ** 0.5, abs=1e-4)
    assert s["ci95_low"] < s["mean"] < s["ci95_high"]
    assert realism.summarise([0.6])["ci95_low"] is None


def test_quick_detects_noise_not_real(realism, tiny_bundle_path, tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "realism.json"
    realism.main(["--quick", "--bundle", str(tiny_bundle_path), "--arms", "real", "noise", "classical", "genaug", "codes",
                  "--out", str(out)])
    r = json.loads(out.read_text())
    arms = r["results"]["synthetic"]["arms"]
    assert r["arms"][:4] == ["real", "noise", "classical", "genaug"]  # then every code and direction:
    assert {"glasses=0", "glasses=1", "smile=-1", "smile=1"} <= set(r["arms"]) and len(r["arms"]) == 4 + 2 + 3 + 2
    assert set(arms) == set(r["arms"])
    for name, a in arms.items():
        assert 0 <= a["mean"] <= 1 and len(a["runs"]) == a["n"] == (1 if "=" in name else 2)
        assert all(run["test"] == [32, 32] and run["train"] == [32, 32] for run in a["runs"])
    assert arms["noise"]["mean"] > 0.8  # the positive control: sigma-25 noise is spotted
    assert abs(arms["real"]["mean"] - 0.5) < 0.25  # real vs real: chance
    assert arms["noise"]["ci95_low"] <= arms["noise"]["mean"] <= arms["noise"]["ci95_high"]
    assert set(r["results"]["synthetic"]["paired_differences"]) == {"genaug - classical"}


def test_bad_arm_and_kwargs_are_named(realism, tiny_bundle_path, tmp_path, monkeypatch):
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ValueError, match="CODE=VALUE"):
        realism.main(["--quick", "--bundle", str(tiny_bundle_path), "--arms", "real", "hat=1", "--out", str(tmp_path / "x.json")])
    with pytest.raises(ValueError, match="JSON object"):
        realism.main(["--quick", "--genaug-kwargs", "[1]"])


def test_merge_pairs_arms_from_separate_runs(realism, tmp_path):
    def report(arms: dict[str, list[float]], seeds: int = 2) -> dict:
        cfg = {"sets": ["s"], "arms": list(arms), "seeds": seeds, "code_seeds": 1, "n": 8, "bundle": "b",
               "genaug_kwargs": {}, "detector": {"epochs": 1}}
        res = {a: {**realism.summarise(v), "runs": [{"seed": i, "auc": x, "test": [2, 2]} for i, x in enumerate(v)]}
               for a, v in arms.items()}
        return {"config": cfg, "arms": list(arms), "results": {"s": {"photos": 8, "arms": res, "paired_differences": {}}},
                "wall_s": 1.0, "cpu_s": 1.0}

    paths = []
    for i, arms in enumerate([{"real": [0.5, 0.52], "classical": [0.9, 0.8]}, {"genaug": [0.7, 0.7]}]):
        paths.append(tmp_path / f"{i}.json")
        paths[-1].write_text(json.dumps(report(arms)))
    m = realism.merge([str(p) for p in paths])
    assert m["arms"] == ["real", "classical", "genaug"] and set(m["results"]["s"]["arms"]) == set(m["arms"])
    assert m["results"]["s"]["paired_differences"]["genaug - classical"]["per_seed"] == pytest.approx([-0.2, -0.1])
    (tmp_path / "2.json").write_text(json.dumps(report({"genaug": [0.7, 0.7, 0.7]}, seeds=3)))
    with pytest.raises(ValueError, match="other settings"):
        realism.merge([str(paths[0]), str(tmp_path / "2.json")])


def test_fixed_edits_are_placed_as_the_transform_places_them(realism):
    """A ``CODE=VALUE`` arm puts a control into the photo as GenerativeFaceAug does: ``rotate_yaw`` on the
    full photo (placed by the face's own landmarks where dlib is installed), not a 64 px model-frame change
    pasted back (what the per-code numbers measured before 2026-12-05: ghosted edges)."""
    import torch

    from conftest import CELEBA_ID200, need
    from genaug.engine.edits import code_index
    from genaug.faces.framing import CELEBA_FRAMING, face_box
    from genaug.faces.identity import faces_extra_available
    from genaug.faces.pose import rotate_yaw
    from genaug.faces.landmarks import default_landmarks, refine_landmarks

    need(CELEBA_ID200)
    fs = realism.load_set("celeba_id200", 200)
    fs = realism.FaceSet(fs.name, fs.photos[:4], fs.people[:4], 108, realism.CELEBA_BOX, fs.paths[:4])
    t = realism.transform("default", {})
    x, frames = t.engine.frame(fs.photos)
    got = realism.fixed_edit(fs, t.engine, x, frames, "yaw=10", t.strength, 64).astype(int)
    photos = torch.stack([torch.from_numpy(p.copy()).permute(2, 0, 1) for p in fs.photos]).float() / 127.5 - 1
    l, top, r, b = face_box(218, 178, CELEBA_FRAMING)
    lm = (default_landmarks(b - top, r - l, 1, "model_frame") + torch.tensor([float(l), float(top)])).expand(4, 5, 2)
    lm = refine_landmarks(photos, lm) if faces_extra_available() else lm
    turned = ((rotate_yaw(photos, 10.0, lm) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    want = np.stack([fs.view(p) for p in turned]).astype(int)
    assert np.abs(got - want).max() <= 1
    out, _ = t.engine.augment_tensor(x, edits=[realism.make_edit(code_index(t.engine.spec, "yaw"), 10.0)] * 4)
    pasted = np.stack([fs.view(p) for p in t.engine.unframe(out, fs.photos, frames)]).astype(int)  # no edits given
    assert np.abs(pasted - want).mean() > 2  # the old way is another picture


def test_other_judges_spot_a_region_without_grain_and_not_real_vs_real(realism, c2st):
    """The residual and spectrum judges (benchmarks/judges.py) see what a pasted region lacks: the photo's grain.
    Synthetic photos with sigma-4 grain; 'pasted': the same photos with their centre 32x32 grain-free."""
    fs = realism.synthetic_set(128)
    rng = np.random.default_rng(0)
    clean = np.stack(fs.photos).astype(np.float64)
    grain = lambda: np.clip(clean + rng.normal(0, 4, clean.shape), 0, 255).astype(np.uint8)  # noqa: E731
    real, other, pasted = grain(), grain(), grain()
    pasted[:, 16:48, 16:48] = clean[:, 16:48, 16:48].round().astype(np.uint8)
    s = c2st.DetectorSettings(epochs=3)
    auc = lambda fake, judge: c2st.c2st(real, fake, fs.people, s, 0, judge)["auc"]  # noqa: E731
    assert auc(pasted, "residual") > 0.9 and auc(pasted, "spectrum") > 0.9
    assert abs(auc(other, "residual") - 0.5) < 0.2 and abs(auc(other, "spectrum") - 0.5) < 0.2
    from benchmarks.judges import judge, spectrum_input

    assert spectrum_input(real[:2]).shape == (2, 33)  # one value per radius 0 .. 32
    with pytest.raises(ValueError, match="unknown detector 'srm'"):
        judge("srm")
    with pytest.raises(SystemExit):  # the command line offers the registry's names only
        realism.build_parser().parse_args(["--detectors", "srm"])


def test_tables_name_the_judge_and_keep_paired_differences():
    """A report of one judge other than the CNN is printed as that judge's (it read "of a CNN"), and the judges' table
    keeps the paired differences the JSON holds."""
    from benchmarks.realism_report import format_table

    entry = lambda m: {"mean": m, "ci95_low": m - 0.01, "ci95_high": m + 0.01, "n": 3, "runs": [{"test": [10, 10]}]}
    report = {"config": {"detectors": ["spectrum"], "detector": {"widths": [8, 16], "epochs": 3}, "genaug_kwargs": {}},
              "results": {"synthetic": {"detector_px": 64, "arms": {"real": entry(0.5), "noise": entry(0.93)},
                                        "paired_differences": {"noise - real": entry(0.43)}}},
              "wall_s": 1.0, "cpu_s": 1.0}
    table = format_table(report)
    assert "spectrum" in table and "of a CNN" not in table
    assert "noise - real (paired)" in table and "+0.430" in table
    report["config"]["detectors"] = ["cnn"]
    assert "of a CNN" in format_table(report)


def test_native_reads_celeba_s_face_box_at_its_own_size(realism, tmp_path):
    """``--native``: the judge reads celeba_id200's face box at its 108 px, not resized to 64 px."""
    from conftest import CELEBA_ID200, need

    need(CELEBA_ID200)
    runs = {}
    for flag in ([], ["--native"]):
        out = tmp_path / f"native{len(flag)}.json"
        realism.main(["--quick", "--sets", "celeba_id200", "--arms", "real", "--detectors", "spectrum", "--out", str(out), *flag])
        runs[bool(flag)] = json.loads(out.read_text())
    assert runs[False]["results"]["celeba_id200"]["detector_px"] == 64
    assert runs[True]["results"]["celeba_id200"]["detector_px"] == 108 and runs[True]["config"]["native"] is True
