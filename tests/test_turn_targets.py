"""A head turn moves the face but not the boxes, masks or keypoints beside it: no front end draws a turn
there, and each refuses one named, given by index or replayed."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch
from PIL import Image

import genaug
from conftest import demo_face, demo_faces, noise_photo
from genaug.demo import DEMO_FACES

torch.set_num_threads(1)


def test_albumentations_transform_keeps_yaw_away_from_boxes_and_keypoints():
    # an image-only transform: yaw moves the photo (and the nose), keypoints or boxes in the same Compose would
    # come back unmoved - the defaults leave yaw out of such calls, a named yaw is refused
    import albumentations as A

    face = np.asarray(Image.open(DEMO_FACES[0]).convert("RGB").resize((96, 96), Image.BICUBIC))
    aug = genaug.GenerativeFaceAug(p=1.0)
    aug.set_random_seed(0)
    yaw = aug.engine.code_names.index("yaw")
    plain = [e.code for _ in range(40) for e in aug.get_params_dependent_on_data({}, {"image": face})["edits"]]
    marked = [e.code for _ in range(40)
              for e in aug.get_params_dependent_on_data({}, {"image": face, "keypoints": np.array([[30.0, 40.0]])})["edits"]]
    assert yaw in plain  # the default set does draw yaw ...
    assert yaw not in marked and len(set(marked)) > 1  # ... but not beside keypoints
    compose = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["yaw"])], keypoint_params=A.KeypointParams(format="xy"), seed=0)
    with pytest.raises(ValueError, match="keypoints"):
        compose(image=face, keypoints=[(30.0, 40.0)])
    out = A.Compose([genaug.GenerativeFaceAug(p=1.0, codes=["tone"])], keypoint_params=A.KeypointParams(format="xy"),
                    seed=0)(image=face, keypoints=[(30.0, 40.0)])
    assert np.allclose(np.asarray(out["keypoints"]), [[30.0, 40.0]])


def test_masks_under_another_name_are_guarded_like_mask():
    # Compose(additional_targets={"mask2": "mask"}) passed a mask the turn would leave behind, unchecked
    img, m = noise_photo(), np.zeros((64, 64), np.uint8)
    named = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["yaw"], device="cpu")], additional_targets={"mask2": "mask"}, seed=0)
    with pytest.raises(ValueError, match="mask2 would come back unmoved"):
        named(image=img, mask2=m)
    t = genaug.GenerativeFaceAug(p=1, device="cpu")  # the random set: the turn is left out while such a target rides along
    boxes = A.Compose([t], additional_targets={"mask2": "mask", "kp2": "keypoints"}, seed=0)
    drawn = []
    for _ in range(12):
        boxes(image=img, mask2=m)
        drawn.append(t.last_info.descriptions[0])
    assert not any(d.startswith("yaw") for d in drawn), drawn
    assert len(set(drawn)) > 3
    plain = A.Compose([genaug.GenerativeFaceAug(p=1, codes=["yaw"], device="cpu")], additional_targets={"image2": "image"}, seed=0)
    plain(image=img, image2=img)  # another image is edited, not refused


@pytest.mark.parametrize("mask_key", ["mask3d", "masks3d"])
def test_a_turn_is_never_drawn_beside_a_3d_mask(mask_key):
    # A.Compose(...)(volume=frames, mask3d=masks) (a clip's frames and their masks, albumentations 2.0's 3D targets):
    # the random set drew yaw, which turned every frame while the masks came back unmoved (as `mask` is guarded)
    vol = np.random.default_rng(0).integers(0, 256, (2, 48, 48, 3), dtype=np.uint8)
    masks = np.zeros(vol.shape[:3], np.uint8)
    data = {"volume": vol, mask_key: masks if mask_key == "mask3d" else masks[None]}
    aug = genaug.GenerativeFaceAug(p=1.0, codes=["yaw", "tone"], device="cpu")
    aug.set_random_seed(0)
    names = aug.engine.code_names
    with pytest.raises(ValueError, match=mask_key):
        aug.get_params_dependent_on_data({}, data)
    aug = genaug.GenerativeFaceAug(p=1.0, device="cpu")  # the random set, with yaw
    aug.set_random_seed(0)
    drawn = {names[int(aug.get_params_dependent_on_data({}, data)["edits"][0].code)] for _ in range(40)}
    assert "yaw" not in drawn and len(drawn) > 2, drawn


def test_a_named_turn_beside_a_mask_is_refused_on_every_call_not_only_when_p_fires():
    # codes=["yaw", "tone"], p=0.3 beside a mask raised its ValueError only on the calls p applied: a pipeline that
    # passed a few batches could fail at random later (in training); the refusal must not depend on the draw
    x = np.random.default_rng(0).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    pipe = A.Compose([genaug.GenerativeFaceAug(codes=["yaw", "tone"], p=0.3, device="cpu")], seed=0)
    for _ in range(8):
        with pytest.raises(ValueError, match="yaw"):
            pipe(image=x, mask=np.zeros(x.shape[:2], np.uint8))
    assert pipe(image=x)["image"].shape == x.shape  # without the mask it runs
    off = A.Compose([genaug.GenerativeFaceAug(codes=["yaw"], p=0.0, device="cpu")], seed=0)  # never turns: no refusal
    assert off(image=x, mask=np.zeros(x.shape[:2], np.uint8))["image"].shape == x.shape


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


def test_batch_yaw_refuses_boxes_it_would_not_move():
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    x = tv_tensors.Image(demo_faces(2, 96))
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 80, 80], [5, 5, 60, 70]]), format="XYXY", canvas_size=(96, 96))
    with pytest.raises(ValueError, match="BoundingBoxes"):
        genaug.BatchFaceAug(p=1.0, codes=["yaw"], seed=0)(x, boxes)
    out, same = genaug.BatchFaceAug(p=1.0, codes=["tone"], seed=0)(x, boxes)  # a colour code moves nothing
    assert torch.equal(same, boxes) and out.shape == x.shape


def test_the_batch_guard_for_boxes_sees_yaw_named_by_index_and_in_replayed_params():
    # BatchFaceAug(codes=["yaw"]) refuses boxes it would not move, but codes=[its index] and a replay of params that
    # drew a turn (on a transform without "yaw" in its codes) returned the turned faces with the boxes unmoved
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    from genaug.engine.edits import code_index

    x = tv_tensors.Image(demo_faces(2))
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50], [5, 5, 40, 50]]), format="XYXY", canvas_size=(64, 64))
    yaw = code_index(genaug.BatchFaceAug(p=1.0)._spec(), "yaw")
    with pytest.raises(ValueError, match="BoundingBoxes"):
        genaug.BatchFaceAug(p=1.0, codes=[yaw], seed=0)(x, boxes)
    _, turned = genaug.BatchFaceAug(p=1.0, codes=["yaw"], seed=0, return_params=True)(x)
    tone = genaug.BatchFaceAug(p=1.0, codes=["tone"], seed=0)
    with pytest.raises(ValueError, match="BoundingBoxes"):
        tone(x, boxes, params=turned)
    out, same = tone(x, boxes)  # its own draws move nothing
    assert torch.equal(same, boxes) and out.shape == x.shape


def test_the_batch_guard_for_a_turn_sees_boxes_under_a_dict_key_as_the_dataset_does():
    # GenerativeAugDataset refuses a named yaw beside a dict entry "boxes" / "keypoints" / "masks" (plain tensors), but
    # BatchFaceAug's guard read the flattened leaves, which had lost their keys: aug({"image": x, "boxes": b}) turned
    # the heads and returned the boxes unmoved, without a word
    x = demo_faces(2)
    boxes = torch.tensor([[10.0, 10, 50, 50]] * 2)
    aug = genaug.BatchFaceAug(p=1.0, seed=0, codes=["yaw"])
    for sample in ({"image": x, "boxes": boxes}, (x, {"keypoints": torch.zeros(2, 5, 2), "labels": torch.zeros(2)})):
        with pytest.raises(ValueError, match="turn the head"):
            aug(sample)
    out, labels = aug(x, torch.arange(2))  # a plain (images, labels) pair is still turned
    assert out.shape == x.shape and torch.equal(labels, torch.arange(2))


def test_the_dataset_redraws_a_head_turn_beside_boxes_masks_and_keypoints():
    # a detection / face-parsing / landmark dataset: the default random set's yaw turned the face and shifted the
    # photo by a few pixels while the sample's boxes, masks and keypoints came back unmoved; a turn planned there is
    # now re-drawn among the random set's other codes (the albumentations front end draws without it), and plain
    # samples keep exactly the plan (and images) they had
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    face = demo_face(64)
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50]]), format="XYXY", canvas_size=(64, 64))
    kw = dict(variants=4, progress=False, return_meta=True, device="cpu")
    plain = genaug.GenerativeAugDataset([(face, 0)], **kw)
    planned = [plain.meta(i).description for i in range(4)]
    assert planned == ["yaw=+11.7", "yaw=+26.8", "yaw=+19.5", "shade=-0.318"]  # as the unmodified dataset plans it
    plain_items = [plain[i] for i in range(4)]

    def key(m):  # an applied value is the float32 one rendered
        return m.code, round(m.value, 4), m.description

    assert [m.description.split("=")[0] for _, _, m in plain_items] == ["yaw"] * 3 + ["shade"]
    for sample in [(face, {"boxes": boxes, "labels": torch.tensor([1])}),
                   (face, {"keypoints": torch.zeros(5, 2)}),
                   {"image": face, "masks": np.zeros((64, 64), np.uint8), "label": 0}]:
        ds = genaug.GenerativeAugDataset([sample], engine=plain.engine, **kw)
        items = [ds[i] for i in range(4)]
        metas = [it["meta"] if isinstance(it, dict) else it[2] for it in items]
        assert not any(m.description.startswith("yaw") for m in metas), [m.description for m in metas]
        assert [key(ds.meta(i)) for i in range(4)] == [key(m) for m in metas]  # meta() reports what the items applied
        assert len({m.edit for m in metas}) == 4  # the variants stay distinct
        assert metas[3:] == [m for _, _, m in plain_items[3:]]  # only the turns were re-drawn...
        for it, (img, _, _) in zip(items[3:], plain_items[3:]):  # ... the other variants are the plain ones
            np.testing.assert_array_equal(it["image"] if isinstance(it, dict) else it[0], img)
        again = genaug.GenerativeAugDataset([sample], engine=plain.engine, **kw)
        assert [again.meta(i) for i in range(4)] == [ds.meta(i) for i in range(4)]  # a pure function of (seed, index)


def test_the_dataset_refuses_named_head_turns_beside_boxes():
    # codes=["yaw", ...] on a detection dataset turned the faces and returned the boxes unmoved; as the albumentations
    # and batch front ends, naming a turn beside such targets is now a clear error (by name or by index, lazy or not)
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    from genaug.engine.edits import code_index

    face = demo_face(64)
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50]]), format="XYXY", canvas_size=(64, 64))
    yaw = code_index(genaug.GenerativeAugDataset([face], variants=1, progress=False, device="cpu").engine.spec, "yaw")
    for base, kind in [([(face, {"boxes": boxes})], "BoundingBoxes"), ([{"image": face, "landmarks": np.zeros((5, 2))}], "landmarks")]:
        with pytest.raises(ValueError, match=rf"codes \['yaw'\].*{kind}.*unmoved"):
            genaug.GenerativeAugDataset(base, variants=2, codes=["yaw", "tone"], progress=False, device="cpu")
        ds = genaug.GenerativeAugDataset(base, variants=2, codes=[yaw, "tone"], progress=False, device="cpu", lazy=True)
        with pytest.raises(ValueError, match=rf"codes \['yaw'\].*{kind}.*unmoved"):
            ds[1]
    ds = genaug.GenerativeAugDataset([(face, {"boxes": boxes})], variants=2, codes=["tone", "light"], progress=False,
                                     device="cpu", return_meta=True)
    assert {ds[i][2].description.split("=")[0] for i in range(2)} <= {"tone", "light"}  # other codes: as named


def test_a_dataset_with_no_variants_serves_boxed_samples_though_its_codes_turn_the_head():
    # variants=0 (augmentation off, e.g. for evaluation, the codes left configured): nothing is edited, yet a sample
    # with boxes was refused ("codes ['yaw'] turn the head ...") when the dataset was prepared
    tv_tensors = pytest.importorskip("torchvision.tv_tensors")
    face = demo_faces(1)[0].permute(1, 2, 0).numpy()
    boxes = tv_tensors.BoundingBoxes(torch.tensor([[10, 10, 50, 50]]), format="XYXY", canvas_size=(64, 64))
    ds = genaug.GenerativeAugDataset([(face, {"boxes": boxes})], variants=0, include_original=True, codes=["yaw"],
                                     progress=False, device="cpu")
    image, target = ds[0]
    assert np.array_equal(image, face) and target["boxes"] is boxes
    with pytest.raises(ValueError, match="turn the head"):  # with variants the refusal stands
        genaug.GenerativeAugDataset([(face, {"boxes": boxes})], variants=1, codes=["yaw"], progress=False,
                                    device="cpu")[0]
