"""Offline dataset expansion: :func:`expand_to_hdf5` (``genaug expand``, see :mod:`genaug.cli.expand`).

Pipeline: the source (:mod:`genaug.expand.sources`) is cut into fixed blocks of ``block_size`` source
indices. Each block is decoded by a thread pool (one batch ahead), framed, inverted and rendered
in batches by the engine (:meth:`genaug.engine.Engine.render_edits`, gate included), and streamed
by a background writer (:class:`genaug.expand.parts.PartWriter`) into its own part file
``OUT.h5.parts/part-<block>.h5`` (written as a temp file, fsynced, atomically renamed). Finished
parts are skipped on resume; the final step merges the parts in order (:func:`genaug.expand.parts.merge_parts`)
and atomically renames the result to ``OUT.h5``. Each record's randomness comes from (seed, source
index) only and a block is always batched the same way, so a resumed, sharded or interrupted run
gives the same bytes as a single uninterrupted one. File layout: :mod:`genaug.expand.hdf5`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from .. import __version__
from ..bundle.format import Bundle
from ..distenv import init_distributed, rank_device
from ..engine.codes import control_of
from ..engine.edits import derive_seed, variant_edits
from ..engine.photos import NO_PIXEL, ROOMLESS
from ..engine.roomless import redraw_roomless
from ..engine.variants import repeats_another, unplaced_redraws
from ..faces.identity import faces_extra_available
from ..images import MIN_SIDE
from ..io import printable
from .hdf5 import FORMAT, LAYOUT_VERSION, RENDER_REVISION, compression_name, parts_dir_of
from .parts import PartWriter, merge_parts
from .runs import RunFiles, describe_skipped, describe_unedited, gate_key
from .settings import ExpandSettings, check_arguments, check_out, check_run_options, code_columns, output_shape
from .sources import ExpandError, Source, open_source, to_channels

__all__ = ["ExpandError", "ExpandResult", "ExpandSettings", "expand_to_hdf5"]


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """CHW float in [-1, 1] -> HWC uint8."""
    return ((x.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


@dataclass
class ExpandResult:
    """What a call did: the merged file (None for a shard that does not merge), counts, speed."""

    path: Path | None
    n_records: int
    skipped: list[tuple[int, str, str]] = field(default_factory=list)
    blocks_done: int = 0  # blocks expanded by this call
    blocks_total: int = 0
    seconds: float = 0.0
    images_per_s: float = 0.0  # records rendered per second by this call


@dataclass
class _Job:
    """Loads source images and turns a batch of them into record batches through the engine."""

    src: Source
    engine: Any
    s: ExpandSettings
    seed: int
    out_hw: tuple[int, int] | None  # fixed output (H, W) for --size source|WxH, None = model size
    resize: bool  # resize sources to out_hw (WxH) rather than skip mismatches (source)
    code_names: list[str]
    unedited: dict[str, int] = field(default_factory=lambda: {"no face": 0, "no room": 0, "no pixel": 0, "repeats": 0})
    # variants left as the source; "repeats": an edit re-drawn for want of a face repeated another variant's edit

    def load(self, i: int) -> tuple[np.ndarray | None, str]:
        channels = self.engine.channels
        try:
            img = self.src.load(i, channels)
        except Exception as e:  # noqa: BLE001 - every failure is reported, never silent
            return None, printable(f"{type(e).__name__}: {e}")  # the reason may name a file name that is not UTF-8
        if min(img.shape[:2]) < MIN_SIDE:
            return None, f"image {img.shape[1]}x{img.shape[0]} is too small to hold a face (min side {MIN_SIDE} px)"
        if self.out_hw is not None and img.shape[:2] != self.out_hw:
            if not self.resize:
                return None, (f"size {img.shape[1]}x{img.shape[0]} differs from the output size "
                              f"{self.out_hw[1]}x{self.out_hw[0]} (--size source); use --size WxH to resize")
            pil = Image.fromarray(img[..., 0] if channels == 1 else img).resize(self.out_hw[::-1], Image.BICUBIC)
            img = to_channels(np.array(pil), channels)
        return img, ""

    def rows_for(self, idx: list[int], imgs: list[np.ndarray]) -> Iterator[dict[str, Any]]:
        """Invert one batch of source images and yield record batches (<= batch_size rows)."""
        s, e = self.s, self.engine
        x, frames = e.frame(imgs)
        x = x.to(e.device)
        inv = e.invert(x)
        score = inv.score.detach().float().cpu().numpy()
        plan: list[tuple[int, int, Any]] = []  # (sample k, variant, edit or None for the original)
        plans = [variant_edits(e.spec, self.seed, i, s.variants, e.codes, e.bounds) for i in idx]  # each source's edits
        for k, edits in enumerate(plans):
            plan += ([(k, 0, None)] if s.include_original else []) + [(k, v + 1, ed) for v, ed in enumerate(edits)]
        passes = [unplaced_redraws(e, plans[k], f, self._seed_of(idx[k])) for k, f in enumerate(frames)]  # one per source
        for c0 in range(0, len(plan), s.batch_size):
            chunk = plan[c0:c0 + s.batch_size]
            rows = [j for j, (_, _, ed) in enumerate(chunk) if ed is not None]
            codes = np.full((len(chunk), len(self.code_names)), np.nan, np.float32)
            images = {j: imgs[k] if self.out_hw is not None else to_uint8(x[k]) for j, (k, _, ed) in enumerate(chunk) if ed is None}
            scores = score[[k for k, _, _ in chunk]].astype(np.float32)  # a row framed by the face: its latent's (render)
            if rows:
                ks = [chunk[j][0] for j in rows]
                gens = [torch.Generator().manual_seed(derive_seed(derive_seed(self.seed, idx[k]), chunk[j][1]))
                        for j, k in zip(rows, ks)]
                where = [(plans[k], frames[k], idx[k], chunk[j][1], g, passes[k]) for j, k, g in zip(rows, ks, gens)]
                edits = [self.planned(*w) for w in where]
                self.unedited["repeats"] += sum(repeats_another(e, w[0], w[1], w[3] - 1, ed, self._seed_of(w[2]), w[5])
                                                for w, ed in zip(where, edits))
                done = self.render(x, inv, imgs, frames, ks, edits, gens)

                def again(rs: list[int], left: list[int]) -> list[Any]:  # a drawn control with no room on the face
                    redrawn = [self.planned(*where[r], roomless=left) for r in rs]  # (near profile): as the transform
                    sub = self.render(x, inv, imgs, frames, [ks[r] for r in rs], redrawn, [gens[r] for r in rs], left)
                    e.stats["augmented"] -= len(rs)  # (counted once, by the first pass)
                    for r, d in zip(rs, sub):
                        done[r] = d
                    return [ed if d[2] else None for ed, d in zip(redrawn, sub)]

                redraw_roomless(e, {r: (edits[r], frames[ks[r]]) for r, d in enumerate(done) if d[2]}, again)
                for j, (image, applied, no_room, row_score) in zip(rows, done):
                    images[j], scores[j] = image, row_score
                    self.unedited["no room"] += int(no_room)
                    if applied is not None:  # (the source, or a control that rendered nothing: NaN)
                        codes[j, applied.code] = applied.value
            yield {
                "images": np.stack([images[j] for j in range(len(chunk))]),
                "label": np.array([self.src.label(idx[k]) for k, _, _ in chunk], np.int64),
                "source_index": np.array([idx[k] for k, _, _ in chunk], np.int64),
                "source_path": [self.src.path(idx[k]) for k, _, _ in chunk],
                "variant": np.array([v for _, v, _ in chunk], np.int16),
                "codes": codes,
                "score": scores,
            }

    def planned(self, plan: list[Any], frame: Any, i: int, variant: int, gen: torch.Generator, redrawn: list[Any],
                roomless: list[int] | None = None) -> Any:
        """Variant ``variant`` (1..V) of source ``i``'s ``plan`` as drawn for its photo (``frame``): a control with no face
        there, or no room on it (re-drawn among ``roomless``), re-drawn among the codes that act there from ``gen``, not onto a move another
        variant of the source makes (:meth:`Engine.replace_unplaced_variant`; ``redrawn``: the source's
        :func:`~genaug.engine.variants.unplaced_redraws`, drawn once per source)."""
        return self.engine.replace_unplaced_variant(plan, frame, variant - 1, gen, self._seed_of(i), roomless=roomless,
                                                    redrawn=redrawn)

    def _seed_of(self, i: int) -> Any:
        """Source ``i``'s seed of variant ``v`` (0-based) -> its draws' seed."""
        return lambda v: derive_seed(derive_seed(self.seed, i), v + 1)

    def render(self, x: torch.Tensor, inv: Any, imgs: list[np.ndarray], frames: list[Any], ks: list[int], edits: list[Any],
               gens: list[torch.Generator], redraw_codes: list[int] | None = None) -> list[tuple[np.ndarray, Any, bool, float]]:
        """Batch rows ``ks`` rendered with ``edits`` (a gate's re-draws from ``gens``, among ``redraw_codes``): per row
        (the record's image, the edit as applied or None where the image is the source's, whether a control had no
        room on the face, the reconstruction score of the latent edited)."""
        e, placed = self.engine, self.out_hw is not None
        xr, ir, fr = e.frame_rows(imgs, x, frames, inv, ks, edits)  # (a named edit on a misframed face: framed by it)
        out, info = e.render_edits(xr, ir.latent, edits, base=ir.recon, generator=gens, placed=placed,
                                   drawn=True, frames=fr, redraw_codes=redraw_codes)
        res = []
        for r, k in enumerate(ks):
            original, asked = imgs[k] if placed else to_uint8(x[k]), info.edits[r]
            if e.faceless(asked, frames[k]):  # no face found: the source, unedited
                self.unedited["no face"] += 1
                res.append((original, None, False, float(ir.score[r])))
                continue
            if placed or fr[r] is not frames[k]:  # a control's value as applied to the face (yaw: scaled into its room)
                image, applied = e.place(out[r], imgs[k], fr[r], asked, bool(info.kept[r]), drawn=True)
            else:  # (the model frame's render fitted a control's value in place: asked, the plan's at the strength)
                image, applied = to_uint8(out[r]), asked
                if asked.code == edits[r].code and control_of(e.spec, asked.code) is not None:
                    asked = e._scale_controls([edits[r]], torch.tensor([e.strength]))[0]
            if not placed and fr[r] is not frames[k]:  # model-sized records: the edited photo in the rule's frame
                image = to_uint8(e.frame([image], count=False)[0][0])
            why = e.unchanged(asked, applied, frames[k], original, image) if info.kept[r] else None
            self.unedited["no pixel"] += int(why == NO_PIXEL)  # (strength 0, a control at 0: codes NaN)
            res.append((image, applied if info.kept[r] and why is None else None, why in ROOMLESS, float(ir.score[r])))
        return res


def _prefetched(pool: ThreadPoolExecutor, load: Callable[[int], Any], batches: Iterator[tuple[int, list[int]]]) -> Iterator[Any]:
    """Yield ``(block, indices, loaded)`` while the next batch decodes in the pool."""
    it = iter(batches)
    nxt = next(it, None)
    futs = [pool.submit(load, i) for i in nxt[1]] if nxt else []
    while nxt is not None:
        cur, cur_futs = nxt, futs
        nxt = next(it, None)
        futs = [pool.submit(load, i) for i in nxt[1]] if nxt else []
        yield cur[0], cur[1], [f.result() for f in cur_futs]


def _expand_blocks(job: _Job, files: Any, todo: list[int], shape: tuple[int, int, int], compression: str, workers: int,
                   label: str, progress: bool, say: Callable[[str], None]) -> tuple[int, list[tuple[int, str, str]]]:
    """Expand the blocks ``todo`` into part files; returns (records rendered, skipped sources)."""
    if not todo:
        return 0, []
    s, src, n_src = job.s, job.src, len(job.src)
    writer = PartWriter(files.parts_dir, shape, len(job.code_names), compression,
                        {"run_key": files.run_key, "code_names": json.dumps(job.code_names)})
    writer.start()
    batches = ((blk, list(range(lo, min(lo + s.batch_size, hi))))
               for blk in todo for hi in [min((blk + 1) * s.block_size, n_src)]
               for lo in range(blk * s.block_size, hi, s.batch_size))
    n_todo_src = sum(min((blk + 1) * s.block_size, n_src) - blk * s.block_size for blk in todo)
    bar = tqdm(total=n_todo_src * s.rows_per_source, unit="img", desc=label, disable=not progress, smoothing=0.1)
    rendered, skipped, current, block_skipped = 0, [], None, []
    try:
        with ThreadPoolExecutor(max(1, workers), thread_name_prefix="genaug-load") as pool:
            for blk, idx, loaded in _prefetched(pool, job.load, batches):
                if blk != current:
                    if current is not None:
                        writer.put(("close", current, block_skipped))
                    writer.put(("open", blk))
                    current, block_skipped = blk, []
                for i, (img, why) in zip(idx, loaded):
                    if img is None:
                        block_skipped.append((i, src.path(i), why))
                        skipped.append((i, src.path(i), why))
                        say(f"skipped {src.path(i)}: {why}")
                        bar.total -= s.rows_per_source
                good = [(i, img) for i, (img, _) in zip(idx, loaded) if img is not None]
                if good:
                    for rows in job.rows_for([i for i, _ in good], [im for _, im in good]):
                        writer.put(("rows", rows))
                        rendered += len(rows["score"])
                        bar.update(len(rows["score"]))
            if current is not None:
                writer.put(("close", current, block_skipped))
        writer.finish()
        describe_unedited(job.engine.stats, job.unedited, say)
    finally:
        bar.close()
        writer.stop()
        src.close()
    return rendered, skipped


def _merge(files: RunFiles, b: Bundle, src: Source, s: ExpandSettings, shape: tuple[int, int, int], seed: int, compression: str,
           command: list[str] | None, source: str | Path, progress: bool, say: Callable[[str], None]) -> tuple[int, list]:
    """Merge every finished part into the output file; returns (records, skipped sources)."""
    files.check_complete()
    attrs = _file_attrs(b, src, s, seed, files.run_key, compression, command, source)
    n_rec, skipped = merge_parts(files.parts_dir, files.n_blocks, files.out, shape, len(code_columns(b.spec, s.codes)),
                                 compression, attrs, progress)
    shutil.rmtree(files.parts_dir, ignore_errors=True)
    files.log(f"wrote {files.out}: {n_rec} records from {len(src) - len(skipped)} of {len(src)} source images")
    describe_skipped(skipped, say)
    return n_rec, skipped


def _file_attrs(b: Bundle, src: Source, s: ExpandSettings, seed: int, run_key: str, compression: str,
                command: list[str] | None, source: str | Path) -> dict[str, Any]:
    """The merged file's attributes (see :mod:`genaug.expand.hdf5`)."""
    return {
        "format": FORMAT, "layout_version": LAYOUT_VERSION, "render_revision": RENDER_REVISION, "genaug_version": __version__,
        "run_key": run_key,
        "bundle_identity": b.identity, "bundle_name": b.name, "bundle_config": json.dumps(b.config()),
        "seed": seed, "settings": json.dumps({**asdict(s), "compression": compression}),
        "command": json.dumps(command if command is not None else sys.argv),
        "class_names": json.dumps(src.class_names), "code_names": json.dumps(code_columns(b.spec, s.codes)),
        "source": printable(str(Path(source).resolve())), "source_kind": src.kind, "n_source": len(src),
    }


def _make_engine(bundle: Any, device: str, s: ExpandSettings, gate: Any) -> Any:
    from ..engine.core import Engine

    try:
        return Engine(
            bundle, device=device, refine_steps=s.refine_steps, refine_loss=s.refine_loss, batch_size=s.batch_size,
            mode=s.mode, strength=s.strength, framing=s.framing, cache_size=0, codes=s.codes,
            gate=gate if gate is not None else ("auto" if s.gate_threshold is not None else None),  # dlib when installed
            gate_threshold=s.gate_threshold if s.gate_threshold is not None else 0.0,
            quality="critic" if s.quality_threshold is not None else None,
            quality_threshold=s.quality_threshold if s.quality_threshold is not None else "auto",
        )
    except KeyError as e:
        raise ExpandError(str(e).strip("'\"")) from None


def expand_to_hdf5(
    source: str | Path,
    out: str | Path,
    variants: int = 8,
    *,
    bundle: str | Path | Bundle = "default",
    include_original: bool = False,
    seed: int = 0,
    size: str | tuple[int, int] = "model",
    strength: float = 1.0,
    mode: str = "delta",
    codes: list[str] | None = None,
    refine_steps: int | None = None,
    refine_loss: str = "mse+msssim",
    framing: str = "auto",
    batch_size: int = 64,
    block_size: int = 256,
    compression: str = "lzf",
    device: str = "auto",
    workers: int = 4,
    shard: str | tuple[int, int] | None = None,
    merge: bool | None = None,
    merge_only: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    command: list[str] | None = None,
    gate_threshold: float | None = None,
    gate: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    quality_threshold: float | str | None = None,
) -> ExpandResult:
    """Expand ``source`` (image folder, ImageFolder or HDF5) into ``out`` with ``variants``
    identity-preserving variants per image (see the module docs and :mod:`genaug.expand.hdf5`).

    Resumable: call again with the same arguments after an interruption. ``shard="i/n"`` (or
    torchrun's RANK/WORLD_SIZE) expands blocks ``b % n == i`` only; ``merge`` (default: when
    not sharded; rank 0 under torchrun) merges all parts into ``out``; ``merge_only`` merges
    finished parts without expanding anything. ``overwrite`` replaces an ``out`` made by another run (and
    discards its parts); the old ``out`` stays, readable, until the new one is complete (then an atomic rename), so
    a run that fails or is interrupted leaves it as it was, and rerunning resumes. ``gate_threshold`` turns on the identity gate: the
    judge ``genaug.faces.identity.get_judge("auto")`` (dlib's descriptor when ``genaug[faces]`` is
    installed, similarity = 1 - distance, same person above 0.4; else the shipped student, 1 - its distance in
    dlib's units, same person above about 0.59; else the project's embedder, cosine); ``gate`` replaces it with any ``gate(original, augmented) -> (N,)`` (``gate_threshold`` still needed).
    ``quality_threshold`` turns on the quality gate (the shipped realism critic,
    :mod:`genaug.faces.quality`; ``"auto"``: its own threshold).
    A resume continues only the same run: its run key holds the bundle, seed, settings, source, the gates
    (:func:`genaug.expand.runs.gate_key`) and whether the ``faces`` extra is installed; another is refused, naming what
    differs. ``device``, ``workers`` and ``compression`` are not in it: a run resumed on another device continues
    (its new records differ from the first device's by float rounding only, not by settings).
    """
    t0 = time.time()
    check_run_options(source, out, workers, overwrite=overwrite, merge_only=merge_only, progress=progress,
                      **({} if merge is None else {"merge": merge}))
    source, out = os.path.expanduser(source), os.path.expanduser(out)  # "~/faces" as a shell reads it
    s, seed, (rank, world) = check_arguments(
        variants, include_original=include_original, seed=seed, size=size, strength=strength, mode=mode, codes=codes,
        refine_steps=refine_steps, refine_loss=refine_loss, framing=framing, batch_size=batch_size, block_size=block_size,
        compression=compression, shard=shard, gate_threshold=gate_threshold, quality_threshold=quality_threshold)
    compression = compression_name(compression)  # (an int level or True as h5py takes it: recorded as --compression writes it)
    if gate is not None and gate_threshold is None:  # the engine's threshold would be 0.0: a gate that re-draws nothing
        raise ExpandError("gate= needs gate_threshold= (the similarity below which a variant is re-drawn)")
    dist = init_distributed("gloo", timeout_s=86400) if shard is None else None
    if merge is None:
        merge = world == 1 or (dist is not None and rank == 0)
    check_out(Path(source), out)  # before the parts folder is named: "." or "/" has no name to add ".parts" to
    src = open_source(source, skip=parts_dir_of(out))  # OUT inside the source folder
    engine = _make_engine(bundle, rank_device(device, dist is not None), s, gate)
    s.refine_steps, b = engine.refine_steps, engine.bundle
    key_info = {"bundle": b.identity, "seed": seed, "settings": asdict(s), "source": src.fingerprint(),
                "layout_version": LAYOUT_VERSION, "render": RENDER_REVISION, "gate": gate_key(engine.gate),
                "faces_extra": faces_extra_available()}  # dlib frames (framing auto) and places the controls' landmarks
    run_key = hashlib.sha256(json.dumps(key_info, sort_keys=True).encode()).hexdigest()[:16]
    say = lambda m: tqdm.write(m, file=sys.stderr)  # noqa: E731 - skip reports are always shown
    files = RunFiles(Path(out), run_key, key_info, -(-len(src) // s.block_size), rank, say if progress else (lambda m: None),
                     compression)
    with files.locked(world):
        done = files.finished_output(overwrite)
        if done is not None:
            n_out, skipped = done
            return ExpandResult(files.out, n_out, skipped, 0, files.n_blocks, time.time() - t0)
        if merge_only:  # nothing to merge yet: say so before writing anything (a manifest alone would block the real run)
            files.check_complete()
        files.write_manifest({"bundle_name": b.name, "n_source": len(src), "genaug_version": __version__}, overwrite)
        if dist is not None:
            dist.barrier()
        todo = [] if merge_only else files.unfinished_blocks(range(rank, files.n_blocks, world), overwrite)
        shape, out_hw, resize = output_shape(src, engine, s)
        job = _Job(src, engine, s, seed, out_hw, resize, code_columns(b.spec, s.codes))
        label = f"expand {files.out.name}" + (f" [shard {rank}/{world}]" if world > 1 else "")
        rendered, skipped_now = _expand_blocks(job, files, todo, shape, compression, workers, label, progress, say)
        elapsed = time.time() - t0
        speed = rendered / elapsed if elapsed > 0 else 0.0
        if dist is not None:
            dist.barrier()
        if not merge:
            files.log(f"shard {rank}/{world}: {len(todo)} blocks expanded ({rendered} images, {speed:.1f} img/s); "
                      "run the same command without --shard (or with --merge-only) to merge")
            describe_skipped(skipped_now, say)
            return ExpandResult(None, rendered, skipped_now, len(todo), files.n_blocks, elapsed, speed)
        n_rec, skipped = _merge(files, b, src, s, shape, seed, compression, command, source, progress, say)
        return ExpandResult(files.out, n_rec, skipped, len(todo), files.n_blocks, time.time() - t0, speed)
