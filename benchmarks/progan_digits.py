"""ProGAN vs DCGAN on the 8x8 digits at the same wall-clock budget: FID vs train and vs test and the
memorisation figure at the end of every ProGAN stage, at the end of training and for the checkpoint
chosen on validation FID; one PNG of sample grids.

    python benchmarks/progan_digits.py --budget 300 --threads 1
    python benchmarks/progan_digits.py --budget 5 --evals 2 --out /tmp/progan_smoke \
        --progan_args '{"steps_per_stage": 3, "fade_steps": 3}'                                        # smoke run

Each model is trained with its ``examples/digits/<name>.yaml`` (model and data arguments, EMA as the
CLI adds it), one after the other, for ``--budget`` seconds of wall clock each (``Trainer(max_time)``),
with ``--threads`` torch threads; the load average is recorded at the start of each run. Checkpoint
selection as in ``benchmarks/gan_digits.py`` (its ``ValSelection``): FID of 1000 seeded samples (EMA
weights) against the 144 val images ``--evals - 1`` times during the budget and on the final weights,
the best kept; the evaluation time is part of the budget. ProGAN also saves a checkpoint at the end of
every stage (just before the next stage's fade-in starts; EMA weights), scored like the others.
A low stage samples at its own size and is upsampled (nearest neighbour) to 8x8 by ``sample``: its FID
measures those blocky images against the 8x8 data.

Scoring (``benchmarks.common.Scorer``, the digits CNN extractor): 1000 samples drawn with seed 0 against
all train and all test images, and on subsets of 359 of them, the floors' n (the 359 test images, and the
same at 4x4 for a stage-0 row); memorisation (``genlight.metrics.memorisation``, q = 0.1 and 0.5) with the
real test images as the floor. 28x28 MNIST is not run: its IDX files are not on this machine (the
script only runs the bundled digits).
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

from benchmarks.common import (
    MATCHED_DRAWS, NUM_SAMPLES, RESULTS, Scorer, all_images, all_labels, commit, compose, draw, fmt, quiet_trainer, timed_fit,
    num_params, read_json, write_json, write_lines,
)  # fmt: skip
from benchmarks.gan_digits import Judge, ValSelection, build, read_config, sample_panel
from genlight import load_model
from genlight.callbacks.ema import EMA
from genlight.callbacks.stages import StageSamples
from genlight.modules.progan import resize_to

MODELS = ("progan", "dcgan")
COMMAND = "python benchmarks/progan_digits.py --budget 300 --threads 1"


class StageCheckpoints(StageSamples):
    """:class:`~genlight.callbacks.StageSamples` that also saves a checkpoint (EMA weights in its
    ``state_dict``) at the end of every stage but the last: ``stage{k}.ckpt`` in ``folder``."""

    def __init__(self, folder: str) -> None:
        super().__init__(num_samples=16)
        self.folder = folder
        self.saved: dict[int, dict[str, Any]] = {}

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int) -> None:
        before = len(self.logged)
        super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        if len(self.logged) > before:
            stage = pl_module.growth()[0]
            path = str(Path(self.folder) / f"stage{stage}.ckpt")
            trainer.save_checkpoint(path)
            self.saved[stage] = {"path": path, "step": pl_module.steps_taken, "epoch": trainer.current_epoch}

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass  # the end of training is scored as the final checkpoint


def fit(name: str, args: argparse.Namespace, root: str) -> tuple[dict[str, Any], dict[str, str]]:
    """Train one model within the budget; its run figures and ``{row label: checkpoint path}``."""
    config = read_config(name)
    if name == "progan" and args.progan_args:
        config["model"]["init_args"] = {**config["model"]["init_args"], **json.loads(args.progan_args)}
    pl.seed_everything(int(config.get("seed_everything", 0) or 0), verbose=False)
    model, dm = build(name, config)
    ema = EMA(**dict(config.get("ema") or {}))
    selector = ValSelection(str(Path(root) / "best.ckpt"), args.evals, args.budget, None)
    callbacks: list[pl.Callback] = [ema, selector]
    stages = StageCheckpoints(root) if name == "progan" else None
    if stages is not None:
        callbacks.append(stages)
    trainer = quiet_trainer(root, budget=args.budget, enable_checkpointing=False, callbacks=callbacks,
                            num_sanity_val_steps=0)  # fmt: skip
    load = os.getloadavg()[0]
    seconds = timed_fit(trainer, model, dm)
    final = str(Path(root) / "final.ckpt")
    trainer.save_checkpoint(final)
    fid = selector.record(trainer, model, save=False)
    chosen = selector.path if selector.best < fid else final
    how = f"best periodic by val FID ({selector.best:.3f}; final {fid:.3f})" if selector.best < fid else f"final by val FID ({fid:.3f})"
    checkpoints: dict[str, str] = {}
    info: dict[str, Any] = {
        "train_seconds": round(seconds, 1), "val_eval_seconds": round(selector.eval_seconds, 1),
        "batches": getattr(model, "steps_taken", None), "steps": trainer.global_step, "epochs": trainer.current_epoch,
        "params": num_params(model), "params_generator": num_params(model.generator), "load_avg_start": round(load, 2),
        "checkpoint": how, "val_history": selector.history, "init_args": (config.get("model") or {}).get("init_args"),
        "stage_ends": {},
    }  # fmt: skip
    if stages is not None:
        for stage, saved in sorted(stages.saved.items()):
            size = 4 * 2**stage
            checkpoints[f"{name}: end of stage {stage} ({size}x{size}, step {saved['step']}, upsampled to 8x8)"] = saved["path"]
            info["stage_ends"][stage] = {"batches": saved["step"], "epoch": saved["epoch"]}
        stage, alpha = model.growth()
        info["final_growth"] = [stage, alpha]
    end = f"{name}: end of training" + (f" (stage {info['final_growth'][0]}, alpha {info['final_growth'][1]:.2f})" if stages else "")
    checkpoints[end] = final
    checkpoints[f"{name}: chosen on val FID"] = chosen
    return info, checkpoints


def matched(row: dict[str, Any], split: str) -> str:
    """``mean ± std`` of a row's FID at the floor's sample size, or ``-`` where it was not scored."""
    if row.get(f"fid_{split}_matched") is None:
        return "-"
    return f"{row[f'fid_{split}_matched']:.3f} ± {row[f'fid_{split}_matched_std']:.3f}"


def render(results: dict[str, Any], path: Path, png: str) -> None:
    floor, p = results["_floor"], results["_protocol"]
    n = int(floor.get("matched_n", 359))
    unmatched = [k for k, r in results["rows"].items() if r.get("fid_train_matched") is None]
    lines = [
        "# ProGAN vs DCGAN on digits at the same wall-clock budget",
        "",
        f"Command (`make bench`): `{COMMAND}`.",
        "",
        f"Produced by `benchmarks/progan_digits.py` (see its docstring). Protocol: each model trained with its "
        f"`examples/digits/<name>.yaml` for {p['budget']:g} s of wall clock (`Trainer(max_time)`), one after the "
        f"other, {p['threads']} torch thread(s), seed 0, digits datamodule (seed-0 split: 1294 train / 144 val / 359 "
        f"test), EMA weights. Checkpoints: ProGAN's at the end of each stage (before the next fade-in), the end of "
        f"training, and the one chosen on validation (FID of 1000 seeded samples vs the 144 val images, "
        f"{p['evals'] - 1} times during the budget and on the final weights; test data never selects anything). "
        "Every row: 1000 samples drawn with seed 0, digits CNN extractor (`genlight/assets/digits_cnn.pt`), against "
        "all train and all test images; memorisation (`genlight.metrics.memorisation`, extractor features): the "
        "share of samples nearer to a train image than the q-quantile of train leave-one-out distances (fresh data "
        "scores about q; the real test images give the floor). A stage-0 row draws 4x4 images upsampled (nearest) "
        "to 8x8. `batches`: training batches (ProGAN's schedule counts these; one D and one G step each); "
        "`steps`: optimizer steps (`trainer.global_step`). Timings are wall clock on the shared 2-core machine "
        "(load average at the start of each run in the table): indicative only. 28x28 MNIST: not run, its files "
        "are not on this machine.",
        "",
        f"Real-vs-real floor (the {n} test images): FID vs train **{floor['fid_train']:.3f}** (at n = {n}), "
        f"memorisation q=0.1 **{floor['mem_q10']:.3f}**, q=0.5 {floor['mem_q50']:.3f}. The floor of a 4x4 stage (the test "
        f"images average-pooled to 4x4 and upsampled to 8x8, as a stage-0 sample is): FID vs train "
        f"**{floor['fid_train_4x4']:.3f}**, vs test {floor['fid_test_4x4']:.3f} (at n = {n}).",
        "",
        f"FID falls as the number of samples grows, so a row's FID at n = {NUM_SAMPLES} is not comparable with a "
        f"floor's at n = {n}: the floors have figures in the `n={n}` columns only, which score random subsets of "
        f"{n} of a row's samples ({MATCHED_DRAWS} subsets without replacement, seed 0; mean ± standard deviation); "
        f"compare only those with a floor. The FID columns at n = {NUM_SAMPLES} compare the rows with each other."
        + (" The rows of this file were scored before the `n=" + str(n) + "` columns existed and their checkpoints "
           "were not kept: it has no FID of a row comparable with a floor (the next run of the script scores every "
           "row at both n)." if unmatched else ""),
        "",
        "<!-- progan_digits table -->",
        f"| model / checkpoint | FID train | FID test | FID train n={n} | FID test n={n} | mem q=0.1 | mem q=0.5 | "
        "classes exp(H) | train s | batches (steps, epochs) | params (G) | load avg | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| real test images (floor, n = {n}) | - | - | {floor['fid_train']:.3f} | 0 | {floor['mem_q10']:.3f} | "
        f"{floor['mem_q50']:.3f} | {fmt(floor.get('class_entropy_exp'), '.2f')} | - | - | - | - | - |",
        f"| real test images at 4x4, upsampled (floor of a 4x4 stage, n = {n}) | - | - | {floor['fid_train_4x4']:.3f} | "
        f"{floor['fid_test_4x4']:.3f} | - | - | - | - | - | - | - | - |",
    ]
    for label, r in results["rows"].items():
        run = results["runs"][r["model"]]
        lines.append(
            f"| {label} | {fmt(r['fid_train'], '.3f')} | {fmt(r['fid_test'], '.3f')} | {matched(r, 'train')} | "
            f"{matched(r, 'test')} | {fmt(r['mem_q10'], '.3f')} | "
            f"{fmt(r['mem_q50'], '.3f')} | {fmt(r['class_entropy_exp'], '.2f')} | {run['train_seconds']} | "
            f"{fmt(run.get('batches'), '')} ({run['steps']}, {run['epochs']}) | {run['params']} ({run['params_generator']}) | "
            f"{run['load_avg_start']} | {p['commit']} |"
        )
    lines += ["", "Validation FID during training (1000 samples vs 144 val images; `epoch/step: FID`):", ""]
    for name, run in results["runs"].items():
        lines.append(f"- {name}: " + ", ".join(f"{e['epoch']}/{e['step']}: {e['val_fid']:.2f}" for e in run["val_history"]))
        lines.append(f"  - arguments: `{json.dumps(run['init_args'])}`; checkpoint chosen: {run['checkpoint']}")
        if run.get("stage_ends"):
            ends = ", ".join(f"stage {k} after {v['batches']} batches (epoch {v['epoch']})" for k, v in run["stage_ends"].items())
            lines.append(f"  - stage ends: {ends}")
    lines += ["", f"Picture: [{png}]({png}) (100 samples per checkpoint, seed 0)."]
    write_lines(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--budget", type=float, default=300.0, help="training wall-clock seconds per model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--evals", type=int, default=6, help="val FID evaluations per run, the final weights included")
    parser.add_argument("--progan_args", default=None, help="JSON overriding ProGAN's init_args (tuning, smoke runs)")
    parser.add_argument("--out", default=None, help="write progan_digits.{json,md,png} here (default benchmarks/results)")
    parser.add_argument("--render", action="store_true",
                        help="only re-render progan_digits.md from progan_digits.json (after a change of the table's layout)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out) if args.out else RESULTS
    if args.render:
        render(read_json(out_dir / "progan_digits.json"), out_dir / "progan_digits.md", "progan_digits.png")
        print(f"wrote {out_dir / 'progan_digits.md'}", flush=True)
        return
    scorer = Scorer()
    judge = Judge(scorer)
    test = all_images(scorer.dm.reference_dataset("test"))
    floor = {**scorer.floor(), **judge.figures(test, all_labels(scorer.dm.reference_dataset("test")))}
    low = resize_to(resize_to(test, 4), 8)  # what a perfect 4x4 stage could reach: the test images at 4x4, upsampled
    floor["fid_train_4x4"], floor["fid_test_4x4"] = (scorer.score(low)[k] for k in ("fid_train", "fid_test"))  # n = 359
    rows: dict[str, dict[str, Any]] = {}
    runs: dict[str, dict[str, Any]] = {}
    panels: list[tuple[str, torch.Tensor]] = []
    for name in args.models:
        print(f"train {name} ({args.budget:.0f} s)", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"progan_digits_{name}_") as root:
            runs[name], checkpoints = fit(name, args, root)
            for label, path in checkpoints.items():
                model = load_model(path).eval()
                images, _ = draw(model, NUM_SAMPLES)
                rows[label] = {"model": name, **scorer.score(images), **judge.figures(images)}
                print(label, json.dumps({k: round(v, 4) for k, v in rows[label].items() if k != "model"}), flush=True)
                if "chosen" not in label:
                    panels.append((label.split(" (")[0], sample_panel(model)))
    results = {"_floor": floor, "_protocol": {"budget": args.budget, "threads": args.threads, "evals": args.evals,
                                              "commit": commit()}, "runs": runs, "rows": rows}  # fmt: skip
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "progan_digits.json", results)
    compose(panels, out_dir / "progan_digits.png")
    render(results, out_dir / "progan_digits.md", "progan_digits.png")
    print(f"wrote {out_dir / 'progan_digits.md'}", flush=True)


if __name__ == "__main__":
    main()
