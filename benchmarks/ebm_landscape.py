"""Energy landscape of a 2-D EBM: the energy over a grid (min-max scaled, bright = low energy) with the data points in red.

    python benchmarks/ebm_landscape.py --ckpt runs/.../last.ckpt --out energy.png
    python benchmarks/ebm_landscape.py --steps 1500        # train with examples/toy2d/ebm.yaml's model
    python benchmarks/ebm_landscape.py --steps 5 --out /tmp/energy.png   # smoke run

Without ``--ckpt`` it fits an EBM with the model settings of ``examples/toy2d/ebm.yaml`` for
``--steps`` steps (1 thread, seed 0) and writes ``benchmarks/results/ebm_toy2d_energy.png`` and a
second PNG of Langevin samples drawn from noise over the same grid.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import lightning.pytorch as pl
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, ROOT, quiet_trainer
from genlight import create_datamodule, create_model, load_model
from genlight.callbacks.energy import save_energy_png


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ckpt", default=None)
    parser.add_argument("--config", default=str(ROOT / "examples" / "toy2d" / "ebm.yaml"))
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--out", default=str(RESULTS / "ebm_toy2d_energy.png"))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    data_args = config["data"]["init_args"]
    dm = create_datamodule("toy2d", **data_args)
    if args.ckpt:
        model = load_model(args.ckpt)
    else:
        pl.seed_everything(0, verbose=False)
        model = create_model("ebm", image_shape=(2,), **config["model"]["init_args"])
        trainer = quiet_trainer(tempfile.mkdtemp(), steps=args.steps, enable_checkpointing=False, limit_val_batches=0)
        trainer.fit(model, datamodule=dm)
    model.eval()
    dm.setup("fit")
    data = torch.cat([batch[0] for batch in dm.val_dataloader()])[:2000]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_energy_png(model, args.out, points=data)
    torch.manual_seed(0)
    samples = model.sample(2000, init="noise", steps=200)
    samples_out = str(Path(args.out).with_name(Path(args.out).stem + "_samples.png"))
    save_energy_png(model, samples_out, points=samples)
    print(f"wrote {args.out} (data in red) and {samples_out} (200-step Langevin samples from noise in red)")


if __name__ == "__main__":
    main()
