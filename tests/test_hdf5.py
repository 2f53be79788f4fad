"""Offline expansion to HDF5 (genaug expand / expand_to_hdf5) and the HDF5FaceDataset reader."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CELEBA_ID200, OLIVETTI, UTKFACE, need, needs_dlib, noise_pngs
from genaug.cli.expand import main
from genaug.expand import ExpandError, expand_to_hdf5
from genaug.expand.hdf5 import HDF5FaceDataset

FAST = dict(refine_steps=2, batch_size=4, block_size=3, device="cpu", progress=False)
COMPARED = ("images", "codes", "score", "label", "source_index", "source_path", "variant")


def synth_folder(root: Path, per_class: int = 4, classes: tuple[str, ...] = ("bob", "alice"), size=(40, 48)) -> Path:
    """An ImageFolder of random 'faces' (deterministic)."""
    rng = np.random.default_rng(0)
    for c in classes:
        (root / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(root / c / f"{i:02d}.png")
    return root


def records(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {k: f[k][()] for k in COMPARED}


def assert_same(a: Path, b: Path) -> None:
    ra, rb = records(a), records(b)
    for k in COMPARED:
        assert ra[k].dtype == rb[k].dtype and ra[k].shape == rb[k].shape, k
        if ra[k].dtype.kind == "f":
            assert np.array_equal(ra[k], rb[k], equal_nan=True), k
        else:
            assert np.array_equal(ra[k], rb[k]), k


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_folder(tmp_path_factory.mktemp("synth") / "src")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, synth, tiny_bundle_path) -> Path:
    """One uninterrupted single-process run (3 variants + originals) of the synthetic folder."""
    out = tmp_path_factory.mktemp("ref") / "ref.h5"
    expand_to_hdf5(synth, out, 3, bundle=tiny_bundle_path, include_original=True, seed=7, **FAST)
    return out


def test_layout_and_metadata(reference, synth, tiny_bundle_path, tiny_spec):
    with h5py.File(reference, "r") as f:
        n = 8 * 4  # 8 sources x (original + 3 variants)
        assert f["images"].shape == (n, 32, 32, 3) and f["images"].dtype == np.uint8
        assert f["images"].chunks == (1, 32, 32, 3) and f["images"].compression == "lzf"
        for k in ("label", "source_index", "source_path", "variant", "score"):
            assert f[k].shape == (n,), k
        assert f["codes"].shape == (n, len(tiny_spec.codes))
        assert json.loads(f.attrs["code_names"]) == tiny_spec.code_names
        assert json.loads(f.attrs["class_names"]) == ["alice", "bob"]
        assert f.attrs["seed"] == 7 and f.attrs["format"] == "genaug-expanded"
        assert f.attrs["bundle_identity"] == json.loads((tiny_bundle_path / "config.json").read_text())["weights"]["sha256"][:16]
        assert json.loads(f.attrs["bundle_config"])["latent"] == tiny_spec.to_dict()
        assert json.loads(f.attrs["settings"])["variants"] == 3
        np.testing.assert_array_equal(f["variant"][()], np.tile([0, 1, 2, 3], 8))
        np.testing.assert_array_equal(f["source_index"][()], np.repeat(np.arange(8), 4))
        np.testing.assert_array_equal(f["label"][()], np.repeat([0, 0, 0, 0, 1, 1, 1, 1], 4))
        paths = [p.decode() for p in f["source_path"][()]]
        assert paths[0] == "alice/00.png" and paths[-1] == "bob/03.png"
        codes, variant = f["codes"][()], f["variant"][()]
        assert np.isnan(codes[variant == 0]).all()  # originals: nothing edited
        assert (np.sum(~np.isnan(codes[variant > 0]), axis=1) == 1).all()  # one edit per variant
        score = f["score"][()]
        assert ((score >= 0) & (score <= 1)).all()
        assert len(f["skipped/path"]) == 0 and f.attrs["n_skipped"] == 0
        # the original (variant 0) is the model-frame source image
        src = np.asarray(Image.open(synth / "alice" / "00.png").convert("RGB"))
        assert abs(f["images"][0].astype(int).mean() - src.astype(int).mean()) < 20
    assert not Path(str(reference) + ".parts").exists()


def test_expansion_honours_the_gate(tmp_path, reference, synth, tiny_bundle_path):
    """A gate that rejects only its first call re-draws exactly the rows of the first render
    batch; a gate that rejects everything keeps every source unchanged."""
    calls = []

    def first_call_rejects(orig, aug):
        calls.append(len(orig))
        return torch.full((len(orig),), 0.0 if len(calls) == 1 else 1.0)

    run = dict(bundle=tiny_bundle_path, include_original=True, seed=7, **FAST)
    expand_to_hdf5(synth, tmp_path / "g.h5", 3, gate_threshold=0.5, gate=first_call_rejects, **run)
    ref, got = records(reference), records(tmp_path / "g.h5")
    first_batch = np.flatnonzero(ref["variant"] > 0)[: calls[0]]  # edited rows of the first render call
    changed = ~np.all((ref["codes"] == got["codes"]) | (np.isnan(ref["codes"]) & np.isnan(got["codes"])), axis=1)
    assert sorted(np.flatnonzero(changed)) == sorted(first_batch), "only the rejected rows get new edits"
    assert np.array_equal(ref["images"][ref["variant"] == 0], got["images"][got["variant"] == 0])
    expand_to_hdf5(synth, tmp_path / "n.h5", 3, gate_threshold=0.5, gate=lambda a, b: torch.zeros(len(a)), **run)
    never = records(tmp_path / "n.h5")
    originals = never["images"][never["variant"] == 0]
    for v in (1, 2, 3):
        assert np.array_equal(never["images"][never["variant"] == v], originals)
    assert np.isnan(never["codes"]).all()


def test_rerun_is_a_no_op_and_other_seed_refused(reference, synth, tiny_bundle_path):
    res = expand_to_hdf5(synth, reference, 3, bundle=tiny_bundle_path, include_original=True, seed=7, **FAST)
    assert res.blocks_done == 0 and res.n_records == 32
    with pytest.raises(ExpandError, match="already exists"):
        expand_to_hdf5(synth, reference, 3, bundle=tiny_bundle_path, include_original=True, seed=8, **FAST)


def test_sharded_run_equals_single_run(tmp_path, reference, synth, tiny_bundle_path):
    out = tmp_path / "sharded.h5"
    kw = dict(bundle=tiny_bundle_path, include_original=True, seed=7, **FAST)
    r0 = expand_to_hdf5(synth, out, 3, shard="0/2", **kw)
    assert r0.path is None and not out.exists() and r0.blocks_done == 2  # blocks 0, 2 of 3
    with pytest.raises(ExpandError, match="not finished"):
        expand_to_hdf5(synth, out, 3, merge_only=True, **kw)
    expand_to_hdf5(synth, out, 3, shard="1/2", **kw)
    res = expand_to_hdf5(synth, out, 3, merge_only=True, **kw)
    assert res.path == out and res.blocks_done == 0
    assert_same(out, reference)


def test_refuses_to_resume_with_other_seed(tmp_path, synth, tiny_bundle_path):
    out = tmp_path / "o.h5"
    kw = dict(bundle=tiny_bundle_path, **FAST)
    expand_to_hdf5(synth, out, 2, seed=1, shard="0/2", **kw)
    with pytest.raises(ExpandError, match="different run.*seed: 1 -> 2"):
        expand_to_hdf5(synth, out, 2, seed=2, **kw)
    assert main([str(synth), str(out), "--variants", "2", "--seed", "2", "--bundle", str(tiny_bundle_path),
                 "--device", "cpu", "--quiet", "--refine-steps", "2", "--batch-size", "4", "--block-size", "3"]) == 1
    res = expand_to_hdf5(synth, out, 2, seed=2, overwrite=True, **kw)
    assert res.blocks_done == 3 and res.n_records == 16
    with h5py.File(out) as f:
        assert f.attrs["seed"] == 2


def test_batch_composition_changes_only_float_noise(tmp_path, synth, tiny_bundle_path):
    kw = dict(bundle=tiny_bundle_path, seed=3, refine_steps=2, device="cpu", progress=False)
    a = expand_to_hdf5(synth, tmp_path / "a.h5", 2, batch_size=8, block_size=8, **kw).path
    b = expand_to_hdf5(synth, tmp_path / "b.h5", 2, batch_size=3, block_size=5, **kw).path
    ra, rb = records(a), records(b)
    np.testing.assert_array_equal(ra["codes"], rb["codes"])  # edits: from (seed, index) only
    diff = np.abs(ra["images"].astype(int) - rb["images"].astype(int))
    assert diff.max() <= 2 and diff.mean() < 0.05
    np.testing.assert_allclose(ra["score"], rb["score"], atol=1e-4)


def test_corrupt_inputs_are_reported_and_skipped(tmp_path, tiny_bundle_path, capsys):
    src = synth_folder(tmp_path / "src", per_class=2, classes=("x",))
    good = src / "x" / "00.png"
    Image.open(good).convert("RGB").save(src / "x" / "trunc.jpg", quality=95)
    data = (src / "x" / "trunc.jpg").read_bytes()
    (src / "x" / "trunc.jpg").write_bytes(data[: len(data) // 2])
    (src / "x" / "notes.png").write_text("this is not an image\n")
    out = tmp_path / "o.h5"
    res = expand_to_hdf5(src, out, 2, bundle=tiny_bundle_path, refine_steps=1, device="cpu", progress=True)
    assert sorted(p for _, p, _ in res.skipped) == ["x/notes.png", "x/trunc.jpg"]
    err = capsys.readouterr().err
    assert "x/notes.png" in err and "x/trunc.jpg" in err and "skipped 2" in err
    with h5py.File(out) as f:
        assert f["images"].shape[0] == 4 and f.attrs["n_skipped"] == 2
        reasons = dict(zip([p.decode() for p in f["skipped/path"][()]], [r.decode() for r in f["skipped/reason"][()]]))
        assert "truncated" in reasons["x/trunc.jpg"].lower() or "OSError" in reasons["x/trunc.jpg"]
        assert "cannot identify" in reasons["x/notes.png"]
        assert sorted(set(p.decode() for p in f["source_path"][()])) == ["x/00.png", "x/01.png"]


def _run_cli(args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads()), "NO_ALBUMENTATIONS_UPDATE": "1"}
    return subprocess.Popen([sys.executable, "-m", "genaug", "expand", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_killed_and_resumed_run_is_byte_identical(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=8)
    args = [str(src), "", "--variants", "2", "--bundle", str(tiny_bundle_path), "--include-original", "--seed", "5",
            "--refine-steps", "2", "--batch-size", "2", "--block-size", "2", "--device", "cpu", "--quiet"]
    ref = tmp_path / "ref.h5"
    expand_to_hdf5(src, ref, 2, bundle=tiny_bundle_path, include_original=True, seed=5, refine_steps=2,
                   batch_size=2, block_size=2, device="cpu", progress=False)
    out = tmp_path / "out.h5"
    args[1] = str(out)
    parts = Path(str(out) + ".parts")

    def n_parts() -> int:
        return len(list(parts.glob("part-*.h5"))) if parts.exists() else 0

    kills = 0
    # kill: while the first part is being written, after one part, after a few more parts
    for cond in (lambda: parts.exists() and any(parts.glob("*.tmp*")), lambda: n_parts() >= 1,
                 lambda: n_parts() >= 4):
        before = n_parts()
        proc = _run_cli(args)
        deadline = time.time() + 60
        while proc.poll() is None and not cond() and time.time() < deadline:
            time.sleep(0.005)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            assert not out.exists()
        else:
            assert proc.returncode == 0, proc.stderr.read()
        assert n_parts() >= before  # finished parts are never lost
    assert kills >= 2, "the runs finished before they could be killed"
    proc = _run_cli(args)
    assert proc.wait(120) == 0, proc.stderr.read()
    assert out.exists() and not parts.exists()
    assert_same(out, ref)
    with h5py.File(out) as f, h5py.File(ref) as g:
        assert f.attrs["run_key"] == g.attrs["run_key"]


def test_hdf5_source_and_size_option(tmp_path, reference, tiny_bundle_path):
    src = tmp_path / "faces.h5"
    rng = np.random.default_rng(1)
    with h5py.File(src, "w") as f:
        f["images"] = rng.integers(0, 256, (5, 50, 40, 3), dtype=np.uint8)
        f["labels"] = np.array([3, 1, 4, 1, 5])
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 2, bundle=tiny_bundle_path, size="source", include_original=True, **FAST)
    with h5py.File(out) as f, h5py.File(src) as s:
        assert f["images"].shape == (15, 50, 40, 3)
        np.testing.assert_array_equal(f["label"][()], np.repeat([3, 1, 4, 1, 5], 3))
        np.testing.assert_array_equal(f["images"][0], s["images"][0])  # original kept as is
        assert f["source_path"][4].decode() == "images[1]"
    out2 = tmp_path / "o2.h5"
    expand_to_hdf5(src, out2, 1, bundle=tiny_bundle_path, size="64x48", **FAST)
    with h5py.File(out2) as f:
        assert f["images"].shape == (5, 48, 64, 3)


def test_real_faces_olivetti(tmp_path, tiny_bundle_path):
    root = need(OLIVETTI)
    src = tmp_path / "olivetti"
    for person in ("s01", "s02", "s03"):
        (src / person).mkdir(parents=True)
        for f in sorted((root / person).glob("*.png"))[:4]:
            shutil.copy(f, src / person / f.name)
    out = tmp_path / "o.h5"
    res = expand_to_hdf5(src, out, 2, bundle=tiny_bundle_path, size="source", **FAST)
    assert res.n_records == 24 and not res.skipped
    with h5py.File(out) as f:
        assert f["images"].shape == (24, 64, 64, 3)
        assert json.loads(f.attrs["class_names"]) == ["s01", "s02", "s03"]
        np.testing.assert_array_equal(f["label"][()], np.repeat([0, 1, 2], 8))


def test_real_faces_celeba_paste_back(tmp_path, tiny_bundle_path):
    root = need(CELEBA_ID200)
    src = tmp_path / "celeba"
    src.mkdir()
    files = sorted((root / "000").glob("*.jpg"))[:3]
    for f in files:
        shutil.copy(f, src / f.name)
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 2, bundle=tiny_bundle_path, size="source", **FAST)
    with h5py.File(out) as f:
        imgs = f["images"][()]
    assert imgs.shape == (6, 218, 178, 3)
    orig = np.asarray(Image.open(files[0]).convert("RGB"))
    mask = np.ones(orig.shape[:2], bool)
    mask[55:163, 35:143] = False  # CelebA face box: only it changes
    np.testing.assert_array_equal(imgs[0][mask], orig[mask])


@needs_dlib
@pytest.mark.parametrize("size", ["model", "source"])
def test_a_control_with_no_room_on_the_face_is_recorded_nan_as_unedited(tmp_path, size, capsys):
    # utkface_128 photos 02863 and 03722 are near profile (the 5-point fit: -54 and 45 degrees; -57 and 43 without
    # pitch): yaw and drawn glasses
    # leave them as they are ("no room"; the Dataset's meta and last_info say unchanged), but their HDF5 `codes` read
    # yaw 0.0 / drawn_glasses 0.0, so a reader counting edited records by non-NaN codes counted these unedited ones;
    # and the run said nothing of it (it names variants the gates or framing=detect left unedited)
    root = need(UTKFACE) / "images"
    src = tmp_path / "profiles"
    src.mkdir()
    for name in ("02863.jpg", "03722.jpg"):
        shutil.copy(root / name, src / name)
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 2, codes=["yaw", "drawn_glasses"], size=size, seed=0, device="cpu", progress=False)
    with h5py.File(out) as f:
        assert f["codes"].shape == (4, len(json.loads(f.attrs["code_names"])))
        assert np.isnan(f["codes"][()]).all(), f["codes"][()]
        if size == "source":
            for i, path in enumerate(f["source_path"].asstr()[()]):
                np.testing.assert_array_equal(f["images"][i], np.asarray(Image.open(src / path).convert("RGB")))
    assert "4 variant(s) kept the unedited source: their control had no room on the face" in capsys.readouterr().err


@needs_dlib
def test_controls_left_undone_for_want_of_a_face_are_named_by_the_run(tmp_path, capsys):
    # codes=["light"] on photos with no face (framing auto): records are the unedited source, codes NaN, as documented,
    # but the run said only "wrote 2 records" (it named such photos only under framing=detect)
    src = noise_pngs(tmp_path / "noise", shape=(96, 96, 3))
    out = tmp_path / "o.h5"
    expand_to_hdf5(src, out, 1, codes=["light"], seed=0, device="cpu", progress=False)
    with h5py.File(out) as f:
        assert np.isnan(f["codes"][()]).all()
    assert "2 variant(s) kept the unedited source: no face found for their edit, which needs one" in capsys.readouterr().err


def test_reader_names_classes_as_torchvision_does(reference):
    ds = HDF5FaceDataset(reference)
    assert ds.classes == ["alice", "bob"] and ds.class_to_idx == {"alice": 0, "bob": 1}
    _, label = ds[5]
    assert ds.classes[label] == "alice"


def test_reader_in_dataloader_workers(reference):
    from torch.utils.data import DataLoader

    ds = HDF5FaceDataset(reference, return_meta=True)
    assert len(ds) == 32 and ds.class_names == ["alice", "bob"]
    img, label, meta = ds[5]
    assert img.shape == (32, 32, 3) and img.dtype == np.uint8 and label == 0
    assert meta["source_index"] == 1 and meta["variant"] == 1 and meta["source_path"] == "alice/01.png"
    loader = DataLoader(HDF5FaceDataset(reference), batch_size=8, num_workers=2)
    labels = torch.cat([lab for _, lab in loader])
    with h5py.File(reference) as f:
        np.testing.assert_array_equal(labels.numpy(), f["label"][()])
        want = f["images"][()]
    got = torch.cat([im for im, _ in DataLoader(HDF5FaceDataset(reference), batch_size=8, num_workers=2)])
    np.testing.assert_array_equal(got.numpy(), want)
    assert len(HDF5FaceDataset(reference, variants=[0])) == 8


def test_reader_with_albumentations(reference):
    import albumentations as A

    ds = HDF5FaceDataset(reference, transform=A.Compose([A.HorizontalFlip(p=1.0)]))
    img, _ = ds[0]
    np.testing.assert_array_equal(img, HDF5FaceDataset(reference)[0][0][:, ::-1])


def test_reader_with_torchvision_transforms(reference):
    """A torchvision transform (or any plain callable) gets the image itself, as torchvision's
    datasets call it; ``target_transform`` the label; the reader is a torch ``Dataset``."""
    from torch.utils.data import ConcatDataset, Dataset
    from torchvision import transforms as T

    ds = HDF5FaceDataset(reference, transform=T.ToTensor(), target_transform=lambda y: y + 100)
    img, label = ds[0]
    raw, raw_label = HDF5FaceDataset(reference)[0]
    assert isinstance(img, torch.Tensor) and img.shape == (3, 32, 32) and label == raw_label + 100
    np.testing.assert_allclose(img.permute(1, 2, 0).numpy(), raw / 255.0, atol=1e-6)
    assert isinstance(ds, Dataset) and len(ds + ds) == 2 * len(ds) and isinstance(ds + ds, ConcatDataset)


class _HandleProbe(torch.utils.data.Dataset):
    """Whether a DataLoader worker reads through the handle the parent process opened."""

    def __init__(self, ds):
        self.ds, self.parent_handle = ds, ds._f()

    def __len__(self):
        return 4

    def __getitem__(self, i):
        self.ds[i]
        return int(self.ds._f() is self.parent_handle)


def test_forked_workers_open_their_own_handle(reference):
    """h5py handles are not fork-safe: a file the main process already read (``ds[0]``) is reopened
    in each forked DataLoader worker, as the docs promise ("opened lazily in each process")."""
    from torch.utils.data import DataLoader

    ds = HDF5FaceDataset(reference)
    first = ds[0][0]
    probe = _HandleProbe(ds)
    shared = list(DataLoader(probe, batch_size=2, num_workers=2, multiprocessing_context="fork"))
    assert torch.cat(shared).tolist() == [0, 0, 0, 0]
    np.testing.assert_array_equal(ds[0][0], first)  # the parent's handle still works
    ds.close()
    assert ds[1][0].shape == first.shape  # reopened after close


def test_cli_errors_and_help(tmp_path, capsys, tiny_bundle_path):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--variants", "--bundle", "--include-original", "--seed", "--size", "--shard", "--merge-only",
                "--overwrite", "--compression", "--block-size"):
        assert opt in text
    assert main([str(tmp_path / "nope"), str(tmp_path / "o.h5")]) == 1
    assert "source not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / "empty"), str(tmp_path / "o.h5"), "--bundle", str(tiny_bundle_path)]) == 1
    assert "no images" in capsys.readouterr().err
    synth_folder(tmp_path / "s", per_class=1, classes=("a",))
    assert main([str(tmp_path / "s"), str(tmp_path / "o.h5"), "--shard", "2of3", "--bundle", str(tiny_bundle_path)]) == 2
    assert "--shard must look like i/n" in capsys.readouterr().err
    assert main([str(tmp_path / "s"), str(tmp_path / "o.h5"), "--shard", "3/2", "--bundle", str(tiny_bundle_path)]) == 2


def test_a_source_image_changed_in_place_is_not_resumed_as_the_same_run(tmp_path, tiny_bundle_path):
    src = synth_folder(tmp_path / "src", per_class=2, classes=("x",))
    out = tmp_path / "o.h5"
    kw = dict(bundle=tiny_bundle_path, **FAST)
    expand_to_hdf5(src, out, 1, shard="0/2", **kw)  # block 0 of 2 done, then the user edits a photo
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(src / "x" / "00.png")
    with pytest.raises(ExpandError, match="different run.*source"):
        expand_to_hdf5(src, out, 1, **kw)


def test_writer_stopped_after_a_producer_error_closes_and_removes_its_part(tmp_path):
    from genaug.expand.parts import PartWriter

    w = PartWriter(tmp_path, (8, 8, 3), 2, "lzf", {"run_key": "k"})
    w.start()
    w.put(("open", 0))
    rows = {"images": np.zeros((2, 8, 8, 3), np.uint8), "label": np.zeros(2, np.int64),
            "source_index": np.arange(2), "source_path": ["a", "b"], "variant": np.ones(2, np.int16),
            "codes": np.zeros((2, 2), np.float32), "score": np.ones(2, np.float32)}
    for _ in range(3):
        w.put(("rows", rows))
    w.stop()
    assert not w.is_alive(), "stop() must join the writer thread"
    assert list(tmp_path.iterdir()) == [], "the unfinished part file must be closed and removed"


def test_reader_takes_labels_under_either_name_and_names_a_non_hdf5_file(tmp_path):
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 16, 16, 3), np.uint8)
        f["labels"] = np.array([4, 5, 6])
    assert [HDF5FaceDataset(path)[i][1] for i in range(3)] == [4, 5, 6]
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5 file"):
        HDF5FaceDataset(tmp_path / "text.h5")


def test_photos_read_upright_and_16_bit_grey_scaled(tmp_path):
    """Phone photos carry their orientation in EXIF: expand (and augment) read them as a viewer
    shows them; a 16-bit grey PNG is scaled to 8 bits, not clipped to white."""
    from genaug.cli.augment import _read
    from genaug.expand.sources import FolderSource

    rng = np.random.default_rng(0)
    upright = rng.integers(0, 256, (60, 40, 3), dtype=np.uint8)  # H 60, W 40
    stored = Image.fromarray(np.ascontiguousarray(np.rot90(upright, -1)))  # as the camera stored it: 40 x 60
    exif = stored.getexif()
    exif[0x0112] = 8  # "rotate 90 CW to view" (the stored image is turned 90 CCW)
    stored.save(tmp_path / "phone.png", exif=exif)
    grey16 = (rng.integers(0, 256, (32, 32)).astype(np.uint16) * 257)
    Image.fromarray(grey16).save(tmp_path / "deep.png")
    src = FolderSource(tmp_path)
    assert src.paths == ["deep.png", "phone.png"]
    np.testing.assert_array_equal(src.load(1, 3), upright)
    np.testing.assert_array_equal(src.load(0, 1)[..., 0], grey16 // 257)
    np.testing.assert_array_equal(_read(tmp_path / "phone.png").pixels, upright)
    np.testing.assert_array_equal(_read(tmp_path / "deep.png").pixels, grey16 // 257)


def test_channels_first_hdf5_source_refused_up_front(tmp_path):
    src = tmp_path / "nchw.h5"
    with h5py.File(src, "w") as f:
        f["images"] = np.zeros((3, 3, 32, 32), np.uint8)
    with pytest.raises(ExpandError, match="channels first"):
        expand_to_hdf5(src, tmp_path / "o.h5", 1)


def test_reader_refuses_variants_the_file_lacks(reference, tmp_path):
    """``variants=[0]`` from a file written without ``--include-original`` (or a variant past
    ``--variants``) was an empty dataset, so a DataLoader silently yielded nothing."""
    assert len(HDF5FaceDataset(reference, variants=[1, 3])) == 16 and len(HDF5FaceDataset(reference, variants=0)) == 8
    with pytest.raises(ValueError, match=r"holds no variant \[4\] \(it holds \[0, 1, 2, 3\]"):
        HDF5FaceDataset(reference, variants=[1, 4])
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["images"] = np.zeros((2, 16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match="no 'variant' dataset"):
        HDF5FaceDataset(plain, variants=[0])


def test_variants_0_with_the_originals_converts_the_source(tmp_path, reference, synth, tiny_bundle_path, capsys):
    """``--variants 0 --include-original`` (as ``GenerativeAugDataset(variants=0, include_original=True)``)
    writes the originals only, the same records as variant 0 of a full run; ``--variants 0`` alone stays refused."""
    out = tmp_path / "originals.h5"
    expand_to_hdf5(synth, out, 0, bundle=tiny_bundle_path, include_original=True, seed=7, **FAST)
    ours, ref = records(out), records(reference)
    keep = ref["variant"] == 0
    for k in COMPARED:
        want = ref[k][keep]
        assert np.array_equal(ours[k], want, equal_nan=True) if want.dtype.kind == "f" else np.array_equal(ours[k], want), k
    assert main([str(synth), str(tmp_path / "none.h5"), "--variants", "0", "--bundle", str(tiny_bundle_path)]) == 2
    assert "or 0 with --include-original" in capsys.readouterr().err


def test_an_output_written_as_a_folder_is_refused(tmp_path, synth, tiny_bundle_path, capsys):
    """``genaug expand faces/ out/new/`` wrote a file named ``out/new``."""
    assert main([str(synth), str(tmp_path / "new") + "/", "--bundle", str(tiny_bundle_path)]) == 1
    assert "is a folder; give the path of an .h5 file" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_home_paths_are_expanded_as_a_shell_would(tmp_path, synth, tiny_bundle_path, monkeypatch):
    """``expand_to_hdf5("~/faces", "~/out.h5")`` looked for a folder named ``~`` in the working folder."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    shutil.copytree(synth, tmp_path / "home" / "faces")
    expand_to_hdf5("~/faces", "~/out.h5", 1, bundle=tiny_bundle_path, seed=7, **FAST)
    assert (tmp_path / "home" / "out.h5").is_file() and not (tmp_path / "~").exists()
    assert len(HDF5FaceDataset("~/out.h5")) == 8
