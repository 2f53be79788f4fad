"""The benchmark scripts' --quick paths on a tiny synthetic ImageFolder with a tiny bundle."""
from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genaug.faces.features import EvaluatorConfig, FaceNet, save_evaluator

ROOT = Path(__file__).resolve().parents[1]
# few_shot.py's recogniser at two narrow stages: the protocol (arms, seeds, pairing, JSON) is what these tests check, and
# its default widths 16-128 made each --quick run minutes of CPU (10 trainings of 20 steps)
SMALL_NET = ["--widths", "4", "8"]


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up while the script loads
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture()
def faces_folder(tmp_path, monkeypatch) -> Path:
    """5 'people' x 6 images, 64x64: a per-person colour pattern plus noise."""
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    root = tmp_path / "people"
    yy, xx = np.mgrid[0:64, 0:64]
    for p in range(5):
        base = np.stack([(np.sin(xx / (4 + p)) + 1) * 100, (np.cos(yy / (3 + p)) + 1) * 100, np.full((64, 64), 40 * p)], -1)
        for i in range(6):
            img = np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)
            (root / f"p{p}").mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(root / f"p{p}" / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def evaluator_paths(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("evaluators")
    torch.manual_seed(0)
    ident = save_evaluator(FaceNet(EvaluatorConfig("identity", 16, widths=[4, 8], embed_dim=8)), d / "identity")
    attrs = save_evaluator(FaceNet(EvaluatorConfig("attributes", 16, widths=[4, 8], outputs=["Eyeglasses", "Smiling"])), d / "attrs")
    return ident, attrs


def test_help_documents_commands(capsys):
    for name in ("few_shot", "open_set", "attribute_shift", "augmentation_quality"):
        with pytest.raises(SystemExit) as e:
            load_script(name).main(["--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "--bundle" in out and "--out" in out and ("--quick" in out or name == "augmentation_quality")


def test_paired_difference_closed_form():
    from benchmarks.stats import format_difference, paired_difference, t_quantile

    # differences 1, 2, 3: mean 2, std 1, 95 % CI 2 -+ t(0.975, 2) / sqrt(3) with t = 4.302653
    d = paired_difference([0.11, 0.22, 0.33], [0.10, 0.20, 0.30])
    assert d["mean"] == pytest.approx(0.02) and d["std"] == pytest.approx(0.01)
    half = 4.302653 * 0.01 / 3 ** 0.5
    assert (d["ci95_low"], d["ci95_high"]) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert d["per_seed"] == pytest.approx([0.01, 0.02, 0.03]) and d["n"] == 3
    assert t_quantile(1) == pytest.approx(12.7062, abs=1e-3) and t_quantile(30) == pytest.approx(2.0423, abs=1e-3)
    assert format_difference(d) == "+2.0 ± 1.0 [-0.5, +4.5]"
    one = paired_difference([0.5], [0.25])
    assert one["mean"] == 0.25 and one["ci95_low"] is None and format_difference(one) == "+25.0 (1 seed)"
    with pytest.raises(ValueError, match="equal"):
        paired_difference([1.0, 2.0], [1.0])


def test_t_quantile_without_scipy(monkeypatch):
    from benchmarks import stats

    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # import fails: the table answers
    assert stats.t_quantile(2) == pytest.approx(4.303) and stats.t_quantile(40) == pytest.approx(2.021, abs=0.01)
    with pytest.raises(ValueError, match="at least 2"):
        stats.t_quantile(0)


@pytest.fixture()
def attributes_folder(faces_folder) -> Path:
    """faces_folder plus an attributes.csv: photo 0 and 1 of each person wear 'Eyeglasses'."""
    rows = ["path,Eyeglasses,Smiling"]
    for p in sorted(faces_folder.rglob("*.png")):
        rel = p.relative_to(faces_folder).as_posix()
        rows.append(f"{rel},{1 if p.stem in ('00', '01') else -1},-1")
    (faces_folder / "attributes.csv").write_text("\n".join(rows) + "\n")
    return faces_folder


def test_few_shot_quick(faces_folder, tiny_bundle_path, tmp_path):
    fs = load_script("few_shot")
    out = tmp_path / "fs.json"
    fs.main(["--data", str(faces_folder), "--quick", "--bundle", str(tiny_bundle_path), "--arms", *fs.ARMS, "--out", str(out),
             *SMALL_NET])
    r = json.loads(out.read_text())
    assert list(r["results"]) == ["HOG 1-NN", *fs.ARMS]
    assert r["data"]["identities"] == 5 and r["data"]["eval_images"] == 10 and r["eval_split"] == "test"
    for arm, per_k in r["results"].items():
        assert len(per_k["1"]["runs"]) == 2 and 0 <= per_k["1"]["mean"] <= 1
    assert r["results"]["HOG 1-NN"]["1"]["mean"] > 0.2  # 5 distinct colour patterns: HOG finds some
    assert set(r["paired_differences"]) == {"classical+genaug - classical", "classical+genaug-pair - classical",
                                            "classical - none", "genaug - none"}
    d = r["paired_differences"]["classical+genaug - classical"]["1"]
    runs = r["results"]
    assert d["per_seed"] == pytest.approx([a["top1"] - b["top1"] for a, b in zip(runs["classical+genaug"]["1"]["runs"],
                                                                                runs["classical"]["1"]["runs"])])
    assert r["config"]["train"]["steps"] == 20 and r["genaug_prep_s"] > 0


def test_recogniser_options_ema_and_mirror_invariant_embedding(faces_folder):
    from benchmarks.faces import load_people
    from benchmarks.recogniser import Augmenter, TrainSettings, embed, train

    data = load_people(faces_folder)
    s = TrainSettings(steps=6, batch_size=4, widths=[4, 8], embed_dim=8, ema=0.5, label_smoothing=0.1, flip_test=True)
    net, head, _ = train(data.images, data.labels, s, Augmenter("none", 0), 0, torch.device("cpu"))
    x = data.images[:3]
    e, e_mirror = embed(net, x, torch.device("cpu")), embed(net, x.flip(-1), torch.device("cpu"))
    assert torch.allclose(e, e_mirror, atol=1e-5) and torch.allclose(e.norm(dim=1), torch.ones(3), atol=1e-5)
    net.flip_test = False
    assert not torch.allclose(embed(net, x, torch.device("cpu")), e_mirror, atol=1e-5)
    from dataclasses import replace

    plain, _, _ = train(data.images, data.labels, replace(s, ema=0.0), Augmenter("none", 0), 0, torch.device("cpu"))
    averaged = dict(net.named_parameters())  # the EMA differs from the last weights of the same run
    assert any(not torch.allclose(p, averaged[n]) for n, p in plain.named_parameters())


def test_few_shot_splits_and_arms(faces_folder):
    from benchmarks.faces import load_people, make_splits, pick_shots
    from benchmarks.recogniser import Augmenter

    data = load_people(faces_folder)
    splits = make_splits(data)
    assert not set(splits["test"].tolist()) & set(splits["train"].tolist())
    a = pick_shots(data.labels, splits["train"], 2, seed=0)
    assert torch.equal(a, pick_shots(data.labels, splits["train"], 2, seed=0))
    assert torch.bincount(data.labels[a]).tolist() == [2] * 5
    x, rows = data.images[:4], torch.arange(4)
    y = Augmenter("classical", 0)(x, rows)
    assert y.shape == x.shape and y.dtype == torch.uint8 and torch.equal(y, Augmenter("classical", 0)(x, rows))
    assert torch.equal(Augmenter("none", 0)(x, rows), x)
    variants = torch.zeros(4, 3, *x.shape[1:], dtype=torch.uint8)  # every variant black
    shown = Augmenter("genaug", 0, variants, p_genaug=1.0)(x, rows)
    assert int(shown.max()) == 0
    with pytest.raises(ValueError, match="needs genaug variants"):
        Augmenter("classical+genaug", 0)


def test_paired_view_consistency_and_batches(faces_folder):
    from benchmarks.faces import load_people
    from benchmarks.recogniser import Augmenter, TrainSettings, consistency, train

    e = torch.nn.functional.normalize(torch.randn(6, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    assert float(consistency(e, e.clone())) == pytest.approx(0.0, abs=1e-6)
    other = torch.nn.functional.normalize(e + 0.3 * torch.randn(6, 8, generator=torch.Generator().manual_seed(1)), dim=1)
    assert float(consistency(other, e)) > 1e-3 and float(consistency(-e, e)) == pytest.approx(2.0)
    data = load_people(faces_folder)
    x, rows = data.images[:4], torch.arange(4)
    variants = torch.zeros(4, 2, *x.shape[1:], dtype=torch.uint8)  # every variant black
    aug = Augmenter("classical+genaug-pair", 0, variants)
    shown = aug(x, rows)  # the batch (classically augmented), then one variant of each sample
    assert aug.paired and shown.shape == (8, *x.shape[1:]) and int(shown[4:].max()) == 0 and int(shown[:4].max()) > 0
    s = TrainSettings(steps=3, batch_size=4, widths=[4, 8], embed_dim=8)
    v = torch.stack([data.images, data.images.flip(-1)], 1)
    net, _, _ = train(data.images, data.labels, s, Augmenter("classical+genaug-pair", 0, v), 0, torch.device("cpu"))
    plain, _, _ = train(data.images, data.labels, s, Augmenter("classical", 0), 0, torch.device("cpu"))
    assert any(not torch.allclose(p, q) for p, q in zip(net.parameters(), plain.parameters()))
    with pytest.raises(ValueError, match="pair_weight"):
        TrainSettings(pair_weight=-1.0)


def test_open_set_quick_and_pairs_file(faces_folder, tiny_bundle_path, tmp_path, monkeypatch):
    os_ = load_script("open_set")
    from benchmarks.recogniser import TrainSettings

    monkeypatch.setattr(os_, "TrainSettings", functools.partial(TrainSettings, widths=[4, 8], embed_dim=8))  # as SMALL_NET
    lfw = tmp_path / "lfw"  # LFW layout: name/name_000i.jpg and pairs.txt
    for p in sorted(faces_folder.glob("p*")):
        (lfw / p.name).mkdir(parents=True)
        for i, f in enumerate(sorted(p.glob("*.png"))[:3], 1):
            Image.open(f).save(lfw / p.name / f"{p.name}_{i:04d}.jpg")
    (lfw / "pairs.txt").write_text("1\t4\np0 1 2\np1\t1\t3\np0 1 p1 2\np2 3 p3 1\n")
    out = tmp_path / "os.json"
    os_.main(["--quick", "--train-data", str(faces_folder), "--verify-data", str(faces_folder), "--verify-split", "all",
              "--pairs", str(lfw / "pairs.txt"), "--bundle", str(tiny_bundle_path), "--out", str(out),
              "--arms", "none", "classical", "classical+genaug", "classical+genaug-pair", "--pair-weight", "0.5"])
    r = json.loads(out.read_text())
    assert r["data"]["train_identities"] == 5 and r["data"]["pairs.txt_pairs"] == 4
    assert set(r["results"]) == {"none", "classical", "classical+genaug", "classical+genaug-pair"}
    assert r["config"]["train"]["pair_weight"] == 0.5 and r["config"]["train"]["widths"] == [4, 8]
    assert r["config"]["codes"] == ["yaw", "light"] and r["config"]["quality_threshold"] == "auto"  # as few_shot.py
    for per in r["results"].values():
        assert set(per) == {"people", "pairs.txt"}
        for m in ("auc", "tar@far=1e-3", "tar@far=1e-2"):
            assert 0 <= per["people"][m]["mean"] <= 1 and per["people"][m]["n"] == 2
    for d in ("classical+genaug - classical", "classical+genaug-pair - classical"):
        assert set(r["paired_differences"][d]["pairs.txt"]) == {"auc", "tar@far=1e-3", "tar@far=1e-2"}


def test_read_pairs_rejects_bad_lines(tmp_path):
    os_ = load_script("open_set")
    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "a" / "a_0001.jpg")
    (tmp_path / "bad.txt").write_text("a 1\n")
    with pytest.raises(ValueError, match="expected 'name i j'"):
        os_.read_pairs(tmp_path / "bad.txt", tmp_path)
    (tmp_path / "missing.txt").write_text("a 1 2\n")
    with pytest.raises(ValueError, match="a_0002.jpg not found"):
        os_.read_pairs(tmp_path / "missing.txt", tmp_path)


def test_attribute_shift_quick(attributes_folder, tiny_bundle_path, tmp_path, tiny_spec):
    sh = load_script("attribute_shift")
    out = tmp_path / "sh.json"
    sh.main(["--quick", "--data", str(attributes_folder), "--bundle", str(tiny_bundle_path), "--out", str(out),
             "--attributes", "Eyeglasses", "Smiling", "Young", "--max-train", "3",
             "--arms", "none", "classical", "classical+genaug", "classical+genaug-pair"])
    r = json.loads(out.read_text())
    assert r["judge"]
    eg = r["attributes"]["Eyeglasses"]
    assert eg["people"] == 5 and eg["test_photos"] == 10 and eg["code"] == "glasses"  # found by its bound attribute
    assert set(eg["results"]) == {"none", "classical", "classical+genaug", "classical+genaug-pair", "enrol", "enrol+genaug"}
    assert all(len(v["runs"]) == 2 for v in eg["results"].values())
    assert set(eg["paired_differences"]) == {"classical+genaug - classical", "classical+genaug-pair - classical",
                                             "enrol+genaug - enrol"}
    # nobody smiles in this folder; Young is not a column: both say why they were skipped
    assert "fewer than 2 people" in r["attributes"]["Smiling"]["skipped"]
    assert "not a column" in r["attributes"]["Young"]["skipped"]


def test_attribute_shift_without_bound_code(attributes_folder, tmp_path, tiny_spec):
    from conftest import make_tiny_bundle

    from genaug.bundle import save_bundle
    from genaug.models.latent import LatentSpec

    unbound = tmp_path / "unbound"
    save_bundle(make_tiny_bundle(LatentSpec.parse(8, "3", "smile")), unbound)
    r = load_script("attribute_shift").main(["--quick", "--data", str(attributes_folder), "--bundle", str(unbound),
                                             "--attributes", "Eyeglasses", "--out", str(tmp_path / "u.json")])
    eg = r["attributes"]["Eyeglasses"]
    assert eg["code"] is None and "no code bound to Eyeglasses" in eg["genaug_skipped"]
    assert set(eg["results"]) == {"none", "classical", "enrol"} and eg["paired_differences"] == {}


def test_attribute_pairs_counts_pairs_across_and_without(attributes_folder, faces_folder, tmp_path):
    ap = load_script("attribute_pairs")
    r = ap.main(["--quick", "--data", str(attributes_folder), "--attributes", "Eyeglasses", "Smiling", "Young",
                 "--out", str(tmp_path / "ap.json")])
    eg = r["attributes"]["Eyeglasses"]  # per person: photos 00 and 01 wear glasses, 02-05 do not
    assert eg["across"]["pairs"] == 5 * 2 * 4 and eg["without"]["pairs"] == 5 * 6
    assert r["attributes"]["all"]["pairs"] == 5 * 15 and 0 <= eg["across"]["same_person_rate"] <= 1
    assert r["attributes"]["Smiling"]["across"]["pairs"] == 0 and r["attributes"]["Smiling"]["across"]["same_person_rate"] is None
    assert "not a column" in r["attributes"]["Young"]["skipped"]
    assert json.loads((tmp_path / "ap.json").read_text())["attributes"]["Eyeglasses"] == eg
    (attributes_folder / "attributes.csv").unlink()
    assert "attributes.csv" in ap.main(["--quick", "--data", str(faces_folder), "--out", str(tmp_path / "s.json")])["skipped"]


@pytest.mark.parametrize("protocol", ["few_shot", "open_set", "attribute_shift"])
def test_missing_inputs_skip_with_reason(protocol, faces_folder, tiny_bundle_path, tmp_path):
    out = tmp_path / "skip.json"
    data_flag = "--train-data" if protocol == "open_set" else "--data"
    folder = faces_folder if protocol == "attribute_shift" else tmp_path / "nowhere"  # no attributes.csv / no folder
    r = load_script(protocol).main(["--quick", data_flag, str(folder), "--bundle", str(tiny_bundle_path), "--out", str(out)])
    reason = json.loads(out.read_text())["skipped"]
    assert r["skipped"] == reason and ("attributes.csv" in reason if protocol == "attribute_shift" else "not found" in reason)


def test_augmentation_quality_quick(faces_folder, tiny_bundle_path, evaluator_paths, tmp_path, tiny_spec):
    aq = load_script("augmentation_quality")
    out = tmp_path / "aq.json"
    ident, attrs = evaluator_paths
    aq.main(["--quick", "--data", str(faces_folder), "--bundle", str(tiny_bundle_path), "--device", "cpu",
             "--identity-weights", str(ident), "--attribute-weights", str(attrs), "--out", str(out)])
    r = json.loads(out.read_text())
    assert r["n"] == 16 and 0 <= r["reconstruction"]["score"] <= 1
    assert list(r["codes"]) == tiny_spec.code_names
    glasses = r["codes"]["glasses"]
    assert glasses["attribute"] == "Eyeglasses" and "bound_attribute_spread" in glasses
    assert len(glasses["values"]) == 2 and "P(Eyeglasses)" in glasses["values"][0]
    assert len(r["codes"]["smile"]["values"]) == 2
    for k in ("random_samples", "reconstruction", "random_edits"):
        assert set(r["frechet_identity_features"][k]) == {"fd", "floor", "ratio", "n"}
    assert {"reconstruction", "different_people"} <= set(r["identity"])
    size = r["edit_size"]
    assert set(size) == {"genaug_random_edits", "classical_pipeline", "other_photo_same_person"}
    assert size["other_photo_same_person"]["pairs"] > 0
    assert all(v["abs_change_255"] >= 0 and -1.001 <= v["identity_similarity"] <= 1.001 for v in size.values()), size
    assert size["classical_pipeline"]["abs_change_255"] > 0 and size["other_photo_same_person"]["abs_change_255"] > 0


@pytest.mark.parametrize("faces", ["generated", "folder"])
def test_speed_quick_compares_like_with_like(faces, faces_folder, tiny_bundle_path, tmp_path):
    out = tmp_path / "speed.json"
    data = "generated" if faces == "generated" else str(faces_folder)
    r = load_script("speed").main(["--quick", "--bundle", str(tiny_bundle_path), "--device", "cpu", "--threads", "1", "2",
                                   "--data", data, "--out", str(out)])
    assert json.loads(out.read_text())["batch_size"] == 4
    assert r["faces"].startswith("real" if faces == "folder" else "generated")
    assert set(r["cached_vs_generator"]) == {"1", "2"}
    for res in r["cached_vs_generator"].values():
        for k in ("generator", "augment (cached)"):
            for clock in ("wall", "cpu"):
                t = res[k][clock]
                assert t["n"] == 2 and t["min_ms"] <= t["q1_ms"] <= t["median_ms"] <= t["q3_ms"] <= t["max_ms"]
        assert res["ratio_augment_over_generator_wall"] > 0 and res["ratio_augment_over_generator_cpu"] > 0
    assert set(r["per_call"]) == {"photos", "uncached", "cached", "classical"}
    assert r["per_call"]["uncached"]["wall"]["n"] == r["per_call"]["cached"]["cpu"]["n"] == 2
    assert set(r["definitions"]) >= {"generator", "augment (cached)", "uncached", "cached", "classical"}
    k0, k2 = r["inversion"]["rows"]
    assert (k0["K"], k2["K"]) == (0, 2) and k2["score"] >= k0["score"] - 1e-3  # refinement does not make it worse
    for row in (k0, k2):
        assert row["reached"] == (row["random_start_steps"] is not None) and row["speedup_at_equal_score"] > 0
    assert r["inversion"]["random_start_final"]["steps"] <= 20
    batch = r["batch_transform"]
    assert set(batch) == {"4", "8"} and set(batch["4"]) == {"counts", "1", "2"}
    assert batch["4"]["counts"] == batch["8"]["counts"]  # operations and host reads per batch, not per face
    for res in (batch["4"]["1"], batch["8"]["2"]):
        assert set(res["beyond_generator_cpu_ms_per_face"]) == {"batch (content key)", "batch (named)", "batch, generator stubbed",
                                                               "engine augment_tensor (cached)", "engine augment_tensor, generator stubbed",
                                                               "batch (content key), generator stubbed"}
        assert res["generator"]["cpu"]["n"] == 2 and res["batch, generator stubbed"]["cpu"]["median_ms"] > 0
        assert res["stub_output_cpu_ms"] > 0  # the stub's own output copy, subtracted from the stubbed rows
        own = res["beyond_own_generator_cpu_ms_per_face"]  # each call less its own generator pass, round by round
        assert set(own) == {"batch (content key)", "batch (named)"} and all(v > 0 for v in own.values())


def test_speed_per_call_on_resized_crops(faces_folder, tiny_bundle_path):
    r = load_script("speed").main(["--quick", "--bundle", str(tiny_bundle_path), "--device", "cpu", "--call-sizes", "32", "48",
                                   "--data", str(faces_folder)])
    assert set(r["per_call_sizes"]) == {"32", "48"} and "batch_transform" not in r  # part 2 alone
    for size, c in r["per_call_sizes"].items():
        assert f"of {size}x{size}" in c["photos"] and c["uncached"]["cpu"]["n"] == 2


def test_make_identity_folder_from_flat_images_and_csv(faces_folder, tmp_path):
    """A flat images/ folder + attributes.csv with an identity column becomes an ImageFolder the
    protocols read; --attribute keeps only the people an attribute shift can use."""
    mk = load_script("make_identity_folder")
    sys.path.insert(0, str(ROOT))
    from benchmarks.faces import load_people, read_attributes

    src = tmp_path / "flat"
    (src / "images").mkdir(parents=True)
    rows = ["filename,person,Eyeglasses"]
    for p in sorted(faces_folder.rglob("*.png")):
        name = f"{p.parent.name}_{p.name}"
        (src / "images" / name).write_bytes(p.read_bytes())
        glasses = p.parent.name in ("p0", "p1") and p.stem == "00"  # only two people ever wear glasses
        rows.append(f"{name},{p.parent.name},{1 if glasses else -1}")
    (src / "attributes.csv").write_text("\n".join(rows) + "\n")

    got = mk.main([str(src), str(tmp_path / "all"), "--identity-column", "person"])
    assert got == {"people": 5, "images": 30}
    data = load_people(tmp_path / "all")
    assert data.classes == ["p0", "p1", "p2", "p3", "p4"] and len(data.labels) == 30
    original = load_people(faces_folder)
    assert torch.equal(data.images, original.images)  # the same pixels, person by person
    attrs = read_attributes(tmp_path / "all", data.paths)
    assert int(attrs["Eyeglasses"].sum()) == 2

    got = mk.make_identity_folder(src, tmp_path / "shift", "person", attribute="Eyeglasses", min_without=3)
    assert got == {"people": 2, "images": 12}
    for bad, msg in ((dict(identity_column="who"), "no column 'who'"), (dict(attribute="Hat"), "no column 'Hat'"),
                     (dict(attribute="Eyeglasses", min_without=9), "no person")):
        with pytest.raises(ValueError, match=msg):
            mk.make_identity_folder(src, tmp_path / "bad", **{"identity_column": "person", **bad})
    with pytest.raises(ValueError, match="not empty"):
        mk.make_identity_folder(src, tmp_path / "all", "person")


def test_glasses_realism_skips_without_faces(tmp_path):
    gr = load_script("glasses_realism")
    r = gr.main(["--quick", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "g.json")])
    assert "not found" in r["skipped"] and json.loads((tmp_path / "g.json").read_text())["skipped"] == r["skipped"]


@pytest.mark.data
def test_glasses_realism_quick_on_celeba(tmp_path):
    from conftest import CELEBA64, CELEBA_ID200, need

    need(CELEBA64), need(CELEBA_ID200)
    r = load_script("glasses_realism").main(["--quick", "--data", str(CELEBA64), "--out", str(tmp_path / "g.json")])
    assert set(r["arms"]) == {"real", "none", "latent", "rendered"}
    assert all(0 <= a["mean"] <= 1 for a in r["arms"].values())
    judged = r["judged_celeba_id200"]
    assert judged["n"] == 8 and 0 <= judged["rendered"]["success"] <= 1


def test_realism_rotated_set_has_black_corners_as_an_aligner_leaves():
    """``--sets utkface_rotated``: the held-out utkface_128 photos rotated by up to 15 degrees (seeded),
    black corners included, the same people as utkface_128."""
    from conftest import SHARED_DATA, need

    need(SHARED_DATA / "utkface_128" / "images")
    realism = load_script("realism")
    rotated, plain = realism.load_set("utkface_rotated", 6), realism.load_set("utkface_128", 6)
    assert rotated.size == 128 and len(rotated.photos) == len(plain.photos) == 6
    corners = [p[:3, :3].max() for p in rotated.photos]
    assert sum(c == 0 for c in corners) >= 3 and not np.array_equal(rotated.photos[0], plain.photos[0])
    again = realism.load_set("utkface_rotated", 6)
    assert all(np.array_equal(a, b) for a, b in zip(rotated.photos, again.photos))  # seeded


def test_offline_variants_on_the_photos_are_framed_like_the_faces(tmp_path, monkeypatch, tiny_bundle_path, capsys):
    """``files=``: the edits are made on the 178x218 photos (their own framing), then each variant is
    cropped and resized as its 64 px face was; photos of mixed sizes fall back to the crops, saying so."""
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    from benchmarks.faces import load_people, offline_variants

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:218, 0:178]
    for i in range(4):
        face = np.exp(-((xx - 89) ** 2 / 40**2 + (yy - 109) ** 2 / 52**2))[..., None]
        im = 60 + 150 * face * rng.uniform(0.6, 1, 3) + rng.normal(0, 3, (218, 178, 3))
        (tmp_path / "people" / f"p{i // 2}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(im, 0, 255).astype(np.uint8)).save(tmp_path / "people" / f"p{i // 2}" / f"{i}.png")
    data = load_people(tmp_path / "people")
    files = [tmp_path / "people" / q for q in data.paths]
    kw = dict(codes=["light"], device="cpu")
    on_photos, _ = offline_variants(data.images, str(tiny_bundle_path), 2, 0, files=files, **kw)
    on_crops, _ = offline_variants(data.images, str(tiny_bundle_path), 2, 0, **kw)
    assert on_photos.shape == on_crops.shape == (4, 2, 3, 64, 64)
    own = (on_photos.float() - data.images[:, None].float()).abs().mean((2, 3, 4))
    other = (on_photos.float() - data.images.flip(0)[:, None].float()).abs().mean((2, 3, 4))
    assert (own < other).all()  # each variant is its own face, framed the same way
    assert not torch.equal(on_photos, on_crops)  # and it was made on the photo
    Image.fromarray(np.zeros((100, 90, 3), np.uint8)).save(tmp_path / "odd.png")
    fallback, _ = offline_variants(data.images[:2], str(tiny_bundle_path), 1, 0, files=[files[0], tmp_path / "odd.png"], **kw)
    assert fallback.shape == (2, 1, 3, 64, 64) and "edited on the crops" in capsys.readouterr().out


def test_chained_variants_apply_every_code_in_turn(tmp_path, monkeypatch, tiny_bundle_path):
    """``codes=["light+yaw"]``: each variant is relit, then turned (A.Compose of one transform per code, seed 0); it
    repeats with the seed; one chained entry only."""
    monkeypatch.setenv("GENAUG_CACHE", str(tmp_path / "cache"))
    from benchmarks.faces import offline_variants

    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64]
    face = np.exp(-((xx - 32) ** 2 / 14**2 + (yy - 32) ** 2 / 18**2))[..., None]
    images = torch.stack([torch.from_numpy(np.clip(60 + 150 * face * rng.uniform(0.6, 1, 3), 0, 255).astype(np.uint8)).permute(2, 0, 1)
                          for _ in range(2)])
    chained, _ = offline_variants(images, str(tiny_bundle_path), 2, 0, codes=["light+yaw"], device="cpu")
    again, _ = offline_variants(images, str(tiny_bundle_path), 2, 0, codes=["light+yaw"], device="cpu")
    assert chained.shape == (2, 2, 3, 64, 64) and chained.dtype == torch.uint8 and torch.equal(chained, again)
    assert (chained.float() - images[:, None].float()).abs().mean() > 0.5  # edited
    with pytest.raises(ValueError, match="one entry"):
        offline_variants(images, str(tiny_bundle_path), 1, 0, codes=["light+yaw", "glasses"], device="cpu")


def test_pool_seeds_joins_later_seeds_and_refuses_other_runs(faces_folder, tmp_path):
    fs, pool = load_script("few_shot"), load_script("pool_seeds")
    outs = []
    for first in (0, 1):  # seeds 0, 1 then 1, 2: seed 1 is run twice and must come out the same
        outs.append(tmp_path / f"fs{first}.json")
        fs.main(["--data", str(faces_folder), "--quick", "--arms", "none", "classical", "--first-seed", str(first),
                 "--out", str(outs[-1]), *SMALL_NET])
    a, b = (json.loads(o.read_text()) for o in outs)
    assert [r["seed"] for r in b["results"]["classical"]["1"]["runs"]] == [1, 2]
    assert b["results"]["classical"]["1"]["runs"][0]["top1"] == a["results"]["classical"]["1"]["runs"][1]["top1"]
    pooled = pool.main([str(o) for o in outs] + ["--out", str(tmp_path / "pooled.json")])
    d = pooled["paired_differences"]["classical - none"]["1"]["top1"]
    by_seed = {r["seed"]: r["top1"] for rep in (a, b) for arm in ("classical", "none") for r in rep["results"][arm]["1"]["runs"]
               if arm == "classical"}
    nones = {r["seed"]: r["top1"] for rep in (a, b) for r in rep["results"]["none"]["1"]["runs"]}
    assert pooled["seeds"] == [0, 1, 2] and d["n"] == 3
    assert d["per_seed"] == pytest.approx([by_seed[s] - nones[s] for s in (0, 1, 2)])
    b["results"]["classical"]["1"]["runs"][0]["top1"] += 0.1  # seed 1 no longer the same run
    with pytest.raises(ValueError, match="seed 1 differs"):
        pool.pool([a, b])
    new = json.loads(outs[1].read_text())  # seeds 1, 2 again, their 'none' arm changed (as by a code change)
    for run in new["results"]["none"]["1"]["runs"]:
        run["top1"] += 0.05
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(new))
    with pytest.raises(ValueError, match="seed 1 differs"):  # both arms of the first file: seed 1's 'none' clashes
        pool.main([str(outs[0]), str(changed)])
    only = pool.main([f"{outs[0]}:classical", str(changed)])  # only the first file's 'classical' arm
    assert only["results"]["none"]["1"]["runs"] == new["results"]["none"]["1"]["runs"]  # seeds 1, 2 of the new file
    assert [r["seed"] for r in only["results"]["classical"]["1"]["runs"]] == [0, 1, 2]
    with pytest.raises(ValueError, match=r"no arm\(s\) \['genaug'\]"):
        pool.main([f"{outs[0]}:genaug", str(changed)])
    b["config"]["variants"] = 7
    with pytest.raises(ValueError, match="variants"):
        pool.pool([a, json.loads(outs[1].read_text()) | {"config": b["config"]}])


def test_pool_seeds_pairs_the_arms_seed_by_seed():
    """Hand-made reports whose seeds all differ: a pooling that paired seeds out of order (or by position across
    files) gives other per-seed differences. (The recogniser-trained test above is cheap, so its seeds can tie.)"""
    pool = load_script("pool_seeds")

    def report(first: int, classical: list[float], none: list[float]) -> dict:
        runs = lambda vals: {"1": {"runs": [{"seed": first + i, "top1": v} for i, v in enumerate(vals)]}}
        return {"benchmark": "few_shot", "config": {"shots": [1], "first_seed": first, "seeds": len(classical)},
                "results": {"classical": runs(classical), "none": runs(none)}}

    pooled = pool.pool([report(0, [0.30, 0.50], [0.10, 0.15]), report(2, [0.90], [0.20])])
    d = pooled["paired_differences"]["classical - none"]["1"]["top1"]
    assert pooled["seeds"] == [0, 1, 2]
    assert d["per_seed"] == pytest.approx([0.20, 0.35, 0.70])


def test_edit_success_exposure_and_the_judges_view():
    """``--exposure``: faces at a factor of their exposure, clipped and rounded to 8 bits; the judges see them divided
    by it (at 1 the faces themselves); a factor that is not positive is a usage error."""
    es = load_script("edit_success")
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert es.expose_faces(x, 1.0) is x and es.bring_back(x, 1.0) is x
    dim = es.expose_faces(x, 0.3)
    levels = (dim + 1) / 2 * 255
    assert torch.allclose(levels, levels.round(), atol=1e-3) and float(dim.max()) <= 0.3 * 2 - 1 + 1e-6
    assert (es.bring_back(dim, 0.3) - x).abs().max() <= 1 / 255 / 0.3 + 1e-5  # back within half a level of 8 bits
    over = es.expose_faces(x, 2.5)
    clipped = (x + 1) / 2 * 2.5 >= 1
    assert clipped.any() and torch.equal(over[clipped], torch.ones(int(clipped.sum())))
    back = es.bring_back(over, 2.5)
    assert torch.allclose(back[clipped], torch.tensor(2 / 2.5 - 1)) and (back[~clipped] - x[~clipped]).abs().max() < 2e-3
    for bad in ("0", "nan", "inf"):  # (inf made black pixels NaN)
        with pytest.raises(SystemExit):
            es.main(["--exposure", "1", bad])
