"""CycleGAN on two domains made from the bundled digits: A = digits, B = inverted digits (``1 - x``),
disjoint halves (``examples/unpaired_folders/make_digit_domains.py``). The true A->B map is known,
so the translation can be scored directly:

* ``mae_a2b`` = mean |a2b(x_a) - (1 - x_a)| and ``mae_b2a`` = mean |b2a(x_b) - (1 - x_b)| (pixels in [0, 1]);
* ``cycle`` = mean |b2a(a2b(x_a)) - x_a| and |a2b(b2a(x_b)) - x_b| (averaged over both directions);
* baselines: the identity map (|x - (1 - x)|) and the best constant image (the training mean of the
  target domain).

Every run scores the validation split (10% of each train folder); ``--test`` also scores the test
folders (digits test split) once, for the final row, and writes the translation grid
``results/cyclegan_digits.png``. The row is printed as JSON; ``results/cyclegan_digits.md`` holds it.

    python benchmarks/cyclegan_digits.py --epochs 4 --batch_size 4 --threads 1 --test
    python benchmarks/cyclegan_digits.py --epochs 1 --budget 5 --test --out /tmp/cyclegan   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, quiet_trainer, save_png, timed_fit
from genlight import create_datamodule, create_model
from genlight.callbacks.image_logging import render
from genlight.callbacks.translation import TranslationGrid

#: the digits recipe (examples/unpaired_folders/cyclegan.yaml): a local generator (3x3 stem, no
#: down-sampling, 2 blocks) and no identity loss; see benchmarks/results/cyclegan_digits.md for why
RECIPE: dict[str, Any] = {
    "width_g": 16, "n_blocks": 2, "g_downsamplings": 0, "g_stem_kernel": 3, "width_d": 16, "lambda_identity": 0.0, "lr": 5e-4,
}  # fmt: skip


@torch.no_grad()
def score(model: Any, dm: Any, split: str, mean_a: torch.Tensor, mean_b: torch.Tensor) -> dict[str, float]:
    """Mean absolute errors over all pairs of ``split`` (see the module docstring)."""
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    loader = torch.utils.data.DataLoader(dm.reference_dataset(split), batch_size=256)
    for x_a, x_b in loader:
        fake_b, fake_a = model.translate(x_a, "a2b"), model.translate(x_b, "b2a")
        terms = {
            "mae_a2b": (fake_b - (1 - x_a)).abs().mean((1, 2, 3)),
            "mae_b2a": (fake_a - (1 - x_b)).abs().mean((1, 2, 3)),
            "cycle": 0.5 * ((model.translate(fake_b, "b2a") - x_a).abs().mean((1, 2, 3))
                            + (model.translate(fake_a, "a2b") - x_b).abs().mean((1, 2, 3))),
            "identity_baseline_a2b": (x_a - (1 - x_a)).abs().mean((1, 2, 3)),
            "mean_baseline_a2b": (mean_b - (1 - x_a)).abs().mean((1, 2, 3)),
            "mean_baseline_b2a": (mean_a - (1 - x_b)).abs().mean((1, 2, 3)),
            "mean_baseline_cycle": 0.5 * ((mean_a - x_a).abs().mean((1, 2, 3)) + (mean_b - x_b).abs().mean((1, 2, 3))),
        }  # fmt: skip
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v.sum())
        n += len(x_a)
    return {k: round(v / n, 4) for k, v in sums.items()} | {"n": n}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--budget", type=float, default=None, help="also stop after this many wall-clock seconds")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=4)
    parser.add_argument("--decay", type=float, default=0.5, help="share of the epochs with linear LR decay")
    parser.add_argument("--data", default=None, help="folders of make_digit_domains.py (written to a temp dir if absent)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test", action="store_true", help="also score the test folders and write the grid")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of cyclegan_digits.png")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)

    data = args.data
    if data is None or not Path(data, "trainA").is_dir():
        from examples.unpaired_folders.make_digit_domains import write_domains

        data = data or tempfile.mkdtemp(prefix="digit_domains_")
        write_domains(data, "invert")
    dm = create_datamodule(
        "unpaired_folders", dir_a=f"{data}/trainA", dir_b=f"{data}/trainB", test_dir_a=f"{data}/testA",
        test_dir_b=f"{data}/testB", image_size=8, channels=1, batch_size=args.batch_size,
    )  # fmt: skip
    dm.setup("fit")
    train = dm.reference_dataset("train")
    mean_a = torch.stack([train.a[i][0] for i in range(train.len_a)]).mean(0)
    mean_b = torch.stack([train.b[i][0] for i in range(train.len_b)]).mean(0)

    pl.seed_everything(args.seed, workers=True)
    decay = int(round(args.epochs * args.decay))
    kwargs = {**RECIPE, "lr_constant_epochs": args.epochs - decay, "lr_decay_epochs": decay}
    model = create_model("cyclegan", image_shape=dm.image_shape, **kwargs)
    at_init = score(model, dm, "val", mean_a, mean_b)
    model.train()
    trainer = quiet_trainer(
        tempfile.mkdtemp(), epochs=args.epochs, budget=args.budget, enable_checkpointing=False, limit_val_batches=0
    )
    seconds = timed_fit(trainer, model, dm)
    row: dict[str, Any] = {
        "name": "cyclegan_digits", "model": kwargs, "epochs": args.epochs, "batch_size": args.batch_size,
        "steps": trainer.global_step, "seconds": round(seconds, 1), "threads": args.threads,
        "load_avg": round(os.getloadavg()[0], 2), "val_at_init": {k: at_init[k] for k in ("mae_a2b", "cycle")},
        "val": score(model, dm, "val", mean_a, mean_b),
    }  # fmt: skip
    if args.test:
        row["test"] = score(model, dm, "test", mean_a, mean_b)
        loader = torch.utils.data.DataLoader(dm.reference_dataset("test"), batch_size=16)
        x_a, x_b = next(iter(loader))
        with torch.no_grad():
            grid = TranslationGrid().draw(model, x_a, x_b)
            truth = torch.cat([1 - x_a, 1 - x_b])
        grid = torch.cat([grid[:16], truth[:16], grid[16:32], grid[32:48], truth[16:], grid[48:]])
        save_png(render(grid, 16), args.out / "cyclegan_digits.png", scale=4)
    print(json.dumps(row))


if __name__ == "__main__":
    main()
