"""The inversion of a :class:`~genaug.dataset.GenerativeAugDataset`'s sources (:func:`invert_sources`): every image
once, batched on the engine's device, with a cache file (:class:`genaug.engine.cache.LatentStore`: one key per image
content, valid for one bundle, inversion settings and framing) so a second run inverts only the images it has not seen.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor

from .engine.cache import LatentStore, bundle_key, content_keys
from .engine.exposure import INVERSION
from .faces.identity import faces_extra_available
from .samples import read_item

Parts = dict[int, tuple[bytes, Tensor, Tensor]]  # source -> its face-framed key, latent (1, D), score (1,)


def latent_store(engine: Any, cache_path: Path | None) -> LatentStore | None:
    """The cache file of ``engine``'s latents at ``cache_path`` (None: no cache)."""
    if cache_path is None:
        return None
    return LatentStore(cache_path, {
        "bundle": bundle_key(engine.bundle), "refine": [engine.refine_steps, engine.refine_loss, engine.refine_lr],
        "framing": engine.framing, "inversion": INVERSION,
    })


def invert_sources(engine: Any, base: Any, cache_path: Path | None, frame: Callable[..., tuple[Tensor, Any]],
                   marked: Callable[[int, Any], bool], progress: bool) -> tuple[Tensor, Tensor, list[bytes], list[bool], Parts]:
    """Invert every image of ``base`` once (batches of ``engine.batch_size``); with ``cache_path``, images whose
    content key is in the cache file reuse their latent and only the others are inverted. Where the engine's codes
    hold an edit that draws on the face (glasses, mouth, ...) and the framing rule misplaces a source's face, that
    source is also inverted framed by its face (:meth:`Engine.frame_part`), for those edits; the cache keys it by that
    frame's content, apart from the rule's. An engine that frames no source by its face (no such code) keeps the rows
    of the file it does not know (another Dataset's face-framed latents). ``frame(src, image, count=False)``: a base
    item framed by the rule; ``marked(src, targets)``: its targets mark places in the image. Returns (latents (N, D),
    scores (N,), each source's content key, each source's ``marked``, the face-framed parts). An error or Ctrl-C
    saves what was inverted, so the next run starts from it."""
    from tqdm.auto import tqdm

    e, n, bs = engine, len(base), engine.batch_size
    store = latent_store(engine, cache_path)
    known = store.load() if store is not None else {}
    stored, keys, marks, parts = list(known), [], [], {}
    lat: list[Tensor] = [torch.empty(0)] * n
    score: list[Tensor] = [torch.empty(0)] * n
    face_codes = e._latent_codes()  # a source the rule misframes gets a second latent, framed by its face, for these
    try:
        for start in tqdm(range(0, n, bs), desc="genaug: inverting", unit="batch", disable=not progress):
            rows = list(range(start, min(start + bs, n)))
            frames, framed = [], {}
            for i in rows:
                image, rest = read_item(base, i)
                marks.append(marked(i, rest))
                x_i, f = frame(i, image, count=False)
                frames.append(x_i)
                part = e.frame_part(image, f, face_codes)
                if part is not None:
                    framed[i] = len(frames)
                    frames.append(part[0][None])
            x = torch.cat(frames)
            all_keys = content_keys(x)
            batch_keys = [k for j, k in enumerate(all_keys) if j not in framed.values()]
            todo = [j for j, k in enumerate(all_keys) if k not in known]
            if todo:
                inv = e.invert(x[todo].to(e.device))
                for j, latent, s in zip(todo, inv.latent.cpu(), inv.score.cpu()):
                    known[all_keys[j]] = (latent, s)
            for i, k in zip(rows, batch_keys):
                lat[i], score[i] = known[k]
            for i, j in framed.items():
                parts[i] = (all_keys[j], known[all_keys[j]][0][None], known[all_keys[j]][1][None])
            keys += batch_keys
    except BaseException:  # a bad item or Ctrl-C: keep what was inverted, the next run starts from it
        if store is not None and len(known) > len(stored):  # (with the rows the file held: none is lost)
            rows = list(known)
            store.save(rows, torch.stack([known[k][0] for k in rows]), torch.stack([known[k][1] for k in rows]))
        raise
    rows = keys + [p[0] for p in parts.values()]
    if not (e.seeks_faces(face_codes) and faces_extra_available()):  # the face-framed latents another Dataset saved
        owned = set(rows)                                           # (codes with named edits): kept for it
        rows += [k for k in stored if k not in owned]
    if store is not None and set(rows) != set(stored):  # (not for an image twice, nor another order: the file holds them)
        rows = list(dict.fromkeys(rows))
        store.save(rows, torch.stack([known[k][0] for k in rows]), torch.stack([known[k][1] for k in rows]))
    return torch.stack(lat), torch.stack(score), keys, marks, parts
