"""The files of one expansion run: the finished output, ``OUT.h5.parts/`` with its manifest and
part files, and the checks that make a resume safe (same run key, or refuse with what differs)."""
from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import h5py

from ..io import remove_stale_temps, write_json_atomic
from .hdf5 import FORMAT, compression_args, parts_dir_of, read_skipped
from .parts import part_name, part_status
from .sources import ExpandError

MANIFEST = "manifest.json"
KEYS = ("bundle", "seed", "settings", "source", "gate", "faces_extra", "layout_version", "render")


@dataclass
class RunFiles:
    out: Path
    run_key: str
    key_info: dict[str, Any]
    n_blocks: int
    rank: int
    log: Callable[[str], None]
    compression: str | None = None  # the images' filter the finished output must have (not part of the run key)

    @property
    def parts_dir(self) -> Path:
        return parts_dir_of(self.out)

    @contextlib.contextmanager
    def locked(self, world: int) -> Iterator[None]:
        """Hold this run's lock (one per shard, in the parts folder) for the call: a second expansion of the
        same output (or shard) started while the first runs is refused, instead of deleting its half-written parts."""
        from filelock import FileLock, Timeout

        self.parts_dir.mkdir(parents=True, exist_ok=True)
        path = self.parts_dir / ("lock" if world == 1 else f"lock-{self.rank}-of-{world}")
        lock = FileLock(path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            shard = f" (shard {self.rank}/{world})" if world > 1 else ""
            raise ExpandError(f"another expansion is writing {self.out}{shard} now (it holds {path}): wait for it "
                              "to finish, or stop it and run this again (it resumes)") from None
        try:
            yield
        finally:
            lock.release()
            with contextlib.suppress(OSError):  # nothing else there (the run stopped early, or merged): no folder left
                if self.parts_dir.exists() and all(p.name.startswith("lock") for p in self.parts_dir.iterdir()):
                    shutil.rmtree(self.parts_dir)

    def finished_output(self, overwrite: bool) -> tuple[int, list[tuple[int, str, str]]] | None:
        """(records, skipped) when ``out`` is already this run's finished file; None when there is nothing to
        keep (no ``out``, or ``overwrite``); ExpandError for another run's file. ``overwrite`` deletes nothing here:
        the old ``out`` stays readable until the merge's atomic rename replaces it (an interrupted or failed
        run leaves it as it was)."""
        if not self.out.exists():
            return None
        same, n_out, skipped, made_by, stored, rendered, made = False, 0, [], None, None, None, {}
        try:
            with h5py.File(self.out, "r") as f:
                same = f.attrs.get("run_key") == self.run_key
                if f.attrs.get("format") != FORMAT:  # (an HDF5 file of the user's, no expansion: none of the below)
                    raise KeyError("format")
                made_by = f.attrs.get("bundle_identity")
                rendered = int(f.attrs.get("render_revision", 1)), f.attrs.get("genaug_version", "?")
                n_out = f["images"].shape[0]
                skipped = read_skipped(f)
                stored = (f["images"].compression, f["images"].compression_opts)
                made = {"seed": int(f.attrs["seed"]), "settings": json.loads(f.attrs["settings"]), "render": rendered[0],
                        "genaug_version": rendered[1]}
        except (OSError, KeyError, ValueError):  # (an unreadable file, or attributes that are not this run's JSON)
            pass
        want = compression_args(self.compression) if self.compression is not None else None
        if same and not overwrite and want is not None and stored != (want.get("compression"), want.get("compression_opts")):
            have = f"{stored[0]}-{stored[1]}" if stored[0] == "gzip" else stored[0] or "none"
            raise ExpandError(f"{self.out} is already complete, but its images are compressed with {have}, not "
                              f"{self.compression}; pass --overwrite to write it again with --compression {self.compression}")
        if same and not overwrite:
            if self.rank == 0 and self.parts_dir.exists():
                shutil.rmtree(self.parts_dir, ignore_errors=True)
            self.log(f"{self.out} is already complete ({n_out} records); nothing to do")
            return n_out, skipped
        if not overwrite and made_by is not None and made_by != self.key_info.get("bundle"):
            raise ExpandError(f"{self.out} was made by another model (bundle identity {made_by}, this run's is "
                              f"{self.key_info.get('bundle')}: its weights or edit recipes changed); pass --overwrite to re-render it")
        only_render = _made_diff(made, self.key_info) in ([], ["render"])  # (else named with the rest, below)
        if not overwrite and rendered is not None and rendered[0] != self.key_info.get("render") and only_render:
            raise ExpandError(f"{self.out} was rendered by genaug {rendered[1]} (render revision {rendered[0]}), and this "
                              f"genaug (revision {self.key_info.get('render')}) renders the same settings otherwise; "
                              "pass --overwrite to re-render it")
        if not overwrite:
            raise ExpandError(f"{self.out} already exists ({_made_by(made, self.key_info)}); pass --overwrite to replace it")
        return None

    def write_manifest(self, extra: dict[str, Any], overwrite: bool) -> None:
        """Record bundle, seed, settings and source of the parts; refuse parts of another run."""
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        path = self.parts_dir / MANIFEST
        if path.exists():
            try:
                old = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                old = {}
            old = old if isinstance(old, dict) else {}  # (JSON, but not a manifest)
            # refused only when there are parts to lose: a run that stopped before its first part (no readable
            # image for --size source) must not block the corrected rerun
            if old.get("run_key") != self.run_key and not overwrite and any(self.parts_dir.glob("part-*.h5")):
                if not old:  # (not every setting and the render revision differing)
                    raise ExpandError(f"{self.parts_dir} holds parts whose {MANIFEST} cannot be read, so which run made them "
                                      "is unknown; pass --overwrite to discard them")
                diff = [k for k in KEYS if old.get(k) != self.key_info[k]]
                fix = ("rerun with the original settings to resume" if "render" not in diff else "resume it with the genaug "
                       "that started it" + (" and its settings" if len(diff) > 1 else ""))
                raise ExpandError(
                    f"{self.parts_dir} holds parts of a different run ({', '.join(diff) or 'unreadable manifest'} differ: "
                    f"{_describe_diff(old, self.key_info, diff)}); {fix}, or pass --overwrite to discard them"
                )
        if self.rank == 0 or not path.exists():
            manifest = {"run_key": self.run_key, **self.key_info, **extra, "n_blocks": self.n_blocks}
            write_json_atomic(path, manifest, sort_keys=True)

    def unfinished_blocks(self, blocks: Iterable[int], overwrite: bool) -> list[int]:
        """The blocks among ``blocks`` without a finished part of this run (stale parts removed)."""
        todo = []
        for blk in blocks:
            p = self.parts_dir / part_name(blk)
            remove_stale_temps(p)  # a killed run's half-written part (under the run lock, no live run writes it)
            status = part_status(p, self.run_key)
            if status == "other" and not overwrite:
                raise ExpandError(f"{p} was made by a different run; pass --overwrite to discard it")
            if status in ("corrupt", "other"):
                p.unlink()
            if status != "ok":
                todo.append(blk)
        return todo

    def check_complete(self) -> None:
        missing = [blk for blk in range(self.n_blocks) if part_status(self.parts_dir / part_name(blk), self.run_key) != "ok"]
        if missing:
            raise ExpandError(
                f"cannot merge: {len(missing)} of {self.n_blocks} blocks are not finished (e.g. {missing[:5]}); "
                "run the missing shards (or the same command without --shard) first"
            )


def gate_key(gate: Any) -> str | None:
    """The identity gate as the run key records it, so that a resume or rerun with another gate is another run (refused,
    naming the gate) and not records made under two gates: a shipped judge's name (``"dlib"``, ``"student"``); else the
    callable's qualified name (a ``functools.partial``'s function; a callable object's ``forward`` or ``__call__``), a
    hash of its code and the plain values it captures (closure cells, a partial's arguments: numbers, strings, None,
    tuples of them). Other captured objects and an object's state (a network's weights) are named by their type only:
    rename such a gate when its behaviour changes."""
    if gate is None:
        return None
    name = getattr(gate, "name", None)
    if isinstance(name, str) and type(gate).__module__.startswith("genaug."):
        return name
    if isinstance(gate, functools.partial):
        return f"partial({gate_key(gate.func)}, {_plain(gate.args)}, {_plain(tuple(sorted(gate.keywords.items())))})"
    fn = gate if hasattr(gate, "__code__") else getattr(type(gate), "forward", type(gate).__call__)
    if not hasattr(fn, "__code__") and hasattr(gate, "__qualname__"):  # a builtin, a ufunc: its own name, not its type's
        fn = gate
    code, cells = getattr(fn, "__code__", None), getattr(fn, "__closure__", None) or ()
    body = "" if code is None else ":" + hashlib.sha256(code.co_code + repr(
        (code.co_names, [c for c in code.co_consts if not hasattr(c, "co_code")])).encode()).hexdigest()[:12]
    captured = "" if not cells else _plain(tuple(_cell(c) for c in cells))
    return f"{getattr(fn, '__module__', '?')}.{fn.__qualname__}{body}{captured}"


def _cell(cell: Any) -> Any:
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell (a name bound later)
        return None


def _plain(values: Any) -> str:
    """``values`` as the run key records them: plain values by their repr, other objects by their type's name."""
    if values is None or isinstance(values, (bool, int, float, str)):
        return repr(values)
    if isinstance(values, (tuple, list)):
        return "(" + ", ".join(_plain(v) for v in values) + ")"
    return f"<{type(values).__module__}.{type(values).__qualname__}>"


def _describe_diff(old: dict[str, Any], new: dict[str, Any], keys: list[str], made_of: str = "the parts were") -> str:
    bits = []
    for k in keys:
        a, b = old.get(k), new.get(k)
        if k == "render":  # (a manifest before revision 2 has none)
            bits.append(f"render revision {a or 1} -> {b}: {made_of} rendered by genaug {old.get('genaug_version', '?')}"
                        + (", and this genaug renders the same settings otherwise" if keys == ["render"] else ""))
        elif isinstance(a, dict) and isinstance(b, dict):
            sub = [f"{kk}: {a.get(kk)!r} -> {b.get(kk)!r}" for kk in sorted(set(a) | set(b)) if a.get(kk) != b.get(kk)]
            bits.append(f"{k} ({'; '.join(sub)})")
        else:
            bits.append(f"{k}: {a!r} -> {b!r}")
    return ", ".join(bits)


def _made_by(made: dict[str, Any], key_info: dict[str, Any]) -> str:
    """What differs between the run that made a finished file (its ``seed``, ``settings`` and ``render`` revision
    attributes, ``made``; {} when unreadable) and this one."""
    if not made:
        return f"an HDF5 file that is not a genaug expansion (no format attribute {FORMAT!r}), or unreadable"
    diff = _made_diff(made, key_info)
    return (f"made by a different run: {_describe_diff(_sans_compression(made), key_info, diff, 'it was')}" if diff else
            "made by a different run: its source files, identity judge or genaug[faces] install differ")


def _made_diff(made: dict[str, Any], key_info: dict[str, Any]) -> list[str]:
    """The keys of a finished file's ``made`` (:func:`_made_by`) that differ from this run's (its compression aside:
    a rerun of other compression is told apart)."""
    made = _sans_compression(made) if made else made
    return [k for k in ("seed", "settings", "render") if k in made and made[k] != key_info[k]]


def _sans_compression(made: dict[str, Any]) -> dict[str, Any]:
    return {**made, "settings": {k: v for k, v in made["settings"].items() if k != "compression"}}


def describe_skipped(skipped: list[tuple[int, str, str]], log: Callable[[str], None]) -> None:
    """Report the sources left out and why (first 20): unreadable, or not the size the run writes."""
    if not skipped:
        return
    log(f"skipped {len(skipped)} source image(s) (listed with the reason in the file's 'skipped' group):")
    for _, p, why in skipped[:20]:
        log(f"  {p}: {why}")
    if len(skipped) > 20:
        log(f"  … and {len(skipped) - 20} more")


def describe_unedited(stats: dict[str, int], unedited: dict[str, int], say: Callable[[str], None]) -> None:
    """Report the records left as their source (HDF5 ``codes`` NaN) and why: the engine's ``stats`` (no face under
    ``framing="detect"``, every gate try rejected) and the run's ``unedited`` counts (no face found for an edit that
    needs one, no room for a control, an edit that changed no pixel; ``repeats``: such a re-draw that repeats another
    variant)."""
    if stats["no_face"]:
        say(f"no face found in {stats['no_face']} source image(s) (framing=detect): "
            "their records are the unedited source (codes NaN)")
    elif unedited["no face"]:  # framing auto: a control, or an edit that draws on the face of a large photo, with no
        # latent code that applies there to re-draw it as
        say(f"{unedited['no face']} variant(s) kept the unedited source: no face found for their edit, which needs one "
            "(codes NaN)")
    if unedited["repeats"]:
        say(f"{unedited['repeats']} variant(s) repeat another variant of their source: no face found for their edit, "
            "which needs one, and the latent codes had no other edit left to re-draw it as")
    if unedited["no room"]:
        say(f"{unedited['no room']} variant(s) kept the unedited source: their control had no room on the face "
            "(a near-profile face is not turned and gets no frames, nor a face cut by the photo's edge; codes NaN)")
    if unedited["no pixel"]:
        say(f"{unedited['no pixel']} variant(s) kept the unedited source: their edit changed no pixel (any edit at "
            "--strength 0 in delta mode, a control at 0 or on a flat or black photo it leaves as it was, "
            "a colour edit to about the photo's own value; codes NaN)")
    if stats["dropped"]:  # the gates rejected every try: those records are the unedited source
        say(f"{stats['dropped']} variant(s) kept the unedited source after the gates rejected every re-draw "
            f"(identity gate re-draws {stats['gated']}, quality rejections {stats['quality_rejected']}; codes NaN)")
