"""What the benchmark scripts share: the digits scorer, a quiet CPU training loop, result files and pictures.

Run a script from the repository root as a file, ``python benchmarks/NAME.py`` (``make bench`` does),
or as a module, ``python -m benchmarks.NAME``; no ``PYTHONPATH`` is needed (each script puts the
repository root on ``sys.path``). They import this module as ``benchmarks.common``. Nothing in
``tests/`` or ``genlight/`` imports it.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

os.environ.setdefault("WANDB_MODE", "offline")

import lightning.pytorch as pl  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from genlight import create_datamodule, get_model_class  # noqa: E402
from genlight.functional import bits_per_dim, to_levels  # noqa: E402,F401  (re-exported)
from genlight.callbacks.data import ordered_loader  # noqa: E402
from genlight.cli import LINKED_ATTRIBUTES  # noqa: E402
from genlight.metrics import (  # noqa: E402
    FrechetDistance, KernelDistance, create_extractor, memorisation, nearest_neighbour_distances,
)  # fmt: skip
from genlight.metrics import ClassificationAccuracyScore, IntraClassFID  # noqa: E402
from genlight.metrics.functional import density_coverage, frechet_distance, precision_recall  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
#: samples per FID / KID row
NUM_SAMPLES = 1000
#: FID is biased upwards for small sets, so rows are also scored at the real-vs-real floor's size (the test
#: split): the mean and standard deviation over this many random subsets of that size of the samples
MATCHED_DRAWS = 20


# ---------------------------------------------------------------------------------------- data
def all_images(dataset: Dataset) -> torch.Tensor:
    """Every image of ``dataset``, in order."""
    return torch.cat([batch[0] for batch in ordered_loader(dataset, 500)])


def all_labels(dataset: Dataset) -> torch.Tensor:
    """Every label of ``dataset``, in order."""
    return torch.cat([batch[1] for batch in ordered_loader(dataset, 500)])


# ---------------------------------------------------------------------------------------- scoring
class Scorer:
    """FID / KID / memorisation of image sets against the digits train and test splits (digits CNN
    extractor; the reference features are computed once)."""

    def __init__(self) -> None:
        self.dm = create_datamodule("digits")
        self.dm.setup("fit")
        self.extractor = create_extractor("digits")
        self.reference = {s: self.features(all_images(self.dm.reference_dataset(s))) for s in ("train", "test")}
        self._train_loo: torch.Tensor | None = None

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.extractor(chunk)[0] for chunk in images.split(500)]).double()

    @torch.no_grad()
    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The extractor's digit-classifier logits."""
        return torch.cat([self.extractor(chunk)[1] for chunk in images.split(500)])

    @property
    def floor_n(self) -> int:
        """The size of the real-vs-real floor's image set (the test split: 359 digits)."""
        return len(self.reference["test"])

    @staticmethod
    def fid(feats: torch.Tensor, ref: torch.Tensor) -> float:
        stats = []
        for f in (feats, ref):
            m = FrechetDistance(f.shape[1])
            m.update(f)
            stats.append(m.statistics())
        return float(frechet_distance(*stats[0], *stats[1]))

    def score(self, images: torch.Tensor) -> dict[str, float]:
        """``fid_train``, ``kid_train``, ``fid_test``, ``kid_test`` (KID: 100 subsets), ``mem_q10`` and the
        FIDs at the floor's sample size (:meth:`matched_fid`)."""
        feats, out = self.features(images), {}
        for split, ref in self.reference.items():
            out[f"fid_{split}"] = self.fid(feats, ref)
            kid = KernelDistance(subsets=100, subset_size=min(1000, len(feats), len(ref)))
            kid.set_reference(ref)
            kid.update(feats)
            out[f"kid_{split}"] = float(kid.compute()[0])
        out["mem_q10"] = self.memorisation(feats)
        return {**out, **self.matched_fid(feats)}

    def matched_fid(self, feats: torch.Tensor, draws: int = MATCHED_DRAWS, seed: int = 0) -> dict[str, float]:
        """FID vs train and vs test at ``n = floor_n`` samples, the size of the floor's set, since FID grows
        as ``n`` shrinks: ``fid_{split}_matched`` the mean and ``..._std`` the standard deviation over
        ``draws`` random subsets of ``n`` of the samples, drawn without replacement (exactly ``n`` samples:
        their FID, std 0); ``matched_n``, ``matched_draws``. Fewer than ``n`` samples: nothing."""
        n = self.floor_n
        if len(feats) < n:
            return {}
        g = torch.Generator().manual_seed(seed)
        subsets = [torch.arange(n)] if len(feats) == n else [torch.randperm(len(feats), generator=g)[:n] for _ in range(draws)]
        out: dict[str, float] = {"matched_n": n, "matched_draws": len(subsets)}
        for split, ref in self.reference.items():
            values = torch.tensor([self.fid(feats[i], ref) for i in subsets], dtype=torch.float64)
            out[f"fid_{split}_matched"] = values.mean().item()
            out[f"fid_{split}_matched_std"] = values.std().item() if len(values) > 1 else 0.0
        return out

    def memorisation(self, feats: torch.Tensor, q: float = 0.1) -> float:
        """:func:`genlight.metrics.memorisation` against the train features (share of samples nearer to a
        train image than the q-quantile of train-to-train leave-one-out distances; fresh data scores ~q)."""
        train = self.reference["train"]
        if self._train_loo is None:
            self._train_loo, _ = nearest_neighbour_distances(train, train, exclude_self=True)
        return memorisation(feats, train, q, train_distances=self._train_loo).fraction

    def floor(self) -> dict[str, float]:
        """The real-vs-real floor: the test images scored as if they were samples (its FIDs are at
        ``n = floor_n``: compare rows by their ``fid_*_matched`` figures)."""
        return self.score(all_images(self.dm.reference_dataset("test")))


def draw(
    model: torch.nn.Module, n: int, seed: int = 0, chunk: int = 500, labels: torch.Tensor | None = None, **kwargs: Any
) -> tuple[torch.Tensor, float]:
    """``n`` seeded samples (eval mode, no grad; ``labels[i]`` for sample ``i`` if given, then
    ``n = len(labels)``) and the seconds per 1000 images."""
    model.eval()
    torch.manual_seed(seed)
    n = len(labels) if labels is not None else n
    start, out = time.perf_counter(), []
    with torch.no_grad():
        for i in range(0, n, chunk):
            if labels is None:
                out.append(model.sample(min(chunk, n - i), **kwargs))
            else:
                out.append(model.sample(len(labels[i : i + chunk]), y=labels[i : i + chunk], **kwargs))
    return torch.cat(out), (time.perf_counter() - start) * 1000 / n


# ---------------------------------------------------------------------------------------- training
def linked_arguments(cls: type, dm: pl.LightningDataModule) -> dict[str, Any]:
    """The model arguments the CLI links from the datamodule (``image_shape``, ``num_levels``, ...)."""
    params = inspect.signature(cls).parameters
    return {k: getattr(dm, k) for k in LINKED_ATTRIBUTES if k in params and hasattr(dm, k)}


def quiet_trainer(
    root: str | Path, *, budget: float | None = None, steps: int | None = None, epochs: int | None = None,
    **kwargs: Any,
) -> pl.Trainer:
    """A one-device CPU Trainer without logger, progress bar or model summary, stopping at the first of
    ``budget`` wall-clock seconds, ``steps`` optimizer steps and ``epochs`` epochs (``None``: no limit)."""
    return pl.Trainer(
        accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
        max_time=None if budget is None else {"seconds": budget}, max_steps=steps or -1,
        max_epochs=-1 if epochs is None else epochs, default_root_dir=str(root), **kwargs,
    )  # fmt: skip


def timed_fit(trainer: pl.Trainer, model: pl.LightningModule, dm: pl.LightningDataModule) -> float:
    """``trainer.fit(model, dm)``; the wall-clock seconds it took."""
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    return time.perf_counter() - start


def num_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class BudgetMarks:
    """``evals - 1`` evaluation marks evenly spread over a training budget: wall-clock seconds from
    :meth:`start` (``budget``) or optimizer steps (``max_steps``, when given). :meth:`due` is true once
    for each mark reached (marks passed in the meantime are skipped) and never at the end of the budget,
    whose final weights the scripts score after fit."""

    def __init__(self, evals: int, budget: float | None, max_steps: int | None) -> None:
        self.evals, self.budget, self.max_steps = evals, budget, max_steps
        self.done, self.started = 0, 0.0

    def start(self) -> None:
        self.started = time.perf_counter()

    def progress(self, trainer: pl.Trainer) -> float:
        """The share of the budget spent."""
        if self.max_steps:
            return trainer.global_step / self.max_steps
        return (time.perf_counter() - self.started) / float(self.budget or 1.0)

    def due(self, trainer: pl.Trainer) -> bool:
        progress = self.progress(trainer)
        if self.done + 1 >= self.evals or progress < (self.done + 1) / self.evals or progress >= 1.0:
            return False
        self.done = int(progress * self.evals)
        return True


# ---------------------------------------------------------------------------------------- results
def commit(dirty: bool = False) -> str:
    """The short hash of HEAD (``?`` outside git); with ``dirty``, says so when tracked files changed."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()

    try:
        out = git("rev-parse", "--short", "HEAD")
        changed = dirty and git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out + (" (uncommitted changes)" if changed else "")


def command() -> str:
    """This process's command line, as run from the repository root (for the results files)."""
    script = Path(sys.argv[0]).resolve()
    name = script.relative_to(ROOT) if script.is_relative_to(ROOT) else script
    return "python " + shlex.join([str(name), *sys.argv[1:]])


def fmt(value: Any, spec: str = "") -> str:
    """``value`` formatted with ``spec``; ``-`` for missing or NaN."""
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def write_lines(path: Path, lines: Iterable[str]) -> None:
    """The lines joined with newlines (and a final one), folders created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def density_kind(model: Any) -> str:
    """How a density family's ``log_prob`` relates to ``log p(x)``: ``exact``, ``bound`` (a lower bound) or
    ``estimate`` (an unbiased-in-expectation estimate, e.g. flow matching's ODE likelihood with Hutchinson)."""
    if model.log_prob_is_exact:
        return "exact"
    return "estimate" if getattr(model, "log_prob_is_estimate", False) else "bound"


#: independent draws of ``log_prob`` per test image for an ``estimate`` row (their mean is the figure, their
#: variance the variance of one draw)
ESTIMATE_DRAWS = 2


#: the DDPM sampler rows the FID tables repeat from ``ddpm_solvers.json`` (issue 26's steps)
DDPM_SAMPLER_ROWS = ("DDIM-10", "DDIM-20", "DDIM-50", "DPM-Solver++ 10, logsnr", "DPM-Solver++ 20, logsnr",
                     "DPM-Solver++ 10, time", "DPM-Solver++ 20, time")  # fmt: skip


def ddpm_sampler_lines(data: str) -> list[str]:
    """A section of a data set's FID table: DDIM and DPM-Solver++ rows of one DDPM checkpoint, FID vs train and
    seconds per 1,000 samples, as ``benchmarks/ddpm_solvers.py`` measured them (the whole curve is there)."""
    rows = read_json(RESULTS / "ddpm_solvers.json").get(data, {})
    lines = ["", f"## DDPM samplers on one checkpoint ({data})", ""]
    if not rows:
        return [*lines, f"Not run yet: `python benchmarks/ddpm_solvers.py score {data} CKPT` (see ddpm_solvers.md)."]
    any_row = next(iter(rows.values()))
    base = rows.get("DDIM-50", {})
    lines += [
        f"From `benchmarks/results/ddpm_solvers.md` (its protocol, the steps/FID curve and the interleaved timing): "
        f"checkpoint `{any_row['checkpoint']}` ({any_row['global_step']} optimizer steps), n = {any_row['n']} "
        "samples per row (seed 0, the same noise for every sampler), FID vs the train split, one thread; the time "
        "is each row's own wall clock on the shared machine (its load beside it).",
        "",
        "| sampler | model calls | FID train | x DDIM-50 | s / 1000 samples | load |",
        "|---|---|---|---|---|---|",
    ]
    for name in DDPM_SAMPLER_ROWS:
        if name not in rows:
            lines.append(f"| {name} | | not run yet | | | |")
            continue
        r = rows[name]
        ratio = f"{r['fid_train'] / base['fid_train']:.2f}" if base else "-"
        lines.append(f"| {name} | {r['kwargs']['steps']} | {r['fid_train']:.3f} | {ratio} | {r['s_per_1000']:.1f} | "
                     f"{r['load']:.1f} |")  # fmt: skip
    return lines


def to_image(grid: torch.Tensor) -> Image.Image:
    """A ``(3, h, w)`` (or ``(1, h, w)``) tensor in [0, 1] as an 8-bit PIL image."""
    array = (grid.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


def save_png(grid: torch.Tensor, path: Path, scale: int = 1) -> None:
    """``grid`` as a PNG, each pixel a ``scale`` x ``scale`` block."""
    image = to_image(grid)
    if scale != 1:
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


#: the first 64 samples of every mnist5k row, as an 8x8 grid (scripts/readme_figure.py --data mnist5k)
PANELS_MNIST5K = RESULTS / "mnist5k_panels"


def save_panel(images: torch.Tensor, name: str, folder: Path = PANELS_MNIST5K) -> Path:
    """The first 64 of ``images`` (``(N, C, H, W)`` in [0, 1]) as an 8 x 8 grid, ``folder/<name>.png`` (a panel
    of the README picture: the row's scored samples, seeded as they are)."""
    from torchvision.utils import make_grid

    path = folder / f"{name}.png"
    save_png(make_grid(images[:64].float().cpu(), nrow=8, padding=1, pad_value=0.6), path)
    return path


def read_png(path: Path) -> torch.Tensor:
    """A PNG as a ``(3, h, w)`` tensor in [0, 1]."""
    return torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1).float() / 255


def lay_out(
    items: list[tuple[str, Image.Image]], *, per_row: int | None = None, max_width: int = 1400, pad: int = 12,
    title_h: int = 18, font: Any = None, footer: str = "",
) -> Image.Image:
    """Titled pictures on a white canvas, left to right: ``per_row`` to a row, or wrapping at ``max_width``
    pixels; an optional ``footer`` line under the last row. Pictures are pasted as they are (resizing
    would alias pixel grids)."""
    font = font or ImageFont.load_default()
    if per_row:
        rows = [items[i : i + per_row] for i in range(0, len(items), per_row)]
    else:
        rows, width = [[]], 0
        for item in items:
            w = item[1].width + pad
            if rows[-1] and width + w > max_width:
                rows.append([])
                width = 0
            rows[-1].append(item)
            width += w
    total_w = max(sum(im.width + pad for _, im in row) for row in rows) + pad
    total_h = sum(max(im.height for _, im in row) + title_h + pad for row in rows) + pad + (title_h if footer else 0)
    canvas = Image.new("RGB", (total_w, total_h), "white")
    pen = ImageDraw.Draw(canvas)
    y = pad
    for row in rows:
        x = pad
        for title, im in row:
            pen.text((x, y), title, fill="black", font=font)
            canvas.paste(im, (x, y + title_h))
            x += im.width + pad
        y += max(im.height for _, im in row) + title_h + pad
    if footer:
        pen.text((pad, y), footer, fill="black", font=font)
    return canvas


def compose(panels: list[tuple[str, torch.Tensor]], path: Path, max_width: int = 1400) -> None:
    """Titled panels (``(3, h, w)`` grids in [0, 1]) laid out left to right, wrapping at ``max_width``, as a PNG."""
    canvas = lay_out([(t, to_image(g)) for t, g in panels], max_width=max_width)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


# ---------------------------------------------------------------------------------------- GAN rows
# What the GAN results tables share (gan_mnist5k.py, gan_digits.py): a row key is ``family`` or
# ``family+trick[+trick...]``; each trick adds model overrides (``TRICKS``), e.g. ``dcgan+diffaugment`` trains
# dcgan with ``--model.augment diffaugment``. A row whose option the family does not have (yet) is refused with
# one line before anything is trained (:func:`missing_option`).

#: small-data tricks of the adversarial base: model overrides, as ``--model.<name>`` values
TRICKS: dict[str, dict[str, Any]] = {
    "diffaugment": {"augment": "diffaugment"},  # Zhao et al. 2020: colour, translation, cutout
    "ada": {"augment": "ada", "ada_target": 0.6},  # Karras et al. 2020, r_t = 0.6
    "lecam": {"lecam_weight": 0.3},  # Tseng et al. 2021
    "r1": {"r1_gamma": 10.0, "r1_every": 16},  # Mescheder et al. 2018, lazy every 16 D steps
}
#: k of the k-NN balls: precision/recall (Kynkaanniemi et al. 2019) and density/coverage (Naeem et al. 2020)
PR_K, DC_K = 3, 5
#: CAS classifier (an MLP of genlight.nn.classifier_nets) training steps
CAS_STEPS = 500


def parse_row(key: str) -> tuple[str, dict[str, Any]]:
    """``"dcgan+diffaugment"`` -> ``("dcgan", {"augment": "diffaugment"})``; unknown tricks fail in one line."""
    family, *tricks = key.split("+")
    overrides: dict[str, Any] = {}
    for trick in tricks:
        if trick not in TRICKS:
            raise SystemExit(f"row {key!r}: unknown trick {trick!r}; choose from {', '.join(TRICKS)}")
        overrides.update(TRICKS[trick])
    return family, overrides


def init_parameters(cls: type) -> set[str]:
    """The ``__init__`` argument names of ``cls`` and of every class it derives from."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None:
            names |= {p for p in inspect.signature(init).parameters if p != "self"}
    return names


def missing_option(key: str) -> str | None:
    """One line naming the option a row needs that its family lacks, else ``None``."""
    family, overrides = parse_row(key)
    cls = get_model_class(family)
    missing = sorted(set(overrides) - init_parameters(cls))
    if not missing:
        return None
    options = ", ".join(f"--model.{m}" for m in missing)
    return (
        f"row {key!r} not run: {cls.__name__} has no {options} in this checkout (the adversarial base's "
        f"small-data options are not merged yet); run it again once they are"
    )


def cli_overrides(overrides: dict[str, Any]) -> list[str]:
    """``{"augment": "ada"}`` -> ``["--model.augment=ada"]``."""
    return [f"--model.{k}={v}" for k, v in overrides.items()]


def manifold_figures(real: torch.Tensor, fake: torch.Tensor) -> dict[str, float]:
    """Precision, recall (k = ``PR_K``), density and coverage (k = ``DC_K``) of ``fake`` features against
    ``real`` features: call it with sets of the same size, as the floor is scored."""
    precision, recall = precision_recall(real, fake, PR_K)
    density, coverage = density_coverage(real, fake, DC_K)
    return {
        "precision": float(precision),
        "recall": float(recall),
        "density": float(density),
        "coverage": float(coverage),
    }


def intra_fid(
    real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor, fake_labels: torch.Tensor, classes: int
) -> dict[str, Any]:
    """Intra-class FID (:class:`~genlight.metrics.IntraClassFID`): mean and per class."""
    metric = IntraClassFID(classes, real.shape[1])
    metric.update(real, real_labels, real=True)
    metric.update(fake, fake_labels, real=False)
    out = metric.compute()
    return {"intra_fid": float(out["mean"]), "intra_fid_per_class": [round(v, 3) for v in out["per_class"].tolist()]}


def cas(
    train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor, classes: int
) -> float:
    """Classification accuracy score (:class:`~genlight.metrics.ClassificationAccuracyScore`): an MLP trained
    on ``train`` (samples, or real images for the ceiling) for ``CAS_STEPS`` steps, accuracy on ``test``."""
    metric = ClassificationAccuracyScore(classes, net="mlp", steps=CAS_STEPS)
    metric.update(train, train_labels, torch.arange(len(train)), real=False)
    metric.update(test, test_labels, torch.arange(len(test)), real=True)
    return float(metric.compute())
