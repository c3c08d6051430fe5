"""DDPM on digits: FID (DDIM-50, vs train) against optimizer steps for a few recipes, in one run each.

    PYTHONPATH=. python benchmarks/tune_ddpm.py --name small --set channel_mults=[1] --eval_at 1500,3000

A plain training loop doing what ``fid_digits.py train ddpm`` does per step (the family's
``diffusion_loss``, its AdamW with linear warm-up, gradient-norm clipping at ``grad_clip``, the EMA
callback's warm-up rule ``d = min(decay, (1 + n) / (10 + n))``), without Lightning's per-step
overhead or validation, so several EMA decays can be tracked in one run and FID read off at several
step counts: at each ``--eval_at`` step, 1000 seeded DDIM-50 samples per EMA decay are scored by
``fid_digits.Scorer`` against the train split (selection on train FID only; test never looked at).
CPU seconds (``time.process_time``) of the training steps are reported beside wall seconds: the
machine is shared, so CPU seconds are the comparable cost. One thread. Appends to
``benchmarks/results/tune_ddpm.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

from benchmarks.fid_digits import RECIPES, Scorer, draw  # noqa: E402
from genlight import create_datamodule, create_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "tune_ddpm.md"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--set", nargs="*", default=[], help="model overrides key=JSON on top of RECIPES['ddpm']")
    parser.add_argument("--batch_size", type=int, default=None)
    parser.add_argument("--ema", default="0.999,0.995", help="comma list of EMA decays tracked side by side")
    parser.add_argument("--eval_at", default="1500,3000", help="comma list of optimizer steps to score FID at")
    parser.add_argument("--sample", default='{"steps": 50}', help="JSON kwargs of sample() (DDIM-50 by default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    recipe = copy.deepcopy(RECIPES["ddpm"])
    for item in args.set:
        key, value = item.split("=", 1)
        recipe["model"][key] = json.loads(value)
    batch = args.batch_size or recipe["batch_size"]
    decays = [float(d) for d in args.ema.split(",")]
    eval_at = sorted(int(s) for s in args.eval_at.split(","))

    torch.manual_seed(args.seed)
    dm = create_datamodule("digits", batch_size=batch, seed=0)
    dm.setup("fit")
    model = create_model("ddpm", image_shape=dm.image_shape, num_levels=dm.num_levels, **recipe["model"])
    opt = model.configure_optimizers()
    optimizer, sched = opt["optimizer"], opt["lr_scheduler"]["scheduler"]
    emas = {d: copy.deepcopy(model).eval() for d in decays}
    scorer = Scorer()
    params = sum(p.numel() for p in model.parameters())
    step, cpu, wall = 0, 0.0, 0.0
    while step < eval_at[-1]:
        for x, _ in dm.train_dataloader():
            c0, w0 = time.process_time(), time.perf_counter()
            model.train()
            loss = model.diffusion_loss(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), model.hparams.grad_clip)
            optimizer.step()
            sched.step()
            step += 1
            with torch.no_grad():
                live = model.state_dict()
                for d, ema in emas.items():
                    rate = min(d, (1 + step) / (10 + step))
                    for k, v in ema.state_dict().items():
                        if v.dtype.is_floating_point:
                            v.mul_(rate).add_(live[k], alpha=1 - rate)
            cpu += time.process_time() - c0
            wall += time.perf_counter() - w0
            if step in eval_at:
                for d, ema in emas.items():
                    c1 = time.process_time()
                    images, _ = draw(ema, 1000, **json.loads(args.sample))
                    fid = scorer.score(images)["fid_train"]
                    row = {"step": step, "ema": d, "fid_train": round(fid, 3), "train_cpu_s": round(cpu, 1),
                           "train_wall_s": round(wall, 1), "eval_cpu_s": round(time.process_time() - c1, 1)}  # fmt: skip
                    print(json.dumps(row), flush=True)
                    append(args.name, recipe, batch, args.sample, params, row)
            if step >= eval_at[-1]:
                break


def append(name: str, recipe: dict, batch: int, sample: str, params: int, r: dict) -> None:
    """One table row (written as soon as it is measured, so an interrupted run keeps its points)."""
    if not OUT.is_file():
        OUT.write_text(
            "# DDPM on digits: tuning for the FID target (DDIM-50, EMA, FID vs train <= 2.0 in 10 min on 2 cores)\n\n"
            "`benchmarks/tune_ddpm.py` (see its docstring): plain loop, 1 thread, seed 0, FID of 1000 seeded samples vs "
            "train at the listed optimizer steps, every EMA decay tracked in the same run. CPU s = process time of the "
            "training steps (comparable across runs on the shared machine); wall s depends on the load "
            "(load = 1-minute load average when the point was measured).\n\n"
            "| run | recipe | params | steps | EMA | FID train | train CPU s | train wall s | load |\n"
            "|---|---|---|---|---|---|---|---|---|\n"
        )
    with OUT.open("a") as f:
        f.write(
            f"| {name} | batch {batch}, {json.dumps(recipe['model'])}, sample {sample} | {params:,} | "
            f"{r['step']} | {r['ema']} | **{r['fid_train']:.3f}** | {r['train_cpu_s']:.0f} ({1000 * r['train_cpu_s'] / r['step']:.0f} ms/step) | "
            f"{r['train_wall_s']:.0f} | {os.getloadavg()[0]:.1f} |\n"
        )


if __name__ == "__main__":
    main()
