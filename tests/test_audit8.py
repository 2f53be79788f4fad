"""An eighth user audit (2026-12-05, seventh session), as albumentations, PyTorch and h5py users would meet it: variants
of a photo without a found face that came out identical, big-endian float images, size pairs and float labels in the
expansion, `genaug augment`'s per-file draws, a cut-out's alpha through a turn, 16-bit / float PIL images, demo and
replay checks (each test failed before its fix)."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

import genaug
from genaug.faces.identity import faces_extra_available
from test_audit4 import _texture


@pytest.mark.skipif(not faces_extra_available(), reason="needs the faces extra (dlib) for auto framing's face search")
def test_controls_redrawn_for_a_photo_without_a_face_keep_its_variants_distinct(tmp_path):
    # seed 0 plans glasses=switch and light for the source; with no face found the light was re-drawn among the latent
    # codes as glasses=switch again: two identical "distinct" variants (dataset items and HDF5 records alike)
    import h5py
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    img, codes = _texture(), ["smile", "glasses", "yaw", "light"]
    ds = genaug.GenerativeAugDataset([img], variants=2, codes=codes, return_meta=True, device="cpu", progress=False, seed=0)
    assert [ds.meta(i).description.split("=")[0] for i in range(2)] == ["glasses", "light"]  # the plan this test needs
    items = [ds[i] for i in range(2)]
    assert {m.description for _, m in items} == {"glasses=1", "smile=1"}
    assert not np.array_equal(items[0][0], items[1][0])
    assert np.array_equal(ds[1][0], items[1][0])  # the same on every read
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(img).save(src / "texture.png")
    expand_to_hdf5(src, tmp_path / "x.h5", 2, codes=codes, size="source", device="cpu", progress=False, seed=0)
    with h5py.File(tmp_path / "x.h5") as f:
        values, images = f["codes"][()], f["images"][()]
    assert [tuple(np.flatnonzero(np.isfinite(v))) for v in values] in ([(1,), (0,)], [(0,), (1,)])  # glasses and smile
    assert not np.array_equal(images[0], images[1])


def test_big_endian_float_images_are_edited_and_keep_their_dtype():
    # ">f4" (FITS, some HDF5 / raw files) was refused as "unsupported image dtype >f4: use ... float32"
    img = (np.random.default_rng(0).integers(40, 220, (64, 64, 3)) / 255).astype(">f4")
    t = genaug.GenerativeFaceAug(p=1, codes=["tone"], device="cpu", framing="full")
    out = A.Compose([t], seed=0)(image=img)["image"]
    assert out.dtype == np.dtype(">f4") and out.shape == img.shape
    ref = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["tone"], device="cpu", framing="full")], seed=0)(
        image=img.astype(np.float32))["image"]
    np.testing.assert_allclose(out.astype(np.float32), ref, atol=1e-6)


def test_expand_takes_a_size_pair_and_names_a_size_it_cannot_read(tmp_path, tiny_bundle_path):
    # size=(W, H), as PIL gives sizes, crashed with "AttributeError: 'tuple' object has no attribute 'lower'"
    import h5py

    from genaug.expand import ExpandError, expand_to_hdf5
    from test_hdf5 import FAST, synth_folder

    src, fast = synth_folder(tmp_path / "src", per_class=2), {**FAST, "refine_steps": 0, "framing": "full"}
    expand_to_hdf5(src, tmp_path / "pair.h5", 1, bundle=tiny_bundle_path, size=(40, 36), **fast)
    expand_to_hdf5(src, tmp_path / "text.h5", 1, bundle=tiny_bundle_path, size="40x36", **fast)
    with h5py.File(tmp_path / "pair.h5") as a, h5py.File(tmp_path / "text.h5") as b:
        assert a["images"].shape == (4, 36, 40, 3)
        assert a.attrs["run_key"] == b.attrs["run_key"]  # one run, however the size was spelled
        assert np.array_equal(a["images"][()], b["images"][()])
    with pytest.raises(ExpandError, match="--size must be 'model', 'source' or WIDTHxHEIGHT"):
        expand_to_hdf5(src, tmp_path / "int.h5", 1, bundle=tiny_bundle_path, size=64, **fast)


@pytest.mark.parametrize("labels, shown", [([3.0, 4.5], "4.5"), ([float("nan"), 1.0], "nan")])
def test_hdf5_source_labels_that_are_not_class_indices_are_refused(tmp_path, labels, shown):
    # float labels were cast to int64 silently: 4.5 became class 4, NaN (an unknown label) -9223372036854775808
    import h5py

    from genaug.expand import ExpandError, expand_to_hdf5

    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["images"] = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        f["labels"] = np.array(labels)
    with pytest.raises(ExpandError, match=rf"'labels' must hold whole class indices .* such as \[{shown}\]"):
        expand_to_hdf5(src, tmp_path / "o.h5", 1, device="cpu", progress=False)
    assert not (tmp_path / "o.h5").exists()
    with h5py.File(src, "r+") as f:  # whole numbers stored as floats are class indices
        del f["labels"]
        f["labels"] = np.array([3.0, 4.0])
    from genaug.expand.sources import HDF5Source

    assert HDF5Source(src).labels.tolist() == [3, 4]


def test_augment_gives_a_file_the_same_variants_whatever_else_the_folder_holds(tmp_path):
    """Image k of a chunk drew its edits from (seed, chunk start + k-th readable file): a file added or unreadable
    before it changed the variants written for it. Now a file's path below the input folder picks them."""
    from PIL import Image

    from genaug.cli.main import main

    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "c.png", "d.png"):
        Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(src / name)
    args = ["--variants", "2", "--refine-steps", "0", "--framing", "full", "--device", "cpu"]  # the default model
    assert main(["augment", str(src), "--out", str(tmp_path / "one"), *args]) == 0
    (src / "b.png").write_bytes(b"not an image")  # sorts before c and d
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(src / "bb.png")
    assert main(["augment", str(src), "--out", str(tmp_path / "two"), *args]) == 0
    read = lambda p: np.asarray(Image.open(p))  # noqa: E731
    for stem in ("c", "d"):
        for v in range(2):
            assert np.array_equal(read(tmp_path / "one" / f"{stem}_aug{v:02d}.png"), read(tmp_path / "two" / f"{stem}_aug{v:02d}.png"))
    first, second = (read(tmp_path / "one" / f"c_aug{v:02d}.png").astype(int) for v in (0, 1))
    assert np.abs(first - second).mean() > 0.5  # the variants do follow the draw (else the test could not fail)


def test_a_turn_moves_a_cut_outs_alpha_with_its_pixels():
    """``yaw`` moved the colour channels with the head while the alpha channel stayed put: a cut-out's mask no longer
    covered its face. An alpha equal to the red channel must stay equal to it through a turn."""
    from PIL import Image

    from conftest import CELEBA_ID200, need

    photo = np.asarray(Image.open(sorted(sorted(need(CELEBA_ID200).glob("0*"))[0].glob("*.jpg"))[0]).convert("RGB"))
    rgba = np.concatenate([photo, photo[..., :1]], -1)
    aug = genaug.GenerativeFaceAug(codes=["yaw"], bounds={"yaw": (20, 30)}, p=1.0)
    out = aug(image=rgba)["image"]
    assert out.shape == rgba.shape and out.dtype == np.uint8
    assert np.abs(out[..., 0].astype(int) - photo[..., 0]).mean() > 1  # the head did turn
    assert np.abs(out[..., 3].astype(int) - out[..., 0]).max() <= 1  # and the alpha turned with it


@pytest.mark.parametrize("mode, white", [("I;16", 65535), ("I;16B", 65535), ("I", 65535), ("F", 1.0), ("F", 255.0)])
def test_16_bit_and_float_pil_images_keep_their_mode_and_scale(mode, white):
    """A 16-bit PNG or float TIFF given as a PIL image came back as an 8-bit "L" variant, while the original
    (``include_original=True``) kept its mode: the variants were read down to 8 bits and never written back.
    Each variant now has its base image's mode and scale (16-bit white is 65535, float white 1.0 or 255)."""
    from PIL import Image

    grey = np.random.default_rng(0).integers(40, 220, (64, 64)).astype(np.float64)
    base = grey / 255 * white
    if mode.startswith("I;16"):
        pil = Image.frombytes(mode, (64, 64), np.rint(base).astype(">u2" if mode.endswith("B") else "<u2").tobytes())
    else:
        pil = Image.fromarray(np.rint(base).astype(np.int32) if mode == "I" else base.astype(np.float32))
    kw = dict(variants=1, include_original=True, codes=["tone"], framing="full", refine_steps=0, device="cpu",
              progress=False, seed=0)
    ds = genaug.GenerativeAugDataset([(pil, 1)], **kw)
    assert ds[0][0] is pil
    out = ds[1][0]
    assert out.mode == mode and out.size == pil.size
    ref = np.asarray(genaug.GenerativeAugDataset([(Image.fromarray(grey.astype(np.uint8)), 1)], **kw)[1][0], np.float64)
    got = np.asarray(out, np.float64) / white * 255
    assert np.abs(ref - grey).mean() > 0.5  # the variant is an edit (else the test could not tell scales apart)
    assert np.abs(got - ref).max() <= 1.0  # the same edit, in the base image's scale


def test_hdf5_dataset_refuses_labels_that_are_not_class_indices(tmp_path):
    """``HDF5FaceDataset`` read a foreign file's float label with ``int()``: 4.5 came back as class 4, and NaN failed
    with "cannot convert float NaN to integer" naming neither file nor record. Such labels are now refused by name,
    as the expansion's HDF5 source refuses them; whole numbers stored as floats are still class indices."""
    import h5py

    from genaug.expand import HDF5FaceDataset

    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 16, 16, 3), np.uint8)
        f["labels"] = np.array([3.0, 4.5, np.nan])
    ds = HDF5FaceDataset(path)
    assert ds[0][1] == 3 and type(ds[0][1]) is int
    with pytest.raises(ValueError, match=r"foreign\.h5: 'labels' of record 1 is 4\.5, not a whole class index"):
        ds[1]
    with pytest.raises(ValueError, match=r"foreign\.h5: 'labels' of record 2 is nan, not a whole class index"):
        ds[-1]


def test_demo_refuses_generated_faces_from_an_edit_model(tmp_path, capsys):
    """``genaug demo --generated 3`` with the default (edit-kind) bundle wrote a picture without any generated face and
    said nothing: an edit model cannot invent faces, so the option was dropped silently. An explicit count is now
    refused by name (the default, and ``--generated 0``, still show the real faces only)."""
    from genaug.cli.main import main

    out = tmp_path / "demo.png"
    assert main(["demo", "--generated", "3", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--generated 3:" in err and "cannot generate random ones" in err
    assert not out.exists()
    from genaug.cli.demo import build_parser

    assert "only for bundles that can generate faces" in " ".join(build_parser().format_help().split())


@pytest.mark.filterwarnings("ignore:Got processor for bboxes")  # the Compose holds no geometric transform
def test_replaying_a_drawn_turn_beside_boxes_is_refused():
    """A fresh call with boxes, masks or keypoints never draws ``yaw`` (or refuses codes=["yaw"]), since the head
    would turn while the boxes stay put; but ``A.ReplayCompose.replay`` of a record that drew a turn skipped that
    check and returned the turned face with its boxes unmoved. The replay is now refused by name."""
    img = np.random.default_rng(0).integers(40, 220, (64, 64, 3), dtype=np.uint8)
    aug = A.ReplayCompose([genaug.GenerativeFaceAug(p=1, codes=["yaw"], framing="full", refine_steps=0, device="cpu")],
                          bbox_params=A.BboxParams("pascal_voc", label_fields=[]))
    record = aug(image=img)["replay"]
    assert [aug.transforms[0].engine.code_names[e[0]] for e in record["transforms"][0]["params"]["edits"]] == ["yaw"]
    boxes = np.array([[10.0, 10.0, 50.0, 50.0]])
    with pytest.raises(ValueError, match=r"this replay's record drew \['yaw'\].* this call's bboxes would come back unmoved"):
        A.ReplayCompose.replay(record, image=img, bboxes=boxes)
    assert A.ReplayCompose.replay(record, image=img, bboxes=np.zeros((0, 4)))["image"].shape == img.shape  # none to move
