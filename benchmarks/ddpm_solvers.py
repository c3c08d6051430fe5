"""DDPM samplers against sampling time: FID vs train at equal n of DDIM, ancestral and DPM-Solver++(2M)
(Lu et al. 2022) with its two spacings, on digits (8x8) and mnist5k (28x28), from one checkpoint per data set.

    PYTHONPATH=. python benchmarks/ddpm_solvers.py train digits --keep runs/bench/ddpm_fid.ckpt
    PYTHONPATH=. python benchmarks/ddpm_solvers.py train mnist5k --keep runs/bench/ddpm_mnist5k.ckpt
    PYTHONPATH=. python benchmarks/ddpm_solvers.py score digits runs/bench/ddpm_fid.ckpt --n 1000
    PYTHONPATH=. python benchmarks/ddpm_solvers.py score mnist5k runs/bench/likelihood_mnist5k/ddpm.ckpt --n 500 --rows MNIST5K
    PYTHONPATH=. python benchmarks/ddpm_solvers.py render

``train digits`` is ``fid_digits.py train ddpm`` (the digits recipe, 600 s of wall clock on one thread; the
checkpoint chosen on val/bpd_bound among the periodic ones and the final weights); ``train mnist5k`` fits
``examples/mnist5k/ddpm.yaml`` (its 350 steps, capped at 600 s of wall clock) keeping the checkpoint with the
best val/bpd_bound. Both train with EMA and sample with the EMA weights. ``make bench`` trains the same two
checkpoints (``fid_digits.py train ddpm`` / ``likelihood_mnist5k.py --keep``), which ``score`` takes instead.

``score`` draws ``n`` samples per row with seed 0 (the same noise for every sampler), one intra-op thread,
batches of 500, and scores them with the data set's own extractor against the train split (digits: all 1294
train images, mnist5k: all 4,000) as ``fid_digits.py`` / ``fid_mnist5k.py`` do; sampling time is the wall
clock of ``sample()`` per 1,000 images. Rows are kept in ``benchmarks/results/ddpm_solvers.json`` and rendered
to ``ddpm_solvers.md``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, ROOT, Scorer, commit, draw, read_json, write_json, write_lines
from genlight import load_model

OUT = RESULTS / "ddpm_solvers"  # the path stem of the .json and .md results
#: the rows: name -> sample() keyword arguments
ROWS: dict[str, dict[str, Any]] = {
    **{f"DDIM-{k}": {"sampler": "ddim", "steps": k, "eta": 0.0} for k in (10, 20, 50)},
    **{f"DPM-Solver++ {k}, logsnr": {"sampler": "dpm_solver", "steps": k, "spacing": "logsnr"}
       for k in (5, 10, 15, 20, 25, 50)},
    **{f"DPM-Solver++ {k}, time": {"sampler": "dpm_solver", "steps": k, "spacing": "time"}
       for k in (5, 10, 15, 20, 25, 50)},
    "ancestral (all T)": {"sampler": "ancestral"},
}  # fmt: skip
#: ``--rows MNIST5K``: the rows drawn at 28x28, where a model call costs ~12x one at 8x8 (the ancestral row's
#: 250 calls and the 25/50-step solver rows are left to ``--rows`` by name)
MNIST5K_ROWS = (
    "DDIM-10",
    "DDIM-20",
    "DDIM-50",
    "DPM-Solver++ 5, logsnr",
    "DPM-Solver++ 10, logsnr",
    "DPM-Solver++ 15, logsnr",
    "DPM-Solver++ 20, logsnr",
    "DPM-Solver++ 10, time",
    "DPM-Solver++ 20, time",
)
DATASETS = ("digits", "mnist5k")
#: what `make bench` runs, after fid_digits.py and likelihood_mnist5k.py have kept their DDPM checkpoints
COMMANDS = (
    "python benchmarks/ddpm_solvers.py score digits runs/bench/ddpm_fid.ckpt --n 1000",
    "python benchmarks/ddpm_solvers.py time digits runs/bench/ddpm_fid.ckpt",
    "python benchmarks/ddpm_solvers.py score mnist5k runs/bench/likelihood_mnist5k/ddpm.ckpt --n 500 --rows MNIST5K",
    "python benchmarks/ddpm_solvers.py time mnist5k runs/bench/likelihood_mnist5k/ddpm.ckpt --n 50",
)


def train_mnist5k(budget: float, root: Path) -> tuple[Path, dict[str, Any]]:
    """``examples/mnist5k/ddpm.yaml`` without its FID / sample callbacks, at most ``budget`` seconds; the
    checkpoint with the best val/bpd_bound (EMA weights)."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from genlight.cli import GenlightCLI

    cli = GenlightCLI(args=[
        "-c", str(ROOT / "examples" / "mnist5k" / "ddpm.yaml"), "--trainer.callbacks=[]", "--trainer.logger=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}", "--samples.every_n_epochs=0",
        f"--trainer.max_time=00:00:{int(budget) // 60:02d}:{int(budget) % 60:02d}",
    ], run=False)  # fmt: skip
    best = ModelCheckpoint(dirpath=root / "best", monitor="val/bpd_bound", mode="min", filename="best")
    cli.trainer.callbacks.append(best)
    load, start = os.getloadavg()[0], time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    final = root / "final.ckpt"
    cli.trainer.save_checkpoint(final)  # EMA weights in the state dict
    # the final weights are a candidate too (and the only one when the budget ended before a validation)
    score = float(cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)[0]["val/bpd_bound"])
    periodic = float(best.best_model_score) if best.best_model_score is not None else float("inf")
    chosen, which = (final, "final") if score <= periodic else (Path(best.best_model_path), "best periodic")
    info = {"steps": cli.trainer.global_step, "train_s": round(seconds, 1), "load_start": load,
            "load_end": os.getloadavg()[0], "checkpoint": f"{which} by val/bpd_bound ({min(score, periodic):.4f})"}  # fmt: skip
    return chosen, info


def train(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="ddpm_solvers_") as tmp:
        root = Path(tmp)
        if args.data == "digits":
            from benchmarks.fid_digits import RECIPES
            from benchmarks.fid_digits import train as train_digits

            load = os.getloadavg()[0]
            _, info = train_digits("ddpm", RECIPES["ddpm"], args.budget, 0, str(root), None, args.keep)
            info = {**info, "load_start": load, "load_end": os.getloadavg()[0]}
        else:
            chosen, info = train_mnist5k(args.budget, root)
            Path(args.keep).parent.mkdir(parents=True, exist_ok=True)
            Path(args.keep).write_bytes(chosen.read_bytes())
    rows = read_json(args.out.with_suffix(".json"))
    rows[f"_train_{args.data}"] = {**info, "keep": args.keep, "budget_s": args.budget, "commit": commit(dirty=True)}
    write_json(args.out.with_suffix(".json"), rows)
    print(json.dumps(rows[f"_train_{args.data}"]))


def scorer_for(data: str) -> Scorer:
    if data == "digits":
        return Scorer()
    from benchmarks.fid_mnist5k import MNIST5kScorer

    return MNIST5kScorer()


def score(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    scorer = scorer_for(args.data)
    model = load_model(args.ckpt)
    # the rows in the order asked for (each saved as soon as it is scored), else all
    asked = MNIST5K_ROWS if args.rows == "MNIST5K" else args.rows.split(";")
    wanted = [r for w in asked for r in ROWS if w == r] if args.rows else list(ROWS)
    ckpt = torch.load(args.ckpt, map_location="cpu", weights_only=False)
    for name in wanted:
        load = os.getloadavg()[0]
        images, per_1000 = draw(model, args.n, **ROWS[name])
        assert torch.isfinite(images).all()
        feats = scorer.features(images)
        row = {"fid_train": scorer.fid(feats, scorer.reference["train"]), "n": args.n, "s_per_1000": per_1000,
               "kwargs": ROWS[name], "load": load, "threads": args.threads, "checkpoint": args.ckpt,
               "global_step": ckpt.get("global_step"), "commit": commit(dirty=True),
               "when": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"}  # fmt: skip
        print(args.data, name, json.dumps(row), flush=True)
        rows = read_json(args.out.with_suffix(".json"))  # re-read: kept after every row
        rows.setdefault(args.data, {})[name] = row
        write_json(args.out.with_suffix(".json"), rows)
    render(read_json(args.out.with_suffix(".json")), args.out.with_suffix(".md"))


TIMED = (
    "DDIM-50",
    "DDIM-20",
    "DDIM-10",
    "DPM-Solver++ 20, logsnr",
    "DPM-Solver++ 20, time",
    "DPM-Solver++ 15, logsnr",
    "DPM-Solver++ 10, logsnr",
)


def timing(args: argparse.Namespace) -> None:
    """Sampling time of the rows ``TIMED`` alternated over ``rounds`` (each round draws ``n`` images with each
    sampler in turn), the fastest round of each kept: a load that comes and goes hits them all alike."""
    torch.set_num_threads(args.threads)
    model = load_model(args.ckpt)
    best: dict[str, float] = {}
    loads = [os.getloadavg()[0]]
    for _ in range(args.rounds):
        for name in TIMED:
            _, per_1000 = draw(model, args.n, **ROWS[name])
            best[name] = min(best.get(name, float("inf")), per_1000)
        loads.append(os.getloadavg()[0])
    rows = read_json(args.out.with_suffix(".json"))
    rows[f"_timing_{args.data}"] = {"s_per_1000": best, "n": args.n, "rounds": args.rounds, "threads": args.threads,
                                    "load": [min(loads), max(loads)], "commit": commit(dirty=True)}  # fmt: skip
    write_json(args.out.with_suffix(".json"), rows)
    print(json.dumps(rows[f"_timing_{args.data}"]))
    render(rows, args.out.with_suffix(".md"))


def steps_of(name: str, timesteps: int = 250) -> int:
    """Model calls of a row."""
    kwargs = ROWS[name]
    return timesteps if kwargs["sampler"] == "ancestral" else kwargs["steps"]


def render(rows: dict[str, Any], md: Path) -> None:
    lines = [
        "# DDPM samplers: FID against sampling time (DDIM, ancestral, DPM-Solver++(2M))",
        "",
        "Produced by `benchmarks/ddpm_solvers.py` (its docstring gives the protocol). Commands (`make bench` runs "
        "them after `fid_digits.py train ddpm` and `fid_mnist5k.py train ddpm` have kept their checkpoints; "
        "`ddpm_solvers.py train digits|mnist5k --keep PATH` trains the same recipes alone):",
        "",
        *(f"    {c}" for c in COMMANDS),
        "",
        "DPM-Solver++(2M): multistep 2nd order in data prediction, the first step 1st order, the last model call at "
        "t = 0 whose data prediction is the sample (so k steps are k model calls, as DDIM's); discrete time handled "
        "as the paper: log α interpolated piecewise-linearly between the integer timesteps, the network called at "
        "real-valued t. Spacings: `logsnr` uniform in log-SNR between t = T-1 and t = 0, `time` DDIM's own grid "
        "(evenly spread integer timesteps). x̂_0 clipped to [-1, 1] (the model's `clip_x0`) for every sampler.",
    ]
    for data in DATASETS:
        table = rows.get(data, {})
        trained = rows.get(f"_train_{data}", {})
        lines += ["", f"## {data}", ""]
        scored = next(iter(table.values()), {})
        if scored and scored.get("checkpoint") != trained.get("keep"):  # rows drawn from another run's checkpoint
            lines.append(
                f"Checkpoint: {scored['checkpoint']} (global step {scored.get('global_step')}), kept by "
                "`likelihood_mnist5k.py --keep` / `fid_digits.py train ddpm --keep`: the recipe's run, the checkpoint "
                "chosen on val/bpd_bound (its protocol and figures are in likelihood_mnist5k.md / fid_digits.md)."
            )
        elif trained:
            lines.append(
                f"Checkpoint: {trained.get('keep')}, {trained.get('steps')} optimizer steps in {trained.get('train_s', trained.get('train_seconds'))} s "
                f"(budget {trained.get('budget_s')} s, one thread, load average {trained.get('load_start', float('nan')):.1f} at the start, "
                f"{trained.get('load_end', float('nan')):.1f} at the end), {trained.get('checkpoint')}, commit {trained.get('commit')}."
            )  # fmt: skip
        if not table:
            lines.append("No rows drawn yet (see the notes).")
            continue
        ref = table.get("DDIM-50")
        n = next(iter(table.values()))["n"]
        lines += [
            "",
            f"n = {n} samples per row (seed 0), FID vs the train split; `x DDIM-50` is the FID relative to DDIM-50's and "
            "the speed-up is DDIM-50's time over the row's (both from this table's own timings, taken one row after "
            "another on the shared machine: the load column is the 1-minute load average when the row started).",
            "",
            "| sampler | model calls | FID train | x DDIM-50 | s / 1000 samples | speed-up vs DDIM-50 | calls: DDIM-50 / row | load |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name in ROWS:
            r = table.get(name)
            if r is None:
                lines.append(f"| {name} | {steps_of(name)} | not run | | | | | |")
                continue
            rel = f"{r['fid_train'] / ref['fid_train']:.2f}" if ref else "-"
            speed = f"{ref['s_per_1000'] / r['s_per_1000']:.2f}x" if ref else "-"
            lines.append(
                f"| {name} | {steps_of(name)} | {r['fid_train']:.3f} | {rel} | {r['s_per_1000']:.1f} | {speed} | {50 / steps_of(name):.2f} | {r['load']:.1f} |"
            )
        timed = rows.get(f"_timing_{data}")
        if timed:
            t = timed["s_per_1000"]
            lines += [
                "",
                f"Interleaved timing (`time`): {timed['rounds']} rounds of n = {timed['n']} with each sampler in turn, the "
                f"fastest round kept, {timed['threads']} thread, load average {timed['load'][0]:.1f}-{timed['load'][1]:.1f}:",
                "",
                "| sampler | s / 1000 samples | speed-up vs DDIM-50 |",
                "|---|---|---|",
                *(f"| {k} | {v:.1f} | {t['DDIM-50'] / v:.2f}x |" for k, v in t.items()),
            ]  # fmt: skip
        target = [
            n for n in ("DPM-Solver++ 20, logsnr", "DPM-Solver++ 20, time", "DPM-Solver++ 15, logsnr") if n in table
        ]
        if ref and target:
            lines.append("")
            for name in target:
                r = table[name]
                clock = timed["s_per_1000"] if timed and name in timed["s_per_1000"] else None
                speed = clock["DDIM-50"] / clock[name] if clock else ref["s_per_1000"] / r["s_per_1000"]
                fid_ok, time_ok = r["fid_train"] <= 1.1 * ref["fid_train"], speed >= 2.5
                lines.append(
                    f"Target (issue 26), {name}: FID within 10% of DDIM-50's ({r['fid_train']:.3f} vs {ref['fid_train']:.3f}, "
                    f"x{r['fid_train'] / ref['fid_train']:.2f}): **{'met' if fid_ok else 'NOT met'}**; >= 2.5x less sampling "
                    f"time: {speed:.2f}x measured ({'interleaved timing' if clock else 'the table'}), "
                    f"{50 / steps_of(name):.2f}x fewer model calls: **{'met' if time_ok else 'NOT met'}** as measured."
                )  # fmt: skip
    lines += ["", *rows.get("_notes", [])]
    write_lines(md, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_train = sub.add_parser("train", help="train the DDPM of a data set and keep its checkpoint")
    p_train.add_argument("data", choices=DATASETS)
    p_train.add_argument("--keep", required=True)
    p_train.add_argument("--budget", type=float, default=600.0, help="training wall-clock seconds")
    p_score = sub.add_parser("score", help="score the sampler rows of a checkpoint")
    p_score.add_argument("data", choices=DATASETS)
    p_score.add_argument("ckpt")
    p_score.add_argument("--n", type=int, default=1000)
    p_score.add_argument("--threads", type=int, default=1)
    p_score.add_argument(
        "--rows",
        default="",
        help="';'-separated row names, scored in that order, or MNIST5K (MNIST5K_ROWS); default all",
    )
    p_time = sub.add_parser("time", help="interleaved sampling time of the main rows")
    p_time.add_argument("data", choices=DATASETS)
    p_time.add_argument("ckpt")
    p_time.add_argument("--n", type=int, default=100)
    p_time.add_argument("--rounds", type=int, default=3)
    p_time.add_argument("--threads", type=int, default=1)
    p_render = sub.add_parser("render", help="only re-render the .md from the .json")
    for p in (p_train, p_score, p_time, p_render):
        p.add_argument("--out", type=Path, default=OUT, help="path stem of the .json and .md results")
    args = parser.parse_args()
    if args.cmd == "train":
        torch.set_num_threads(1)
        train(args)
    elif args.cmd == "score":
        score(args)
    elif args.cmd == "time":
        timing(args)
    else:
        render(read_json(args.out.with_suffix(".json")), args.out.with_suffix(".md"))


if __name__ == "__main__":
    main()
