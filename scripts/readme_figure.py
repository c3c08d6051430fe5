"""Compose the README's picture, docs/images/samples.png: one panel per family, titled with its registry
name and its training budget. No training here: the panels are the sample grids the benchmarks saved
(``benchmarks/results/gan_digits.json``: one per adversarial family, with the budget of its row;
the EBM's samples on toy2d from ``benchmarks/ebm_landscape.py``) and the short-budget grids of every
other family that ``scripts/family_samples.py`` trains and draws (``docs/images/families/``;
short-budget samples, not benchmark results). Families that draw no samples (classifiers, the completer and the multi-domain translator) are
named under the panels. Run from the repository root: ``python scripts/readme_figure.py``.

``python scripts/readme_figure.py --data mnist5k`` composes docs/images/samples_mnist5k.png, the README's
28x28 picture: the first 64 samples each mnist5k benchmark row scored (``benchmarks/results/mnist5k_panels/``,
saved by ``fid_mnist5k.py`` and ``gan_mnist5k.py``), titled with the row's training steps.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from PIL import Image, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.common, also when run as `python scripts/readme_figure.py`

from benchmarks.common import PANELS_MNIST5K, lay_out, read_json  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
FAMILIES = ROOT / "docs" / "images" / "families"
OUT = ROOT / "docs" / "images" / "samples.png"
PER_ROW, PAD, TITLE_H, FONT_SIZE = 5, 10, 20, 14
#: order of the short-budget panels (the rest follow alphabetically)
ORDER = ("ae", "vae", "beta_vae", "cvae", "nade", "pixelcnn", "gated_pixelcnn", "pixelrnn_row", "pixelrnn_diag",
         "realnvp", "glow", "ddpm")  # fmt: skip
EBM_STEPS = 1500  # what `make bench` runs: benchmarks/ebm_landscape.py --steps 1500


def benchmark_panels() -> list[tuple[str, Path]]:
    """``(title, png)`` for every family's sample grid the benchmarks saved, one per family."""
    found: list[tuple[str, Path]] = []
    seen: set[str] = set()
    gan = RESULTS / "gan_digits.json"
    data = json.loads(gan.read_text()) if gan.is_file() else {}
    for panel in data.get("panels", []):
        path = RESULTS / "gan_digits_panels" / panel["file"]
        if panel["family"] not in seen and ":" not in panel["title"].replace("cyclegan:", "") and path.is_file():
            seen.add(panel["family"])
            budget = data.get("rows", {}).get(panel["family"], {}).get("budget_s")
            found.append((panel["title"] + (f", {budget:.0f} s" if budget else ""), path))
    ebm = RESULTS / "ebm_toy2d_energy_samples.png"
    if ebm.is_file():
        found.append((f"ebm (toy2d, red), {EBM_STEPS} steps", ebm))
    return found


def family_panels() -> tuple[list[tuple[str, Path]], list[str]]:
    """``(title, png)`` of the short-budget grids of scripts/family_samples.py, and the families left out."""
    index_path = FAMILIES / "families.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    runs = index.get("families", {})
    names = sorted(runs, key=lambda n: (ORDER.index(n) if n in ORDER else len(ORDER), n))
    found = []
    for name in names:
        path = FAMILIES / f"{name}.png"
        if path.is_file():
            extra = " (recon.)" if runs[name].get("shows", "").startswith("reconstructions") else ""
            extra = " (col = class)" if "class" in runs[name].get("shows", "") else extra
            found.append((f"{name}{extra}, {runs[name]['budget_s']:.0f} s", path))
    return found, list(index.get("left_out", []))


OUT_MNIST5K = ROOT / "docs" / "images" / "samples_mnist5k.png"
#: order of the mnist5k panels (the rest follow alphabetically)
ORDER_MNIST5K = ("dcgan", "progan", "wgan_gp", "cgan", "infogan", "gan", "aae", "vae", "cvae", "beta_vae", "vae_vamp",
                 "ddpm", "flow_matching", "ebm", "realnvp", "glow", "maf", "nsf", "nade", "pixelcnn", "gated_pixelcnn",
                 "pixelrnn_row", "pixelrnn_diag", "vqvae_prior")  # fmt: skip


def steps_of(results: dict[str, dict], key: str) -> int | None:
    """The optimizer steps the mnist5k row ``key`` trained for, from whichever results file holds it
    (``results``: the likelihood, FID and GAN ``.json`` files by name)."""
    rows = (
        results["likelihood"].get("ddpm" if key == "ddpm_ancestral" else key, {}),  # the same checkpoint
        results["fid"].get(key, {}),
        results["gan"].get("rows", {}).get(f"{key} @ full", {}),
    )
    return next((row["steps"] for row in rows if isinstance(row.get("steps"), int)), None)


def mnist5k_figure() -> None:
    found = {p.stem: p for p in sorted(PANELS_MNIST5K.glob("*.png"))}
    names = sorted(found, key=lambda n: (ORDER_MNIST5K.index(n) if n in ORDER_MNIST5K else len(ORDER_MNIST5K), n))
    results = {k: read_json(RESULTS / f"{k}_mnist5k.json") for k in ("likelihood", "fid", "gan")}
    items = []
    for name in names:
        steps = steps_of(results, name)
        items.append((f"{name}, {steps} steps" if steps else name, Image.open(found[name]).convert("RGB")))
    missing = [n for n in ORDER_MNIST5K if n not in found]
    footer = f"no 28x28 samples saved yet: {', '.join(missing)}" if missing else ""
    canvas = lay_out(items, per_row=6, pad=PAD, title_h=TITLE_H, font=ImageFont.load_default(size=FONT_SIZE),
                     footer=footer)  # fmt: skip
    canvas.save(OUT_MNIST5K, optimize=True)
    print(f"{OUT_MNIST5K.relative_to(ROOT)}: {canvas.width}x{canvas.height}, {len(items)} panels")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", choices=("digits", "mnist5k"), default="digits")
    if parser.parse_args().data == "mnist5k":
        mnist5k_figure()
        return
    panels, left_out = family_panels()
    items = [(title, Image.open(path).convert("RGB")) for title, path in benchmark_panels() + panels]
    footer = f"left out (draw no samples): {', '.join(left_out)}" if left_out else ""
    canvas = lay_out(items, per_row=PER_ROW, pad=PAD, title_h=TITLE_H, font=ImageFont.load_default(size=FONT_SIZE),
                     footer=footer)  # fmt: skip
    OUT.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(OUT, optimize=True)
    print(f"{OUT.relative_to(ROOT)}: {canvas.width}x{canvas.height}, {len(items)} panels")


if __name__ == "__main__":
    main()
