"""Do the pose and light controls do what they say on real photos, and keep the person?

    python benchmarks/pose_light_edits.py                 # 200 celeba_id200 frames + 200 utkface_128 crops
    python benchmarks/pose_light_edits.py --quick         # smoke test (a few faces)
    python benchmarks/pose_light_edits.py --picture docs/pose_light.png   # the sweep picture

On each photo at its own resolution (CelebA 178x218 aligned frames: one photo per person;
UTKFace 128x128 crops: evenly spaced), with dlib's 5 landmarks (``genaug.faces.landmarks``):

* pose: ``rotate_yaw`` by each of ``--yaws``; the yaw estimated on the result (landmarks found
  again) minus the photo's, in the requested direction, is the *move*; success = move >=
  ``--min-move`` degrees; also among the faces with room to turn (not already turned ``--min-move``
  or more the requested way: a turn outwards stops at 35 degrees). Each face's *rendered turn* is the request
  clipped to what the face can turn (``genaug.faces.pose.turn_room``: 0 for a face beyond 40 degrees); success is
  also given among the faces whose rendered turn is ``--min-move`` or more, with the median move per degree rendered
  (full turns: 25 degrees or more). ``--per-face`` keeps every face's file, yaw, rendered turn and move in the JSON.
  Also the yaw estimate's spread and its sign on the mirrored photos.
* light: ``relight`` to azimuth +-``--azimuth`` (elevation ``--elevation``, strength
  ``--strength``); the move of ``estimate_light(...).side`` in the requested direction, in raw
  units and in standard deviations of the set's own ``side``.
* identity: dlib (``genaug.faces.identity.get_judge("dlib")``) on the model-frame crop of original and
  result (CelebA: the frame's face box; UTKFace: ``genaug.faces.align.FaceAligner``), same person below 0.6.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.faces import ID200, SHARED, MissingInput  # noqa: E402
from benchmarks.report import RESULTS, emit, skip  # noqa: E402
from genaug.faces.light import estimate_light, relight  # noqa: E402
from genaug.faces.pose import estimate_yaw, rotate_yaw, turn_room  # noqa: E402
from genaug.faces.landmarks import face_landmarks  # noqa: E402

UTK = SHARED / "utkface_128"
CELEBA_BOX = (35, 55, 143, 163)


def photo_files(name: str, n: int) -> list[Path]:
    """``n`` photos of a set: celeba_id200 one per person (its first file), utkface evenly spaced."""
    if name == "celeba_id200":
        if not ID200.is_dir():
            raise MissingInput(f"{ID200} not found")
        return [sorted(d.glob("*.jpg"))[0] for d in sorted(p for p in ID200.iterdir() if p.is_dir())][:n]
    files = sorted((UTK / "images").glob("*.jpg"))
    if not files:
        raise MissingInput(f"{UTK}/images not found")
    return files[:: max(1, len(files) // n)][:n]


def load(files: list[Path]) -> Tensor:
    from PIL import Image

    return torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"), np.float32) / 127.5 - 1).permute(2, 0, 1)
                        for f in files])


def model_crops(name: str, x: Tensor) -> tuple[Tensor, Tensor]:
    """Model-frame crops for the judge and which rows have one (UTKFace: where dlib aligns a face)."""
    if name == "celeba_id200":
        l, t, r, b = CELEBA_BOX
        return x[:, :, t:b, l:r], torch.ones(len(x), dtype=torch.bool)
    from genaug.faces.align import get_aligner

    aligner = get_aligner(128)
    crops, ok = [], []
    for im in x:
        found = aligner.align((im + 1) / 2)
        ok.append(bool(found))
        crops.append(found[0][0] * 2 - 1 if found else torch.zeros(3, 128, 128))
    return torch.stack(crops), torch.tensor(ok)


def same_person(judge, name: str, a: Tensor, b: Tensor) -> Tensor:
    """1 / 0 per pair, NaN where either crop has no face."""
    ca, oka = model_crops(name, a)
    cb, okb = model_crops(name, b)
    same = judge.same_person(judge.embed(ca), judge.embed(cb)).float()
    return torch.where(oka & okb, same, torch.tensor(float("nan")))


def measure_set(name: str, cfg: argparse.Namespace, judge) -> dict:
    files = photo_files(name, cfg.n)
    rec: dict[str, list] = {"yaw": [], "yaw_mirror": [], "side": []}
    for i in range(0, len(files), cfg.batch):
        x = load(files[i : i + cfg.batch])
        lm = face_landmarks(x)
        yaw0, side0 = estimate_yaw(landmarks=lm), estimate_light(x, lm).side
        rec["yaw"].append(yaw0)
        rec["yaw_mirror"].append(estimate_yaw(x.flip(-1)))
        rec["side"].append(side0)
        room = turn_room(x, lm) if "pose" in cfg.controls else None
        for deg in cfg.yaws if "pose" in cfg.controls else []:
            out = rotate_yaw(x, deg, lm)
            rec.setdefault(f"yaw_turn_{deg:+g}", []).append(room[:, int(deg > 0)].clamp(max=abs(deg)))  # degrees rendered
            rec.setdefault(f"yaw_move_{deg:+g}", []).append((estimate_yaw(out) - yaw0) * np.sign(deg))
            rec.setdefault(f"yaw_same_{deg:+g}", []).append(same_person(judge, name, x, out))
        for az in (-cfg.azimuth, cfg.azimuth) if "light" in cfg.controls else []:
            out = relight(x, az, cfg.elevation, cfg.strength, lm)
            rec.setdefault(f"light_move_{az:+g}", []).append((estimate_light(out).side - side0) * np.sign(az))
            rec.setdefault(f"light_same_{az:+g}", []).append(same_person(judge, name, x, out))
        print(f"{name}: {min(i + cfg.batch, len(files))}/{len(files)}", flush=True)
    r = {k: torch.cat(v) for k, v in rec.items()}
    yaw, mirror, side = r["yaw"], r["yaw_mirror"], r["side"]
    turned = yaw.abs() > 5
    out = {"faces": len(yaw),
           "yaw_estimate": {"mean": float(yaw.mean()), "std": float(yaw.std()),
                            "quantiles_5_25_50_75_95": [round(float(q), 1) for q in yaw.quantile(torch.tensor([.05, .25, .5, .75, .95]))],
                            "mirror_flips_sign_where_abs_gt5": float((torch.sign(mirror[turned]) == -torch.sign(yaw[turned])).float().mean()),
                            "mirror_corr": float(np.corrcoef(yaw.numpy(), -mirror.numpy())[0, 1])},
           "side_estimate": {"mean": float(side.mean()), "std": float(side.std())}, "pose": {}, "light": {}}
    for deg in cfg.yaws if "pose" in cfg.controls else []:
        move, same, turn = r[f"yaw_move_{deg:+g}"], r[f"yaw_same_{deg:+g}"], r[f"yaw_turn_{deg:+g}"]
        room = yaw * np.sign(deg) < cfg.min_move  # not already turned min_move or more the requested way
        turned, full = turn >= cfg.min_move, turn >= 25  # rendered at least min_move / a full turn
        out["pose"][f"{deg:+g}"] = {"mean_move_deg": float(move.mean()), "median_move_deg": float(move.median()),
                                    "success_rate": float((move >= cfg.min_move).float().mean()),
                                    "success_rate_with_room": float((move[room] >= cfg.min_move).float().mean()),
                                    "faces_with_room": int(room.sum()),
                                    "faces_not_turned": int((turn == 0).sum()),
                                    "faces_turned_min_move": int(turned.sum()),
                                    "success_rate_turned_min_move": float((move[turned] >= cfg.min_move).float().mean()),
                                    "median_move_per_degree_full_turns": float((move[full] / turn[full]).median()),
                                    "same_person_rate": float(same[~same.isnan()].mean()), "judged": int((~same.isnan()).sum())}
    if cfg.per_face:
        out["per_face"] = [{"file": f.name, "yaw": round(float(yaw[j]), 2),
                            **{f"turn_{d:+g}": round(float(r[f"yaw_turn_{d:+g}"][j]), 2) for d in cfg.yaws if "pose" in cfg.controls},
                            **{f"move_{d:+g}": round(float(r[f"yaw_move_{d:+g}"][j]), 2) for d in cfg.yaws if "pose" in cfg.controls}}
                           for j, f in enumerate(files)]
    for az in (-cfg.azimuth, cfg.azimuth) if "light" in cfg.controls else []:
        move, same = r[f"light_move_{az:+g}"], r[f"light_same_{az:+g}"]
        out["light"][f"azimuth {az:+g}"] = {"mean_side_move": float(move.mean()), "mean_move_in_std": float(move.mean() / side.std()),
                                           "moved_rate_gt_half_std": float((move > 0.5 * side.std()).float().mean()),
                                           "same_person_rate": float(same[~same.isnan()].mean()), "judged": int((~same.isnan()).sum())}
    return out


def format_table(report: dict) -> str:
    c = report["config"]
    lines = [f"pose: rotate_yaw, success = estimated yaw moves >= {c['min_move']} deg the requested way; "
             f"light: relight azimuth +-{c['azimuth']}, elevation {c['elevation']}, strength {c['strength']}",
             "| set | faces | yaw std | mirror flips sign | request | success (faces with room) | success where the rendered turn >= "
             f"{c['min_move']:g} (faces; none turned) | move per degree rendered | mean move | dlib same person |", "| --- " * 10 + "|"]
    for name, s in report["sets"].items():
        ye = s["yaw_estimate"]
        for req, p in s["pose"].items():
            lines.append(f"| {name} | {s['faces']} | {ye['std']:.1f} | {100 * ye['mirror_flips_sign_where_abs_gt5']:.0f} % | yaw {req} | "
                         f"{100 * p['success_rate']:.0f} % ({100 * p['success_rate_with_room']:.0f} % of {p['faces_with_room']}) | "
                         f"{100 * p['success_rate_turned_min_move']:.0f} % ({p['faces_turned_min_move']}; {p['faces_not_turned']}) | "
                         f"{p['median_move_per_degree_full_turns']:.2f} | {p['mean_move_deg']:+.1f} deg | {100 * p['same_person_rate']:.0f} % |")
        for req, p in s["light"].items():
            lines.append(f"| {name} | {s['faces']} | side std {s['side_estimate']['std']:.2f} | | {req} | "
                         f"{100 * p['moved_rate_gt_half_std']:.0f} % moved > std/2 | | | {p['mean_side_move']:+.2f} ({p['mean_move_in_std']:+.1f} std) | "
                         f"{100 * p['same_person_rate']:.0f} % |")
    lines.append(f"wall-clock {report['wall_s']:.0f}s")
    return "\n".join(lines)


PICTURE_YAWS = (-30.0, -15.0, 0.0, 15.0, 30.0)
PICTURE_LIGHTS = (("light left", -60.0, 15.0), ("light right", 60.0, 15.0), ("light above", 0.0, 55.0), ("light below", 0.0, -45.0))


def picture(path: str, faces: int = 3, tile: int = 112) -> None:
    """Real faces (``faces`` from each set, edited at their own resolution) across yaw and light
    directions (strength 0.8), one row per face; CelebA frames shown around the face (150 px square)."""
    from PIL import Image, ImageDraw

    rows = []
    for name in ("celeba_id200", "utkface_128"):
        files = photo_files(name, 200)[3 :: 200 // faces][:faces]
        x = load(files)
        lm = face_landmarks(x)
        cols = [rotate_yaw(x, d, lm) for d in PICTURE_YAWS] + [relight(x, a, e, 0.8, lm) for _, a, e in PICTURE_LIGHTS]
        for i in range(len(x)):
            tiles = [c[i, :, 34:184, 14:164] if name == "celeba_id200" else c[i] for c in cols]
            tiles = torch.nn.functional.interpolate(torch.stack(tiles), size=(tile, tile), mode="bilinear", antialias=True)
            rows.append(torch.cat(list(tiles), 2))
    grid = ((torch.cat(rows, 1).permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
    head = 16
    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + head), "white")
    canvas.paste(Image.fromarray(grid), (0, head))
    draw = ImageDraw.Draw(canvas)
    for j, label in enumerate([f"yaw {d:+.0f}" for d in PICTURE_YAWS] + [t for t, _, _ in PICTURE_LIGHTS]):
        draw.text((j * tile + 4, 2), label, fill="black")
    canvas.save(path, optimize=True)
    print(f"wrote {path} ({Path(path).stat().st_size // 1024} KB)")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sets", nargs="+", default=["celeba_id200", "utkface_128"], choices=["celeba_id200", "utkface_128"])
    p.add_argument("--controls", nargs="+", default=["pose", "light"], choices=["pose", "light"])
    p.add_argument("--n", type=int, default=200, help="faces per set")
    p.add_argument("--yaws", type=float, nargs="+", default=[-30.0, 30.0])
    p.add_argument("--min-move", type=float, default=15.0)
    p.add_argument("--azimuth", type=float, default=60.0)
    p.add_argument("--elevation", type=float, default=20.0)
    p.add_argument("--strength", type=float, default=0.8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None, help="JSON path (default benchmarks/results/pose_light_edits.json)")
    p.add_argument("--per-face", action="store_true", help="keep each face's file, yaw, rendered turn and move in the JSON")
    p.add_argument("--quick", action="store_true", help="smoke test: 4 faces per set")
    p.add_argument("--picture", default=None, help="only draw the sweep picture to this PNG (e.g. docs/pose_light.png)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.picture:
        picture(a.picture)
        return {"picture": a.picture}
    if a.quick:
        a.n, a.batch = 4, 4
    out = a.out or (None if a.quick else RESULTS / "pose_light_edits.json")
    t0 = time.time()
    from genaug.faces.identity import faces_extra_available, get_judge

    if not faces_extra_available():
        return skip("pose_light_edits", 'dlib is not installed (pip install "genaug[faces]")', out)
    judge = get_judge("dlib")
    report = {"benchmark": "pose_light_edits", "config": {k: v for k, v in vars(a).items() if k != "out"}, "sets": {}}
    try:
        for name in a.sets:
            report["sets"][name] = measure_set(name, a, judge)
    except MissingInput as e:
        return skip("pose_light_edits", str(e), out)
    report["wall_s"] = round(time.time() - t0, 1)
    emit(report, format_table(report), out)
    return report


if __name__ == "__main__":
    main()
