"""Intra-class FID and classification accuracy score (CAS) of the class-conditional samplers - cgan, the
conditional VAE, text2image and a class-conditional DDPM with classifier-free guidance - beside their FID.

    python benchmarks/conditional_samplers.py pretrained cgan-digits cvae-digits text2image-digits
    python benchmarks/conditional_samplers.py train-ddpm digits --steps 500 --guidance 0 1 3
    python benchmarks/conditional_samplers.py add cvae runs/bench/likelihood_mnist5k/cvae.ckpt --data mnist5k
    python benchmarks/conditional_samplers.py render

Protocol: ``n`` = 1000 samples drawn with seed 0, labels ``i % 10`` (100 a class); features of the data
set's CNN extractor (trained on its train split only). FID vs the train split at n = 1000. Intra-class FID
(:class:`genlight.metrics.IntraClassFID`): the first ``m`` samples (``m`` = the test split's size: 359 on
digits, 500 on mnist5k, about ``m / 10`` a class) against the training images of their class, the mean over
the 10 classes; its floor scores the test images the same way. CAS (Ravuri & Vinyals 2019,
:class:`genlight.metrics.ClassificationAccuracyScore`): an MLP trained on the 1000 samples and their labels
only (``CAS_STEPS`` steps), its accuracy on the real test split; its ceiling is the same MLP trained on 1000
real training images. ``pretrained`` scores shipped models (``genlight.pretrained``), ``add`` a checkpoint,
``train-ddpm`` trains ``examples/<data>/ddpm.yaml`` with ``--model.conditional true`` for ``--steps`` optimizer
steps (seed 0, one thread; the final EMA weights) and scores it at each guidance weight. Rows are kept in
``benchmarks/results/conditional_samplers.json`` and rendered to ``conditional_samplers.md``.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import (  # noqa: E402
    RESULTS, ROOT, Scorer, all_images, all_labels, cas, commit, draw, intra_fid, read_json, write_json, write_lines,
)  # fmt: skip

OUT = RESULTS / "conditional_samplers"
N = 1000
#: what `make bench` runs
COMMANDS = (
    "python benchmarks/conditional_samplers.py pretrained cgan-digits cvae-digits text2image-digits",
    "python benchmarks/conditional_samplers.py train-ddpm digits --steps 500 --guidance 0 1 3",
    "python benchmarks/conditional_samplers.py add cvae runs/bench/likelihood_mnist5k/cvae.ckpt --data mnist5k",
)


@functools.cache
def scorer_for(data: str) -> Scorer:
    """The data set's scorer (extractor and reference features), built once per data set."""
    if data == "mnist5k":
        from benchmarks.fid_mnist5k import MNIST5kScorer

        return MNIST5kScorer()
    return Scorer()


@functools.cache
def reference(data: str) -> dict[str, Any]:
    """Images and labels of the train and test splits (their features are ``scorer_for(data).reference``)."""
    out: dict[str, Any] = {}
    for split in ("train", "test"):
        images = scorer_for(data).dm.reference_dataset(split)
        out[f"{split}_images"], out[f"{split}_labels"] = all_images(images), all_labels(images)
    return out


def score(model: torch.nn.Module, data: str, **sample: Any) -> dict[str, Any]:
    scorer, ref = scorer_for(data), reference(data)
    labels = torch.arange(N) % 10
    images, per_1000 = draw(model, N, labels=labels, **sample)
    assert torch.isfinite(images).all()
    feats, m = scorer.features(images), len(scorer.reference["test"])
    return {
        "fid_train": scorer.fid(feats, scorer.reference["train"]),
        **intra_fid(scorer.reference["train"], ref["train_labels"], feats[:m], labels[:m], 10),
        "cas": cas(images, labels, ref["test_images"], ref["test_labels"], 10),
        "s_per_1000": per_1000,
        "intra_m": m,
    }


def floor(data: str) -> dict[str, Any]:
    """Intra-FID of the test images (by class, against the training images of their class), and the CAS
    ceiling: the MLP trained on the first 1000 real training images."""
    feats, ref = scorer_for(data).reference, reference(data)
    out = intra_fid(feats["train"], ref["train_labels"], feats["test"], ref["test_labels"], 10)
    k = min(N, len(ref["train_images"]))
    out["cas_ceiling"] = cas(ref["train_images"][:k], ref["train_labels"][:k], ref["test_images"], ref["test_labels"], 10)
    return out


def save(data: str, name: str, row: dict[str, Any], out: Path) -> None:
    json_path = out.with_suffix(".json")
    rows = read_json(json_path)
    section = rows.setdefault(data, {})
    if "_floor" not in section:
        section["_floor"] = floor(data)
    section[name] = {**row, "commit": commit(dirty=True), "load": os.getloadavg()[0],
                     "when": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"}  # fmt: skip
    write_json(json_path, rows)
    render(rows, out.with_suffix(".md"))
    print(name, {k: v for k, v in row.items() if k != "intra_fid_per_class"}, flush=True)


def train_ddpm(data: str, steps: int, root: Path) -> tuple[torch.nn.Module, dict[str, Any]]:
    from genlight import load_model
    from genlight.cli import GenlightCLI

    cli = GenlightCLI(args=[
        "-c", str(ROOT / "examples" / data / "ddpm.yaml"), "--model.conditional=true", "--trainer.callbacks=[]",
        f"--trainer.max_steps={steps}", "--trainer.max_epochs=-1", "--trainer.logger=false",
        "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--samples.every_n_epochs=0",
        f"--trainer.default_root_dir={root}", "--seed_everything=0",
    ], run=False)  # fmt: skip
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    seconds = time.perf_counter() - start
    path = root / "final.ckpt"
    cli.trainer.save_checkpoint(path)
    info = {"steps": cli.trainer.global_step, "train_s": seconds, "source": f"examples/{data}/ddpm.yaml + conditional"}
    return load_model(str(path)), info  # the EMA weights


def render(rows: dict[str, Any], md: Path) -> None:
    lines = [
        "# Class-conditional samplers: intra-class FID and classification accuracy score (CAS)",
        "",
        "Produced by `benchmarks/conditional_samplers.py` (its docstring gives the protocol). Commands (`make bench`):",
        "",
        *(f"    {c}" for c in COMMANDS),
        "",
        "Lower FID and intra-FID, higher CAS are better. Intra-FID: the first m samples (m = the test split's size) "
        "against the training images of their class, mean over the 10 classes; CAS: an MLP trained on the 1000 "
        "samples only, accuracy on the real test split. Test data choose nothing (no checkpoint selection here).",
    ]
    for data, section in rows.items():
        fl = section.get("_floor", {})
        lines += [
            "",
            f"## {data}",
            "",
            f"Floor: the test images scored as samples, intra-FID **{fl.get('intra_fid', float('nan')):.2f}**; "
            f"CAS ceiling (the MLP trained on 1000 real training images) **{fl.get('cas_ceiling', float('nan')):.3f}**.",
            "",
            "| row | FID train n=1000 | intra-FID (m) | CAS | s / 1000 samples | source | load | commit |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in section.items():
            if name.startswith("_"):
                continue
            lines.append(
                f"| {name} | {r['fid_train']:.2f} | {r['intra_fid']:.2f} ({r['intra_m']}) | {r['cas']:.3f} | "
                f"{r['s_per_1000']:.2f} | {r.get('source', '-')} | {r['load']:.1f} | {r['commit']} |"
            )
    write_lines(md, lines)


def main() -> None:
    from genlight import load_model, pretrained

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="path stem of the .json and .md results")
    parser.add_argument("--threads", type=int, default=1)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_pre = sub.add_parser("pretrained", help="score shipped models")
    p_pre.add_argument("names", nargs="+")
    p_add = sub.add_parser("add", help="score a checkpoint")
    p_add.add_argument("name")
    p_add.add_argument("ckpt")
    p_add.add_argument("--data", choices=("digits", "mnist5k"), default="digits")
    p_ddpm = sub.add_parser("train-ddpm", help="train a class-conditional DDPM and score it")
    p_ddpm.add_argument("data", choices=("digits", "mnist5k"))
    p_ddpm.add_argument("--steps", type=int, default=500)
    p_ddpm.add_argument("--guidance", type=float, nargs="+", default=[0.0, 1.0, 3.0])
    sub.add_parser("render", help="only re-render the .md from the .json")
    args = parser.parse_args()
    if args.cmd == "render":
        render(read_json(args.out.with_suffix(".json")), args.out.with_suffix(".md"))
        return
    torch.set_num_threads(args.threads)
    if args.cmd == "pretrained":
        for name in args.names:
            data = "mnist5k" if name.endswith("-mnist5k") else "digits"
            save(data, name, {**score(pretrained(name), data), "source": f"genlight.pretrained({name!r})"}, args.out)
    elif args.cmd == "add":
        save(args.data, args.name, {**score(load_model(args.ckpt), args.data), "source": args.ckpt}, args.out)
    else:
        with tempfile.TemporaryDirectory(prefix="ddpm_cond_") as root:
            model, info = train_ddpm(args.data, args.steps, Path(root))
        for w in args.guidance:
            name = f"ddpm conditional, guidance {w:g} ({info['steps']} steps, DDIM-50)"
            save(args.data, name, {**score(model, args.data, guidance=w), **info}, args.out)


if __name__ == "__main__":
    main()
