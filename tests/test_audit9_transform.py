"""A ninth user audit (the albumentations transform and ``genaug augment``): each test failed before its fix."""
from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
from PIL import Image

import genaug
from genaug.cli.augment import output_stems


def test_augment_names_inputs_whose_names_differ_only_in_case_or_suffix_apart(tmp_path):
    # a.jpg + a.JPG both became "a_jpg", and b.png's "b_png" met b_png.jpg's own stem: five inputs, three outputs
    # ("wrote 5 augmented images"), the others overwritten
    files = [tmp_path / n for n in ("a.jpg", "a.JPG", "b.jpg", "b.png", "b_png.jpg", "sub/c.png")]
    names = output_stems({f: f.relative_to(tmp_path) for f in files})
    assert len({n.as_posix().lower() for n in names.values()}) == len(files), names
    assert names[tmp_path / "b.jpg"] == Path("b_jpg") and names[tmp_path / "sub/c.png"] == Path("sub/c")


@pytest.mark.parametrize("mode", ["P", "L"])
def test_augment_keeps_the_transparency_of_a_palette_or_grey_cut_out(tmp_path, mode):
    # a PNG whose transparency is a palette entry or a tRNS grey level was read as RGB / L: the variants came back
    # opaque, the cut-out's background painted in
    from genaug.cli.augment import _read

    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(30, 220, (40, 40, 3), dtype=np.uint8)).convert(mode)
    path = tmp_path / "cut.png"
    rgb.save(path, transparency=int(np.asarray(rgb)[0, 0]))  # a palette index / grey level the image uses
    want = np.asarray(Image.open(path).convert("RGBA"))[..., 3]
    assert want.min() == 0 < want.max()
    img = _read(path).pixels
    assert img.shape == (40, 40, 4) and np.array_equal(img[..., 3], want)
    if mode == "L":  # grey kept grey, written back as grey with alpha
        assert np.array_equal(img[..., 0], img[..., 1])


def test_a_batch_record_replayed_on_a_batch_of_another_size_is_refused():
    # the record of a 3-image `images=` call replayed on 2 images gave both the first image's edit, silently
    rng = np.random.default_rng(0)
    batch = rng.integers(40, 220, (3, 48, 48, 3), dtype=np.uint8)
    aug = A.ReplayCompose([genaug.GenerativeFaceAug(p=1, codes=["tone", "shade"], framing="full", device="cpu")])
    aug.set_random_seed(0)
    first = aug(images=batch)
    assert len({tuple(e) for e in first["replay"]["transforms"][0]["params"]["edits"]}) == 3
    np.testing.assert_array_equal(A.ReplayCompose.replay(first["replay"], images=batch)["images"], first["images"])
    with pytest.raises(ValueError, match="edits of a batch of 3 images, but this call has 2"):
        A.ReplayCompose.replay(first["replay"], images=batch[:2])
    one = aug(image=batch[0])["replay"]  # one image's record still applies to a whole batch
    assert A.ReplayCompose.replay(one, images=batch)["images"].shape == batch.shape


def test_two_ranges_for_one_code_are_refused():
    # bounds={"tone": (0, 0.5), 5: (-1, -0.5)} name one code twice (as codes=["tone", 5] is refused): the last range
    # won and the other was dropped unseen
    from genaug.bundle import read_spec

    tone = read_spec("default").code_index("tone")
    with pytest.raises(ValueError, match="already given a range"):
        genaug.GenerativeFaceAug(codes=["tone"], bounds={"tone": (0.0, 0.5), tone: (-1.0, -0.5)})
    with pytest.raises(ValueError, match="already given a range"):
        genaug.GenerativeFaceAug(bounds={f"c{tone}": (0.0, 0.5), "tone": (0.0, 0.5)})


@pytest.mark.parametrize("strength", [False, True, (False, True)])
def test_a_bool_strength_is_refused(strength):
    # strength=False read as 0.0: every call a silent no-op while last_info recorded an edit (Engine(strength=...) refuses
    # a bool)
    with pytest.raises(ValueError, match="strength must be a number"):
        genaug.GenerativeFaceAug(strength=strength)


@pytest.mark.parametrize("strength", [False, True, (False, 1.0)])
def test_a_bool_strength_is_refused_by_the_batch_transform_too(strength):
    with pytest.raises(ValueError, match="strength"):
        genaug.BatchFaceAug(strength=strength)


def test_bounds_for_a_code_random_edits_never_draw_warn():
    # bounds={"yaw": ...} beside codes=["light"] (a code random edits never draw) was ignored without a word
    with pytest.warns(UserWarning, match=r"bounds for \['yaw'\] have no effect"):
        genaug.GenerativeFaceAug(codes=["light"], bounds={"yaw": (-20.0, 20.0)})
    with pytest.warns(UserWarning, match=r"bounds for \['shade'\] have no effect"):
        genaug.GenerativeFaceAug(codes=["tone"], bounds={"shade": (0.0, 0.5)})
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        genaug.GenerativeFaceAug(codes=["yaw", "light"], bounds={"yaw": (-20.0, 20.0)})  # the README's example
        genaug.GenerativeFaceAug(bounds={"yaw": (-15.0, 15.0)})  # yaw is in the default random set
