"""``GenerativeAugDataset``: a torch Dataset that yields ``variants`` generative augmentations of
every item of a base dataset.

On first use every image is inverted once, in batches on the engine's device (tqdm bar); the
latents can be cached on disk (:class:`genaug.engine.cache.LatentStore`: one key per image content, valid
for one bundle and inversion settings) so a second run inverts only images it has not seen. Item
``i`` is variant ``i % per_source`` of source ``i // per_source``; the variants of a source are
distinct edits, a pure function of ``(seed, source)`` (:func:`genaug.engine.edits.variant_edits`), and
every item goes through :meth:`genaug.engine.Engine.render_edits` (gate included). Output type
mirrors the input (PIL, HWC numpy, CHW tensor). A base dataset with random transforms of its own
works (an item whose image differs from the one inverted is inverted again, so the edit is drawn
on the face it is applied to) but costs an inversion per item: put random transforms after the
wrapper where you can. With ``return_meta`` items end in a :class:`~genaug.samples.SampleMeta`, which the default
``DataLoader`` collate batches.
"""
from __future__ import annotations

import math
import operator
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .bundle.format import Bundle, bundle_path
from .device import torch_defaults
from .engine.cache import content_keys
from .engine.codes import (check_edit_options, check_engine_options, check_flag, check_refine_loss, check_seed,
                           check_strength, default_codes)
from .engine.edits import Edit, derive_seed, resolve_edits, variant_edits
from .engine.lazy import LazyEngine
from .engine.photos import GATED
from .engine.roomless import redraw_roomless
from .engine.variants import check_variants, marks_places, redraw_turns, repeats_another, unplaced_redraws
from .faces.controls import GEOMETRIC_CONTROLS
from .faces.identity import online_gate
from .images import check_transform
from .io import check_path
from .samples import SampleMeta, join_item, read_item, transform_item, with_base_marks
from .source_latents import invert_sources

# the engine's options, given when the Dataset is built (every item is rendered by that engine); set later: an error
ENGINE_OPTIONS = ("bundle", "device", "refine_steps", "refine_loss", "mode", "strength", "framing", "codes", "bounds",
                  "batch_size", "gate", "gate_threshold", "quality_threshold")


class GenerativeAugDataset(Dataset):
    """Wrap ``base`` (items ``image``, ``(image, target, ...)`` or dicts) to yield augmented variants.

    Args:
        base: any map-style dataset of PIL images, HWC numpy arrays or CHW tensors, bare, first in a
            tuple / list, or under ``"image"`` (or ``"img"``) in a dict (which comes back a dict;
            with ``return_meta`` the meta is its ``"meta"`` entry).
        variants: augmented samples per original. include_original: also yield the original.
        bundle / device / refine_* / mode / strength / framing / codes / bounds / batch_size:
            passed to :class:`~genaug.engine.Engine` (or give a ready ``engine``).
        seed: augmentations are a pure function of ``(seed, index)``.
        cache_path: file for the inverted latents (``.safetensors``); reused when it matches.
        return_meta: items become ``(image, target, SampleMeta)`` (or ``(image, SampleMeta)``).
        transform / target_transform: applied to each item's image (original or variant, after genaug;
            albumentations as ``transform(image=...)["image"]``, with a dict sample's masks, boxes and keypoints
            as its ``Compose`` takes them; a ``torchvision.transforms.v2`` one on the whole sample when it holds
            ``tv_tensors`` boxes, masks or keypoints and every step is a v2 transform; any other callable as
            ``transform(image)``) and to its first target
            (``(image, target, ...)`` items), as torchvision datasets do.
        progress: show a tqdm bar while inverting.
        gate / gate_threshold: identity gate (see :class:`~genaug.engine.Engine`); ``gate="auto"`` or ``gate_threshold``
            alone uses ``genaug.faces.identity.online_gate("auto")`` (the shipped student, else the embedder; not dlib). Items with ``return_meta`` carry the edit applied
            after the gate (``edit=None`` when every draw was rejected and the image is unchanged).
        quality_threshold: quality gate (the shipped realism critic; ``"auto"`` = its own threshold;
            see :class:`~genaug.engine.Engine`); None = off.
        lazy: invert on first access instead of at construction. Without it the inversion runs
            once, here, in the main process; with it, call :meth:`prepare` before a DataLoader
            with workers, or every worker inverts the whole dataset itself.
    """

    def __init__(
        self,
        base: Any,
        variants: int = 8,
        bundle: Bundle | str | Path = "default",
        device: str | torch.device = "auto",
        refine_steps: int | None = None,
        refine_loss: str = "mse+msssim",
        mode: str = "delta",
        strength: float = 1.0,
        framing: str = "auto",
        codes: list[str | int] | None = None,
        bounds: dict[str | int, tuple[float, float]] | None = None,
        batch_size: int = 64,
        include_original: bool = False,
        seed: int = 0,
        cache_path: str | Path | None = None,
        return_meta: bool = False,
        progress: bool = True,
        engine: Any = None,
        lazy: bool = False,
        gate: Any = None,
        gate_threshold: float | None = None,
        quality_threshold: float | str | None = None,
        transform: Any = None,
        target_transform: Any = None,
    ):
        if isinstance(base, torch.utils.data.IterableDataset) or not (hasattr(base, "__len__") and hasattr(base, "__getitem__")):
            raise TypeError(f"base must be a map-style dataset (len(base) and base[i]), got {type(base).__name__}: "
                            "collect an iterable or IterableDataset into a list first")
        check_strength(strength)  # one strength for every variant
        for flag, name in ((include_original, "include_original"), (return_meta, "return_meta"), (progress, "progress"),
                           (lazy, "lazy")):
            check_flag(flag, name)
        if engine is None:
            check_refine_loss(refine_loss, "GenerativeAugDataset's arguments")
            check_engine_options(mode, framing, refine_steps, batch_size, device, gate, quality_threshold)  # (lazy: not in a worker)
        if gate_threshold is not None and (not math.isfinite(gate_threshold) or gate_threshold > 1):  # NaN: never acts; > 1: always
            raise ValueError(f"gate_threshold must be a finite similarity <= 1 (above 1 every edit is rejected), got {gate_threshold}")
        self.base, self.include_original, self.variants = base, bool(include_original), variants  # (checked: __setattr__)
        self.seed, self.return_meta, self.progress = seed, bool(return_meta), bool(progress)
        if cache_path is not None:
            check_path(cache_path, "cache_path", "None or a file path")
        self.cache_path = Path(cache_path).expanduser() if cache_path is not None else None  # "~/x" as a shell reads it
        if self.cache_path is not None and self.cache_path.is_dir():  # found only when saving, after the inversion
            raise ValueError(f"cache_path {cache_path} is a folder: give a file in it, e.g. "
                             f"{self.cache_path / 'faces.latents.safetensors'}")
        self.transform, self.target_transform = transform, target_transform
        engine_kw = dict(
            bundle=bundle_path(bundle), device=device, refine_steps=refine_steps, refine_loss=refine_loss, mode=mode, strength=strength,
            framing=framing, codes=codes, bounds=bounds, batch_size=batch_size, cache_size=0,
            gate=online_gate(gate) if isinstance(gate, str) else gate if gate is not None else (  # "auto": the online judge
                online_gate("auto") if gate_threshold is not None else None),
            gate_threshold=gate_threshold or 0.0, quality="critic" if quality_threshold is not None else None,
            quality_threshold=quality_threshold if quality_threshold is not None else "auto",
        )
        if engine is None and isinstance(bundle, (str, Path)):
            check_edit_options(str(bundle), codes, bounds)
        self._lazy = LazyEngine(engine) if engine is not None else LazyEngine(**engine_kw)
        self.latents: Tensor | None = None
        self.scores: Tensor | None = None
        self.keys: list[bytes] = []  # content key of each source image as inverted
        self.parts: dict[int, tuple[bytes, Tensor, Tensor]] = {}  # source -> its face-framed key, latent, score (frame_part)
        self.marked: list[bool] = []  # each source's targets mark places in its image (boxes, masks, keypoints)
        if not lazy:
            self.prepare()

    def __setattr__(self, name: str, value: Any) -> None:
        """``seed``, ``variants``, ``include_original``, ``return_meta``, ``progress``, ``transform`` and
        ``target_transform``, given or set later, are checked here; the engine's options (``strength``, ``codes``, ...,
        :data:`ENGINE_OPTIONS`) set later are an AttributeError (``ds.seed = 1.5`` was taken; ``transform="x"`` failed
        at the first item; ``ds.return_meta = "no"`` read as True); ``ds.seed = seed +
        epoch`` before an epoch gives other variants (the workers of a ``persistent_workers=True`` DataLoader keep the
        copy they were started with)."""
        if name in ENGINE_OPTIONS:  # no attribute of the Dataset: set later it was taken and ignored
            raise AttributeError(f"{name} of a GenerativeAugDataset is fixed when it is built (every item is rendered by "
                                 f"its engine): build a new one, GenerativeAugDataset(base, {name}=...)")
        if name in ("transform", "target_transform"):
            check_transform(value, name)
        if name == "seed":
            value = check_seed(value)
        elif name == "variants" and "include_original" in self.__dict__:
            value = check_variants(value, self.include_original)
        elif name == "include_original" and "variants" in self.__dict__:
            value = check_flag(value, name)
            check_variants(self.variants, value)
        elif name in ("return_meta", "progress"):
            value = check_flag(value, name)
        super().__setattr__(name, value)

    @property
    def engine(self) -> Any:
        """The engine (created lazily; re-created on the CPU inside a DataLoader worker)."""
        return self._lazy.get()

    # --------------------------------------------------------------- structure
    @property
    def per_source(self) -> int:
        return self.variants + int(self.include_original)

    def __len__(self) -> int:
        return len(self.base) * self.per_source

    @property
    def classes(self) -> list[str]:
        """The base's class names, as torchvision's ``ImageFolder.classes`` (targets are carried over unchanged)."""
        return self._from_base("classes")

    @property
    def class_to_idx(self) -> dict[str, int]:
        """The base's class name -> target, as torchvision's ``ImageFolder.class_to_idx``."""
        return self._from_base("class_to_idx")

    @property
    def targets(self) -> list[Any]:
        """Each item's target, as torchvision's ``ImageFolder.targets`` (e.g. for a ``WeightedRandomSampler``): the
        base's ``targets``, each repeated for its source's ``per_source`` items."""
        return [t for t in self._from_base("targets") for _ in range(self.per_source)]

    def _from_base(self, name: str) -> Any:
        if not hasattr(self.base, name):  # (a Subset of an ImageFolder has none either: torch's Subset does not pass them on)
            raise AttributeError(f"GenerativeAugDataset has no {name!r}: it passes on its base's, and this base "
                                 f"({type(self.base).__name__}) has none")
        return getattr(self.base, name)

    def _frame(self, src: int, image: Any, count: bool = True) -> tuple[Tensor, Any]:
        """``e.frame`` of one base item; a bad image is an error naming the item."""
        try:
            x, (frame,) = self.engine.frame([image], count=count)
        except ValueError as e:
            raise ValueError(f"base item {src}: {e}") from None
        return x, frame

    # --------------------------------------------------------------- inversion
    @torch_defaults()  # genaug's own settings (the latents kept and the cache file on the host, never inference tensors)
    def prepare(self) -> "GenerativeAugDataset":
        """Invert every image once (:func:`genaug.source_latents.invert_sources`: batched on the engine's device, with
        ``cache_path`` only the images not in the cache file; a source whose face the rule misframes also framed by its
        face, for the codes that draw on it)."""
        if self.latents is not None:
            if len(self.latents) != len(self.base):  # items of a grown base had no latent (an IndexError of a tensor)
                raise ValueError(f"the base dataset holds {len(self.base)} items, but {len(self.latents)} were inverted when "
                                 "this GenerativeAugDataset was prepared: wrap the base once it is complete (a new "
                                 "GenerativeAugDataset; with cache_path, the images inverted before are reused)")
            return self
        if len(self.base) == 0:
            raise ValueError("the base dataset is empty")
        self.latents, self.scores, self.keys, self.marked, self.parts = invert_sources(
            self.engine, self.base, self.cache_path, self._frame, self._marked, self.progress)
        return self

    # ------------------------------------------------------------------- items
    def _locate(self, index: int) -> tuple[int, int]:
        try:
            index = operator.index(index)  # a numpy or 0-d torch integer too
        except TypeError:
            hint = " (a part of the dataset: torch.utils.data.Subset(ds, indices))" if isinstance(index, (slice, list)) else ""
            raise TypeError(f"dataset indices must be integers, got {type(index).__name__}{hint}") from None
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        return divmod(index % len(self), self.per_source)

    def _marked(self, src: int, rest: Any) -> bool:
        """True when base item ``src``'s targets mark places in its image (:func:`~genaug.engine.variants.marks_places`:
        named head turns refused; random ones re-drawn, see :meth:`_plan`); also a base whose targets are such places
        though no entry names them (:func:`~genaug.samples.with_base_marks`: torchvision's ``CelebA`` landmarks)."""
        return marks_places(self.engine, src, with_base_marks(self.base, rest, src), bool(self.variants))

    def _plan(self, src: int, marked: bool = False) -> list[Edit]:
        """The edits of source ``src``'s variants (without the original), a pure function of ``(seed, src)``; with
        ``marked`` (its targets mark places in the image) a head turn among them is re-drawn among the random set's
        other codes, from variant ``j``'s own seed, not onto a move another variant makes (``redraw_distinct``)."""
        e = self.engine
        plan = variant_edits(e.spec, self.seed, src, self.variants, e.codes, e.bounds)
        if not marked:
            return plan
        first = src * self.per_source + int(self.include_original)  # the item of the source's first variant
        return redraw_turns(e, plan, src, lambda j: derive_seed(derive_seed(self.seed, first + j), 1))

    def meta(self, index: int) -> SampleMeta:
        """Metadata of sample ``index`` (source index, edit, reconstruction score): the meta ``ds[index]`` carries with
        ``return_meta``, the item rendered to know it (not counted in ``engine.stats``; a gate is consulted as the item
        consults it). Whether an edit changes a pixel is known only from the render: a colour edit of a black photo or
        a named edit of one near black (:mod:`~genaug.engine.exposure`), a palette ("P") or 1-bit ("1") PIL photo that
        takes the result back on its own colours, a small ``strength`` - such an item comes back unchanged ("unchanged
        (the edit changed no pixel of this photo)"); also a control re-drawn where no face is found or the face has no
        room for it (see :meth:`_variant`), an edit left undone for want of a face ("unchanged (no face found)") and a
        gate's re-draw. The original (``include_original``) is not rendered."""
        self.prepare()
        with torch_defaults():  # genaug's own dtype, default device and precision (the draws repeat under any)
            meta = self._meta(index)
        if meta.original:
            return meta
        image, target = read_item(self.base, meta.source)
        counts = dict(self.engine.stats)  # a look at the item, not one made: the engine's counts stay
        try:
            with torch_defaults():
                return self._variant(index, meta, image, self._marked(meta.source, target))[1]
        finally:
            self.engine.stats.update(counts)

    def _meta(self, index: int) -> SampleMeta:
        src, v = self._locate(index)
        score = float(self.scores[src])
        if self.include_original and v == 0:
            return SampleMeta.of(src, v, None, "original", score, original=True)
        e, latent = self.engine, self.latents[src : src + 1]
        edit = self._plan(src, self.marked[src])[v - int(self.include_original)]
        if src in self.parts and e.draws_on_face(edit.code):  # framed by the face for it (Engine.frame_part)
            latent, score = self.parts[src][1], float(self.parts[src][2][0])
        if edit.relative:  # the category it lands on, as items' metas and HDF5 ``codes`` record it
            edit = resolve_edits(latent, e.spec, [edit])[0]
        edit = e._colour_margin([edit], latent, torch.tensor([e.strength], dtype=torch.float32), e.mode)[0]  # (as drawn=True)
        return SampleMeta.of(src, v, edit, edit.describe(e.spec), score)

    def __getitem__(self, index: int) -> Any:
        self.prepare()
        with torch_defaults():
            meta = self._meta(index)  # as planned; as applied after _variant
        image, target = read_item(self.base, meta.source)
        marked = self._marked(meta.source, target)  # boxes, masks, keypoints: no head turn
        if not meta.original:
            with torch_defaults():  # (the base dataset and the transforms run in the caller's settings)
                image, meta = self._variant(index, meta, image, marked)
        if self.transform is not None:
            image, target = transform_item(self.transform, image, target)
        return join_item(image, target, meta, self.return_meta, self.target_transform)

    def _variant(self, index: int, meta: SampleMeta, image: Any, marked: bool) -> tuple[Any, SampleMeta]:
        """Item ``index``'s variant of its source's ``image`` and its meta as applied. A drawn edit the photo has no
        face for (``Engine.unplaced``: a control, or in a large photo an edit that draws on the face), or a control
        whose face has no room for it (a near-profile face), is re-drawn among the codes that act there (latent codes
        that apply; for a control without room, the other controls too until each is found without room:
        :func:`~genaug.engine.roomless.redraw_roomless`), as the transform does, from the item's own draws
        (``(seed, index)``), not onto a move another variant makes."""
        e = self.engine
        x, frame = self._frame(meta.source, image)
        draws = torch.Generator().manual_seed(derive_seed(self.seed, index % len(self)))
        first = meta.source * self.per_source + int(self.include_original)  # the item of the source's first variant
        plan, v = self._plan(meta.source, marked), meta.variant - int(self.include_original)
        seed_of = lambda j: derive_seed(self.seed, first + j)  # noqa: E731
        redrawn = unplaced_redraws(e, plan, frame, seed_of) if e.unplaced(plan[v], frame) else None  # (one pass: both)
        redraw = lambda roomless=None: e.replace_unplaced_variant(  # noqa: E731 - relative: resolved on the latent used here
            plan, frame, v, draws, seed_of, roomless=roomless, redrawn=redrawn)
        edit = redraw()
        if repeats_another(e, plan, frame, v, edit, seed_of, redrawn):
            warnings.warn(f"base item {meta.source}: no face found (framing={e.framing!r}), so its variant {meta.variant}'s "
                          f"{e.code_names[plan[v].code]} is re-drawn among the latent codes, whose distinct edits its other "
                          f"variants already make: it repeats {edit.describe(e.spec)}", stacklevel=3)
        done = list(self._render(meta.source, x, edit, image, frame, draws))  # (out, info, placed, score)

        def again(_: list[int], left: list[int]) -> list[Edit | None]:  # no room: another code that acts there
            done[:] = self._render(meta.source, x, redraw(left), image, frame, draws, left)
            e.stats["augmented"] -= 1  # (counted once, by the first pass)
            return [done[2] if e.undone(done[1].edits[0], done[2]) else None]

        if e.undone(done[1].edits[0], done[2]):  # (none left in ``codes``: unchanged, "no room")
            keep = e.codes if e.codes is not None else default_codes(e.spec)  # (beside boxes, masks, keypoints: no turn)
            still = [c for c in keep if e.code_names[c] not in GEOMETRIC_CONTROLS] if marked else None
            redraw_roomless(e, {0: (done[2], frame)}, again, still)
        out, info, placed, score = done
        kept = bool(info.kept[0]) or e.faceless(info.edits[0], frame)  # (no face found: said so, gate or not)
        why = e.unchanged(info.edits[0], placed, frame, image, out) if kept else GATED
        applied = placed if why is None else None
        meta = SampleMeta.of(meta.source, meta.variant, applied, applied.describe(e.spec) if applied else why, float(score[0]))
        return out, meta

    def _render(self, src: int, x: Tensor, edit: Edit, image: Any, frame: Any, draws: torch.Generator,
                redraw_codes: list[int] | None = None) -> tuple[Any, Any, Edit | None, Tensor]:
        """``edit`` rendered on source ``src``'s photo ``image`` (framed by the rule as ``x``, ``frame``; for an edit
        that draws on a face the rule misplaces, by :meth:`Engine.frame_part`): (the photo, the engine's info, the edit
        as placed, the reconstruction score); a gate's re-draw from ``draws`` (no turn / light without a face) among
        ``redraw_codes``."""
        e = self.engine
        part = e.frame_part(image, frame, [edit.code])
        if part is not None:
            x, frame = part[0][None], part[1]
        latent, score = self._latent(src, x)
        out, info = e.render_edits(x, latent, [edit], score=score, generator=draws, placed=True, drawn=True,
                                   frames=[frame], redraw_codes=redraw_codes)
        image, placed = e.place(out[0], image, frame, info.edits[0], bool(info.kept[0]), drawn=True)  # yaw: scaled into its room
        return image, info, placed, score

    def _latent(self, src: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """The prepared latent of source ``src`` when ``x`` is the image it was inverted from; when the
        base dataset returned another image this time (a random transform inside it), ``x`` itself
        inverted, so the edit is drawn on the face it is applied to. ``x`` framed by the face (:meth:`Engine.frame_part`)
        gets the source's second latent."""
        key = content_keys(x)[0]
        if key == self.keys[src]:
            return self.latents[src : src + 1], self.scores[src : src + 1]
        if src in self.parts and key == self.parts[src][0]:
            return self.parts[src][1], self.parts[src][2]
        inv = self.engine.invert(x.to(self.engine.device))
        return inv.latent.cpu(), inv.score.cpu()

    # -------------------------------------------------------------- batch path
    def augment_batch(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Any]:
        """Augment a model-frame batch (N, C, S, S) in [-1, 1] already on the device
        (:meth:`Engine.augment_tensor`)."""
        return self.engine.augment_tensor(x, generator=generator)
