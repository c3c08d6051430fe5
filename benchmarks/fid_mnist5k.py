"""Sample quality on mnist5k (28x28 real MNIST digits): FID / KID with the mnist5k CNN extractor against the
train and the test split at equal n, beside the real-vs-real floor at the same n, and memorisation.

    PYTHONPATH=. python benchmarks/fid_mnist5k.py train dcgan --threads 1
    PYTHONPATH=. python benchmarks/fid_mnist5k.py add vae runs/bench/likelihood_mnist5k/vae.ckpt --threads 1
    PYTHONPATH=. python benchmarks/fid_mnist5k.py train dcgan --steps 4 --n 600 --out /tmp/f   # smoke run

``train KEY`` trains the row's recipe ``examples/mnist5k/<family>.yaml`` for its ``trainer.max_steps``
optimizer steps (about 10 minutes on one idle thread; ``--steps`` replaces it) with the recipe's callbacks
replaced, and scores: the checkpoint chosen on the family's validation figure where it has one
(``checkpoint_monitor()``: VAEs, DDPM, flows, autoregressive families), else the final weights (GANs, EBM,
AAE: EMA generator where the recipe has EMA). ``add KEY CKPT`` scores a checkpoint trained elsewhere (the
likelihood rows' ``--keep``).

Protocol: ``n`` = 1000 samples drawn with seed 0 (class-conditional families: labels ``i % 10``, balanced;
ProGAN's 32x32 samples cropped back to 28x28, the 2 padded pixels each side); features of the shipped
``mnist5k`` extractor (``genlight/assets/mnist5k_cnn.pt``, trained on the train split only, sha256
5c233f31..., accuracy 0.978 val / 0.984 test). FID and KID (100 subsets) against all 4,000 training images
and against the 500 test images; the **equal-n** columns score random subsets of 500 of the samples (20
subsets, mean ± std), the size of the floor: the 500 validation images (real digits never trained on)
scored as samples. Memorisation: share of samples nearer (in features) to a training image than the 10%
quantile of train-to-train leave-one-out distances (fresh data ~0.1, copies 1).

Rows are kept in ``benchmarks/results/fid_mnist5k.json`` and rendered to ``fid_mnist5k.md``; rows never run
show "not run yet".
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from benchmarks.common import (
    ddpm_sampler_lines,
    save_panel,
    MATCHED_DRAWS, RESULTS, ROOT, Scorer, all_images, commit, draw, num_params, read_json, write_json, write_lines,
)  # fmt: skip
from genlight import create_datamodule, load_model
from genlight.cli import GenlightCLI
from genlight.metrics import create_extractor

OUT = RESULTS / "fid_mnist5k"
#: the rows: recipe, sample() keyword arguments, class-balanced labels
ROWS: dict[str, dict[str, Any]] = {
    "dcgan": {"recipe": "dcgan"},
    "progan": {"recipe": "progan"},
    "wgan_gp": {"recipe": "wgan_gp"},
    "cgan": {"recipe": "cgan", "labels": True},
    "infogan": {"recipe": "infogan"},
    "gan": {"recipe": "gan"},
    "vae": {"recipe": "vae"},
    "cvae": {"recipe": "cvae", "labels": True},
    "beta_vae": {"recipe": "beta_vae"},
    "vae_vamp": {"recipe": "vae_vamp"},
    "aae": {"recipe": "aae"},
    "ddpm": {"recipe": "ddpm", "sample": {"steps": 50}},
    "ddpm_ancestral": {"recipe": "ddpm", "sample": {"sampler": "ancestral"}},
    "flow_matching": {"recipe": "flow_matching", "sample": {"sampler": "heun", "steps": 10}},
    "ebm": {"recipe": "ebm"},
    "realnvp": {"recipe": "realnvp"},
    "glow": {"recipe": "glow"},
    "maf": {"recipe": "maf"},
    "nsf": {"recipe": "nsf"},
    "nade": {"recipe": "nade"},
    "pixelcnn": {"recipe": "pixelcnn"},
    "gated_pixelcnn": {"recipe": "gated_pixelcnn"},
    "pixelrnn_row": {"recipe": "pixelrnn_row"},
    "pixelrnn_diag": {"recipe": "pixelrnn_diag"},
    "vqvae_prior": {"recipe": "vqvae_prior"},
}
#: rows scoring another row's kept checkpoint (``likelihood_mnist5k.py --keep`` names them by its row keys)
KEPT = {"ddpm_ancestral": "ddpm"}
#: what `make bench` runs (about 3.5 hours; the density rows score the checkpoints likelihood_mnist5k.py kept)
COMMANDS = (
    *(f"PYTHONPATH=. python benchmarks/fid_mnist5k.py train {k} --threads 1"
      for k in ("dcgan", "progan", "wgan_gp", "cgan", "infogan", "gan", "aae", "ebm")),
    *(f"PYTHONPATH=. python benchmarks/fid_mnist5k.py add {k} runs/bench/likelihood_mnist5k/{KEPT.get(k, k)}.ckpt --threads 1"
      for k in ("vae", "cvae", "beta_vae", "vae_vamp", "ddpm", "ddpm_ancestral", "flow_matching", "realnvp", "glow",
                "maf", "nsf", "nade", "pixelcnn", "gated_pixelcnn", "pixelrnn_row", "pixelrnn_diag", "vqvae_prior")),
)  # fmt: skip


class MNIST5kScorer(Scorer):
    """:class:`benchmarks.common.Scorer` on mnist5k: the mnist5k extractor, references the 4,000 training and
    the 500 test images; the floor is the 500 validation images (``floor_n`` = 500, the test split's size)."""

    def __init__(self) -> None:  # noqa: D107  (the digits scorer's set-up, for mnist5k)
        self.dm = create_datamodule("mnist5k")
        self.dm.setup("fit")
        self.extractor = create_extractor("mnist5k")
        self.reference = {s: self.features(all_images(self.dm.reference_dataset(s))) for s in ("train", "test")}
        self._train_loo = None

    def floor(self) -> dict[str, float]:
        return self.score(all_images(self.dm.reference_dataset("val")))


def cropped(images: torch.Tensor) -> torch.Tensor:
    """Samples of ``mnist5k`` with ``pad: 2`` (32x32) cropped back to 28x28."""
    return images[..., 2:-2, 2:-2] if images.shape[-1] == 32 else images


def train(key: str, args: argparse.Namespace, root: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Fit the row's recipe; the checkpoint chosen on validation (or the final weights) and the run's facts."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    config = ROOT / "examples" / "mnist5k" / f"{ROWS[key]['recipe']}.yaml"
    recipe_steps = yaml.safe_load(config.read_text())["trainer"]["max_steps"]
    steps = args.steps or recipe_steps
    cli = GenlightCLI(args=[
        "-c", str(config), "--trainer.callbacks=[]", f"--trainer.max_steps={steps}", "--trainer.logger=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
        f"--trainer.default_root_dir={root}", "--samples.every_n_epochs=0",
        *(["--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--trainer.check_val_every_n_epoch=1"]
          if args.steps else []),
    ], run=False)  # fmt: skip
    model, dm, trainer = cli.model, cli.datamodule, cli.trainer
    monitor = model.checkpoint_monitor()
    best = (
        ModelCheckpoint(dirpath=root / "best", monitor=monitor[0], mode=monitor[1], filename="best")
        if monitor
        else None
    )
    trainer.callbacks.extend([best] if best else [])
    load_start, start = os.getloadavg()[0], time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    final = root / "final.ckpt"
    trainer.save_checkpoint(final)  # EMA weights in the state dict where the recipe has EMA
    chosen = Path(best.best_model_path) if best and best.best_model_path else final
    if args.keep:
        Path(args.keep).parent.mkdir(parents=True, exist_ok=True)
        Path(args.keep).write_bytes(chosen.read_bytes())
    info = {
        "steps": trainer.global_step, "recipe_steps": recipe_steps, "train_s": seconds,
        "steps_per_s": trainer.global_step / seconds, "load_start": load_start, "load_end": os.getloadavg()[0],
        "checkpoint": f"best by {monitor[0]} ({float(best.best_model_score):.4f})" if best and best.best_model_path else "final",
    }  # fmt: skip
    return load_model(str(chosen)), info


def score_row(key: str, model: torch.nn.Module, scorer: MNIST5kScorer, args: argparse.Namespace) -> dict[str, Any]:
    row = ROWS[key]
    labels = torch.arange(args.n) % 10 if row.get("labels") else None
    images, per_1000 = draw(model, args.n, labels=labels, **row.get("sample", {}))
    assert torch.isfinite(images).all()
    if args.out == OUT:  # not for smoke runs written elsewhere
        save_panel(cropped(images), key)
    return {**scorer.score(cropped(images)), "n": args.n, "samples_per_s": 1000 / per_1000, "params": num_params(model),
            "threads": args.threads}  # fmt: skip


def render(rows: dict[str, dict], path: Path) -> None:
    floor = rows.get("_floor", {})
    n = floor.get("matched_n", 500)

    def f(r: dict, k: str, spec: str = ".2f") -> str:
        return format(r[k], spec) if k in r else "-"

    def pm(r: dict, split: str) -> str:
        return (
            f"{r[f'fid_{split}_matched']:.2f} ± {r[f'fid_{split}_matched_std']:.2f}"
            if f"fid_{split}_matched" in r
            else "-"
        )

    lines = [
        "# Sample quality on mnist5k (28x28 real MNIST digits): FID / KID, mnist5k CNN extractor",
        "",
        "Produced by `benchmarks/fid_mnist5k.py` (its docstring gives the protocol). Lower is better; test data "
        "select nothing. The split is a held-out part of 5,000 MNIST *training* digits (not MNIST's test set).",
        "",
        "Commands (`make bench`, after `likelihood_mnist5k.py --keep runs/bench/likelihood_mnist5k`):",
        "",
        *(f"    {c}" for c in COMMANDS),
        "",
        f"Real-vs-real floor: the {n} validation images scored as samples: FID vs train **{f(floor, 'fid_train')}**, "
        f"vs test **{f(floor, 'fid_test')}** (n = {n}); KID vs train {f(floor, 'kid_train', '.5f')}, vs test "
        f"{f(floor, 'kid_test', '.5f')}; memorisation {f(floor, 'mem_q10', '.3f')}. Compare rows with it through the "
        f"`n={n}` columns ({MATCHED_DRAWS} random subsets of {n} of a row's samples, mean ± std): FID grows as n shrinks.",
        "",
        f"| model | key | FID train n=1000 | FID test n=1000 | FID train n={n} | FID test n={n} | KID train | KID test | "
        "mem q=0.1 | samples/s | steps (recipe) | steps/s | load start / end | train s | checkpoint | params | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for key in ROWS:
        r = rows.get(key)
        if r is None:
            lines.append(f"| {key} | `{key}` | not run yet | | | | | | | | | | | | | | |")
            continue
        steps = f"{r['steps']} ({r['recipe_steps']})" if "steps" in r else "-"
        load = f"{r['load_start']:.1f} / {r['load_end']:.1f}" if "load_start" in r else "-"
        lines.append(
            f"| {r.get('label', key)} | `{key}` | {f(r, 'fid_train')} | {f(r, 'fid_test')} | {pm(r, 'train')} | "
            f"{pm(r, 'test')} | {f(r, 'kid_train', '.4f')} | {f(r, 'kid_test', '.4f')} | {f(r, 'mem_q10', '.3f')} | "
            f"{f(r, 'samples_per_s', '.1f')} | {steps} | {f(r, 'steps_per_s')} | {load} | "
            f"{f(r, 'train_s', '.0f')} | {r.get('checkpoint', '-')} | {r.get('params', '-'):,} | {r.get('commit', '-')} |"
        )  # fmt: skip
    lines += ["", "Runs:", *(f"- {m}" for m in rows.get("_runs", []))]
    lines += ["", *rows["_notes"]] if rows.get("_notes") else []  # hand-written notes kept in the .json
    lines += [
        "",
        "Not in this table yet: StarGAN, CycleGAN, text2image and Puzzle-GAN scored against ground truth at 28x28 "
        "(their recipes are `examples/mnist5k/{stargan,cyclegan,text2image,puzzlegan}.yaml`; the digits scripts "
        "`benchmarks/{stargan,cyclegan,text2image,puzzlegan}_digits.py` measure them at 8x8 only).",
    ]  # fmt: skip
    lines += ddpm_sampler_lines("mnist5k")
    write_lines(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_train = sub.add_parser("train", help="train a row's recipe and score it")
    p_train.add_argument("key", choices=sorted(ROWS))
    p_train.add_argument("--steps", type=int, default=None, help="optimizer steps instead of the recipe's (smoke runs)")
    p_train.add_argument("--keep", default=None, help="copy the chosen checkpoint here")
    p_add = sub.add_parser("add", help="score a trained checkpoint as a row")
    p_add.add_argument("key", choices=sorted(ROWS))
    p_add.add_argument("ckpt")
    sub.add_parser("render", help="only re-render the .md from the .json").add_argument("--out", type=Path, default=OUT)
    for p in (p_train, p_add):
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--n", type=int, default=1000, help="samples per row")
        p.add_argument("--note", default="")
        p.add_argument("--out", type=Path, default=OUT, help="path stem of the .json and .md results")
    args = parser.parse_args()
    json_path, md_path = args.out.with_suffix(".json"), args.out.with_suffix(".md")
    if args.cmd == "render":
        render(read_json(json_path), md_path)
        return
    torch.set_num_threads(args.threads)
    code, started = commit(dirty=True), f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"
    scorer = MNIST5kScorer()
    if args.cmd == "train":
        with tempfile.TemporaryDirectory(prefix=f"fid_{args.key}_") as root:
            model, info = train(args.key, args, Path(root))
    else:  # the training facts of a checkpoint likelihood_mnist5k.py kept, from its results
        trained = read_json(RESULTS / "likelihood_mnist5k.json").get(args.key, {})
        facts = ("steps", "recipe_steps", "train_s", "steps_per_s", "load_start", "load_end")
        info = {k: trained[k] for k in facts if k in trained} if trained.get("status") == "ok" else {}
        name = Path(args.ckpt).name
        info["checkpoint"] = f"{name}: best by {trained['monitor']} (likelihood_mnist5k)" if info else args.ckpt
        model = load_model(args.ckpt)
    row = {**info, **score_row(args.key, model, scorer, args), "commit": code, "note": args.note}
    print(args.key, json.dumps(row), flush=True)
    rows = {
        **read_json(json_path),
        "_floor": scorer.floor(),
        args.key: row,
    }  # re-read: another process may have added rows
    rows["_runs"] = [*rows.get("_runs", []), f"{started}, commit {code}: `{args.key}` ({args.cmd}"
                     f"{f', {args.steps} steps (smoke)' if getattr(args, 'steps', None) else ''}), threads {args.threads}, "
                     f"n {args.n}, torch {torch.__version__}"]  # fmt: skip
    write_json(json_path, rows)
    render(rows, md_path)
    print(f"wrote {md_path}")


if __name__ == "__main__":
    main()
