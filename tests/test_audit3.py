"""A third user audit: what users of albumentations, PyTorch, torchvision and h5py try first and
what the front ends promised but did not do (each test failed before its fix)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from conftest import noise_pngs
from genaug.cli import main
from genaug.expand import ExpandError, expand_to_hdf5


@pytest.fixture()
def faces(tmp_path):
    return noise_pngs(tmp_path / "faces", high=255)


@pytest.mark.parametrize("codes, needle", [("smile", "the string 'smile'"), ([], "name at least one code")])
def test_expand_refuses_a_string_or_empty_codes(faces, tmp_path, codes, needle):
    # codes="smile" was read letter by letter (unknown code 's'); codes=[] silently meant the random set
    with pytest.raises(ExpandError, match=needle):
        expand_to_hdf5(faces, tmp_path / "o.h5", 1, codes=codes, device="cpu", progress=False)
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize("cmd", ["expand", "augment"])
@pytest.mark.parametrize("codes", ["", ","])
def test_cli_codes_naming_no_code_is_refused(faces, tmp_path, capsys, cmd, codes):
    # `--codes ""` (an unset shell variable) silently edited the random set
    out = tmp_path / ("o.h5" if cmd == "expand" else "out")
    argv = [cmd, str(faces), str(out)] if cmd == "expand" else [cmd, str(faces), "--out", str(out)]
    assert main([*argv, "--codes", codes, "--device", "cpu"]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"genaug {cmd}: error: --codes") and "names no code" in err, err
    assert not out.exists()


@pytest.mark.parametrize("kw, needle", [(dict(size="8x8"), "--size 8x8 is too small"),
                                        (dict(variants=1.5), "--variants must be a whole number")])
def test_expand_refuses_bad_size_and_variants_up_front(faces, tmp_path, kw, needle):
    # --size 8x8 failed mid-run on the first record (parts left behind); variants=1.5 was a bare TypeError
    with pytest.raises(ExpandError, match=needle):
        expand_to_hdf5(faces, tmp_path / "o.h5", **{"variants": 1, **kw}, device="cpu", progress=False)
    assert not (tmp_path / "o.h5.parts").exists()


def test_a_nan_gate_threshold_and_a_non_integer_seed_are_refused(tiny_bundle_path):
    # NaN: no similarity is below it, so the identity gate silently never acted; seed=1.7 became 1
    import math

    from genaug import GenerativeAugDataset
    from genaug.engine import Engine

    base = [np.zeros((32, 32, 3), np.uint8)]
    with pytest.raises(ValueError, match="gate_threshold must be a finite"):
        Engine(tiny_bundle_path, device="cpu", gate_threshold=math.nan)
    for kw, needle in [(dict(gate_threshold=math.nan), "gate_threshold must be a finite"),
                       (dict(seed=1.7), "seed must be a whole number"), (dict(seed="a"), "seed must be a whole number")]:
        with pytest.raises(ValueError, match=needle):
            GenerativeAugDataset(base, variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True, **kw)
    assert len(GenerativeAugDataset(base, variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True, seed=np.int64(3))) == 1


def test_hdf5_reader_refuses_a_float_index_and_an_empty_variant_list(tmp_path):
    # ds[1.5] returned record 1 (lists, GenerativeAugDataset: TypeError); variants=[] gave an empty dataset
    import h5py
    import torch

    from genaug.expand.hdf5 import HDF5FaceDataset

    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((4, 16, 16, 3), np.uint8)
        f["label"] = np.arange(4)
        f["variant"] = np.array([1, 2, 1, 2], np.int16)
    ds = HDF5FaceDataset(path)
    with pytest.raises(TypeError, match="indices must be integers"):
        ds[1.5]
    assert ds[np.int64(1)][1] == 1 and ds[torch.tensor(2)][1] == 2 and ds[-1][1] == 3
    with pytest.raises(ValueError, match="at least one variant"):
        HDF5FaceDataset(path, variants=[])
    assert len(HDF5FaceDataset(path, variants=[2])) == 2


def _batch(n=2, size=64):
    import torch

    return torch.from_numpy(np.random.default_rng(1).integers(0, 255, (n, 3, size, size), dtype=np.uint8))


_DEFAULT = []


def _batch_aug(**kw):
    """A BatchFaceAug over the default bundle (the edit kind: one encoder pass inverts), loaded once."""
    from genaug import BatchFaceAug
    from genaug.bundle.format import load_bundle

    if not _DEFAULT:
        _DEFAULT.append(load_bundle("default"))
    return BatchFaceAug(bundle=_DEFAULT[0], device="cpu", **kw)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_batch_aug_keeps_channels_last_memory_format(dtype):
    # a channels_last batch (the layout a CNN trained with channels_last feeds) came back contiguous NCHW
    import torch

    x = _batch()
    x = x if dtype == "uint8" else x.float() / 255
    cl = x.contiguous(memory_format=torch.channels_last)
    aug = _batch_aug(p=1.0, seed=0)
    ref = aug(x)
    out = aug(cl, params=aug._params)
    assert out.is_contiguous(memory_format=torch.channels_last) and not out.is_contiguous()
    assert ref.is_contiguous()  # the same edits (float: within the layouts' kernel rounding)
    assert (out.float() - ref.float()).abs().max() <= (1 if dtype == "uint8" else 1e-5)
    for c, rows in ((1, x[:, :1]), (4, torch.cat([x, x[:, :1]], 1))):  # grey and RGBA too
        y = aug(rows.contiguous(memory_format=torch.channels_last))
        assert y.shape[1] == c and y.is_contiguous(memory_format=torch.channels_last)


def test_batch_aug_names_a_channels_last_shaped_batch():
    # an (N, H, W, C) batch was refused as "images 32x3 are too small to hold a face"
    aug = _batch_aug(p=1.0, seed=0)
    with pytest.raises(ValueError, match=r"looks channels-last \(NHWC\).*permute\(0, 3, 1, 2\)"):
        aug(_batch().permute(0, 2, 3, 1).contiguous())


def test_dataset_names_a_base_that_is_not_map_style(tiny_bundle_path):
    # an iterator or IterableDataset failed with "object of type 'list_iterator' has no len()" from inside prepare
    import torch

    from genaug import GenerativeAugDataset

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            yield np.zeros((32, 32, 3), np.uint8)

        def __len__(self):
            return 1

    images = [np.zeros((32, 32, 3), np.uint8)]
    for base in (iter(images), (im for im in images), Stream()):
        with pytest.raises(TypeError, match="base must be a map-style dataset"):
            GenerativeAugDataset(base, variants=1, bundle=tiny_bundle_path, device="cpu", lazy=True)
    assert len(GenerativeAugDataset(images, variants=2, bundle=tiny_bundle_path, device="cpu", lazy=True)) == 2


def test_numpy_integer_codes_are_indices(tmp_path, faces):
    # codes=list(np.arange(5, 8)) crashed with "'numpy.int64' object has no attribute 'startswith'" (Engine,
    # GenerativeAugDataset, BatchFaceAug) and expand_to_hdf5 with "Object of type int64 is not JSON serializable"
    import torch

    from genaug.engine import Engine

    codes = list(np.arange(5, 8))
    assert Engine("default", device="cpu", codes=codes).codes == [5, 6, 7]
    assert Engine("default", device="cpu", codes=[torch.tensor(6)]).codes == [6]
    aug = _batch_aug(p=1.0, seed=0, codes=codes)
    aug(_batch())
    assert set(aug._params.code.tolist()) <= {5, 6, 7}
    with pytest.raises(ValueError, match="code must be a name or an index, got float"):
        Engine("default", device="cpu", codes=[5.0])
    r = expand_to_hdf5(faces, tmp_path / "o.h5", 1, codes=codes, device="cpu", progress=False)
    assert r.n_records == 2


def test_augment_writes_a_grey_photo_with_alpha_back_as_grey_with_alpha(tmp_path, capsys):
    # an "LA" PNG (grey + transparency) came back RGBA, while "L" stays "L" and the transform keeps PIL "LA"
    d = tmp_path / "faces"
    d.mkdir()
    rng = np.random.default_rng(0)
    la = np.dstack([rng.integers(0, 255, (40, 40), dtype=np.uint8), np.full((40, 40), 200, np.uint8)])
    Image.fromarray(la, "LA").save(d / "ga.png")
    assert main(["augment", str(d), "--out", str(tmp_path / "out"), "--device", "cpu", "--variants", "1"]) == 0
    out = Image.open(tmp_path / "out" / "ga_aug00.png")
    assert out.mode == "LA" and out.size == (40, 40)
    assert np.array_equal(np.asarray(out)[..., 1], la[..., 1])  # alpha kept


def test_dataset_cache_path_expands_home_and_refuses_a_folder(tiny_bundle_path, tmp_path, monkeypatch):
    # cache_path="~/x.safetensors" wrote ./~/x.safetensors; a folder failed after the whole inversion
    # ("[Errno 21] Is a directory: 'cdir.5133.tmp' -> 'cdir'")
    from genaug import GenerativeAugDataset

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    base = [np.zeros((32, 32, 3), np.uint8)]
    kw = dict(variants=1, bundle=tiny_bundle_path, device="cpu", refine_steps=0, progress=False)
    GenerativeAugDataset(base, cache_path="~/faces.latents.safetensors", **kw)
    assert (home / "faces.latents.safetensors").is_file() and not (cwd / "~").exists()
    with pytest.raises(ValueError, match="is a folder: give a file in it"):
        GenerativeAugDataset(base, cache_path=tmp_path, **kw)


def test_expand_refuses_a_seed_beyond_64_bits_and_a_failed_merge_leaves_no_temp_file(faces, tmp_path, monkeypatch):
    # --seed 99999999999999999999999 ran every block, then failed at the merge with h5py's traceback
    # ("Object dtype dtype('O') has no native HDF5 equivalent"), leaving OUT.<pid>.tmp beside the output
    import genaug.expand.pipeline as pipeline

    out = tmp_path / "o.h5"
    with pytest.raises(ExpandError, match="--seed must be a whole number that fits in 64 bits"):
        expand_to_hdf5(faces, out, 1, seed=10**23, device="cpu", progress=False)
    assert not (tmp_path / "o.h5.parts").exists()
    attrs = pipeline._file_attrs
    monkeypatch.setattr(pipeline, "_file_attrs", lambda *a, **k: {**attrs(*a, **k), "unwritable": 10**23})
    with pytest.raises(TypeError):
        expand_to_hdf5(faces, out, 1, device="cpu", progress=False)
    assert not out.exists() and not list(tmp_path.glob("o.h5*.tmp"))
    monkeypatch.setattr(pipeline, "_file_attrs", attrs)
    assert expand_to_hdf5(faces, out, 1, device="cpu", progress=False).n_records == 2  # resumes and merges


def test_augment_names_a_seed_beyond_64_bits(faces, tmp_path, capsys):
    # was "genaug augment: error: Overflow when unpacking long long", naming no option
    assert main(["augment", str(faces), "--out", str(tmp_path / "out"), "--seed", str(10**23), "--device", "cpu"]) == 2
    assert "--seed must fit in 64 bits" in capsys.readouterr().err


def test_batch_aug_names_a_seed_beyond_64_bits():
    # was torch's "Overflow when unpacking long long"
    with pytest.raises(ValueError, match="seed must be a whole number that fits in 64 bits"):
        _batch_aug(seed=10**23)
    assert _batch_aug(seed=2**64 - 1).generator.initial_seed() == 2**64 - 1


def test_ctrl_c_ends_a_command_with_one_line(faces, tmp_path, capsys, monkeypatch):
    # Ctrl-C during `genaug expand` (resumable by design) printed a page of traceback from inside torch
    import genaug.expand.pipeline as pipeline

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline, "_expand_blocks", interrupted)
    try:
        code = main(["expand", str(faces), str(tmp_path / "o.h5"), "--variants", "1", "--device", "cpu", "--quiet"])
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped genaug's command line")
    assert code == 130
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and err.splitlines()[-1] == (
        "genaug expand: interrupted (finished blocks are kept: rerun the same command to resume)")


def test_demo_out_may_be_a_folder_and_a_bad_extension_is_named(tiny_bundle_path, tmp_path, capsys, monkeypatch):
    # --out FOLDER (as augment's --out) failed after the work with "unknown file extension: "; --out x.txt likewise
    import genaug.cli.demo as demo

    monkeypatch.setattr(demo, "face_panel", lambda *a, **k: Image.new("RGB", (8, 8)))  # the sweeps are not the point
    run = ["demo", "--bundle", str(tiny_bundle_path), "--refine-steps", "0", "--generated", "0", "--max-faces", "1",
           "--device", "cpu"]
    assert main([*run, "--out", str(tmp_path / "x.txt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("genaug demo: error: --out") and "'.txt'" in err, err
    assert main([*run, "--out", str(tmp_path)]) == 0
    assert Image.open(tmp_path / "genaug_demo.png").size[0] > 0
