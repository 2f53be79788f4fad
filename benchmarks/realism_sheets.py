"""Contact sheets of the realism benchmark (``python benchmarks/realism.py --sheets docs/realism``): real photos and
every arm's version of them, one PNG per face set and group of codes, so a reader sees what the C2ST numbers mean."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.realism import CELEBA_BOX, FaceSet, code_arms, load_set, make_fakes  # noqa: E402


def contact_sheet(name: str, arms: list[str], bundle: str, kwargs: dict, faces: int, out: Path) -> Path:
    """A PNG grid: the real photos in the first row, each arm's version below, labelled (256
    colours, so a sheet stays small). The celeba_id200 sheet shows the face box at its own 108 px
    (one photo each of ``faces`` people), the utkface_128 sheet its 128 px photos."""
    from PIL import ImageDraw

    fs = load_set(name, faces if name != "celeba_id200" else 200)
    if name == "celeba_id200":
        keep = np.linspace(0, len(fs.photos) - 1, faces).astype(int)
        fs = FaceSet(name, [fs.photos[i] for i in keep], fs.people[keep], 108, CELEBA_BOX)
    fakes = make_fakes(fs, ["real", *[a for a in arms if a != "real"]], bundle, kwargs)
    label_w, s = 90, fs.size
    sheet = Image.new("RGB", (label_w + faces * s, len(fakes) * s), "white")
    draw = ImageDraw.Draw(sheet)
    for row, (arm, imgs) in enumerate(fakes.items()):
        draw.text((4, row * s + s // 2 - 6), arm, fill="black")
        for col, im in enumerate(imgs[:faces]):
            sheet.paste(Image.fromarray(im), (label_w + col * s, row * s))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.quantize(256, dither=Image.Dither.FLOYDSTEINBERG).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")
    return out


CONTROL_ARMS = ("yaw=-30", "yaw=30", "light=-60", "light=60", "light_up=45", "drawn_glasses=1")  # the controls' sheet


def write_sheets(folder: Path, bundle: str, kwargs: dict, faces: int) -> dict[str, str]:
    """<set>.png (defaults, few-shot variants, every categorical code and direction),
    <set>_photometric.png (every continuous code at both ends) and <set>_controls.png (the image-space
    controls at :data:`CONTROL_ARMS`) for celeba_id200 and utkface_128."""
    import genaug

    spec = genaug.load_bundle(bundle).spec
    arms = code_arms(bundle)
    photometric = [a for a in arms if not spec.is_categorical(spec.code_index(a.split("=")[0]))]
    semantic = ["genaug", "few_shot", *[a for a in arms if a not in photometric]]
    return {f"{s}{tag}": str(contact_sheet(s, rows, bundle, kwargs, faces, folder / f"{s}{tag}.png"))
            for s in ("celeba_id200", "utkface_128")
            for tag, rows in (("", semantic), ("_photometric", photometric), ("_controls", list(CONTROL_ARMS)))}
