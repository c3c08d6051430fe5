"""Code-traversal grids of a trained InfoGAN checkpoint (EMA weights) as PNGs, and its FID check.

    PYTHONPATH=. python benchmarks/infogan_traversal.py CKPT benchmarks/results/infogan_traversal

writes ``<prefix>_c<j>.png`` (rows: the values of the categorical code; columns: continuous code ``j``
swept over [-1, 1]; one seeded noise vector) and ``<prefix>_by_class.png`` (100 samples, row k = code
value k), and prints FID vs train of 1000 seeded samples of the loaded weights.
"""

from __future__ import annotations

import sys

import torch
from PIL import Image

from benchmarks.fid_digits import Scorer, draw
from genlight import load_model
from genlight.callbacks.image_logging import image_grid
from genlight.callbacks.traversal import traversal_grid


def save(grid: torch.Tensor, path: str) -> None:
    Image.fromarray((grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()).save(path)
    print("wrote", path)


def main() -> None:
    torch.set_num_threads(1)
    ckpt, prefix = sys.argv[1], sys.argv[2]
    model = load_model(ckpt).eval()
    for j in range(model.num_continuous):
        save(traversal_grid(model, continuous=j, num_steps=10, seed=0), f"{prefix}_c{j}.png")
    torch.manual_seed(0)
    with torch.no_grad():
        z = model.sample_latent(100)
        noise, cats, cont = model.split_latent(z)
        cats[0] = torch.arange(model.categories[0]).repeat_interleave(10)
        images = model.decode(model.make_latent(noise[: len(cats[0])], cats, cont[: len(cats[0])]))
    save(image_grid(images, nrow=10), f"{prefix}_by_code.png")
    print({k: round(v, 4) for k, v in Scorer().score(draw(model, 1000)[0]).items()})


if __name__ == "__main__":
    main()
