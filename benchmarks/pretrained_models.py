"""The shipped pretrained models (``genlight.pretrained()``): train one from its recipe, choose its checkpoint
on validation, measure its figure and write it under ``genlight/assets/pretrained/<family>-<data>/``; check
every shipped figure again.

    python benchmarks/pretrained_models.py train vae --data digits            # examples/digits/vae.yaml
    python benchmarks/pretrained_models.py train dcgan --data mnist5k --max_steps 2000
    python benchmarks/pretrained_models.py check                              # every shipped model, full n
    python benchmarks/pretrained_models.py table                              # results/pretrained_models.md

Protocol: ``genlight fit -c examples/<data>/<family>.yaml --seed_everything 0`` (the recipe's budget, or
``--max_steps`` where given: recorded), on 1 thread; the checkpoint is ``best-*.ckpt`` (chosen on the family's
validation metric) when the run wrote one, else ``last.ckpt``; EMA weights where the recipe keeps them. The
figure depends on what the model can do: test bits/dim (exact, or the family's bound) on the first ``n`` test
images for a DensityModel; FID against the train split of ``n`` samples drawn with seed 0 (the data set's
CNN extractor shipped with genlight) for another Sampler; test reconstruction MSE for an Autoencoder; test
accuracy for a classifier. Each is measured at full ``n`` (1000 samples; test images: 1000, or all of a
smaller test split, 359 on digits: the full check of ``make bench``) and at ``n = 200`` (``*_n200``, what
``tests/test_pretrained.py`` recomputes within its stated tolerance).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, ROOT, commit  # noqa: E402
from genlight.catalog import capabilities  # noqa: E402
from genlight.functional import bits_per_dim  # noqa: E402
from genlight.metrics.extractors import create_extractor  # noqa: E402
from genlight.metrics import FrechetDistance  # noqa: E402
from genlight.metrics.functional import frechet_distance  # noqa: E402
from genlight.pretrained_models import list_pretrained, pretrained, pretrained_folder, save_pretrained  # noqa: E402
from genlight.registry import DATAMODULES  # noqa: E402
from genlight.types import Autoencoder, DensityModel, Sampler  # noqa: E402

SHIPPED = ROOT / "genlight" / "assets" / "pretrained"
EXTRACTOR = {"digits": "digits", "mnist5k": "mnist5k"}
#: n of the full check (make bench) and of the quick check (the test-suite)
FULL_N, QUICK_N = 1000, 200
#: relative tolerance of the quick check: the same seeded computation, so only float reordering
#: (thread counts, BLAS) moves it
QUICK_TOLERANCE = 0.02


def test_images(data: str, data_args: dict[str, Any], n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` test images and labels of the datamodule the model was trained on."""
    dm = DATAMODULES.create(data, **{k: v for k, v in data_args.items() if k not in ("batch_size", "num_workers")})
    dm.setup("test")
    xs, ys = [], []
    for batch in dm.test_dataloader():
        xs.append(batch[0])
        ys.append(batch[1])
        if sum(len(x) for x in xs) >= n:
            break
    return torch.cat(xs)[:n], torch.cat(ys)[:n]


def train_images(data: str, data_args: dict[str, Any]) -> torch.Tensor:
    dm = DATAMODULES.create(data, **{k: v for k, v in data_args.items() if k not in ("batch_size", "num_workers")})
    dm.setup("fit")
    return torch.cat([b[0] for b in torch.utils.data.DataLoader(dm.reference_dataset("train"), batch_size=1000)])


def fid(a: torch.Tensor, b: torch.Tensor) -> float:
    stats = []
    for f in (a, b):
        m = FrechetDistance(f.shape[1])
        m.update(f)
        stats.append(m.statistics())
    return float(frechet_distance(*stats[0], *stats[1]))


@torch.no_grad()
def figure(model: Any, data: str, data_args: dict[str, Any], n: int) -> tuple[str, float]:
    """``(name, value)`` of the model's figure at ``n`` (see the module docstring), every draw seeded 0."""
    torch.manual_seed(0)
    if isinstance(model, DensityModel):
        x, y = test_images(data, data_args, n)
        kwargs = {"y": y} if "ConditionalSampler" in capabilities(type(model)) and getattr(model, "num_classes", 0) else {}
        lp = torch.cat([model.log_prob(c, **{k: v[i : i + 100] for k, v in kwargs.items()}) for i, c in zip(range(0, n, 100), x.split(100))])
        label = "test_bpd" if model.log_prob_is_exact else "test_bpd_bound"
        return label, float(bits_per_dim(lp, x[0].numel()).mean())
    if isinstance(model, Sampler):
        extractor = create_extractor(EXTRACTOR.get(data, "mnist5k" if data_args.get("source") == "mnist5k" else "digits"))
        samples = torch.cat([model.sample(min(100, n - i)).float() for i in range(0, n, 100)])
        feats = torch.cat([extractor(c)[0] for c in samples.split(500)]).double()
        ref = torch.cat([extractor(c)[0] for c in train_images(data, data_args).split(500)]).double()
        return "fid_train", fid(feats, ref)
    if isinstance(model, Autoencoder):
        x, _ = test_images(data, data_args, n)
        return "test_recon_mse", float(((model.decode(model.encode(x)) - x) ** 2).mean())
    if not model.hparams.get("num_classes"):
        raise SystemExit(f"{type(model).__name__}: no figure of this script measures it (translators, completers)")
    x, y = test_images(data, data_args, n)
    return "test_accuracy", float((model(x).argmax(1) == y).float().mean())


def newest_run(root: Path, family: str) -> Path:
    versions = sorted((root / family).glob("version_*"), key=lambda p: int(p.name[8:]))
    return versions[-1]


def train(args: argparse.Namespace) -> None:
    from genlight.cli import main as genlight

    import yaml

    from genlight.registry import MODELS

    recipe = ROOT / "examples" / args.data / f"{args.recipe}.yaml"
    model_path = yaml.safe_load(recipe.read_text())["model"]["class_path"]
    family = next(n for n in MODELS.list() if MODELS.class_path(n) == model_path)
    root = Path(args.root)
    command = ["fit", "-c", str(recipe.relative_to(ROOT)), "--seed_everything", "0", "--trainer.default_root_dir", str(root)]
    if args.max_steps:
        command += ["--trainer.max_steps", str(args.max_steps)]
    start = time.time()
    try:
        genlight(command)
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    seconds = time.time() - start
    run = newest_run(root, family)
    best = sorted((run / "checkpoints").glob("best-*.ckpt"))
    chosen = best[-1] if best else run / "checkpoints" / "last.ckpt"
    from genlight.checkpoint_config import CheckpointChoice

    choice = CheckpointChoice.resolve(str(chosen))
    model = choice.load()
    data_args = dict(choice.checkpoint.get("datamodule_hyper_parameters") or {})
    trained_on = (choice.checkpoint.get("genlight") or {}).get("datamodule")  # digit_domains, digit_captions, ...
    data = next((n for n in DATAMODULES.list() if DATAMODULES.class_path(n) == trained_on), args.data)
    figures = {}
    for n, suffix in ((FULL_N, ""), (QUICK_N, f"_n{QUICK_N}")):
        name, value = figure(model, data, data_args, n)
        figures[name + suffix] = value
    name = f"{args.recipe.replace('_', '-')}-{args.data}"
    folder = SHIPPED / name
    if folder.exists():
        shutil.rmtree(folder)
    steps = choice.checkpoint.get("global_step")
    protocol = (
        f"seed 0, {steps} optimizer steps ({'--max_steps ' + str(args.max_steps) if args.max_steps else 'the recipe budget'}), "
        f"{seconds:.0f} s on {torch.get_num_threads()} thread(s) at load {os.getloadavg()[0]:.1f}; checkpoint "
        f"{chosen.name} ({'chosen on validation' if best else 'last'}); figures as benchmarks/pretrained_models.py"
    )
    save_pretrained(
        model, folder, data=data, data_args=data_args, figures=figures, protocol=protocol,
        command="genlight " + " ".join(command), commit=commit(dirty=True),
    )  # fmt: skip
    print(f"{name}: {figures} ({protocol})")


def check(args: argparse.Namespace) -> int:
    """Every shipped model's figure measured again at ``n``: the largest relative difference."""
    worst = 0.0
    for entry in list_pretrained():
        config = json.loads((pretrained_folder(entry.name) / "config.json").read_text())
        model = pretrained(entry.name)
        name, value = figure(model, entry.data, config["data"]["init_args"], args.n)
        name += "" if args.n == FULL_N else f"_n{args.n}"
        shipped = entry.figures[name]
        diff = abs(value - shipped) / max(abs(shipped), 1e-12)
        worst = max(worst, diff)
        print(f"{entry.name:<28} {name}: shipped {shipped:.4f}, now {value:.4f} ({diff:.2%})")
    print(f"largest relative difference {worst:.2%} (tolerance {QUICK_TOLERANCE:.0%})")
    return 0 if worst <= QUICK_TOLERANCE else 1


def table(args: argparse.Namespace) -> None:
    lines = [
        "# Shipped pretrained models",
        "",
        "Produced by `benchmarks/pretrained_models.py` (its docstring gives the protocol); `genlight.pretrained()` "
        "lists the same. Each model was trained by `python benchmarks/pretrained_models.py train RECIPE --data DATA "
        "--max_steps 500` (its command and commit are in its `config.json`); `make bench` measures every figure "
        "again with `python benchmarks/pretrained_models.py check` and writes this table with "
        "`python benchmarks/pretrained_models.py table`. Total size: "
        f"{sum(e.size_mb for e in list_pretrained()):.1f} MB.",
        "",
        "| name | family | data | size (MB) | figure (full n) | figure (n=200) | protocol |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for e in list_pretrained():
        full = ", ".join(f"{k} {v:.4g}" for k, v in e.figures.items() if not k.endswith(f"_n{QUICK_N}"))
        quick = ", ".join(f"{v:.4g}" for k, v in e.figures.items() if k.endswith(f"_n{QUICK_N}"))
        lines.append(f"| {e.name} | {e.family} | {e.data} | {e.size_mb:.2f} | {full} | {quick} | {e.protocol} |")
    (RESULTS / "pretrained_models.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("recipe", help="examples/<data>/<recipe>.yaml (e.g. vae, vae_vamp, pixelrnn_row)")
    t.add_argument("--data", choices=sorted(EXTRACTOR), default="digits")
    t.add_argument("--max_steps", type=int)
    t.add_argument("--root", default="runs/pretrained")
    c = sub.add_parser("check")
    c.add_argument("--n", type=int, choices=(FULL_N, QUICK_N), default=FULL_N)
    sub.add_parser("table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "train":
        train(args)
    elif args.command == "check":
        raise SystemExit(check(args))
    else:
        table(args)


if __name__ == "__main__":
    main()
