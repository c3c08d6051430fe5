"""dcgan on the 8x8 digits with and without each small-data option of the adversarial base (DiffAugment, ADA,
LeCam, R1), at equal optimizer steps, on the full training split and on 10% of it.

    python benchmarks/gan_tricks_digits.py --steps 2000 --threads 1
    python benchmarks/gan_tricks_digits.py --steps 40 --evals 2 --out /tmp/tricks_smoke     # smoke run

Each row trains ``examples/digits/dcgan.yaml`` (the tuned DCGAN: spectral-norm D, hinge loss, Adam 1e-3,
EMA 0.999) with one option added, for ``--steps`` optimizer steps (``trainer.global_step``: a D and a G step
per batch), seed 0, on the first 1,294 (all) or 129 (10%) training digits (the datamodule's ``subset``); the
144 validation digits stay the same. The weights are chosen by FID of 1000 EMA samples against the
validation split, ``--evals`` times evenly over the run (``benchmarks/gan_digits.py``'s selection), never on
test; the chosen weights' 1000 seeded samples are scored with the digits CNN extractor against all train and
all test digits. One seed per row: differences below about 0.5 FID are within the seed noise measured in
``gan_digits.py``'s docstring.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import NUM_SAMPLES, RESULTS, Scorer, commit, draw, fmt, write_json, write_lines
from benchmarks.gan_digits import fit, read_config

#: the rows: name -> the options added to the example config's model
TRICKS: dict[str, dict[str, Any]] = {
    "none": {},
    "diffaugment": {"augment": "diffaugment"},
    "ada": {"augment": "ada"},
    "lecam": {"lecam_weight": 0.3},
    "r1": {"r1_gamma": 0.1, "r1_every": 4},
}
#: training-set sizes: None = the whole split (1,294 digits), else the first n
SIZES: dict[str, int | None] = {"10%": 129, "full": None}
COMMAND = "python benchmarks/gan_tricks_digits.py --steps 2000 --threads 1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="optimizer steps per run (D and G steps both count)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--evals", type=int, default=4, help="val FID evaluations per run, the final weights included")
    parser.add_argument("--tricks", nargs="*", default=list(TRICKS))
    parser.add_argument("--sizes", nargs="*", default=list(SIZES))
    parser.add_argument(
        "--out", default=None, help="write gan_tricks_digits.{json,md} here (default benchmarks/results)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out) if args.out else RESULTS
    base = read_config("dcgan")
    assert base is not None, "examples/digits/dcgan.yaml is missing"
    scorer = Scorer()
    floor = scorer.floor()
    run_args = argparse.Namespace(budget=None, steps=args.steps, evals=args.evals, select="val_fid")
    rows: list[dict[str, Any]] = []
    code = commit(dirty=True)
    for size in args.sizes:
        for trick in args.tricks:
            config = copy.deepcopy(base)
            config["model"]["init_args"].update(TRICKS[trick])
            data_args = config["data"].setdefault("init_args", {})
            data_args["subset"] = SIZES[size]
            print(f"train dcgan + {trick} on {size} ({args.steps} steps)", flush=True)
            with tempfile.TemporaryDirectory(prefix="gan_tricks_") as root:
                model, info, _ = fit("dcgan", config, run_args, root)
            images, _ = draw(model, NUM_SAMPLES)
            ada_p = model.ada.p if trick == "ada" else None
            row = {"size": size, "trick": trick, **TRICKS[trick], **scorer.score(images), "ada_p": ada_p,
                   **{k: info[k] for k in ("train_seconds", "steps", "epochs", "checkpoint", "load_avg_start")}}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            protocol = {"steps": args.steps, "threads": args.threads, "evals": args.evals, "seed": 0,
                        "commit": code, "load_avg_end": round(os.getloadavg()[0], 2), "samples": NUM_SAMPLES}  # fmt: skip
            write_json(out_dir / "gan_tricks_digits.json", {"_protocol": protocol, "_floor": floor, "rows": rows})
            write_lines(out_dir / "gan_tricks_digits.md", render(rows, protocol, floor))  # after every row
    print(f"wrote {out_dir / 'gan_tricks_digits.md'}", flush=True)


def render(rows: list[dict[str, Any]], protocol: dict[str, Any], floor: dict[str, float]) -> list[str]:
    lines = [
        "# dcgan on digits with the small-data options",
        "",
        f"`{COMMAND}` (this run: {protocol['steps']} optimizer steps per row, {protocol['threads']} thread, "
        f"commit {protocol['commit']}). Protocol in `benchmarks/gan_tricks_digits.py`'s docstring: "
        "`examples/digits/dcgan.yaml` plus one option per row, seed 0, the weights chosen by FID of 1000 EMA "
        f"samples against the 144 validation digits ({protocol['evals']} evaluations), scored against all "
        "train and all test digits with the digits CNN extractor (1000 seeded samples). `10%` trains on the "
        "first 129 of the 1,294 training digits. One seed per row: differences below about 0.5 are noise. "
        f"Real test digits vs train: FID {fmt(floor.get('fid_train'), '.2f')}.",
        "",
        "| train set | option | FID vs train | FID vs test | KID vs test (x1e3) | ADA p at the end | train s | "
        "load at start | checkpoint |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        kid = r.get("kid_test")
        lines.append(
            f"| {r['size']} | {r['trick']} | {fmt(r.get('fid_train'), '.2f')} | {fmt(r.get('fid_test'), '.2f')} | "
            f"{fmt(kid * 1e3 if kid is not None else None, '.2f')} | {fmt(r.get('ada_p'), '.3f')} | "
            f"{fmt(r.get('train_seconds'), '.0f')} | {fmt(r.get('load_avg_start'), '.1f')} | {r.get('checkpoint')} |"
        )
    lines += ["", f"Load average after the last row: {protocol['load_avg_end']} (2 cores shared by several engineers)."]
    return lines


if __name__ == "__main__":
    main()
