"""A Dataset's variants of a photo where no face is found: a planned control is re-drawn among the latent codes,
distinct while those have moves left, and a warning names the item when they have none (the variants repeat)."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import genaug
from genaug.faces.identity import faces_extra_available

needs_face_search = pytest.mark.skipif(not faces_extra_available(),
                                       reason="needs the faces extra (dlib) for auto framing's face search")


def _noise(h: int = 160, w: int = 200) -> np.ndarray:
    """Random noise: no face anywhere, not a known frame."""
    return np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)


@needs_face_search
def test_variants_that_repeat_for_want_of_a_face_are_warned_about():
    # codes=["glasses", "yaw"] on a photo with no face: every planned turn was re-drawn as the one glasses switch, so
    # the source's 3 variants came back byte-identical, silently (meta "glasses=1" each, engine.stats as for faces)
    ds = genaug.GenerativeAugDataset([_noise()], variants=3, codes=["glasses", "yaw"], device="cpu", progress=False, seed=0)
    with pytest.warns(UserWarning, match=r"base item 0: no face found .* repeats glasses=switch"):
        items = [ds[i] for i in range(3)]
    assert all(np.array_equal(items[0], x) for x in items[1:])  # (documented: glasses=switch is its one latent edit)


@needs_face_search
def test_variants_with_latent_moves_left_stay_distinct_and_unwarned():
    ds = genaug.GenerativeAugDataset([_noise()], variants=6, device="cpu", progress=False, seed=0)  # the random set
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        items = [ds[i] for i in range(6)]
    metas = [ds.meta(i).description for i in range(6)]
    assert len(set(metas)) == 6 and all(m.split("=")[0] in ("tone", "shade", "warmth") for m in metas), metas
    assert not any(np.array_equal(a, b) for i, a in enumerate(items) for b in items[i + 1:])


@needs_face_search
def test_expand_says_how_many_variants_repeat_for_want_of_a_face(tmp_path, capsys):
    import h5py
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(_noise()).save(src / "noise.png")
    expand_to_hdf5(src, tmp_path / "x.h5", 3, codes=["glasses", "yaw"], size="source", device="cpu", progress=False, seed=0)
    assert "3 variant(s) repeat another variant of their source: no face found" in capsys.readouterr().err
    with h5py.File(tmp_path / "x.h5") as f:
        images = f["images"][()]
    assert all(np.array_equal(images[0], x) for x in images[1:])


@needs_face_search
def test_the_warning_numbers_variants_as_their_metas_do():
    # with include_original the warning counted from the first edited variant (0) while the items' metas count the
    # original as variant 0: "variant 0" named the item whose meta says variant 1
    ds = genaug.GenerativeAugDataset([_noise()], variants=2, codes=["glasses", "yaw"], device="cpu", progress=False,
                                     seed=0, include_original=True)
    for i in (1, 2):
        with pytest.warns(UserWarning, match=r"its variant (\d+)'s yaw is re-drawn") as caught:
            variant = ds.meta(i).variant  # (as applied: the item is rendered)
        assert variant == i and f"its variant {i}'s" in str(caught[0].message)


@needs_face_search
def test_framing_detect_without_a_face_warns_of_no_repeats(tmp_path, capsys):
    # framing="detect" finds no face: every variant is the unchanged source, said so ("unchanged (no face found)");
    # the Dataset also warned that its yaws were re-drawn as smiles repeating each other, and expand counted them as
    # "variant(s) repeat another variant" (this session's re-draw rule: no longer only for auto's guesses)
    from PIL import Image

    from genaug.expand import expand_to_hdf5

    ds = genaug.GenerativeAugDataset([_noise()], variants=3, codes=["glasses", "yaw"], framing="detect",
                                     return_meta=True, device="cpu", progress=False, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        said = [ds[i][1].description for i in range(3)]
    assert said == ["unchanged (no face found)"] * 3
    src = tmp_path / "photos"
    src.mkdir()
    Image.fromarray(_noise()).save(src / "noise.png")
    expand_to_hdf5(src, tmp_path / "x.h5", 3, codes=["glasses", "yaw"], framing="detect", size="source", device="cpu",
                   progress=False, seed=0)
    err = capsys.readouterr().err
    assert "no face found in 1 source image(s) (framing=detect)" in err and "repeat another variant" not in err, err
