"""codes= as every front end reads it: names, indices and c<i>, numpy and torch integers (latent codes and
image-space controls alike); odd lists are refused."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import genaug
from conftest import batch_aug, demo_face, noise_batch
from genaug.expand import expand_to_hdf5


def test_numpy_integer_codes_are_indices(tmp_path, noise_faces):
    # codes=list(np.arange(5, 8)) crashed with "'numpy.int64' object has no attribute 'startswith'" (Engine,
    # GenerativeAugDataset, BatchFaceAug) and expand_to_hdf5 with "Object of type int64 is not JSON serializable"
    import torch

    from genaug.engine import Engine

    codes = list(np.arange(5, 8))
    assert Engine("default", device="cpu", codes=codes).codes == [5, 6, 7]
    assert Engine("default", device="cpu", codes=[torch.tensor(6)]).codes == [6]
    aug = batch_aug(device="cpu", p=1.0, seed=0, codes=codes)
    aug(noise_batch())
    assert set(aug._params.code.tolist()) <= {5, 6, 7}
    with pytest.raises(ValueError, match="code must be a name or an index, got float"):
        Engine("default", device="cpu", codes=[5.0])
    r = expand_to_hdf5(noise_faces, tmp_path / "o.h5", 1, codes=codes, device="cpu", progress=False)
    assert r.n_records == 2


def test_numpy_and_torch_integers_name_the_image_space_controls_as_ints_do():
    """``codes=np.array([8, 9])`` (yaw, light by index, as ``genaug info`` numbers them) was 'code index 8 out of range:
    this latent has 8 codes' in the Dataset wrapper, the batch transform and the engine, while ``[8, 9]`` worked (a
    numpy or 0-d torch integer reached only the latent codes); ``--codes c8`` (the CLI's "names or c<i>") was an
    unknown code; ``codes=[5.0]`` was read as 5 by the transform alone."""
    from genaug.bundle.format import read_spec
    from genaug.engine.codes import all_code_names

    names = all_code_names(read_spec("default"))
    yaw, light = names.index("yaw"), names.index("light")
    assert yaw >= len(read_spec("default").codes)  # a control: numbered after the latent codes
    face = demo_face()
    engine = genaug.Engine(device="cpu", codes=[np.int64(yaw), torch.tensor(light)])
    assert engine.codes == [yaw, light] and genaug.Engine(device="cpu", codes=[f"c{yaw}", "c5"]).codes == [yaw, 5]
    with pytest.raises(ValueError, match="unknown code 'c99'"):
        genaug.Engine(device="cpu", codes=["c99"])
    ds = genaug.GenerativeAugDataset([face], variants=2, codes=np.array([yaw, light]), bounds={np.int64(yaw): (5, 10)},
                                     lazy=True, progress=False)
    assert {ds.meta(i).description.split("=")[0] for i in range(2)} <= {"yaw", "light"}
    _, params = genaug.BatchFaceAug(p=1.0, codes=np.array([yaw, light]), seed=0, return_params=True)(
        torch.from_numpy(face.copy()).permute(2, 0, 1)[None])
    assert params.edits()[0].code in (yaw, light)
    _, info = engine.augment(face, edits=[(torch.tensor(yaw), 10.0)])
    assert info.descriptions == ["yaw=+10.0"]
    for make in (lambda: genaug.GenerativeFaceAug(codes=[5.0]), lambda: genaug.Engine(codes=[5.0])):
        with pytest.raises(ValueError, match="code must be a name or an index, got float 5.0"):
            make()


@pytest.mark.parametrize("codes, message", [(["tone", 5], "name the same code"), (["smile", "smile"], "name the same code"),
                                            ([-1], "not a code name or index"), ([True], "not a code name or index")])
def test_odd_code_lists_are_refused_by_every_front_end(codes, message):
    # [-1] read as the last latent code, [True] as code 1, a duplicate drawn twice as often - all silently
    for make in (lambda: genaug.GenerativeFaceAug(codes=codes), lambda: genaug.BatchFaceAug(codes=codes),
                 lambda: genaug.Engine(codes=codes)):
        with pytest.raises(ValueError, match=message):
            make()
    with pytest.raises(ValueError, match="quality_threshold"):
        genaug.GenerativeFaceAug(quality_threshold=True)  # read as 1.0: every edit rejected
