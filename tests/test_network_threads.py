"""The networks' CPU passes do not depend on torch's thread count: a DataLoader worker (one thread) renders an item as
the main process (several) does. float32 matrix products sum in an order the thread count decides: the generator's
output at 1 or 3 rows moved by up to 9e-7 between 1 and 2-16 threads, which put 4 of 80 `GenerativeAugDataset`
items (utkface_128) and a `tone` edit of a utkface_128 photo one level apart; the networks now run on one CPU thread
(`genaug.device.one_cpu_thread`), and the caller's count is restored."""
from __future__ import annotations

import threading

import numpy as np
import torch

from conftest import UTKFACE, demo_faces, need, utk_photo, with_threads
from genaug.engine import Engine
from genaug.engine.edits import Edit


def test_the_networks_give_the_same_numbers_under_any_thread_count():
    eng = Engine(device="cpu", seed=0)
    x = demo_faces(3, eng.image_size).float() / 127.5 - 1

    def run():
        latent = eng.invert(x[:1]).latent
        return latent, eng.generate(eng.invert(x).latent), eng.generate(latent)

    one = with_threads(1, run)
    for n in (2, 4):
        other = with_threads(n, run)
        assert all(torch.equal(a, b) for a, b in zip(one, other)), n
    assert with_threads(3, lambda: (run(), torch.get_num_threads())[1]) == 3  # the caller's count is kept


def test_a_photo_edit_is_the_same_bytes_under_any_thread_count():
    photo = np.ascontiguousarray(utk_photo(need(UTKFACE), 308)[:, ::-1])  # its tone edit was a level apart

    def render():
        eng = Engine(device="cpu", seed=0)  # a fresh engine: no cached inversion
        return eng.augment(photo, edits=[Edit(5, -0.0599, False)])[0]

    one = with_threads(1, render)
    for n in (2, 4):
        assert np.array_equal(one, with_threads(n, render)), n


def test_threads_calling_genaug_at_once_each_run_on_one_and_get_their_count_back(monkeypatch):
    # torch's thread count (OpenMP) is the calling thread's: the first thread in set only its own, so a second thread
    # inside at the same time ran the generator on its 2 threads, and the first, leaving before the second, kept 1
    eng = Engine(device="cpu", seed=0)
    g, seen, order = eng.bundle.generator, {}, {k: threading.Event() for k in ("a in", "b in", "a out", "b out")}

    def generator(latent):  # the network, as each thread runs it: a inside, then b, then a leaves before b does
        who = threading.current_thread().name
        seen[f"{who} inside"] = torch.get_num_threads()
        order[f"{who} in"].set()
        order["b in" if who == "a" else "a out"].wait(30)
        return g(latent)

    monkeypatch.setattr(eng.bundle, "generator", generator)

    ready = threading.Barrier(2)

    def call(who):
        torch.set_num_threads(2)
        torch.get_num_threads()  # (torch takes a thread's count at its first work from the count set last anywhere)
        ready.wait(30)
        if who == "b":
            order["a in"].wait(30)
        eng.generate(torch.zeros(1, eng.spec.dim))
        seen[f"{who} after"] = torch.get_num_threads()
        order[f"{who} out"].set()

    threads = [threading.Thread(target=call, args=(w,), name=w) for w in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert seen == {"a inside": 1, "b inside": 1, "a after": 2, "b after": 2}, seen
