"""One outlier score a user can trust: every density family's single scores, DoSE, WAIC and the
recommended score (chosen leaving each outlier set out) on many outlier sets; shared by
``benchmarks/uses_digits.py dose`` and ``benchmarks/uses_mnist5k.py``.

Training (cached in ``<cache>/<family>/``): each density family (a registered class with ``log_prob``
and an ``examples/<source>/<family>.yaml``) with its recipe, under a wall-clock budget, one process,
one torch thread, on the train split WITHOUT class :data:`HELD_OUT` (so that class is a semantic
outlier set); the 3 best checkpoints on validation are kept: the best is the model, the other two
its WAIC ensemble (Choi et al. 2018). Baselines (digits only): the per-pixel categorical and the
mixture of product-categoricals, chosen on validation.

Scoring: inliers the test split without the class; the outlier sets of ``digit_outliers``
(``held_out_class`` = :data:`HELD_OUT`) and :func:`genlight.evaluation.more_outlier_sets`. DoSE is
fitted on the validation split (inliers only). The recommended score: :mod:`genlight.evaluation.recommend`.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.common import ROOT, commit, write_json
from genlight import list_models, load_model
from genlight.datamodules.digit_outliers import DigitOutliersDataModule, stack_images
from genlight.evaluation import detection_metrics, reference_nll
from genlight.evaluation.dose import DoSE, model_statistics
from genlight.evaluation.ensemble import ensemble_log_probs, waic_score
from genlight.evaluation.outlier_sets import more_outlier_sets
from genlight.evaluation.recommend import TOLERANCE, choose_score, leave_one_out
from genlight.registry import MODELS

HELD_OUT = 9
#: the single scores, in report order (``likelihood_ratio`` needs a background model per family: not here)
SINGLE = ("nll", "typicality", "complexity", "waic", "dose", "dose_nll")
DROPPED_CALLBACKS = ("FIDCallback", "Reconstructions", "LatentInterpolation", "CodeTraversal", "TranslationGrid")


def density_families(source: str) -> list[str]:
    """Registered families with ``log_prob`` whose example for ``source`` trains on its digits."""
    out = []
    for family in list_models():
        path = ROOT / "examples" / source / f"{family}.yaml"
        if not path.is_file() or not callable(getattr(MODELS.get(family), "log_prob", None)):
            continue
        text = path.read_text()
        if "DigitsDataModule" in text or "Mnist5k" in text or "MNIST5k" in text or "mnist5k" in text.lower():
            out.append(family)
    return out


def train(family: str, source: str, budget: float, cache: Path) -> dict[str, Any]:
    """Train ``family`` without class :data:`HELD_OUT` for ``budget`` s; keep its 3 best checkpoints."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from genlight.cli import GenlightCLI

    out = cache / family
    out.mkdir(parents=True, exist_ok=True)
    seconds = max(1, int(budget))
    with tempfile.TemporaryDirectory() as tmp:
        args = [
            "-c", str(ROOT / "examples" / source / f"{family}.yaml"),
            f"--trainer.max_time=00:00:{seconds // 60:02d}:{seconds % 60:02d}",
            "--trainer.logger=false", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            f"--trainer.default_root_dir={tmp}", "--samples.every_n_epochs=0",
        ]  # fmt: skip
        torch.manual_seed(0)
        cli = GenlightCLI(args=args, run=False)
        model, dm, trainer = cli.model, cli.datamodule, cli.trainer
        trainer.callbacks[:] = [c for c in trainer.callbacks if type(c).__name__ not in DROPPED_CALLBACKS]
        dm.setup("fit")
        dm.train_set = _without(dm.train_set)
        dm.val_set = _without(dm.val_set)
        dm._plain_train_set = dm.train_set  # what reference grids read
        monitor = model.checkpoint_monitor()
        found = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.monitor == monitor[0]]
        if found:  # the recipe's own (genlight keeps a configured checkpoint callback): keep its 3 best
            best = found[0]
            best.save_top_k = 3
        else:
            best = ModelCheckpoint(dirpath=Path(tmp) / "best", filename="{epoch}", save_top_k=3, monitor=monitor[0], mode=monitor[1])
            trainer.callbacks.append(best)
        start = time.perf_counter()
        trainer.fit(model, datamodule=dm)
        train_s = time.perf_counter() - start
        ranked = sorted(best.best_k_models.items(), key=lambda kv: float(kv[1]), reverse=monitor[1] == "max")
        if not ranked:  # stopped before the first validation
            trainer.save_checkpoint(Path(tmp) / "final.ckpt")
            ranked = [(str(Path(tmp) / "final.ckpt"), float("nan"))]
        for old in out.glob("*.ckpt"):
            old.unlink()
        for i, (path, _) in enumerate(ranked):
            shutil.copyfile(path, out / ("main.ckpt" if i == 0 else f"ensemble_{i}.ckpt"))
    record = {
        "family": family,
        "budget_s": seconds,
        "train_s": round(train_s, 1),
        "epochs": trainer.current_epoch,
        "selection": f"best {monitor[0]} on validation ({float(ranked[0][1]):.4f})",
        "ensemble": [f"{float(v):.4f}" for _, v in ranked[1:]],
        "load": round(os.getloadavg()[0], 1),
    }
    (out / "record.json").write_text(json.dumps(record))
    return record


def _without(dataset: Any) -> Any:
    from torch.utils.data import Subset

    keep = [i for i in range(len(dataset)) if int(dataset[i][1]) != HELD_OUT]
    return Subset(dataset, keep)


class Data:
    """Splits without class :data:`HELD_OUT` and every outlier set, at most ``max_n`` images each."""

    def __init__(self, source: str, max_n: int | None = None) -> None:
        self.dm = DigitOutliersDataModule(source=source, held_out_class=HELD_OUT, seed=0)
        self.dm.setup("fit")
        self.levels = self.dm.num_levels
        self.split = {s: stack_images(self.dm.reference_dataset(s))[0] for s in ("train", "val", "test")}
        test = self.split["test"][:max_n] if max_n else self.split["test"]
        self.split["test"] = test
        sets = {**self.dm.outlier_sets(), **more_outlier_sets(test, self.levels, 0)}
        self.sets = {k: v[:max_n] if max_n else v for k, v in sets.items()}


def score(model: Any, data: Data, ensemble: list[Any]) -> dict[str, Any]:
    """``{"auroc": {score: {set: auroc}}, "statistics": [...], "bandwidths": {...}}`` of one model."""
    torch.manual_seed(0)
    reference = reference_nll(model, data.split["train"][:2000])
    stats = {name: model_statistics(model, x, num_levels=data.levels) for name, x in
             {"val": data.split["val"], "test": data.split["test"], **data.sets}.items()}  # fmt: skip
    dose = DoSE.fit(stats.pop("val"))
    scores: dict[str, dict[str, torch.Tensor]] = {}
    for name, s in stats.items():
        x = data.split["test"] if name == "test" else data.sets[name]
        scores[name] = {"nll": s["nll"], "typicality": (s["nll"] - reference).abs(), "dose": dose.score(s),
                        "dose_nll": dose.score_with_nll(s)}  # fmt: skip
        if "complexity" in s:
            scores[name]["complexity"] = s["complexity"]
        if ensemble:
            scores[name]["waic"] = waic_score(ensemble_log_probs([model, *ensemble], x))
    auroc: dict[str, dict[str, float]] = {}
    for name in data.sets:
        for k in SINGLE:
            if k in scores[name]:
                auroc.setdefault(k, {})[name] = round(detection_metrics(scores["test"][k], scores[name][k])["auroc"], 4)
    return {"auroc": auroc, "statistics": list(dose.data), "bandwidths": dose.bandwidths}


def baselines(data: Data) -> dict[str, Any]:
    from benchmarks.uses_digits import ProductCategoricalMixture

    out = {}
    for name, ks in (("per_pixel", (1,)), ("mixture", (5, 10, 20))):
        model = ProductCategoricalMixture.chosen_on_val(data.split["train"], data.split["val"], data.levels, ks)
        out[name] = {**score(model, data, []), "record": {"selection": model.label() + " (on validation)"}}
    return out


def run(source: str, budget: float, cache: Path, only: set[str], max_n: int | None, with_baselines: bool) -> dict:
    """Train what is missing, score what changed; ``{family: result}`` of everything cached."""
    data = Data(source, max_n)
    stored = cache / "scores.json"
    results = json.loads(stored.read_text()) if stored.is_file() else {}
    if with_baselines and ("per_pixel" not in results or (only and "baselines" in only)):
        results.update(baselines(data))
        write_json(stored, results)
    for family in density_families(source):
        if only and family not in only:
            continue
        folder = cache / family
        if not (folder / "main.ckpt").is_file():
            print(f"[dose] training {family}", flush=True)
            train(family, source, budget, cache)
        record = json.loads((folder / "record.json").read_text())
        if results.get(family, {}).get("record") == record:
            continue
        start = time.perf_counter()
        model = load_model(folder / "main.ckpt")
        ensemble = [load_model(p) for p in sorted(folder.glob("ensemble_*.ckpt"))]
        try:
            results[family] = {**score(model, data, ensemble), "record": record}
        except Exception as err:  # noqa: BLE001 (one broken family must not hide the others)
            results[family] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:150]}", "record": record}
        results[family]["score_s"] = round(time.perf_counter() - start, 1)
        print(f"[dose] scored {family} in {results[family]['score_s']} s", flush=True)
        write_json(stored, results)
    results["_sets"] = {k: len(v) for k, v in data.sets.items()}
    results["_inliers"] = {k: len(v) for k, v in data.split.items()}
    return results


# ==================================================================================== report
def family_table(auroc: dict[str, dict[str, float]]) -> tuple[list[str], dict[str, Any]]:
    """Markdown rows (one per set, the recommended score first) and a summary of one family."""
    sets = list(auroc["nll"])
    loo = leave_one_out(auroc)
    overall = choose_score(auroc, sets)
    names = [k for k in SINGLE if k in auroc]
    head = ["outlier set", "**recommended** (chosen on the other sets)", *names]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in sets:
        chosen, value = loo[s]
        low = value < auroc["nll"][s] - TOLERANCE
        cells = [f"**{value:.3f}**{' (!)' if low else ''} ({chosen})"] + [f"{auroc[k][s]:.3f}" for k in names]
        rows.append(f"| {s} | " + " | ".join(cells) + " |")
    means = {k: sum(auroc[k].values()) / len(sets) for k in names}
    rec_mean = sum(v for _, v in loo.values()) / len(sets)
    rows.append("| **mean** | " + " | ".join([f"**{rec_mean:.3f}**"] + [f"{means[k]:.3f}" for k in names]) + " |")
    worst = min(v - auroc["nll"][s] for s, (_, v) in loo.items())
    summary = {
        "overall": overall,
        "recommended_mean": rec_mean,
        "means": means,
        "within": sum(v >= auroc["nll"][s] - TOLERANCE for s, (_, v) in loo.items()),
        "sets": len(sets),
        "worst": worst,
        "beats_all": all(rec_mean > m + 1e-9 for m in means.values()),
        "ties_or_beats": all(rec_mean >= m - 1e-9 for m in means.values()),
        "failures": [s for s, (_, v) in loo.items() if v < auroc["nll"][s] - TOLERANCE],
    }
    return rows, summary


def section(results: dict, source: str, command: str, threads: int) -> list[str]:
    """The markdown section of the DoSE / recommended-score results."""
    families = [f for f in results if not f.startswith("_")]
    sets = results.get("_sets", {})
    inl = results.get("_inliers", {})
    lines = [
        f"## One outlier score a user can trust: DoSE and the recommended score ({source})",
        "",
        f"Generated by `{command}` at commit {commit(dirty=True)} on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; torch threads {threads}; "
        f"load average (1 min) at the end {os.getloadavg()[0]:.1f} on 2 shared cores.",
        "",
        "Protocol:",
        f"- data: `digit_outliers` (source `{source}`, split seed 0) without class {HELD_OUT} in train, val and test: "
        f"{inl.get('train', '?')} train / {inl.get('val', '?')} val / {inl.get('test', '?')} test images. Inliers: the test "
        f"split. {len(sets)} outlier sets ({', '.join(f'{k} {v}' for k, v in sets.items())} images): "
        "`digit_outliers`' own five and class "
        f"{HELD_OUT} (`held_out_class`), and `genlight.evaluation.more_outlier_sets` (transformations, mixtures of "
        "two test digits, Gaussian noise at 4 levels, salt and pepper), all made from the test split.",
        "- training: each density family's `examples/<source>/<family>.yaml` under a wall-clock budget "
        "(`--trainer.max_time`, one process, one torch thread), without the held-out class; the checkpoint with the best "
        "validation figure (never test); the next two best checkpoints of the same run are the WAIC ensemble.",
        "- single scores (higher = more unusual): `nll` = -log p(x) (a bound for VAEs, flows, DDPM; seeded); "
        "`typicality` = |nll - mean train nll|; `complexity` = nll in bits - PNG bits; `waic` = -(mean_k log p_k - "
        "var_k log p_k) over the 3 checkpoints (Choi et al. 2018); `dose` = DoSE (Morningstar et al. 2021): every "
        "statistic `genlight.evaluation.model_statistics` gives (nll, complexity, ELBO terms, flow latent norm / "
        "log-det / per-scale norms, diffusion bound terms), one Gaussian KDE per statistic (product), fitted on the "
        "validation split (inliers only), bandwidth per statistic by leave-one-out validation likelihood; score = "
        "-log density; `dose_nll` = (nll - m) / s + max(0, z - max_val z), z = (dose - m') / s', m, s and m', s' the "
        "mean and sd of nll and of DoSE's leave-one-out score on the validation inliers (the likelihood test plus "
        "DoSE's evidence beyond the largest among the validation inliers; that threshold was set after a first run "
        "in which the threshold 0 fell 0.03 below nll on the held-out class). No likelihood ratio here: it needs a "
        "background model per family.",
        f"- **recommended** (leave one outlier set out): on each set, the score chosen on the OTHER sets only: "
        f"among the scores never more than {TOLERANCE} AUROC below nll on any of them, the highest mean AUROC (then "
        "the highest minimum); nll always qualifies. Its name is in brackets; `(!)` marks a set where it falls more "
        f"than {TOLERANCE} below nll. The score recommended for new data is the same rule over all sets.",
        "",
        "| family | recommended for new data | recommended mean | " + " | ".join(f"{k} mean" for k in SINGLE)
        + f" | sets within {TOLERANCE} of nll | worst vs nll | beats every single score on average |",
        "|" + "---|" * (6 + len(SINGLE)),
    ]
    tables, notes = [], []
    for family in families:
        r = results[family]
        if "auroc" not in r:
            lines.append(f"| {family} | {r.get('error', 'not scored')} |" + " |" * (5 + len(SINGLE)))
            continue
        rows, s = family_table(r["auroc"])
        means = " | ".join(f"{s['means'][k]:.3f}" if k in s["means"] else "-" for k in SINGLE)
        verdict = "yes" if s["beats_all"] else ("ties" if s["ties_or_beats"] else "no")
        lines.append(
            f"| {family} | {s['overall']} | {s['recommended_mean']:.3f} | {means} | {s['within']} / {s['sets']} | "
            f"{s['worst']:+.3f} | {verdict} |"
        )
        rec = r.get("record", {})
        tables += [
            f"### {family}",
            "",
            f"Training: {rec.get('selection', '')}; {rec.get('train_s', '-')} s of {rec.get('budget_s', '-')} s, "
            f"{rec.get('epochs', '-')} epochs, load {rec.get('load', '-')}; scoring {r.get('score_s', '-')} s. DoSE "
            f"statistics: {', '.join(r['statistics'])}.",
            "",
            *rows,
            "",
        ]
        if s["failures"]:
            notes.append(f"- {family}: the recommended score falls more than {TOLERANCE} below nll on {', '.join(s['failures'])}.")
        if not s["ties_or_beats"]:
            best = max(s["means"], key=s["means"].get)
            notes.append(f"- {family}: on average the recommended score ({s['recommended_mean']:.3f}) is below {best} ({s['means'][best]:.3f}).")
    lines += ["", "Where it fails:", "", *(notes or ["- nowhere: every set within the tolerance, and no single score better on average."]), "", *tables]
    return lines
