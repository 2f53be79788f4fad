"""Content keys (genaug.engine.cache.pixel_keys): every pixel counts, moved pixels count, the same
pixels give the same key wherever they sit and however they are batched."""
from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import torch

from genaug.engine.cache import KEY_BYTES, STORE_VERSION, LatentStore, content_keys, pixel_keys

SETTINGS = "bundle|steps=4"


def pixels(n: int = 3, shape: tuple[int, ...] = (3, 64, 64), seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def key(row: torch.Tensor, settings: str = SETTINGS) -> bytes:
    return pixel_keys(row[None], settings)[0]


def reference_keys(q: torch.Tensor, settings: str) -> list[bytes]:
    """The key in plain numpy uint64 arithmetic (wrapping, logical shifts): what any device must give."""
    rows = q.reshape(len(q), -1).numpy()
    nbytes = rows.shape[1]
    rows = np.pad(rows, ((0, 0), (0, -nbytes % 8)))
    w = rows.view(np.uint64)
    seed = int.from_bytes(hashlib.sha256(f"{nbytes}:{settings}".encode()).digest()[:8], "little")
    u = np.uint64
    with np.errstate(over="ignore"):
        z = u(seed) + np.arange(1, 2 * w.shape[1] + 3, dtype=u) * u(0x9E3779B97F4A7C15)
        z = (z ^ (z >> u(30))) * u(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> u(27))) * u(0x94D049BB133111EB)
        z ^= z >> u(31)
        a, b, c = z[: w.shape[1]] | u(1), z[w.shape[1] : -2] | u(1), z[-2:]
        v = w ^ (w >> u(32))
        v *= a
        v ^= v >> u(32)
        lanes = (np.stack([v.sum(1, dtype=u), (v * b).sum(1, dtype=u)], 1) + c).astype("<u8").tobytes()
    return [lanes[i : i + KEY_BYTES] for i in range(0, len(lanes), KEY_BYTES)]


def test_keys_match_the_integer_reference_so_any_device_gives_them():
    for shape in ((3, 64, 64), (1, 5, 7), (3, 13, 11)):  # whole words and zero-padded tails
        q = pixels(4, shape)
        assert pixel_keys(q, SETTINGS) == reference_keys(q, SETTINGS), shape


def test_every_pixel_counts_one_value_up_or_down():
    q = pixels(1)[0]
    base = key(q)
    flat = q.flatten()
    for at in (0, 1, 7, 8, 4095, 6143, 12287):  # every byte position of a 64-bit word, first and last pixel
        for step in (1, -1):
            changed = flat.clone()
            changed[at] = (int(changed[at]) + step) % 256
            assert key(changed.view_as(q)) != base, (at, step)


def test_moved_pixels_and_other_settings_change_the_key():
    q = pixels(1)[0]
    base = key(q)
    changed = {
        "mirrored": q.flip(-1), "upside down": q.flip(-2), "rolled one pixel": q.roll(1, -1),
        "rolled one word": q.roll(8, -1), "rolled one row": q.roll(1, -2), "channels swapped": q[[2, 1, 0]],
        "two rows swapped": q[:, [1, 0, *range(2, 64)]], "brighter by one": q.clamp(max=254) + 1,
    }
    keys = {name: key(t.contiguous()) for name, t in changed.items()}
    assert base not in keys.values() and len(set(keys.values())) == len(keys), keys
    assert key(q, "other bundle|steps=4") != base and key(q, "") != base
    black = torch.zeros_like(q)
    assert key(black) != key(black, "other bundle|steps=4")


def test_structured_images_differ():
    flat = torch.zeros(64, 3, 8, 8, dtype=torch.uint8)  # constant images, and one pixel set at each place
    for i in range(64):
        flat[i].view(-1)[i * 3] = 1 + i % 2
    keys = pixel_keys(torch.cat([flat, torch.arange(256, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 8, 8)]))
    assert len(set(keys)) == len(keys)


def test_same_pixels_same_key_on_a_copy_a_view_and_in_any_batch():
    q = pixels(5)
    keys = pixel_keys(q, SETTINGS)
    assert len(keys) == 5 and all(len(k) == KEY_BYTES for k in keys) and len(set(keys)) == 5
    assert pixel_keys(q.clone(), SETTINGS) == keys == pixel_keys(q, SETTINGS)  # deterministic
    assert [key(row) for row in q] == keys  # one at a time as in a batch
    assert pixel_keys(q[[3, 1]], SETTINGS) == [keys[3], keys[1]]
    channels_last = q.contiguous(memory_format=torch.channels_last)
    assert not channels_last.is_contiguous() and pixel_keys(channels_last, SETTINGS) == keys
    offset = torch.cat([torch.zeros(3, dtype=torch.uint8), q.flatten()])[3:].view_as(q)  # storage offset 3 bytes
    assert offset.storage_offset() == 3 and pixel_keys(offset, SETTINGS) == keys
    transposed = q.reshape(5, -1).t().contiguous().t()  # (5, B) with strides (1, 5)
    assert not transposed.is_contiguous() and pixel_keys(transposed, SETTINGS) == keys
    assert pixel_keys(q[:0], SETTINGS) == []


def test_keys_do_not_depend_on_the_thread_count():
    q = pixels(16)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = pixel_keys(q, SETTINGS)
        torch.set_num_threads(max(2, threads))
        assert pixel_keys(q, SETTINGS) == one
    finally:
        torch.set_num_threads(threads)


def test_work_buffers_are_reused_and_give_the_same_keys():
    work: dict = {}
    q = pixels(4)
    first = pixel_keys(q, SETTINGS, work)
    buffers = {k: v.data_ptr() for k, v in work.items()}
    assert pixel_keys(q[:2], SETTINGS, work) == first[:2] and pixel_keys(q, SETTINGS, work) == first
    assert {k: v.data_ptr() for k, v in work.items()} == buffers


def test_content_keys_quantize_model_frame_floats():
    q = pixels(2)
    x = q.float() / 127.5 - 1  # the model frame in [-1, 1]
    assert content_keys(x, SETTINGS) == pixel_keys(q, SETTINGS)
    assert content_keys(x + 0.1 / 255, SETTINGS) == pixel_keys(q, SETTINGS)  # below a pixel step: same image


def test_a_store_of_older_keys_is_rebuilt_with_a_message(tmp_path):
    from genaug.io import write_safetensors

    path = tmp_path / "latents.safetensors"
    store = LatentStore(path, {"bundle": "b"})
    tensors = {"content": torch.zeros(1, KEY_BYTES, dtype=torch.uint8), "latent": torch.zeros(1, 4), "score": torch.zeros(1)}
    write_safetensors(tensors, path, {"format": "genaug-latent-cache", "version": "3", "settings": store.settings})
    with pytest.warns(UserWarning, match="rebuilt: it is not a genaug latent cache of this version"):
        assert store.load() == {}
    store.save([b"k" * KEY_BYTES], torch.zeros(1, 4), torch.zeros(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert list(store.load()) == [b"k" * KEY_BYTES] and STORE_VERSION != "3"


def test_pixels_written_where_the_keys_read_them_give_the_same_keys():
    """Pixels written into ``key_pixels``' buffer are hashed in place (no copy), after earlier calls left their
    work in it, with the keys of the same pixels passed as a tensor of their own; rows of odd length too."""
    from genaug.engine.cache import key_pixels

    for shape in ((5, 3, 8, 8), (4, 3, 5, 7)):
        work = {}
        for seed in range(3):
            q = torch.randint(0, 256, shape, dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
            at = key_pixels(work, q.shape, q.device).copy_(q)
            assert pixel_keys(at, SETTINGS, work) == pixel_keys(q.clone(), SETTINGS) == reference_keys(q, SETTINGS)


def test_a_store_whose_rows_changed_on_disk_is_rebuilt_with_a_message(tmp_path):
    # bytes flipped inside a latent row (a bad disk, a partial copy over the file) were read back as latents: items
    # silently wrong (up to 255 levels on utkface faces); the rows now carry a checksum
    path = tmp_path / "latents.safetensors"
    store = LatentStore(path, {"bundle": "b"})
    latent = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    store.save([b"a" * KEY_BYTES, b"b" * KEY_BYTES], latent, torch.ones(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(store.load()[b"b" * KEY_BYTES][0], latent[1])
    data = bytearray(path.read_bytes())
    at = bytes(data).index(latent[1].numpy().tobytes())  # the second latent row's bytes
    data[at + 5] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="rebuilt: its rows do not match their checksum"):
        assert store.load() == {}
