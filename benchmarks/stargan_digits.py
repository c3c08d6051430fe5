"""StarGAN against CycleGAN on ``digit_domains`` (plain, thick, thin, inverted: the bundled 8x8 digits
rendered by known image operations), under the same total wall-clock budget: one StarGAN for
``budget`` seconds against the ``N(N-1)/2 = 6`` CycleGANs it replaces, one per domain pair, each for
``budget / 6`` seconds. Both see the same training images: each training digit is in ONE domain
(``digit_domains``' seeded deal), a CycleGAN for the pair ``(s, t)`` gets the training digits of
domains ``s`` and ``t`` as unpaired sets.

Scores, on the TEST split (359 digits never trained on), for every ordered pair ``s -> t`` (12): each
test digit rendered in ``s`` is translated to ``t`` and compared with the same digit rendered in ``t``
(the true answer):

* ``l1``: mean |translation - truth| (pixels in [0, 1]); ``ssim``: SSIM with a 3x3 uniform window
  (torchmetrics, data range 1; 8x8 images are too small for the usual 11x11 Gaussian);
* ``dom``: share of translations that an evaluation CNN assigns to domain ``t``; ``digit``: share
  whose digit class it reads as the input's. The evaluation CNN (two heads: domain and digit) is
  trained here on the TRAINING digits rendered in every domain (it is a judge, not a translator, so
  it may see pairs); its accuracy on the true test images is the ceiling row ``truth``;
* ``cnn_plain``: digit accuracy of the bundled digits CNN (``genlight/assets/digits_cnn.pt``, trained
  on plain digits) on translations INTO ``plain`` only, where it applies;
* baselines: ``identity`` (the input returned as it is) and ``truth``.

No checkpoint selection: each model is scored once, with its final weights (EMA for StarGAN, the
family default); validation is not used. One seed. Budgets are wall clock on a shared 2-core CPU, so
the load average is recorded. The row is printed as JSON and ``results/stargan_digits.md`` and
``results/stargan_digits.png`` are written.

    python benchmarks/stargan_digits.py --budget 360 --threads 1
    python benchmarks/stargan_digits.py --budget 6 --out /tmp/stargan   # smoke run
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.functional.image import structural_similarity_index_measure as ssim_fn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, command, commit, num_params, quiet_trainer, save_png, write_lines
from genlight import create_datamodule, create_model
from genlight.callbacks.ema import EMA, find_ema
from genlight.callbacks.image_logging import render
from genlight.datamodules.unpaired_folders import UnpairedDataset
from genlight.metrics import create_extractor

#: the digits recipe of examples/digits/stargan.yaml
STARGAN: dict[str, Any] = {
    "width_g": 32, "n_blocks": 3, "g_downsamplings": 0, "g_stem_kernel": 3, "width_d": 32, "n_critic": 1,
    "lr_g": 5e-4, "lr_d": 5e-4,
}  # fmt: skip
#: the digits recipe of examples/digits/cyclegan.yaml (benchmarks/results/cyclegan_digits.md)
CYCLEGAN: dict[str, Any] = {
    "width_g": 16, "n_blocks": 2, "g_downsamplings": 0, "g_stem_kernel": 3, "width_d": 16, "lambda_identity": 0.0,
    "lr": 5e-4, "lr_decay_epochs": 0,
}  # fmt: skip


class Judge(nn.Module):
    """The evaluation CNN: ``(B, 1, 8, 8)`` -> ``(domain logits, digit logits)``."""

    def __init__(self, num_domains: int, width: int = 32) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, 2 * width, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * width * 16, 128), nn.ReLU(),
        )  # fmt: skip
        self.domain, self.digit = nn.Linear(128, num_domains), nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.domain(h), self.digit(h)


def train_judge(every: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> Judge:
    """Train :class:`Judge` on ``every`` ``(n, N, 1, 8, 8)`` (every digit in every domain) with labels ``y``."""
    torch.manual_seed(seed)
    n, num = every.shape[:2]
    x = every.flatten(0, 1)
    dom = torch.arange(num).repeat(n)
    dig = y.repeat_interleave(num)
    judge = Judge(num)
    opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(128):
            d_logits, y_logits = judge(x[idx])
            loss = F.cross_entropy(d_logits, dom[idx]) + F.cross_entropy(y_logits, dig[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return judge.eval()


@torch.no_grad()
def pair_scores(out: torch.Tensor, truth: torch.Tensor, t: int, y: torch.Tensor, judge: Judge, cnn: Any, plain: int) -> dict[str, float]:
    """The scores of translations ``out`` into domain ``t`` against ``truth`` (see the module docstring)."""
    d_logits, y_logits = judge(out)
    row = {
        "l1": float((out - truth).abs().mean()),
        "ssim": float(ssim_fn(out, truth, gaussian_kernel=False, kernel_size=3, data_range=1.0)),
        "dom": float((d_logits.argmax(1) == t).float().mean()),
        "digit": float((y_logits.argmax(1) == y).float().mean()),
    }
    if t == plain:
        row["cnn_plain"] = float((cnn(out)[1].argmax(1) == y).float().mean())
    return row


def train_stargan(dm: Any, budget: float, seed: int, kwargs: dict[str, Any]) -> tuple[Any, float, int]:
    """StarGAN for ``budget`` seconds; returned with its EMA generator swapped in."""
    pl.seed_everything(seed, workers=True)
    model = create_model("stargan", image_shape=dm.image_shape, domains=list(dm.domain_names), **kwargs)
    trainer = quiet_trainer(tempfile.mkdtemp(), budget=budget, enable_checkpointing=False, limit_val_batches=0, callbacks=[EMA()])
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    ema = find_ema(model)
    if ema is not None:
        ema.swap(model)
    return model.eval(), seconds, trainer.global_step


def train_cyclegan(dm: Any, s: int, t: int, budget: float, seed: int, batch_size: int) -> tuple[Any, float, int]:
    """CycleGAN for domains ``s`` (A) and ``t`` (B) on the training digits ``digit_domains`` dealt to them."""
    train = dm.train_set
    sets = [torch.utils.data.TensorDataset(train.every[train.assign == d, d]) for d in (s, t)]
    loader = torch.utils.data.DataLoader(UnpairedDataset(*sets, random_pairs=True), batch_size=batch_size, shuffle=True, drop_last=True)
    pl.seed_everything(seed, workers=True)
    model = create_model("cyclegan", image_shape=dm.image_shape, **CYCLEGAN)
    trainer = quiet_trainer(tempfile.mkdtemp(), budget=budget, enable_checkpointing=False, limit_val_batches=0)
    start = time.perf_counter()
    trainer.fit(model, train_dataloaders=loader)
    return model.eval(), time.perf_counter() - start, trainer.global_step


@torch.no_grad()
def translations(stargan: Any, cyclegans: dict[tuple[int, int], Any], every: torch.Tensor) -> dict[str, dict[tuple[int, int], torch.Tensor]]:
    """Every ordered pair's translations of the test digits by each method: ``{method: {(s, t): (n, 1, 8, 8)}}``."""
    num = every.shape[1]
    out: dict[str, dict[tuple[int, int], torch.Tensor]] = {"stargan": {}, "cyclegan": {}, "identity": {}, "truth": {}}
    for s, t in itertools.permutations(range(num), 2):
        x = every[:, s]
        out["stargan"][(s, t)] = stargan.translate(x, t)
        if cyclegans:
            model = cyclegans[(min(s, t), max(s, t))]
            out["cyclegan"][(s, t)] = model.translate(x, "a2b" if s < t else "b2a")
        out["identity"][(s, t)] = x
        out["truth"][(s, t)] = every[:, t]
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--budget", type=float, default=360, help="StarGAN seconds; each of the 6 CycleGANs gets budget/6")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_size", type=int, default=16, help="StarGAN batch size")
    parser.add_argument("--cyclegan_batch_size", type=int, default=4)
    parser.add_argument("--judge_epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stargan_kwargs", default="{}", help="JSON overrides of the StarGAN recipe (tuning)")
    parser.add_argument("--no_cyclegan", action="store_true", help="StarGAN only (tuning)")
    parser.add_argument("--split", default="test", choices=("val", "test"), help="test for the results; val for tuning")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()[0]

    dm = create_datamodule("digit_domains", batch_size=args.batch_size, seed=args.seed)
    dm.setup("fit")
    names = dm.domain_names
    num = len(names)
    split = dm.val_set if args.split == "val" else dm.test_set
    every, y = split.every, split.y
    judge = train_judge(dm.train_set.every, dm.train_set.y, args.judge_epochs, args.seed)
    cnn = create_extractor("digits")

    kwargs = {**STARGAN, **json.loads(args.stargan_kwargs)}
    stargan, star_seconds, star_steps = train_stargan(dm, args.budget, args.seed, kwargs)
    cyclegans: dict[tuple[int, int], Any] = {}
    cycle_seconds, cycle_steps = 0.0, 0
    if not args.no_cyclegan:
        for s, t in itertools.combinations(range(num), 2):
            model, seconds, steps = train_cyclegan(dm, s, t, args.budget / (num * (num - 1) / 2), args.seed, args.cyclegan_batch_size)
            cyclegans[(s, t)] = model
            cycle_seconds, cycle_steps = cycle_seconds + seconds, cycle_steps + steps

    outs = translations(stargan, cyclegans, every)
    plain = names.index("plain") if "plain" in names else -1
    scores = {m: {f"{names[s]}->{names[t]}": pair_scores(o, every[:, t], t, y, judge, cnn, plain) for (s, t), o in pairs.items()}
              for m, pairs in outs.items() if pairs}  # fmt: skip
    means = {m: {k: sum(r[k] for r in rows.values() if k in r) / sum(k in r for r in rows.values())
                 for k in ("l1", "ssim", "dom", "digit", "cnn_plain")} for m, rows in scores.items()}  # fmt: skip
    row: dict[str, Any] = {
        "name": "stargan_digits", "split": args.split, "n": len(y), "budget": args.budget, "threads": args.threads,
        "stargan": {"kwargs": kwargs, "batch_size": args.batch_size, "seconds": round(star_seconds, 1), "steps": star_steps,
                    "params": num_params(stargan)},
        "cyclegan": {"kwargs": CYCLEGAN, "batch_size": args.cyclegan_batch_size, "models": len(cyclegans),
                     "seconds": round(cycle_seconds, 1), "steps": cycle_steps,
                     "params": sum(num_params(m) for m in cyclegans.values())},
        "load_avg": [round(load_start, 2), round(os.getloadavg()[0], 2)], "commit": commit(dirty=True),
        "means": {m: {k: round(v, 4) for k, v in r.items()} for m, r in means.items()},
    }  # fmt: skip
    print(json.dumps(row))
    if args.split == "test":
        write_results(args.out, row, scores, names)
        draw_grid(args.out / "stargan_digits.png", outs, every, num)


def draw_grid(path: Path, outs: dict[str, Any], every: torch.Tensor, num: int, n: int = 8) -> None:
    """For the first ``n`` test digits: rows ``x`` (in plain), then per target domain: truth, StarGAN, CycleGAN."""
    rows = [every[:n, 0]]
    for t in range(1, num):
        rows.append(outs["truth"][(0, t)][:n])
        rows.append(outs["stargan"][(0, t)][:n])
        if outs["cyclegan"]:
            rows.append(outs["cyclegan"][(0, t)][:n])
    save_png(render(torch.cat(rows), n), path, scale=4)


def write_results(out: Path, row: dict[str, Any], scores: dict[str, Any], names: tuple[str, ...]) -> None:
    star, cyc = row["stargan"], row["cyclegan"]
    methods = [m for m in ("stargan", "cyclegan", "identity", "truth") if m in scores]
    lines = [
        "# StarGAN vs CycleGAN on digit_domains (8x8 digits: plain, thick, thin, inverted)",
        "",
        f"Produced by `{command()}` at commit {row['commit']}.",
        "",
        "Protocol: `digit_domains` (seed 0; each training digit in ONE domain, dealt by a seeded permutation: "
        "no pairs in training). One StarGAN trained for the whole budget against the 6 CycleGANs it replaces "
        f"(one per domain pair), each for budget/6 of wall clock: StarGAN {star['seconds']} s, {star['steps']} optimizer "
        f"steps, batch {star['batch_size']}; CycleGANs {cyc['seconds']} s in all, {cyc['steps']} steps, batch "
        f"{cyc['batch_size']}. A CycleGAN for (s, t) trains on the training digits dealt to s and t (the same images "
        "StarGAN sees of those domains). 1 thread; shared 2-core CPU, load average "
        f"{row['load_avg'][0]} at the start, {row['load_avg'][1]} at the end. Scored once on the {row['split']} split "
        f"(n = {row['n']} digits, each rendered in every domain), final weights (StarGAN: its EMA generator), no checkpoint "
        "selection; one seed.",
        "",
        "Scores per ordered pair s -> t (each test digit in s translated to t, compared with the same digit in t): "
        "`l1` mean absolute error (pixels in [0, 1], lower is better); `ssim` (3x3 uniform window, data range 1); "
        "`dom` share of translations an evaluation CNN puts in domain t; `digit` share whose digit it reads as the "
        "input's (the CNN: two heads, trained here on the training digits in every domain); `cnn` the bundled digits "
        "CNN's accuracy on translations into plain (it knows plain digits only). Rows `identity` (the input returned "
        "unchanged) and `truth` (the true images: the judges' ceiling) are baselines.",
        "",
        f"Models: StarGAN {star['params']:,} parameters (one G and one D: {json.dumps(star['kwargs'])}); "
        f"CycleGAN {cyc['params']:,} parameters in all ({cyc['models']} models of two G and two D: "
        f"{json.dumps(cyc['kwargs'])}).",
        "",
        "## Means over the 12 ordered pairs",
        "",
        "| method | l1 | ssim | dom | digit | cnn (into plain) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for m in methods:
        r = row["means"][m]
        lines.append(f"| {m} | {r['l1']:.3f} | {r['ssim']:.3f} | {r['dom']:.3f} | {r['digit']:.3f} | {r['cnn_plain']:.3f} |")
    lines += ["", "## Per pair", "", "| pair | " + " | ".join(f"{m} l1 / ssim / dom / digit" for m in methods) + " |",
              "| --- |" + " --- |" * len(methods)]  # fmt: skip
    for pair in scores["stargan"]:
        cells = [" / ".join(f"{scores[m][pair][k]:.2f}" for k in ("l1", "ssim", "dom", "digit")) for m in methods]
        lines.append(f"| {pair} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "![rows: plain input; then per target domain (thick, thin, inverted): truth, StarGAN, CycleGAN](stargan_digits.png)",
        "",
        "*`stargan_digits.png`: the first 8 test digits in `plain` (top row), then for each target domain (thick, thin, "
        "inverted) three rows: the true image, StarGAN's translation, CycleGAN's.*",
    ]
    write_lines(out / "stargan_digits.md", lines)


if __name__ == "__main__":
    main()
