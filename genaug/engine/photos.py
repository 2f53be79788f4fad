"""The engine's user-photo side: frame photos of any size into the model's frame, and put each
result back into its photo (the change pasted back; an image-space control rendered on the photo
itself; a colour edit as one transform of the whole photo). :class:`genaug.engine.core.Engine` has
these methods; the model-frame work (inversion, edits, gates) is in ``core``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from ..device import torch_defaults
from ..faces.controls import GEOMETRIC_CONTROLS
from ..faces.pose import faces_beside
from ..images import FrameInfo, from_chw01, grey_white, match_channels, same_levels, to_chw01
from .codes import check_generator, control_of, default_codes
from .colour import photo_transform
from .edits import AugmentInfo, Edit, check_edits, random_edits, redraw_distinct
from .invert import Inversion
from .reframe import reframe
from .render import apply_control, paste_back, recolour, recolour_channels, to_model_batch
from .roomless import redraw_face, redraw_roomless
from .variants import unplaced_redraws


NO_FACE = "unchanged (no face found)"  # :meth:`PhotoIO.faceless`
NO_ROOM = "unchanged (no room for the control on this face)"  # a control the face had no room for (near profile)
NO_ROOM_EDGE = ("unchanged (no room for the control on this face: it is cut by the photo's edge, a landmark outside "
                "the photo)")  # a control on a detected face whose landmarks the photo does not all hold
ROOMLESS = (NO_ROOM, NO_ROOM_EDGE)  # the reasons a drawn control is re-drawn for (:meth:`PhotoIO._redraw_roomless`)
NO_PIXEL = "unchanged (the edit changed no pixel of this photo)"  # a control at 0, a colour edit: :meth:`PhotoIO.unchanged`
GATED = "unchanged (rejected by the gates)"  # every gate try rejected: the transform, the Dataset
WILD = 4  # framing="auto" found no face in a photo whose short side is at least this many model frames (256 px for the
# 64 px model): a scene, not a face crop, so an edit that draws on the face is not painted in the centre-square guess
# (dlib missed 0-3 % of tight face crops upscaled to 256-512 px; in 640x480 frames 6 / 2 / 0-1 of 30 faces 24 / 32 /
# 48+ px wide: a face missed in such a photo is that small, its centre square no face)


class PhotoIO:
    """:class:`~genaug.engine.core.Engine`'s methods for user photos (framing, placing results back)."""

    @torch_defaults()
    def augment(
        self, images: Any, edits: list[Edit] | None = None, generator: torch.Generator | None = None,
        strength: float | Tensor | None = None, mode: str | None = None, framing: str | None = None,
        redraw_unplaced: bool = False, redraw_codes: list[int] | None = None,
    ) -> tuple[Any, AugmentInfo]:
        """Augment user images of any size/format (one image or a list): frame, augment, paste back.
        Returns outputs of the same type/shape/dtype as the inputs, and the AugmentInfo (a yaw or light edit of a
        photo without a found face, or an edit that draws on the face of a large one, :meth:`unplaced`, comes back
        unchanged: ``kept`` False, described as such). Random edits (``edits`` None, or ``redraw_unplaced`` for edits
        the caller drew at random) that are such edits, or controls on a face with no room for them (a near-profile
        face: no turn, light or frames), are re-drawn from ``generator`` among the engine's latent codes that apply
        there (a control without room: also its other controls with room there, :meth:`_redraw_roomless`), if it has
        any (the transform: ``p=1`` still edits a tight crop the detector misses or a profile, and
        recolours a scene it finds no face in), and such a colour
        edit moves the code at least a margin from the face's own value (:meth:`Engine.render_edits`). ``redraw_codes``:
        the random set of the draw and of a gate's re-draws (default: the engine's ``codes``)."""
        check_generator(generator)
        single = not isinstance(images, (list, tuple))
        items = [images] if single else list(images)
        x, frames = self.frame(items, framing)
        drawn = edits is None or redraw_unplaced
        if drawn:
            gen = generator or self.generator
            edits = self.replace_unplaced(check_edits(self.spec, edits if edits is not None else self.random_edits(len(items), gen, redraw_codes)),
                                          frames, gen)
        else:  # (a list, read by the framing and the render: an iterator was read up by the first)
            edits = check_edits(self.spec, edits)
        self._frame_parts(items, x, frames, edits, framing)
        out, info = self.augment_tensor(x.to(self.device), edits, generator, strength, mode, placed=True, frames=frames,
                                         drawn=drawn, redraw_codes=redraw_codes)
        res = self.unframe(out, items, frames, info, drawn)
        if drawn:
            self._redraw_roomless(x, items, frames, res, info, gen, strength, mode, framing, redraw_codes)
        for r, f in enumerate(frames):
            if self.faceless(info.edits[r], f):
                info.kept[r], info.descriptions[r] = False, NO_FACE
        return (res[0] if single else res), info

    def _frame_parts(self, items: list[Any], x: Tensor, frames: list[FrameInfo], edits: list[Edit], framing: str | None) -> None:
        """Rows of ``x`` / ``frames`` framed for their edit by :meth:`frame_part`, in place (edits of another count:
        :meth:`augment_tensor` refuses them)."""
        for r, (item, e) in enumerate(zip(items, edits)):
            again = self.frame_part(item, frames[r], [e.code], framing)
            if again is not None:
                x[r], frames[r] = again

    def draws_on_face(self, code: int) -> bool:
        """True for a latent code whose edit draws on the face (glasses, bangs, mouth, smile, male): no image-space
        control, no colour edit (recipe ``colour``: tone, shade, warmth)."""
        return control_of(self.spec, code) is None and not self.bundle.recipe(code, 0).colour

    def frame_part(self, image: Any, frame: FrameInfo, codes: Any, framing: str | None = None) -> tuple[Tensor, FrameInfo] | None:
        """``image`` (framed by the rule as ``frame``) framed for an edit of one of ``codes``: ``(x, FrameInfo)`` by its
        detected face where the framing is ``auto``, one of ``codes`` draws on the face (:meth:`draws_on_face`) and the
        rule's box misplaces the face (an Olivetti frame, a tight crop: :func:`genaug.engine.reframe.reframe`), so the
        generator draws the part where the face has it; else None (the rule's frame, no detection). Every front end
        frames a source for such an edit here."""
        if not self.seeks_faces(codes, framing):
            return None
        return reframe(image, self.bundle, frame, [self.code_names[c] for c in codes if self.draws_on_face(c)])

    def seeks_faces(self, codes: Any, framing: str | None = None) -> bool:
        """Whether :meth:`frame_part` looks for the face of a photo for an edit of one of ``codes``: the framing is
        ``auto`` and one of ``codes`` draws on the face (:meth:`draws_on_face`)."""
        return (framing or self.framing) == "auto" and any(self.draws_on_face(c) for c in codes)

    @torch_defaults()
    def frame_rows(self, images: list[Any], x: Tensor, frames: list[FrameInfo], inv: Inversion, ks: list[int],
                   edits: list[Edit]) -> tuple[Tensor, Inversion, list[FrameInfo]]:
        """Rows ``ks`` (indices of ``images``, framed by the rule as ``x`` / ``frames`` and inverted as ``inv``) to be
        rendered with ``edits``: each row's model-frame input, inversion and frame, its source's, or where its edit
        draws on a face the rule's box misplaces, the source framed by :meth:`frame_part` (detected and inverted once
        per source)."""
        parts: dict[int, Any] = {}
        for k, e in zip(ks, edits):
            if k not in parts and self.draws_on_face(e.code):
                parts[k] = self.frame_part(images[k], frames[k], [e.code])
        parts = {k: p for k, p in parts.items() if p is not None}
        t = torch.tensor(ks, device=x.device)
        xr, lat, score, recon, fr = x[t], inv.latent[t], inv.score[t], inv.recon[t], [frames[k] for k in ks]
        if parts:
            at = {k: j for j, k in enumerate(parts)}  # each reframed source's row in the second inversion
            again = self.invert(torch.stack([p[0] for p in parts.values()]).to(x.device))
            for r, (k, e) in enumerate(zip(ks, edits)):
                if k in parts and self.draws_on_face(e.code):
                    j = at[k]
                    xr[r], lat[r], score[r], recon[r], fr[r] = parts[k][0], again.latent[j], again.score[j], again.recon[j], parts[k][1]
        return xr, Inversion(lat, score, recon), fr

    def _redraw_roomless(self, x: Tensor, items: list[Any], frames: list[FrameInfo], res: list[Any], info: AugmentInfo,
                         generator: torch.Generator, strength: float | Tensor | None, mode: str | None,
                         framing: str | None, codes: list[int] | None = None) -> None:
        """The rows of a random draw whose control had no room on the face (:data:`ROOMLESS`) edited again with a code
        re-drawn from ``generator`` among the random set's (``codes``, default the engine's) others that act there:
        latent codes, and controls until each is found without room (:func:`~genaug.engine.roomless.redraw_roomless`:
        a face turned 40-47.5 degrees gets the light a turn has no room for; one that draws on a face the rule's box
        misplaces framed by it, :meth:`frame_part`, as the Dataset and expand frame it), in place in ``res`` and
        ``info``; nothing else is drawn or changed."""
        def again(rows: list[int], left: list[int]) -> list[Edit | None]:
            edits = random_edits(self.spec, len(rows), generator, codes=left, bounds=self.bounds)
            sub_x, sub_frames = x[rows], [frames[r] for r in rows]
            self._frame_parts([items[r] for r in rows], sub_x, sub_frames, edits, framing)
            wanted = strength[rows] if isinstance(strength, Tensor) and strength.ndim else strength
            out, sub = self.augment_tensor(sub_x.to(self.device), edits, generator, wanted, mode, placed=True,
                                           frames=sub_frames, drawn=True, redraw_codes=left)
            self.stats["augmented"] -= len(rows)  # (counted once, by the first pass)
            for i, (r, image) in enumerate(zip(rows, self.unframe(out, [items[r] for r in rows], sub_frames, sub, True))):
                res[r], info.edits[r], info.kept[r], info.descriptions[r] = image, sub.edits[i], sub.kept[i], sub.descriptions[i]
                info.latent[r], info.edited[r], info.score[r] = sub.latent[i], sub.edited[i], sub.score[i]
            return [info.edits[r] if info.descriptions[r] in ROOMLESS else None for r in rows]

        redraw_roomless(self, {r: (info.edits[r], frames[r]) for r, d in enumerate(info.descriptions) if d in ROOMLESS},
                        again, codes)

    def _latent_codes(self, frames: Any = (), codes: list[int] | None = None) -> list[int]:
        """The engine's codes (``codes``, default its ``codes``, else the bundle's random set) that move the latent, not
        an image-space control: what a control with no face to place it is re-drawn among; with ``frames``, only
        those that apply on each of those photos (in a :meth:`wild` one, the colour edits: :meth:`unplaced`)."""
        codes = codes if codes is not None else self.codes if self.codes is not None else default_codes(self.spec)
        codes = [c for c in codes if control_of(self.spec, c) is None]
        return [c for c in codes if not any(self.unplaced(Edit(c, 0.0), f) for f in frames)]

    @torch_defaults()
    def replace_unplaced(self, edits: list[Edit], frames: list[FrameInfo], generator: torch.Generator) -> list[Edit]:
        """``edits`` with each edit that :meth:`unplaced` would leave undone (no face found) re-drawn from
        ``generator`` among the engine's latent codes that apply on its photo (none: unchanged; the rows of photos
        alike drawn together, so a row's codes do not depend on the other photos of the batch) — random edits only."""
        rows = [r for r, (e, f) in enumerate(zip(edits, frames)) if self.unplaced(e, f)]
        if not rows:  # (the usual case: every edit has its face)
            return edits
        alike: dict[tuple[int, ...], list[int]] = {}  # the codes that apply on a photo -> its rows
        for r in rows:
            alike.setdefault(tuple(self._latent_codes([frames[r]])), []).append(r)
        out = list(edits)
        for codes, rs in alike.items():
            if codes:
                for r, e in zip(rs, random_edits(self.spec, len(rs), generator, codes=list(codes), bounds=self.bounds)):
                    out[r] = e
        return out

    @torch_defaults()
    def replace_unplaced_variant(self, plan: list[Edit], frame: FrameInfo, v: int, generator: torch.Generator,
                                 seed_of: Callable[[int], int], roomless: list[int] | None = None,
                                 redrawn: list[Edit] | None = None) -> Edit:
        """Variant ``v`` of a source's ``plan`` (its variant edits) as drawn for the photo of ``frame``: an edit that
        :meth:`unplaced` would leave undone re-drawn among the latent codes that apply there like :meth:`replace_unplaced`, from
        ``generator`` (variant ``v``'s draws; ``seed_of(j)``: the seed of variant ``j``'s), but not onto a categorical
        move another variant of the source makes (:func:`redraw_distinct`), so the variants stay distinct.
        ``roomless``: variant ``v``'s control had no room on the face (:meth:`undone`): re-drawn the same way among
        these codes (:func:`~genaug.engine.roomless.roomless_codes`: the other codes that act there, controls too).
        ``redrawn``: the source's :func:`~genaug.engine.variants.unplaced_redraws` (one pass per source, for a caller
        drawing many of its variants); else the variants before ``v`` are re-drawn here."""
        redraw = [self.unplaced(e, frame) for e in plan]
        redraw[v] = redraw[v] or bool(roomless)
        codes = roomless or self._latent_codes([frame])
        if not redraw[v] or not codes:
            return plan[v]
        before = (redrawn if redrawn is not None else unplaced_redraws(self, plan, frame, seed_of, upto=v))[:v]
        gens = [None] * v + [generator]  # (the variants before v as drawn: only v draws, from its own generator)
        return redraw_distinct(self.spec, before + plan[v:], [False] * v + redraw[v:], gens, codes, self.bounds)[v]

    @torch_defaults()
    def frame(self, images: list[Any], framing: str | None = None, count: bool = True) -> tuple[Tensor, list[FrameInfo]]:
        """User images -> model-frame batch (CPU) and FrameInfos; counts ``framing="detect"``
        images without a face (they come back unchanged) in ``stats["no_face"]`` (unless ``count``
        is False: framing for inversion only, the images are counted when they are augmented)."""
        x, frames = to_model_batch(images, self.bundle, framing or self.framing)
        if count:
            self.stats["no_face"] += sum(f.no_face for f in frames)
        return x, frames

    @torch_defaults()
    def unframe(self, out: Tensor, originals: list[Any], frames: list[FrameInfo], info: AugmentInfo | None = None,
                drawn: bool = False) -> list[Any]:
        """Model-frame results -> user images (:meth:`place` row by row; ``info``: the rows' AugmentInfo, whose
        control edits are updated to the values applied; ``drawn``: the edits were drawn at random)."""
        out = out.cpu()
        res = []
        for r, (o, im, f) in enumerate(zip(out, originals, frames)):
            edit = info.edits[r] if info is not None else None
            image, applied = self.place(o, im, f, edit, bool(info.kept[r]) if info is not None else True, drawn)
            if info is not None and applied is not edit:
                info.edits[r], info.descriptions[r] = applied, applied.describe(self.spec)  # type: ignore[union-attr]
            why = self.unchanged(edit, applied, f, im, image) if info is not None and bool(info.kept[r]) else None
            if why is not None:
                info.kept[r], info.descriptions[r] = False, why  # type: ignore[union-attr]
            res.append(image)
        return res

    def unchanged(self, edit: Edit | None, applied: Edit | None, frame: FrameInfo, original: Any, image: Any) -> str | None:
        """Why a row the gates kept comes back as its photo, as every front end reports it (``last_info``, Dataset
        meta; HDF5 ``codes`` NaN), or None where ``edit`` (as asked, at its strength) was applied: no face found for it
        (:data:`NO_FACE`, :meth:`faceless`), a control the face had no room for (:data:`NO_ROOM`, :meth:`undone`; on a
        detected face cut by the photo's edge, a landmark outside it, :data:`NO_ROOM_EDGE`), or
        an edit that changed no pixel (:data:`NO_PIXEL`): a control asked at 0 (strength 0) or any edit that came back
        as ``original`` (:meth:`changed_nothing`: strength 0 in ``delta`` mode, a colour code at about the face's own
        value, a turn of a flat photo, frames drawn on a black one). ``applied``: the edit as :meth:`place` applied it;
        ``image``: the result."""
        if self.faceless(edit, frame):
            return NO_FACE
        if self.undone(edit, applied):
            return NO_ROOM_EDGE if cut_by_edge(frame) else NO_ROOM
        still = applied is not None and applied.value == 0 and control_of(self.spec, applied.code) is not None
        return NO_PIXEL if still or self.changed_nothing(edit, frame, original, image) else None

    def changed_nothing(self, edit: Edit | None, frame: FrameInfo, original: Any, image: Any) -> bool:
        """True when an edit (latent, colour or image-space control) came back as the photo it was given, value for value
        (a float photo, PIL's "F" too: level for level of 8 bits, not off by float rounding): strength 0 in ``delta`` mode
        (the photo itself, see ``Engine._edit_latent``), a colour code at about the face's own value (or a black photo),
        a turn of a flat photo, frames drawn on a black one; so it is reported unchanged, not applied."""
        if edit is None or frame.no_face:
            return False
        if isinstance(original, Tensor):
            return isinstance(image, Tensor) and same_levels(original.movedim(-2, 0), image.movedim(-2, 0))
        if hasattr(original, "tobytes") and not hasattr(original, "shape"):  # PIL
            if original.mode != "F":
                return original.tobytes() == image.tobytes()
            white = grey_white(original)  # (a float grey image in [0, 1] or 0..255)
            original, image = np.asarray(original) / white, np.asarray(image) / white
        return same_levels(np.asarray(original), np.asarray(image))

    def recolours(self, edit: Edit) -> bool:
        """True when ``edit`` is a colour edit (recipe ``colour``: tone, shade, warmth; mode ``delta``): the whole photo
        through one colour transform (:meth:`place`)."""
        return (self.mode == "delta" and control_of(self.spec, edit.code) is None
                and self.bundle.recipe(edit.code, edit.value).colour)

    def unplaced(self, edit: Edit | None, frame: FrameInfo) -> bool:
        """True when ``edit`` needs a face and none was placed in ``frame``: an image-space control (yaw, light) where
        ``detect`` found none or ``auto`` looked for one and found none, or an edit that draws on the face
        (:meth:`draws_on_face`) where ``auto`` found none in a photo :meth:`wild` (a scene: its centre square is
        rarely a face; on a smaller photo, a tight crop the detector missed, it is). :meth:`place` returns the photo
        unchanged, so the edit is not applied (not recorded as one)."""
        if edit is None:
            return False
        if control_of(self.spec, edit.code) is not None:
            return frame.no_face or frame.guessed
        return self.wild(frame) and self.draws_on_face(edit.code)

    def wild(self, frame: FrameInfo) -> bool:
        """True when ``auto`` framing found no face in a photo whose short side is at least :data:`WILD` model frames
        (the centre-square guess, ``frame.box``, is that photo's short side)."""
        return frame.guessed and frame.box[2] - frame.box[0] >= WILD * self.image_size

    def faceless(self, edit: Edit | None, frame: FrameInfo) -> bool:
        """True when the photo comes back unedited for want of a face: ``detect`` found none, or ``edit`` needs one and
        none was placed (:meth:`unplaced`: a control; in a large photo, an edit that draws on the face)."""
        return frame.no_face or self.unplaced(edit, frame)

    def undone(self, edit: Edit | None, applied: Edit | None) -> bool:
        """True when an image-space control that asked for a change (``edit``) left the photo as it was (``applied``,
        from :meth:`place`, is 0): a face with no room to turn that way (a turn outwards stops at 35 degrees), or a
        near-profile face the light or the frames fade out on. Front ends report such a row unchanged, not edited."""
        return (edit is not None and applied is not None and edit.value != 0 and applied.value == 0
                and control_of(self.spec, edit.code) is not None)

    @torch_defaults()
    def place(self, out: Tensor, original: Any, frame: FrameInfo, edit: Edit | None = None, kept: bool = True,
              drawn: bool = False) -> tuple[Any, Edit | None]:
        """One model-frame result (C, S, S) -> (the user image, the edit as applied): only the change pasted back,
        except for a kept image-space control ``edit`` (yaw, light), which is applied to the full photo at its
        own resolution instead (:func:`genaug.engine.render.apply_control`; its value fitted to what the face allows:
        clipped, or when ``drawn`` at random, scaled into it), and a kept colour edit (recipe ``colour``), whose colour
        transform recolours the whole photo (:func:`genaug.engine.render.recolour`). An edit that draws on the face in a
        photo with no face found for it (:meth:`unplaced`) returns the photo unchanged."""
        control = control_of(self.spec, edit.code) if edit is not None else None
        if control is None and kept and self.unplaced(edit, frame):  # (a control: apply_control leaves it so)
            return from_chw01(to_chw01(original)[0].clone(), original, frame), edit
        if control is not None and kept:  # no face placed (detect: none; auto: none found): unchanged
            bounds = self.drawn_range(edit.code) if drawn else None  # type: ignore[union-attr]
            with faces_beside(frame.alignment.others if frame.alignment is not None else ()):  # (a turn leaves them)
                image, value = apply_control(control, edit.value, original, frame, bounds, self.bundle)  # type: ignore[union-attr]
            return image, edit if value == edit.value else Edit(edit.code, value)  # type: ignore[union-attr]
        if edit is not None and kept and not frame.no_face and self.recolours(edit):
            # (out: the model frame through colour_only's transform, its hue kept: fitted again for the whole photo)
            return recolour(original, photo_transform(frame.model_in[None].float(), out[None].float().cpu())[0], frame), edit
        return paste_back(out, original, frame), edit

    @torch_defaults()
    def augment_faces(self, image: Any, faces: str = "each", generator: torch.Generator | None = None) -> tuple[Any, int]:
        """:func:`genaug.faces.align.augment_faces`: one random edit per detected face (every face, or the largest),
        a latent edit's model-frame change pasted back through the inverse warp, an image-space control rendered on
        the photo by :meth:`place` (turns last: a turn moves the photo, so the faces still to turn are found again).
        A colour edit (:meth:`recolours`: tone, shade, warmth) is the photo's, as on the one-face path: the whole photo
        through the colour transform fitted on its face, once - the first (largest) face's that drew one; a face
        whose own colour edit gives way to it is recoloured with the photo (pasted through each face's square mask, a
        colour edit tinted a box around the face: 12,953 pixels of a grey scene changed outside 3 faces' boxes). A
        drawn control a face has no room for (near profile) is re-drawn for that face among the codes that act there
        (:func:`~genaug.engine.roomless.redraw_face`), as on the one-face path. Returns the photo (its type and shape) and the number of faces edited."""
        from ..faces.align import follow_faces, get_aligner

        check_generator(generator)
        full, kind, dtype, layout, shape = to_chw01(image)
        full = full.clone()  # a float photo's tensor is a view of it: the caller's photo must not change
        channels = 3 if full.shape[0] >= 3 else 1
        info = FrameInfo(kind, shape, dtype, layout, channels, full.shape[0] in (2, 4), (0, 0, 0, 0), torch.empty(0))
        colour, aligner = full[:channels], get_aligner(self.image_size, faces)
        found = aligner.align(colour)
        if not found:
            return from_chw01(full, image, info), 0
        x = torch.stack([match_channels(c, self.channels) for c, _ in found]) * 2 - 1
        out, res = self.augment_tensor(x.to(self.device), generator=generator, placed=True)
        out = out.cpu()
        controls = [control_of(self.spec, e.code) for e in res.edits]
        tints = [c is None and bool(k) and self.recolours(e) for e, k, c in zip(res.edits, res.kept, controls)]
        if any(tints):  # the photo's colour edit, once: the first face's transform on every pixel
            r = tints.index(True)
            colour = recolour_channels(colour, photo_transform(x[r][None].float(), out[r][None].float())[0])
        for (_, al), o, xi, c, t in zip(found, out, x, controls, tints):
            if c is None and not t:  # a latent edit (or a row a gate kept unchanged): its change through the inverse warp
                colour = aligner.paste(colour, match_channels((o - xi) / 2, channels), al)
        full[:channels] = colour
        photo, edited, aligned = from_chw01(full, image, info), len(found), [al for _, al in found]
        todo = sorted((r for r, c in enumerate(controls) if c is not None), key=lambda r: controls[r].name in GEOMETRIC_CONTROLS)
        for i, r in enumerate(todo):
            if aligned[r] is None:  # lost after a turn moved the photo: left as it is
                edited -= 1
                continue
            frame = FrameInfo(kind, shape, dtype, layout, channels, info.has_alpha, aligned[r].face.box, x[r], alignment=aligned[r])
            photo, applied = self.place(out[r], photo, frame, res.edits[r], bool(res.kept[r]), drawn=True)
            if self.undone(res.edits[r], applied):  # no room on this face (near profile): re-drawn among the codes that act there
                photo, applied, tints[r] = redraw_face(self, photo, frame, applied, aligner, generator, any(tints))
            control = None if applied is None else control_of(self.spec, applied.code)
            edited -= int(applied is None or (control is not None and applied.value == 0))  # (strength 0: no change)
            moved = control is not None and control.name in GEOMETRIC_CONTROLS and applied.value != 0
            if moved and i + 1 < len(todo):
                rest = todo[i + 1 :]
                for j, al in zip(rest, follow_faces(aligner, to_chw01(photo)[0][:channels], [aligned[j] for j in rest])):
                    aligned[j] = al
        return photo, edited


def cut_by_edge(frame: FrameInfo) -> bool:
    """True when ``frame``'s detected face has a landmark outside the photo (a face cut by its edge), where
    :func:`genaug.engine.render.apply_control` places no control."""
    from ..faces.landmarks import landmarks_inside

    if frame.alignment is None:
        return False
    h, w = frame.shape[-2:] if frame.layout == "CHW" else frame.shape[:2]
    lm = torch.as_tensor(np.asarray(frame.alignment.face.landmarks), dtype=torch.float32).reshape(1, 5, 2)
    return not bool(landmarks_inside(lm, h, w)[0])
