"""Real photos of turned heads, as the realism benchmark's pose-matched reference (``--reference turned``).

A detector that tells ``yaw=30`` edits from real photos may see the turn itself, not its artifacts:
most real photos are near frontal. Against photos that really are turned (per person the most turned
of their photos, by :func:`genaug.faces.pose.estimate_yaw` on dlib's 5 landmarks), what is left to
see is how the turn was made. The yaw estimates are cached (``benchmarks.pose_shift.face_measures``).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def abs_yaw(images: np.ndarray, key: str) -> np.ndarray:
    """|estimated yaw| (degrees) of uint8 NHWC photos, cached under ``key``."""
    from benchmarks.pose_shift import face_measures

    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
    return face_measures(x, key)["yaw"].abs().numpy()


def most_turned(paths: list[Path], people: np.ndarray, candidates: dict, read) -> tuple[list[np.ndarray], np.ndarray]:
    """For the pool's photos (``paths``, one person each in ``people``): per person as many of the
    ``candidates[person]`` photos (``[(path, |yaw|), ...]``) as the pool holds of them, most turned
    first; ``read(path)`` loads one. Returns the photos in the pool's order and their |yaw|."""
    ranked_of = {p: sorted(c, key=lambda c: -c[1]) for p, c in candidates.items()}
    photos, yaws, used = [], [], {}
    for p in people.tolist():
        ranked = ranked_of[p]
        k = used.get(p, 0)
        path, yaw = ranked[min(k, len(ranked) - 1)]
        used[p] = k + 1
        photos.append(read(path))
        yaws.append(yaw)
    return photos, np.array(yaws)


def turned_reference(name: str, pool_paths: list[Path], people: np.ndarray, read, all_paths: list[Path],
                     person_of, crops: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Turned photos standing in for the pool's real photos: the same person's most turned photos
    (sets with several photos a person), else the most turned photos outside the pool (one photo a
    person: each is its own person, so the people stay disjoint). ``all_paths``: every photo of the set,
    ``crops``: them as uint8 NHWC faces for the yaw estimate, ``person_of(path)``: a photo's person
    (None: each photo its own)."""
    yaw = abs_yaw(crops, f"turned|{name}")
    if person_of is not None:
        candidates: dict = {}
        for path, y in zip(all_paths, yaw):
            candidates.setdefault(person_of(path), []).append((path, float(y)))
        return most_turned(pool_paths, people, candidates, read)
    pool = {Path(p) for p in pool_paths}
    outside = sorted(((float(y), p) for p, y in zip(all_paths, yaw) if Path(p) not in pool), key=lambda c: -c[0])
    chosen = outside[: len(pool_paths)]
    if len(chosen) < len(pool_paths):
        raise ValueError(f"{name}: {len(chosen)} photos outside the pool, need {len(pool_paths)}")
    return [read(p) for _, p in chosen], np.array([y for y, _ in chosen])


def turned_views(fs) -> tuple[np.ndarray, np.ndarray]:
    """The pose-matched reference of a ``benchmarks.realism.FaceSet`` (its pool's ``paths``): the turned
    photos as the detector sees them, uint8 (N, S, S, 3), and their |yaw|."""
    from benchmarks.faces import ID200, load_people
    from benchmarks.realism import UTK, UTK_HELD_OUT, read_rgb

    if fs.paths is None or fs.name not in ("celeba_id200", "utkface_128", "utkface_64"):
        raise ValueError(f"--reference turned: no turned photos for set {fs.name!r} (celeba_id200, utkface_128, utkface_64)")
    if fs.name == "celeba_id200":  # folders are the people
        data = load_people(ID200)
        all_paths, crops = [ID200 / p for p in data.paths], data.images.permute(0, 2, 3, 1).numpy()
        photos, yaw = turned_reference(fs.name, fs.paths, fs.people, read_rgb, all_paths, lambda q: int(Path(q).parent.name),
                                       crops)
    else:
        all_paths = sorted((UTK / "images").glob("*.jpg"))[UTK_HELD_OUT:]
        crops = np.stack([read_rgb(q, 128) for q in all_paths])
        photos, yaw = turned_reference("utkface_128", fs.paths, fs.people, lambda q: read_rgb(q, fs.size), all_paths,
                                       None, crops)
    return np.stack([fs.view(q) for q in photos]), yaw
