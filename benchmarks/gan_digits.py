"""Adversarial families on the 8x8 digits: FID / KID vs train and vs test, memorisation, class accuracy,
training time, parameters; one PNG of sample grids (plus CycleGAN translations, InfoGAN traversals and
a latent-arithmetic grid).

    python benchmarks/gan_digits.py --budget 300 --threads 1         # every family, 300 s each
    python benchmarks/gan_digits.py --families dcgan wgan_gp --budget 300 --threads 2 --merge
    python benchmarks/gan_digits.py --families dcgan --budget 5 --evals 2 --out /tmp/gan_smoke   # smoke run
    python benchmarks/gan_digits.py --families dcgan cgan --subset 129 --budget 300 --threads 1 --merge   # 10% of train
    python benchmarks/gan_digits.py --families dcgan+diffaugment --merge   # a trick row (benchmarks.common.TRICKS)

Each family of ``FAMILIES`` that is registered and has ``examples/digits/<family>.yaml`` is trained with
that config (model ``init_args``, the data class and its ``init_args``, an ``ema:`` section if any: the
CLI's ``--ema.*``, whose default decay is the family's ``ema_decay``) for ``--budget`` seconds of wall
clock (``Trainer(max_time=...)``; ``--steps`` for quick runs); the others are skipped with a printed line.

Checkpoint selection (never on test data): the GAN families have no validation figure of their own. Here
FID of 1000 seeded samples (EMA weights)
against the 144 **val** images is computed at the end of a training epoch ``--evals - 1`` times, evenly
spread over the budget, and on the final weights; the best weights are kept (``--select last`` turns
this off). The evaluation time is part of the budget. Is 144 images enough to select on? Measured once
(dcgan, its example config, 240 s, 1 thread, load average about 8, commit 897cafa; val FID every 5 epochs
with sample seeds 0 and 1, and FID vs the 1294 train images at the same weights): val FID is biased up
(10.1 vs 5.2 vs train at the end: few reference images) but ranked the 11 evaluations exactly as train
FID did (Spearman 1.0), and its seed-to-seed noise was 0.37 on average (3-4% of its value); so val FID
is used, knowing that differences below about 0.5 are noise.

Rows (``results/gan_digits.json``, rendered to ``results/gan_digits.md`` with the protocol): 1000 samples
drawn with seed 0 (conditional samplers: labels ``arange(1000) % 10``), scored with
``benchmarks.common.Scorer`` (digits CNN extractor) against all train and all test images; the
memorisation figure (:func:`genlight.metrics.memorisation`, in the extractor's feature space, q = 0.1 and
0.5) with the same figure for the real test images as the floor; class accuracy of conditional samplers
(the extractor's classifier logits) and, for every family, ``exp(H)`` of the predicted-class histogram
(10 = all digits equally often; mode collapse lowers it). VAE / CVAE reference rows come from
``results/vae_rows.json``. ``--out DIR`` writes the JSON, Markdown and PNG there instead (smoke runs);
``--render`` only re-renders the Markdown from the JSON.

Small data and tricks: ``--subset 129`` trains on the first 129 training images (10% of the 1294 of the
seed-0 split; rows named ``family @ 10%``); a row key ``family+trick`` adds the trick's model overrides
(``TRICKS`` in :mod:`benchmarks.common`), and a row whose option the family lacks is refused in one line
before anything trains. Every row is also scored at equal n against the 359 test images: precision, recall
(k = 3), density, coverage (k = 5) of the first 359 samples (the floor: the last 359 training images, never
in the 10% subset), and for conditional samplers intra-class FID (the first 359 samples against the training
images of their class; the floor: the test images) and CAS (an MLP trained on the 1000 samples only, its
accuracy on the test images; the ceiling: the same MLP trained on 1000 / 129 real training images).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import (
    MATCHED_DRAWS, NUM_SAMPLES, BudgetMarks, RESULTS, ROOT, Scorer, all_images, all_labels, commit, compose, draw, fmt, linked_arguments,
    num_params, quiet_trainer, read_json, read_png, save_png, timed_fit, write_json, write_lines,
    CAS_STEPS, TRICKS, cas, intra_fid, manifold_figures, missing_option, parse_row,
)  # fmt: skip
from genlight import get_model_class, list_models, load_model
from genlight.callbacks.data import ordered_loader
from genlight.callbacks.ema import EMA
from genlight.callbacks.fid import FIDCallback
from genlight.callbacks.image_logging import image_grid
from genlight.latent_arithmetic import arithmetic_grid, latent_arithmetic, latent_direction
from genlight.types import LatentGenerator, Sampler, Translator, is_conditional

EXAMPLES = ROOT / "examples" / "digits"
FAMILIES = ("gan", "dcgan", "wgan_gp", "cgan", "infogan", "progan", "aae", "cyclegan")
#: the rows of the equal-n table: every sampling family, and dcgan / cgan with each small-data trick
TABLE_ROWS = (*(f for f in FAMILIES if f != "cyclegan"), *(f"{f}+{t}" for f in ("dcgan", "cgan") for t in ("diffaugment", "ada", "lecam")))
#: --subset of the "10%" rows: 10% of the 1294 training images
TEN_PERCENT = 129
#: method names a family may offer for a code-traversal picture (InfoGAN); called with no arguments
TRAVERSAL_METHODS = ("code_traversal", "traversals", "traverse", "code_traversals", "traversal_grid")
QUANTILES = (0.1, 0.5)
#: what `make bench` runs (after vae_rows.py, whose VAE / CVAE rows are the reference rows here)
COMMAND = "python benchmarks/gan_digits.py --budget 300 --threads 1"
#: what `make bench` runs after COMMAND: the same families on 10% of the training split
COMMAND_10 = f"python benchmarks/gan_digits.py --families {' '.join(TABLE_ROWS[:7])} --subset {TEN_PERCENT} --budget 300 --threads 1 --merge"


# ---------------------------------------------------------------------------------------- config
def read_config(family: str) -> dict[str, Any] | None:
    path = EXAMPLES / f"{family}.yaml"
    return yaml.safe_load(path.read_text()) if path.is_file() else None


def instantiate(class_path: str, init_args: dict[str, Any]) -> Any:
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**init_args)


def build(family: str, config: dict[str, Any]) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    """The datamodule and model of an example config, linked as the CLI links them."""
    data = config.get("data") or {}
    dm = instantiate(data.get("class_path", "genlight.datamodules.digits.DigitsDataModule"), dict(data.get("init_args") or {}))
    cls = get_model_class(family)
    model_cfg = config.get("model") or {}
    if model_cfg.get("class_path") and model_cfg["class_path"].rpartition(".")[2] != cls.__name__:
        raise ValueError(f"examples/digits/{family}.yaml trains {model_cfg['class_path']}, not {cls.__name__}")
    return cls(**linked_arguments(cls, dm), **dict(model_cfg.get("init_args") or {})), dm


# ---------------------------------------------------------------------------------------- selection
class ValSelection(FIDCallback):
    """FID against the val split at the end of training epochs, ``evals - 1`` times evenly spread over
    the budget (time, or steps with ``max_steps``); the best weights (EMA swapped into the checkpoint by
    the EMA callback) are saved to ``path``. Runs at train-epoch end because adversarial modules have no
    validation loop."""

    def __init__(self, path: str, evals: int, budget: float | None, max_steps: int | None) -> None:
        super().__init__(metrics=("fid",), reference_split="val", num_samples=NUM_SAMPLES, every_n_epochs=1,
                         max_time_fraction=None)  # fmt: skip
        self.path, self.marks = path, BudgetMarks(evals, budget, max_steps)
        self.history: list[dict[str, float]] = []
        self.best = math.inf
        self.eval_seconds = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.marks.start()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pass  # evaluated at train-epoch end (below), whether or not the family has a validation loop

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.marks.due(trainer):  # the final weights are scored after fit
            self.record(trainer, pl_module, save=True)

    def record(self, trainer: pl.Trainer, pl_module: pl.LightningModule, save: bool) -> float:
        began = time.perf_counter()
        fid = self.evaluate(trainer, pl_module)[f"{self.prefix}/fid_{self.extractor_name}"]
        self.history.append({"epoch": trainer.current_epoch, "step": trainer.global_step, "val_fid": round(fid, 3)})
        if save and fid < self.best:
            self.best = fid
            trainer.save_checkpoint(self.path)
        self.eval_seconds += time.perf_counter() - began
        return fid


def fit(family: str, config: dict[str, Any], args: argparse.Namespace, root: str) -> tuple[pl.LightningModule, dict[str, Any], pl.LightningDataModule]:
    """Train one family within the budget; return the selected weights and what the run was."""
    pl.seed_everything(int(config.get("seed_everything", 0) or 0), verbose=False)
    model, dm = build(family, config)
    ema = EMA(**dict(config.get("ema") or {}))  # as the CLI adds it: the family's ema_decay/ema_target by default
    callbacks: list[pl.Callback] = [ema]
    selector = None
    samples_digits = isinstance(model, Sampler) and tuple(getattr(dm, "image_shape", ())) == (1, 8, 8)
    if samples_digits and args.select == "val_fid":
        selector = ValSelection(str(Path(root) / "best.ckpt"), args.evals, args.budget, args.steps)
        callbacks.append(selector)
    trainer = quiet_trainer(
        root, budget=None if args.steps else args.budget, steps=args.steps, enable_checkpointing=False,
        callbacks=callbacks, num_sanity_val_steps=0,
    )  # fmt: skip
    load = os.getloadavg()[0]
    seconds = timed_fit(trainer, model, dm)
    final = str(Path(root) / "final.ckpt")
    trainer.save_checkpoint(final)  # EMA weights in state_dict
    chosen, how = final, "last"
    if selector is not None:
        fid = selector.record(trainer, model, save=False)  # the final weights are a candidate too
        if selector.best < fid:
            chosen = selector.path
            how = f"best periodic by val FID ({selector.best:.3f}; final {fid:.3f})"
        else:
            how = f"final by val FID ({fid:.3f})"
    ema_on = ema.active
    info = {
        "train_seconds": round(seconds, 1),
        "val_eval_seconds": round(selector.eval_seconds, 1) if selector else 0.0,
        "steps": trainer.global_step,
        "epochs": trainer.current_epoch,
        "params": num_params(model),
        "params_generator": num_params(getattr(model, ema.target)) if ema.target and hasattr(model, ema.target) else None,
        "ema": ema.decay if ema_on else "no",
        "checkpoint": how,
        "val_history": selector.history if selector else [],
        "load_avg_start": round(load, 2),
        "batch_size": getattr(dm, "batch_size", None),
        "init_args": (config.get("model") or {}).get("init_args") or {},
    }
    return load_model(chosen).eval(), info, dm


# ---------------------------------------------------------------------------------------- scoring
class Judge:
    """The rows' figures beyond FID/KID: memorisation (with the train set's leave-one-out distances
    computed once) and classifier figures, all through the scorer's digits extractor."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.logits = scorer.logits

    def figures(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, float]:
        feats = self.scorer.features(images)
        out = {f"mem_q{int(q * 100)}": self.scorer.memorisation(feats, q) for q in QUANTILES}
        pred = self.logits(images).argmax(1)
        hist = torch.bincount(pred, minlength=10).double() / len(pred)
        out["class_entropy_exp"] = float(torch.exp(-(hist[hist > 0] * hist[hist > 0].log()).sum()))
        if labels is not None:
            out["class_accuracy"] = float((pred == labels.to(pred.device)).double().mean())
        return out


# ---------------------------------------------------------------------------------------- pictures
def sample_panel(model: torch.nn.Module) -> torch.Tensor:
    """100 samples, seed 0; a conditional sampler gets one class per row."""
    if is_conditional(model):
        y = torch.arange(10).repeat_interleave(10) % int(model.num_classes)
        images, _ = draw(model, len(y), labels=y)
    else:
        images, _ = draw(model, 100)
    return image_grid(images, nrow=10, min_cell=24)


def translation_panel(model: Translator, dm: Any) -> torch.Tensor | None:
    """Rows: 10 val images of domain a, their a2b translations, 10 of domain b, their b2a translations."""
    batch = next(iter(ordered_loader(dm.reference_dataset("val"), 10)))
    if not (isinstance(batch, (tuple, list)) and len(batch) >= 2 and batch[0].dim() == 4 and batch[1].dim() == 4):
        print("  translations: the val batches are not (x_a, x_b) image pairs; panel skipped")
        return None
    a, b = batch[0][:10], batch[1][:10]
    with torch.no_grad():
        rows = [a, model.translate(a, "a2b"), b, model.translate(b, "b2a")]
    return image_grid(torch.cat(rows), nrow=len(a), min_cell=24)


def traversal_panel(model: torch.nn.Module) -> tuple[str, torch.Tensor] | None:
    for name in TRAVERSAL_METHODS:
        fn = getattr(model, name, None)
        if not callable(fn):
            continue
        try:
            with torch.no_grad():
                torch.manual_seed(0)
                out = fn()
        except TypeError as err:
            print(f"  traversals: {type(model).__name__}.{name}() needs arguments ({err}); panel skipped")
            return None
        if isinstance(out, tuple):
            out = out[0]
        if not isinstance(out, torch.Tensor):
            return None
        if out.dim() == 5:
            return name, image_grid(out.flatten(0, 1), nrow=out.shape[1], min_cell=24)
        if out.dim() == 4:
            return name, image_grid(out, nrow=10 if len(out) % 10 == 0 else None, min_cell=24)
        if out.dim() == 3:  # already a grid
            return name, out
    return None


def arithmetic_demo(model: torch.nn.Module, judge: Judge, n: int = 2000, seed: int = 0) -> tuple[torch.Tensor, dict[str, Any]]:
    """Stroke thickness by latent arithmetic: among ``n`` prior draws, the codes of the samples of the
    most frequent predicted class with the most (top 10%) and least (bottom 10%) ink (mean pixel value)
    give ``direction = mean z(thick) - mean z(thin)``; it is added at strengths -1..2 to codes of samples
    of the other classes. Measured on 300 such codes: mean ink per strength, the share whose predicted
    class is unchanged, and the ink change for a random direction of the same norm (control)."""
    torch.manual_seed(seed)
    with torch.no_grad():
        z = model.sample_latent(n)
        images = torch.cat([model.decode(c) for c in z.split(500)])
    ink = images.flatten(1).mean(1)
    pred = judge.logits(images).argmax(1)
    cls = int(torch.bincount(pred, minlength=10).argmax())
    members = (pred == cls).nonzero().squeeze(1)
    k = max(5, len(members) // 10)
    order = members[ink[members].argsort()]
    thin, thick = z[order[:k]], z[order[-k:]]
    others = (pred != cls).nonzero().squeeze(1)[:300]
    base_from = "other classes"
    if len(others) < 8:  # (nearly) one class only, e.g. a collapsed or barely trained generator
        grouped = torch.zeros(n, dtype=torch.bool)
        grouped[order[:k]] = grouped[order[-k:]] = True
        others, base_from = (~grouped).nonzero().squeeze(1)[:300], "any class (too few samples of other classes)"
    base = z[others]
    scales = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)
    moved = latent_arithmetic(model, [thick], [thin], base, scales)  # (300, S, C, H, W)
    inks = moved.flatten(2).mean(2).mean(0)
    moved_pred = judge.logits(moved.flatten(0, 1)).argmax(1).view(len(base), len(scales))
    kept = (moved_pred == moved_pred[:, scales.index(0.0)][:, None]).double().mean(0)
    direction = latent_direction([thick], [thin])
    rand = torch.randn(direction.shape, generator=torch.Generator().manual_seed(1)).to(direction)
    rand = rand * direction.norm() / rand.norm()
    control = latent_arithmetic(model, [rand[None]], [], base, (0.0, 1.0)).flatten(2).mean(2).mean(0)
    stats = {
        "class": cls, "group_size": k, "n_base": len(base), "base_from": base_from, "scales": list(scales),
        "ink": [round(float(v), 4) for v in inks], "class_kept": [round(float(v), 3) for v in kept],
        "ink_thick_group": round(float(ink[order[-k:]].mean()), 4), "ink_thin_group": round(float(ink[order[:k]].mean()), 4),
        "control_random_direction_ink": [round(float(v), 4) for v in control],
    }  # fmt: skip
    grid = arithmetic_grid(moved[:8], min_cell=32)
    return grid, stats


def save_panels(panels: list[tuple[str, torch.Tensor]], folder: Path) -> list[dict[str, Any]]:
    """Each panel as its own PNG (so runs in separate processes can be composed into one picture)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for index, (title, grid) in enumerate(panels):
        family = title.split(" ")[0].split(":")[0]
        name = f"{family}_{index}.png"
        save_png(grid, folder / name)
        out.append({"family": family, "title": title, "file": name, "index": index})
    return out


def merge_results(new: dict[str, Any], path: Path, ran: set[str]) -> dict[str, Any]:
    """``new`` plus the rows, skips and panels of families not in ``ran`` from the results at ``path``."""
    old = read_json(path)
    if not old:
        return new
    rows = {k: v for k, v in old.get("rows", {}).items() if k not in ran}
    rows.update(new["rows"])
    skipped = {k: v for k, v in old.get("skipped", {}).items() if k not in ran and k not in rows}
    skipped.update({k: v for k, v in new["skipped"].items() if k not in rows})
    panels = [p for p in old.get("panels", []) if p["family"] not in ran] + new["panels"]
    arithmetic = new["arithmetic"] or old.get("arithmetic")
    protocol = new["_protocol"]
    if old.get("_protocol", {}).get("commit") not in (None, protocol["commit"]):
        protocol["commit"] = f"{old['_protocol']['commit']}+{protocol['commit']}"
    return {**new, "_protocol": protocol, "rows": rows, "skipped": skipped, "panels": panels, "arithmetic": arithmetic}


# ---------------------------------------------------------------------------------------- small data, tricks
def row_name(key: str, subset: int | None) -> str:
    """``dcgan`` (full split), ``dcgan @ 10%`` (``--subset 129``), ``dcgan @ 300 images`` (another subset)."""
    if not subset:
        return key
    return f"{key} @ {'10%' if subset == TEN_PERCENT else f'{subset} images'}"


def with_overrides(config: dict[str, Any], overrides: dict[str, Any], subset: int | None) -> dict[str, Any]:
    """The example config with a row's model overrides and the data's ``subset``."""
    config = copy.deepcopy(config)
    model = config.setdefault("model", {})
    model["init_args"] = {**(model.get("init_args") or {}), **overrides}
    if subset:
        data = config.setdefault("data", {})
        data["init_args"] = {**(data.get("init_args") or {}), "subset": subset}
    return config


def equal_n_figures(scorer: Scorer, images: torch.Tensor, labels: torch.Tensor | None, test_images: torch.Tensor,
                    test_labels: torch.Tensor) -> dict[str, Any]:  # fmt: skip
    """Precision, recall, density, coverage of the first 359 samples against the 359 test images; intra-FID
    (the first 359 samples against the training images of their class) and CAS for conditional samplers."""
    n = scorer.floor_n
    feats = scorer.features(images)
    out: dict[str, Any] = manifold_figures(scorer.reference["test"], feats[:n])
    if labels is not None:
        train_labels = all_labels(scorer.dm.reference_dataset("train"))
        out.update(intra_fid(scorer.reference["train"], train_labels, feats[:n], labels[:n], 10))
        out["cas"] = cas(images, labels, test_images, test_labels, 10)
    return out


def class_floor(scorer: Scorer, test_images: torch.Tensor, test_labels: torch.Tensor) -> dict[str, Any]:
    """The floor of :func:`equal_n_figures`: the last 359 training images against the test images (never in
    the 10% subset); the test images' intra-FID; CAS of the MLP trained on 1000 and on 129 real images."""
    n = scorer.floor_n
    train = scorer.reference["train"]
    train_images = all_images(scorer.dm.reference_dataset("train"))
    train_labels = all_labels(scorer.dm.reference_dataset("train"))
    out: dict[str, Any] = {f"eq_{k}": v for k, v in manifold_figures(scorer.reference["test"], train[-n:]).items()}
    out.update(intra_fid(train, train_labels, scorer.reference["test"], test_labels, 10))
    for m in (1000, TEN_PERCENT):
        out[f"cas_real_{m}"] = cas(train_images[:m], train_labels[:m], test_images, test_labels, 10)
    return out


def equal_n_table(results: dict[str, Any]) -> list[str]:
    """The rows of every family and trick, full split and 10%, at equal n; rows not run name their command."""
    floor, rows, n = results["_floor"], results["rows"], results["_floor"].get("matched_n", 359)
    if "eq_precision" not in floor:
        return []
    lines = [
        "",
        f"## Equal n: precision, recall, density, coverage, intra-FID, CAS (full training split and 10% of it)",
        "",
        f"The first {n} samples of each row against the {n} test images: precision, recall (k = 3; Kynkaanniemi et al. "
        f"2019), density (1 = as dense as real data) and coverage (k = 5; Naeem et al. 2020). Floor: the last {n} "
        f"training images (never in the 10% subset). Intra-FID (conditional rows): the first {n} samples against the "
        "training images of their class, mean over the 10 classes (floor: the test images). CAS: an MLP "
        f"(`genlight.nn.classifier_nets.MLPNet`, {CAS_STEPS} steps) trained on the {NUM_SAMPLES} samples only, its "
        f"accuracy on the {n} test images; ceiling: the same MLP trained on 1000 real training images "
        f"({fmt(floor.get('cas_real_1000'), '.3f')}) or on the {TEN_PERCENT} of the 10% subset "
        f"({fmt(floor.get(f'cas_real_{TEN_PERCENT}'), '.3f')}). `10%`: `--subset {TEN_PERCENT}`, the first "
        f"{TEN_PERCENT} of the 1294 training images. Trick rows: "
        + "; ".join(f"`+{t}`: " + ", ".join(f"`--model.{k} {v}`" for k, v in o.items()) for t, o in TRICKS.items()) + ".",
        "",
        "| row | train images | FID train n=1000 | FID train n=359 | precision | recall | density | coverage | intra-FID | "
        "CAS | budget s | load avg | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| real training images (floor, n = {n}) | - | - | {floor['fid_train']:.3f} | {floor['eq_precision']:.3f} | "
        f"{floor['eq_recall']:.3f} | {floor['eq_density']:.3f} | {floor['eq_coverage']:.3f} | "
        f"{fmt(floor.get('intra_fid'), '.2f')} | ceiling {fmt(floor.get('cas_real_1000'), '.3f')} | - | - | - |",
    ]
    for subset in (None, TEN_PERCENT):
        for key in TABLE_ROWS:
            name = row_name(key, subset)
            r = rows.get(name)
            if r is None or "precision" not in r:
                cmd = f"python benchmarks/gan_digits.py --families {key}{f' --subset {subset}' if subset else ''} --budget 300 --threads 1 --merge"
                lines.append(f"| {name} | {subset or 1294} | not run yet: `{cmd}` |" + " |" * 10)
                continue
            lines.append(
                f"| {name} | {r.get('train_images', '-')} | {fmt(r.get('fid_train'), '.3f')} | {matched(r, 'train')} | "
                f"{r['precision']:.3f} | {r['recall']:.3f} | {r['density']:.3f} | {r['coverage']:.3f} | "
                f"{fmt(r.get('intra_fid'), '.2f')} | {fmt(r.get('cas'), '.3f')} | {fmt(r.get('budget_s'), 'g')} | "
                f"{r.get('load_avg_start', '-')} | {r.get('commit', '-')} |"
            )
    return lines


# ---------------------------------------------------------------------------------------- results
def reference_rows() -> dict[str, dict[str, Any]]:
    rows = read_json(RESULTS / "vae_rows.json")
    out = {}
    for name in ("vae", "cvae"):
        r = rows.get(name)
        if r and "fid_train" in r:
            out[f"{name} (reference, benchmarks/results/vae_rows.md)"] = {
                "fid_train": r["fid_train"], "fid_test": r["fid_test"], "train_seconds": r.get("train_s"),
                "epochs": r.get("epochs"), "params": r.get("params"), "reference": True,
            }  # fmt: skip
    return out


def _names(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def matched(row: dict[str, Any], split: str) -> str:
    """``mean ± std`` of a row's FID at the floor's sample size, or ``-`` where it was not scored."""
    if row.get(f"fid_{split}_matched") is None:
        return "-"
    return f"{row[f'fid_{split}_matched']:.3f} ± {row[f'fid_{split}_matched_std']:.3f}"


def render(results: dict[str, Any], path: Path, png: str) -> None:
    floor, p = results["_floor"], results["_protocol"]
    n = floor.get("matched_n", 359)
    order = {f: i for i, f in enumerate(FAMILIES)}
    rows = dict(sorted(results["rows"].items(), key=lambda kv: order.get(kv[0], len(order))))  # references last
    budgets: dict[float, list[str]] = {}
    for name, r in rows.items():
        if r.get("budget_s") is not None:
            budgets.setdefault(float(r["budget_s"]), []).append(name)
    main_budget = max(budgets, key=lambda b: len(budgets[b])) if budgets else p["budget"]
    others = "; ".join(f"{', '.join(v)}: {b:g} s" for b, v in budgets.items() if b != main_budget)
    budget_text = f"{main_budget:g} s" + (f" ({others})" if others else "")
    unmatched = [k for k, r in rows.items() if r.get("fid_train") is not None and r.get("fid_train_matched") is None
                 and not r.get("reference")]  # fmt: skip
    lines = [
        "# Adversarial families on digits (FID / KID, memorisation, class accuracy)",
        "",
        f"Commands (`make bench`): `{COMMAND}`, then `{COMMAND_10}`.",
        "",
        f"Produced by `benchmarks/gan_digits.py` (see its docstring). Protocol: each family trained with its "
        f"`examples/digits/<family>.yaml` (model and data arguments, EMA as the CLI adds it) for a budget of "
        f"{budget_text} of wall clock (`Trainer(max_time)`){' or ' + str(p['steps']) + ' optimizer steps' if p['steps'] else ''}, "
        f"{p['threads']} torch thread(s), seed 0, digits datamodule (seed-0 split: 1294 train / 144 val / 359 test). "
        f"Checkpoint: {p['select']} (val: FID of 1000 seeded samples vs the 144 val images, {p['evals'] - 1} times during "
        "the budget and on the final weights; the best is kept; test data never selects anything). Every row: "
        "1000 samples drawn with seed 0 (conditional samplers: labels `arange(1000) % 10`), EMA weights where the "
        "family trains with EMA, scored with the digits CNN extractor (`genlight/assets/digits_cnn.pt`) against all "
        "train and all test images; KID: 100 subsets. `steps` counts optimizer steps (G and D steps both count: "
        "1 + 1/n_critic per batch). Timings are wall clock on the shared 2-core machine: indicative only.",
        "",
        "Memorisation (`genlight.metrics.memorisation`): the share of samples whose nearest train image (Euclidean, "
        "extractor features) is nearer than the q-quantile of the train images' leave-one-out nearest-neighbour "
        "distances. Fresh draws from the data distribution score about q (the real test images measure it: the "
        "floor), copies of train images score 1. q = 0.1 targets near-copies; q = 0.5 also moves for samples that "
        "are merely typical. `classes exp(H)`: exponential of the entropy of the extractor's predicted-class "
        "histogram of the samples (10 = every digit equally often; mode collapse lowers it). `class acc`: share of "
        "a conditional sampler's samples that the extractor's classifier assigns to the requested class.",
        "",
        f"Real-vs-real floors (the {floor.get('matched_n', 359)} test images): FID vs train **{floor['fid_train']:.3f}** "
        f"(at n = {floor.get('matched_n', 359)}), KID vs train "
        f"{floor['kid_train']:.5f}; memorisation q=0.1 **{floor['mem_q10']:.3f}**, q=0.5 {floor['mem_q50']:.3f}; "
        f"classifier accuracy on test images {floor['class_accuracy']:.3f}, classes exp(H) {floor['class_entropy_exp']:.2f}.",
        "",
        f"FID falls as the number of samples grows, so the rows' FID at n = {NUM_SAMPLES} is not comparable with the "
        f"floor's at n = {n}: the floor has figures in the `n={n}` columns only (there are {n} test images, not "
        f"{NUM_SAMPLES}), and those columns score random subsets of {n} of a row's samples ({MATCHED_DRAWS} subsets "
        "without replacement, seed 0; mean ± standard deviation); compare only those with the floor. The FID "
        f"columns at n = {NUM_SAMPLES} compare the rows with each other. KID is unbiased at any n."
        + (f" {_names(unmatched)} {'was' if len(unmatched) == 1 else 'were'} scored before the `n={n}` columns existed "
           f"and {'its checkpoint was' if len(unmatched) == 1 else 'their checkpoints were'} not kept: this file has no "
           f"FID of {'it' if len(unmatched) == 1 else 'them'} comparable with the floor (the next run of the script "
           "scores every row at both n)." if unmatched else ""),
        "",
        "<!-- gan_digits table -->",
        f"| model | FID train | FID test | FID train n={n} | FID test n={n} | KID train | KID test | mem q=0.1 | mem q=0.5 | "
        "class acc | classes exp(H) | train s (steps, epochs) | params (G) | s / 1000 samples | EMA | checkpoint | threads | "
        "load avg | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        f"| real test images (floor, n = {n}) | - | - | {floor['fid_train']:.3f} | 0 | {floor['kid_train']:.5f} | - | "
        f"{floor['mem_q10']:.3f} | "
        f"{floor['mem_q50']:.3f} | {floor['class_accuracy']:.3f} | {floor['class_entropy_exp']:.2f} | - | - | - | - | - | - | - | - |",
    ]
    for name, r in rows.items():
        steps = f"{fmt(r.get('train_seconds'), '')} ({fmt(r.get('steps'), '')}, {fmt(r.get('epochs'), '')})"
        params = f"{fmt(r.get('params'), '')}" + (f" ({r['params_generator']})" if r.get("params_generator") else "")
        lines.append(
            f"| {name} | {fmt(r.get('fid_train'), '.3f')} | {fmt(r.get('fid_test'), '.3f')} | {matched(r, 'train')} | "
            f"{matched(r, 'test')} | {fmt(r.get('kid_train'), '.5f')} | "
            f"{fmt(r.get('kid_test'), '.5f')} | {fmt(r.get('mem_q10'), '.3f')} | {fmt(r.get('mem_q50'), '.3f')} | "
            f"{fmt(r.get('class_accuracy'), '.3f')} | {fmt(r.get('class_entropy_exp'), '.2f')} | {steps} | {params} | "
            f"{fmt(r.get('sample_s_per_1000'), '.3f')} | {r.get('ema', '-')} | {r.get('checkpoint', '-')} | "
            f"{r.get('threads', '-')} | {r.get('load_avg_start', '-')} | {r.get('commit', '-')} |"
        )
    lines += equal_n_table(results)
    if results.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(f"`{k}` ({v})" for k, v in results["skipped"].items()) + "."]
    lines += ["", "Selection check (see the script's docstring): val FID (144 images) is biased up against train FID "
              "but ranked 11 dcgan evaluations exactly as train FID did (Spearman 1.0; seed-to-seed noise 0.37), so "
              "checkpoints are chosen on it; differences below about 0.5 are noise."]  # fmt: skip
    hist = {k: r["val_history"] for k, r in rows.items() if r.get("val_history")}
    if hist:
        lines += ["", "Validation FID during training (1000 samples vs 144 val images; `epoch/step: FID`):", ""]
        for k, h in hist.items():
            lines.append(f"- {k}: " + ", ".join(f"{e['epoch']}/{e['step']}: {e['val_fid']:.2f}" for e in h))
    arith = results.get("arithmetic")
    if arith:
        s = arith["stats"]
        i0, i1 = s["scales"].index(0.0), s["scales"].index(1.0)
        lines += [
            "",
            f"## Latent arithmetic ({arith['family']})",
            "",
            f"`genlight.latent_arithmetic`: among 2000 prior draws, the samples the extractor classifies as "
            f"**{s['class']}** (the most frequent class) were sorted by ink (mean pixel value); "
            f"direction = mean z of the {s['group_size']} with most ink ({s['ink_thick_group']:.3f}) - mean z of the "
            f"{s['group_size']} with least ({s['ink_thin_group']:.3f}). Added at strength s to the codes of "
            f"{s['n_base']} samples ({s.get('base_from', 'other classes')}):",
            "",
            "| s | " + " | ".join(str(v) for v in s["scales"]) + " |",
            "|---|" + "---|" * len(s["scales"]),
            "| mean ink | " + " | ".join(f"{v:.3f}" for v in s["ink"]) + " |",
            "| predicted class unchanged | " + " | ".join(f"{v:.2f}" for v in s["class_kept"]) + " |",
            "",
            f"Ink at s = 1 vs s = 0: {s['ink'][i1]:.3f} vs {s['ink'][i0]:.3f} ({(s['ink'][i1] / s['ink'][i0] - 1) * 100:+.1f}%); "
            f"a random direction of the same norm: {s['control_random_direction_ink'][1]:.3f} vs "
            f"{s['control_random_direction_ink'][0]:.3f} (control). The grid in the PNG: 8 of those codes (rows) at each s (columns).",
        ]
    lines += ["", f"Picture: [{png}]({png}) (100 samples per family, seed 0; conditional samplers one class per row; "
              "translations and traversals where a family offers them; the latent-arithmetic grid)."]  # fmt: skip
    write_lines(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), help="families, or rows family+trick")
    parser.add_argument("--subset", type=int, default=None, help=f"train on the first N training images ({TEN_PERCENT}: 10%%)")
    parser.add_argument("--budget", type=float, default=300.0, help="training wall-clock seconds per family")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps instead of the time budget (smoke runs)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--evals", type=int, default=6, help="val FID evaluations per run, the final weights included")
    parser.add_argument("--select", choices=("val_fid", "last"), default="val_fid")
    parser.add_argument("--arithmetic", default="dcgan", help="family of the latent-arithmetic demo (if trained)")
    parser.add_argument("--out", default=None, help="write gan_digits.{json,md,png} here (default benchmarks/results)")
    parser.add_argument("--dry", action="store_true", help="write nothing, print the rows")
    parser.add_argument("--merge", action="store_true",
                        help="keep the rows and panels of families not run now from the existing results "
                             "(to run families in several processes side by side); the arithmetic demo is "
                             "kept unless re-run")  # fmt: skip
    parser.add_argument("--render", action="store_true",
                        help="only re-render gan_digits.md from gan_digits.json (after a change of the table's layout)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = Path(args.out) if args.out else RESULTS
    if args.render:
        results = read_json(out_dir / "gan_digits.json")
        if "eq_precision" not in results["_floor"]:  # the equal-n floor, added once to older results
            scorer = Scorer()
            test = scorer.dm.reference_dataset("test")
            results["_floor"].update(class_floor(scorer, all_images(test), all_labels(test)))
            write_json(out_dir / "gan_digits.json", results)
        render(results, out_dir / "gan_digits.md", "gan_digits.png")
        print(f"wrote {out_dir / 'gan_digits.md'}", flush=True)
        return
    for key in args.families:  # a trick row whose option is missing fails now, in one line, before any training
        if "+" in key and parse_row(key)[0] in set(list_models()):
            problem = missing_option(key)
            if problem is not None:
                raise SystemExit(problem)
    code = commit()

    scorer = Scorer()
    judge = Judge(scorer)
    test_images = all_images(scorer.dm.reference_dataset("test"))
    test_labels = all_labels(scorer.dm.reference_dataset("test"))
    floor = {**scorer.floor(), **judge.figures(test_images, test_labels)}
    floor.update(class_floor(scorer, test_images, test_labels))
    print("floor", json.dumps(floor), flush=True)

    rows: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    panels: list[tuple[str, torch.Tensor]] = []
    arithmetic = None
    registered = set(list_models())
    for key in args.families:
        family, overrides = parse_row(key) if "+" in key else (key, {})
        name = row_name(key, args.subset)
        config = read_config(family)
        if family not in registered or config is None:
            why = "not registered" if family not in registered else f"no examples/digits/{family}.yaml"
            print(f"skip {family}: {why}", flush=True)
            skipped[name] = why
            continue
        config = with_overrides(config, overrides, args.subset)
        print(f"train {name} ({args.steps} steps)" if args.steps else f"train {name} ({args.budget:.0f} s)", flush=True)
        with tempfile.TemporaryDirectory(prefix=f"gan_digits_{family}_") as root:
            model, info, dm = fit(family, config, args, root)
        row: dict[str, Any] = {**info, "threads": args.threads, "commit": code, "budget_s": args.budget,
                               "train_images": len(dm.train_set), "overrides": overrides}  # fmt: skip
        if isinstance(model, Sampler):
            labels = torch.arange(NUM_SAMPLES) % int(model.num_classes) if is_conditional(model) else None
            images, per_1000 = draw(model, NUM_SAMPLES, labels=labels)
            row.update(scorer.score(images), **judge.figures(images, labels), sample_s_per_1000=per_1000)
            row.update(equal_n_figures(scorer, images, labels, test_images, test_labels))
            panels.append((f"{family}" + (" (row = class)" if labels is not None else ""), sample_panel(model)))
            if family == args.arithmetic and isinstance(model, LatentGenerator) and not is_conditional(model):
                grid, stats = arithmetic_demo(model, judge)
                arithmetic = {"family": family, "stats": stats}
                arith_panel = (f"{family}: + s (thick - thin '{stats['class']}'), s = -1 .. 2", grid)
        if isinstance(model, Translator):
            panel = translation_panel(model, dm)
            if panel is not None:
                panels.append((f"{family}: a, a2b, b, b2a", panel))
        trav = traversal_panel(model)
        if trav is not None:
            panels.append((f"{family}: {trav[0]}", trav[1]))
        rows[name] = row
        print(name, json.dumps({k: v for k, v in row.items() if k not in ("val_history",)}), flush=True)
    if arithmetic is not None:
        panels.append(arith_panel)
    elif args.arithmetic:
        print(f"latent arithmetic: {args.arithmetic} was not trained here (or is not an unconditional LatentGenerator); skipped")
    rows.update(reference_rows())
    results = {
        "_floor": floor,
        "_protocol": {"budget": args.budget, "steps": args.steps, "threads": args.threads, "evals": args.evals,
                      "select": "best of periodic val FID and final" if args.select == "val_fid" else "last",
                      "commit": code},  # fmt: skip
        "rows": rows,
        "skipped": skipped,
        "arithmetic": arithmetic,
    }
    if args.dry:
        print(json.dumps(results, indent=1, default=str))
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    results["panels"] = save_panels(panels, out_dir / "gan_digits_panels")
    if args.merge:
        results = merge_results(results, out_dir / "gan_digits.json", ran=set(rows) | set(skipped))
    write_json(out_dir / "gan_digits.json", results)
    if results["panels"]:
        order = {f: i for i, f in enumerate(FAMILIES)}
        ordered = sorted(results["panels"], key=lambda p: (order.get(p["family"], len(order)), p["index"]))
        compose([(p["title"], read_png(out_dir / "gan_digits_panels" / p["file"])) for p in ordered],
                out_dir / "gan_digits.png")  # fmt: skip
    render(results, out_dir / "gan_digits.md", "gan_digits.png")
    print(f"wrote {out_dir / 'gan_digits.md'}", flush=True)


if __name__ == "__main__":
    main()
