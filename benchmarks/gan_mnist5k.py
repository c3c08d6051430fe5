"""GAN families on mnist5k (28x28 real MNIST digits), on the full training split and on 10% of it: FID vs
train and vs test, precision, recall, density, coverage at equal n beside the real-vs-real floor, and for
class-conditional rows intra-class FID and CAS; rows with small-data tricks (``dcgan+diffaugment``, ...).

    python benchmarks/gan_mnist5k.py run dcgan cgan --split full 10% --threads 1
    python benchmarks/gan_mnist5k.py run dcgan+diffaugment --split 10%     # refused in one line until the option exists
    python benchmarks/gan_mnist5k.py run dcgan --steps 20 --out /tmp/g     # smoke run
    python benchmarks/gan_mnist5k.py render

Protocol. Each row trains the family's recipe ``examples/mnist5k/<family>.yaml`` (model, data, EMA as the
CLI adds it; its callbacks dropped) for ``--steps`` optimizer steps (default ``STEPS`` = 1000; G and D
steps both count; about 3 minutes of one idle thread for dcgan), seed 0, with the row's trick overrides
(``TRICKS`` of :mod:`benchmarks.common`). Split ``full``: the 4,000 training images; ``10%``: the first 400 of them
(``--data.subset 400``; the seed-0 split is a random permutation, so about 40 per class). No checkpoint
selection: the final weights (the EMA generator where the recipe has EMA) are scored; test data choose
nothing.

Scoring: 1000 samples drawn with seed 0 (class-conditional rows: labels ``i % 10``; ProGAN's 32x32 samples
cropped to 28x28), features of the shipped ``mnist5k`` extractor (trained on the train split only). FID and
KID against all 4,000 training images (whatever the row trained on) and against the 500 test images, at
n = 1000 and at n = 500 (20 random subsets of 500 samples, mean ± std) - the size of the floor, the 500
validation images scored as samples. Precision, recall (k = 3), density and coverage (k = 5): the 500 test
images as the real set against the first 500 samples (the floor: the 500 validation images). Intra-class
FID: the first 500 samples (50 a class) against the training images of their class (the floor: the 500
validation images). CAS: an MLP classifier trained on the 1000 samples only (500 steps), its accuracy on
the 500 test images; the same MLP trained on 1000 (and 400) real training images gives the ceiling.
Results: ``results/gan_mnist5k.json`` -> ``results/gan_mnist5k.md``; rows not run show the command to run them.
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

from benchmarks.common import (
    CAS_STEPS,
    RESULTS,
    ROOT,
    TRICKS,
    all_images,
    all_labels,
    cas,
    cli_overrides,
    commit,
    draw,
    fmt,
    intra_fid,
    manifold_figures,
    missing_option,
    save_panel,
    num_params,
    parse_row,
    read_json,
    write_json,
    write_lines,
)
from benchmarks.fid_mnist5k import MNIST5kScorer, cropped
from genlight import load_model
from genlight.types import Sampler, is_conditional

OUT = RESULTS / "gan_mnist5k"
FAMILIES = ("gan", "dcgan", "wgan_gp", "cgan", "infogan", "progan", "aae")
TRICK_ROWS = tuple(f"{f}+{t}" for f in ("dcgan", "cgan") for t in ("diffaugment", "ada", "lecam"))
#: split name -> training images kept (``--data.subset``; None: all 4,000)
SPLITS: dict[str, int | None] = {"full": None, "10%": 400}
STEPS = 1000
#: what `make bench` runs (the trick rows join it once the adversarial base has their options)
COMMAND = f"python benchmarks/gan_mnist5k.py run {' '.join(FAMILIES)} --split full 10% --threads 1"
NUM_SAMPLES, EQUAL_N = 1000, 500


class Reference:
    """The mnist5k scorer plus what the class figures need: labels, and the images CAS tests on."""

    def __init__(self) -> None:
        self.scorer = MNIST5kScorer()
        dm = self.scorer.dm
        self.labels = {s: all_labels(dm.reference_dataset(s)) for s in ("train", "val", "test")}
        self.images = {s: all_images(dm.reference_dataset(s)) for s in ("train", "val", "test")}
        self.val = self.scorer.features(self.images["val"])

    def floor(self) -> dict[str, Any]:
        """The 500 validation images scored as samples; the real-data CAS ceilings."""
        s, y = self.scorer, self.labels
        out: dict[str, Any] = {**s.floor(), **manifold_figures(s.reference["test"], self.val)}
        out.update(intra_fid(s.reference["train"], y["train"], self.val, y["val"], 10))
        for n in (1000, 400):
            out[f"cas_real_{n}"] = cas(self.images["train"][:n], y["train"][:n], self.images["test"], y["test"], 10)
        return out


def train(key: str, split: str, args: argparse.Namespace, root: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fit the row's recipe with its overrides for ``args.steps`` steps; the final weights and the run's facts."""
    from genlight.cli import GenlightCLI

    family, overrides = parse_row(key)
    config = ROOT / "examples" / "mnist5k" / f"{family}.yaml"
    subset = SPLITS[split]
    cli = GenlightCLI(args=[
        "-c", str(config), "--trainer.callbacks=[]", f"--trainer.max_steps={args.steps}", "--trainer.logger=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.max_epochs=-1",
        f"--trainer.default_root_dir={root}", "--samples.every_n_epochs=0", *cli_overrides(overrides),
        *([f"--data.subset={subset}"] if subset else []),
    ], run=False)  # fmt: skip
    model, dm, trainer = cli.model, cli.datamodule, cli.trainer
    load_start, start = os.getloadavg()[0], time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    final = root / "final.ckpt"
    trainer.save_checkpoint(final)  # the EMA weights in the state dict where the recipe has EMA
    info = {
        "steps": trainer.global_step, "epochs": trainer.current_epoch, "train_s": round(seconds, 1),
        "load_start": round(load_start, 2), "load_end": round(os.getloadavg()[0], 2),
        "train_images": len(dm.train_set), "overrides": overrides,
    }  # fmt: skip
    return load_model(str(final)).eval(), info


def score(model: torch.nn.Module, ref: Reference, panel: str | None = None) -> dict[str, Any]:
    """The row's figures (see the module docstring); ``panel``: also save the first 64 samples under that name."""
    if not isinstance(model, Sampler):
        raise SystemExit(f"{type(model).__name__} does not sample: no row")
    labels = torch.arange(NUM_SAMPLES) % int(model.num_classes) if is_conditional(model) else None
    images, per_1000 = draw(model, NUM_SAMPLES, labels=labels)
    images = cropped(images)
    if panel:
        save_panel(images, panel)
    s = ref.scorer
    feats = s.features(images)
    out: dict[str, Any] = {**s.score(images), **manifold_figures(s.reference["test"], feats[:EQUAL_N])}
    out.update(samples_per_s=1000 / per_1000, params=num_params(model))
    if labels is not None:
        out.update(intra_fid(s.reference["train"], ref.labels["train"], feats[:EQUAL_N], labels[:EQUAL_N], 10))
        out["cas"] = cas(images, labels, ref.images["test"], ref.labels["test"], 10)
    return out


def row_id(key: str, split: str) -> str:
    return f"{key} @ {split}"


def run_command(key: str, split: str) -> str:
    return f"python benchmarks/gan_mnist5k.py run {key} --split {split} --threads 1"


# ---------------------------------------------------------------------------------------- table
def render(results: dict[str, Any], path: Path) -> None:
    floor, runs = results.get("_floor", {}), results.get("rows", {})

    def f(r: dict[str, Any], k: str, spec: str = ".2f") -> str:
        return fmt(r.get(k), spec)

    def pm(r: dict[str, Any], split: str) -> str:
        key = f"fid_{split}_matched"
        return f"{r[key]:.2f} ± {r[key + '_std']:.2f}" if key in r else "-"

    header = (
        f"| row | train images | FID train n={NUM_SAMPLES} | FID test n={NUM_SAMPLES} | FID train n={EQUAL_N} | "
        f"FID test n={EQUAL_N} | precision | recall | density | coverage | intra-FID | CAS | steps (epochs) | "
        "train s | load start / end | commit |"
    )
    lines = [
        "# GAN families on mnist5k, full training split and 10% of it",
        "",
        f"Command (`make bench`): `{COMMAND}`.",
        "",
        "Produced by `benchmarks/gan_mnist5k.py`; its docstring gives the protocol in full. Lower FID / intra-FID, "
        "higher precision, recall, density (1 = as dense as real data), coverage and CAS are better. Every row: "
        f"{results.get('steps', STEPS)} optimizer steps of the family's `examples/mnist5k` recipe (G and D steps both "
        "count), seed 0, one torch thread, final weights (EMA where the recipe has it): no checkpoint selection, "
        "so test data choose nothing. `10%` trains on the first 400 of the 4,000 training images (seed-0 split); "
        "FID vs train always compares with all 4,000. Precision / recall (k = 3) and density / coverage (k = 5) "
        f"compare {EQUAL_N} samples with the {EQUAL_N} test images, as the floor compares the {EQUAL_N} validation "
        f"images; intra-FID: {EQUAL_N} samples (50 a class) against the training images of their class; CAS: an MLP "
        f"trained on the {NUM_SAMPLES} samples only ({CAS_STEPS} steps), accuracy on the 500 test images. The machine "
        "is shared (2 cores, about 8 users): the load column says how busy it was; timings are indicative only.",
        "",
        f"Real-vs-real floor (the {EQUAL_N} validation images scored as samples): FID vs train "
        f"**{f(floor, 'fid_train')}**, vs test **{f(floor, 'fid_test')}**; precision {f(floor, 'precision', '.3f')}, "
        f"recall {f(floor, 'recall', '.3f')}, density {f(floor, 'density', '.3f')}, coverage "
        f"{f(floor, 'coverage', '.3f')}; intra-FID {f(floor, 'intra_fid')}. CAS ceiling (the MLP trained on real "
        f"training images): {f(floor, 'cas_real_1000', '.3f')} from 1000 of them, {f(floor, 'cas_real_400', '.3f')} "
        "from 400. Compare rows with the floor in the equal-n columns: FID grows as n shrinks.",
        "",
        "Tricks rows (`family+trick`, model overrides): "
        + "; ".join(f"`{t}`: " + ", ".join(f"`--model.{k} {v}`" for k, v in o.items()) for t, o in TRICKS.items())
        + ".",
    ]
    for split, subset in SPLITS.items():
        lines += ["", f"## {split} ({subset or 4000} training images)", "", header, "|---" * 16 + "|"]
        lines.append(
            f"| real validation images (floor, n = {EQUAL_N}) | - | - | - | {pm(floor, 'train')} | {pm(floor, 'test')} | "
            f"{f(floor, 'precision', '.3f')} | {f(floor, 'recall', '.3f')} | {f(floor, 'density', '.3f')} | "
            f"{f(floor, 'coverage', '.3f')} | {f(floor, 'intra_fid')} | ceiling {f(floor, f'cas_real_{subset or 1000}', '.3f')} "
            "| - | - | - | - |"
        )  # fmt: skip
        for key in (*FAMILIES, *TRICK_ROWS):
            r = runs.get(row_id(key, split))
            if r is None or r.get("status") != "ok":
                why = r.get("status", "not run yet") if r else "not run yet"
                lines.append(f"| {key} | {subset or 4000} | {why}: `{run_command(key, split)}` |" + " |" * 13)
                continue
            lines.append(
                f"| {key} | {r['train_images']} | {f(r, 'fid_train')} | {f(r, 'fid_test')} | {pm(r, 'train')} | "
                f"{pm(r, 'test')} | {f(r, 'precision', '.3f')} | {f(r, 'recall', '.3f')} | {f(r, 'density', '.3f')} | "
                f"{f(r, 'coverage', '.3f')} | {f(r, 'intra_fid')} | {f(r, 'cas', '.3f')} | {r['steps']} ({r['epochs']}) | "
                f"{f(r, 'train_s', '.0f')} | {r['load_start']:.1f} / {r['load_end']:.1f} | {r.get('commit', '-')} |"
            )  # fmt: skip
    per_class = {k: r["intra_fid_per_class"] for k, r in runs.items() if r.get("intra_fid_per_class")}
    if per_class:
        lines += ["", "Intra-FID per class (digits 0-9):", ""]
        lines += [f"- {k}: " + ", ".join(f"{v:.1f}" for v in vals) for k, vals in per_class.items()]
    lines += ["", *results.get("notes", [])] if results.get("notes") else []
    lines += ["", "Runs:", *(f"- {m}" for m in results.get("runs", []))]
    write_lines(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_run = sub.add_parser("run", help="train and score rows")
    p_run.add_argument("keys", nargs="+", help=f"family[+trick...]: {', '.join(FAMILIES)}; tricks {', '.join(TRICKS)}")
    p_run.add_argument("--split", nargs="+", choices=tuple(SPLITS), default=["full"])
    p_run.add_argument("--steps", type=int, default=STEPS, help="optimizer steps per row")
    p_run.add_argument("--threads", type=int, default=1)
    p_run.add_argument("--out", type=Path, default=OUT, help="path stem of the .json and .md results")
    sub.add_parser("render", help="only re-render the .md from the .json").add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    if args.cmd == "render":
        render(read_json(json_path), md_path)
        return
    for key in args.keys:  # every row's options exist, before anything is trained
        family, _ = parse_row(key)
        problem = missing_option(key)
        if problem is not None:
            raise SystemExit(problem)
        if family not in FAMILIES:
            raise SystemExit(f"row {key!r}: {family} is not one of this table's families ({', '.join(FAMILIES)})")
        if not (ROOT / "examples" / "mnist5k" / f"{family}.yaml").is_file():
            raise SystemExit(f"row {key!r}: no examples/mnist5k/{family}.yaml recipe")
    torch.set_num_threads(args.threads)
    code = commit(dirty=True)
    ref = Reference()
    results = read_json(json_path)
    if "_floor" not in results:
        results["_floor"] = ref.floor()
        write_json(json_path, results)
    for key in args.keys:
        for split in args.split:
            started = f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
            print(f"train {key} @ {split} ({args.steps} steps)", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"gan_mnist5k_{key}_") as root:
                model, info = train(key, split, args, Path(root))
            panel = key if split == "full" and "+" not in key and args.out == OUT else None  # the README's panels
            row = {**info, **score(model, ref, panel), "status": "ok", "commit": code, "threads": args.threads}
            print(row_id(key, split), json.dumps(row), flush=True)
            results = read_json(json_path)  # re-read: another process may have added rows
            results.setdefault("rows", {})[row_id(key, split)] = row
            results["steps"] = args.steps
            results.setdefault("runs", []).append(
                f"{started}: `{key}` @ {split}, {args.steps} steps, threads {args.threads}, commit {code}, "
                f"torch {torch.__version__}"
            )
            write_json(json_path, results)
            render(results, md_path)
    print(f"wrote {md_path}")


if __name__ == "__main__":
    main()
