"""Compose the README's picture, docs/images/samples.png, from the sample grids the benchmarks saved
(no training): the panels of ``benchmarks/results/gan_digits.json`` (one per adversarial family) and
the EBM's samples on toy2d. Run from the repository root: ``python scripts/readme_figure.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
OUT = ROOT / "docs" / "images" / "samples.png"
PER_ROW, PAD, TITLE_H = 4, 10, 16


def panels() -> list[tuple[str, Path]]:
    """``(title, png)`` for every family's sample grid the benchmarks saved, one per family."""
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    gan = RESULTS / "gan_digits.json"
    for panel in json.loads(gan.read_text()).get("panels", []) if gan.is_file() else []:
        path = RESULTS / "gan_digits_panels" / panel["file"]
        if panel["family"] not in seen and ":" not in panel["title"].replace("cyclegan:", "") and path.is_file():
            seen.add(panel["family"])
            found.append((panel["title"], path))
    ebm = RESULTS / "ebm_toy2d_energy_samples.png"
    if ebm.is_file():
        found.append(("ebm (toy2d: energy, samples in red)", ebm))
    return found


def main() -> None:
    items = []
    for title, path in panels():
        items.append((title, Image.open(path).convert("RGB")))  # as saved: resizing would alias the pixel grids
    rows = [items[i : i + PER_ROW] for i in range(0, len(items), PER_ROW)]
    total_w = max(sum(im.width + PAD for _, im in row) for row in rows) + PAD
    total_h = sum(max(im.height for _, im in row) + TITLE_H + PAD for row in rows) + PAD
    canvas = Image.new("RGB", (total_w, total_h), "white")
    draw, font = ImageDraw.Draw(canvas), ImageFont.load_default()
    y = PAD
    for row in rows:
        x = PAD
        for title, im in row:
            draw.text((x, y), title, fill="black", font=font)
            canvas.paste(im, (x, y + TITLE_H))
            x += im.width + PAD
        y += max(im.height for _, im in row) + TITLE_H + PAD
    OUT.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(OUT, optimize=True)
    print(f"{OUT.relative_to(ROOT)}: {canvas.width}x{canvas.height}, {len(items)} panels")


if __name__ == "__main__":
    main()
