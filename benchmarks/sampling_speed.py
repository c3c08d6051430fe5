"""Sampling speed of every sampler family at 8x8 / 17 levels and 28x28 / 256 levels (random weights).

    python benchmarks/sampling_speed.py                                       # the results file (~15 min)
    python benchmarks/sampling_speed.py --families pixelcnn,gan --batches 4 --threads 1 --out /tmp/s.md  # smoke

Speed does not depend on the weights, so every model is untrained, built with its DEFAULT widths and the
image shape / levels / classes the CLI would link (ProGAN at 28x28 runs at 32x32: its sides must be
4 * 2^k; the mnist5k recipe pads the digits). Each cell is samples/s (wall clock) of one ``sample(n)``
call under ``inference_mode`` with ``torch.set_num_threads(t)`` and ``OMP_WAIT_POLICY=PASSIVE`` (on the
shared, loaded machine OpenMP's default spin-waiting made two threads 20-40x slower than one), the best of up to 3 calls while a call
takes under 2 s. Rows with two samplers: the autoregressive families' ``naive`` sampler (one network
pass per sub-pixel) beside their incremental one (``cached`` for PixelCNN and Gated PixelCNN; the
PixelRNNs' own), and each DDPM sampler in :data:`DDPM_SAMPLERS`.

Extrapolated cells (marked ``~``; per-step cost is constant in each case): the naive PixelCNN / Gated
PixelCNN sampler is timed on ``--naive_steps`` sub-pixels of the first and of the last row, its
per-step cost fitted linearly in the rows it recomputes (``receptive_rows + 1`` at most) and summed
over every row; the naive PixelRNN (a full forward pass per sub-pixel) on ``--naive_steps`` sub-pixels
times ``C*H*W``; DDPM on ``--ddpm_steps`` network evaluations (DDIM / any sampler with a ``steps``
argument: ``sample(n, steps=k)``; ancestral: a model with ``timesteps=k``) times the default count;
the EBM on ``--ddpm_steps`` Langevin steps times its default. A measured cell whose estimate from
the smallest batch (linear in the batch) exceeds ``--max_seconds`` is not run. Writes
``benchmarks/results/sampling_speed.md``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read by OpenMP at start: before torch is imported
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, command, write_lines
from genlight.nn.autoregressive import draw_levels
from genlight.registry import MODELS
from genlight.types import Sampler

OUT = RESULTS / "sampling_speed.md"
SIZES = ((1, 8, 8, 17), (1, 28, 28, 256))
#: DDPM samplers and the argument that sets their number of network evaluations (``steps``: the
#: model's ``sample_steps`` by default; ``timesteps``: all T). A new sampler is one entry here.
DDPM_SAMPLERS = {"ddim": "steps", "dpm_solver": "steps", "ancestral": "timesteps"}
CACHED = ("pixelcnn", "gated_pixelcnn")
PIXELRNN = ("pixelrnn_row", "pixelrnn_diag")

Timer = Callable[[int], tuple[float, bool]]  # batch size -> (seconds, extrapolated)


def build(family: str, size: tuple[int, int, int, int], **overrides: Any) -> Any:
    """The family with default widths for ``(C, H, W, levels)`` (what the CLI links), eval mode."""
    cls = MODELS.get(family)
    c, h, w, levels = size
    if family == "progan" and h == 28:
        h = w = 32
    linked = {"image_shape": (c, h, w), "num_levels": levels, "num_classes": 10}
    params = inspect.signature(cls.__init__).parameters
    torch.manual_seed(0)
    return cls(**{k: v for k, v in linked.items() if k in params}, **overrides).eval()


def best_time(call: Callable[[], Any]) -> float:
    """Seconds of the fastest of up to 3 calls (repeated only while a call takes under 2 s)."""
    times: list[float] = []
    while len(times) < 3 and (not times or times[-1] < 2.0):
        torch.manual_seed(0)
        start = time.perf_counter()
        with torch.inference_mode():
            call()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_cnn_time(model: Any, n: int, steps: int) -> float:
    """The naive PixelCNN / Gated PixelCNN sampler's seconds for ``n`` images, from ``steps`` sub-pixels
    of the first and the last row: per-step cost ``a + b * rows recomputed``, summed over all rows."""
    c, h, w = model.shape
    x = torch.zeros(n, c, h, w)
    y = torch.randint(model.num_classes, (n,)) if getattr(model, "num_classes", 0) else None
    p = model.params_per_channel

    def row_cost(i: int) -> float:
        def run() -> None:
            for j in range(steps):
                params = model.sample_row_logits(x, i, y)[:, :p, j % w]
                x[:, 0, i, j % w] = draw_levels(params, model.likelihood).float() / (model.num_levels - 1)

        return best_time(run) / steps

    def rows_seen(i: int) -> int:
        return i + 1 if model.receptive_rows is None else min(i, model.receptive_rows) + 1

    first, last = row_cost(0), row_cost(h - 1)
    slope = (last - first) / max(1, rows_seen(h - 1) - 1)
    return sum(w * c * (first + slope * (rows_seen(i) - 1)) for i in range(h))


def naive_rnn_time(model: Any, n: int, steps: int) -> float:
    """The naive PixelRNN (one full forward pass and draw per sub-pixel): ``steps`` sub-pixels, times ``C*H*W``."""
    c, h, w = model.shape
    levels = torch.zeros(n, c, h, w, dtype=torch.long)

    def run() -> None:
        for s in range(steps):
            logits = model.network(model.scale(levels)).view(n, c, -1, h, w)[:, 0, :, 0, s % w]  # (n, L)
            levels[:, 0, 0, s % w] = model._draw(logits, None, (0, 0, s % w))

    return best_time(run) / steps * c * h * w


def timers(family: str, size: tuple[int, int, int, int], args: argparse.Namespace) -> dict[str, Timer]:
    """``sampler label -> timer`` of one family at one size."""
    if family == "ddpm":
        out: dict[str, Timer] = {}
        for sampler, knob in DDPM_SAMPLERS.items():
            k = args.ddpm_steps
            if knob == "steps":
                model = build(family, size)
                total = model.sample_steps
                out[sampler] = lambda n, m=model, s=sampler, k=k, t=total: (
                    best_time(lambda: m.sample(n, sampler=s, steps=k)) * t / k, True)  # fmt: skip
            else:
                k = max(2, k)  # a one-step DDPM has no posterior to sample
                full, model = build(family, size), build(family, size, timesteps=k, bound_timesteps=k)
                out[sampler] = lambda n, m=model, s=sampler, k=k, t=full.hparams.timesteps: (
                    best_time(lambda: m.sample(n, sampler=s)) * t / k, True)  # fmt: skip
        return out
    model = build(family, size)
    if family == "ebm":
        total, k = model.hparams.sample_steps or model.hparams.langevin_steps, args.ddpm_steps
        return {"langevin": lambda n: (best_time(lambda: model.sample(n, steps=k)) * total / k, True)}
    if family in CACHED:
        return {
            "naive": lambda n: (naive_cnn_time(model, n, args.naive_steps), True),
            "cached": lambda n: (best_time(lambda: model.sample(n)), False),
        }
    if family in PIXELRNN:
        return {
            "naive": lambda n: (naive_rnn_time(model, n, args.naive_steps), True),
            "incremental": lambda n: (best_time(lambda: model.sample(n)), False),
        }
    return {"sample": lambda n: (best_time(lambda: model.sample(n)), False)}


def cell(n: int, seconds: float, extrapolated: bool) -> str:
    if math.isnan(seconds):
        return "not run"
    rate = n / seconds
    text = f"{rate:.3g}" if rate < 100 else f"{rate:.0f}"
    return f"~{text}" if extrapolated else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", help="comma-separated (default: every family with sample(n))")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--naive_steps", type=int, default=3)
    parser.add_argument("--ddpm_steps", type=int, default=3)
    parser.add_argument(
        "--max_seconds",
        type=float,
        default=150.0,
        help="skip a measured (not extrapolated) cell whose estimate from the smallest batch is longer",
    )
    parser.add_argument(
        "--cache", type=Path, help="JSON of cells measured so far: reused, and extended after each cell"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    families = args.families.split(",") if args.families else MODELS.list(capability=Sampler)
    load_start, started = os.getloadavg(), time.perf_counter()
    # results[(family, sampler)][(threads, size index, batch)] = (seconds, extrapolated)
    results: dict[tuple[str, str], dict[tuple[int, int, int], tuple[float, bool]]] = {}
    done = json.loads(args.cache.read_text()) if args.cache and args.cache.exists() else {}
    for family in families:
        for s, size in enumerate(SIZES):
            for label, timer in timers(family, size, args).items():
                for threads in args.threads:
                    torch.set_num_threads(threads)
                    for n in sorted(args.batches):
                        key = f"{family}|{label}|{threads}|{s}|{n}"
                        if key not in done:
                            first = results.get((family, label), {}).get((threads, s, min(args.batches)))
                            if first and not first[1] and first[0] * n / min(args.batches) > args.max_seconds:
                                done[key] = [math.nan, False]  # not run: over the budget
                            else:
                                done[key] = list(timer(n))
                            if args.cache:
                                args.cache.write_text(json.dumps(done))
                        results.setdefault((family, label), {})[(threads, s, n)] = (done[key][0], bool(done[key][1]))
                        print(family, label, size, threads, n, cell(n, *results[(family, label)][(threads, s, n)]),
                              flush=True)  # fmt: skip
    load_end, minutes = os.getloadavg(), (time.perf_counter() - started) / 60
    columns = [(s, n) for s in range(len(SIZES)) for n in args.batches]
    head = " | ".join(f"{SIZES[s][1]}x{SIZES[s][2]}/{SIZES[s][3]}, batch {n}" for s, n in columns)
    lines = [
        "# Sampling speed of every sampler family (random weights, default widths)",
        "",
        f"`{command()}`: {minutes:.1f} min on the shared 2-core machine, load average (1, 5, 15 min) "
        f"{', '.join(f'{v:.1f}' for v in load_start)} at the start and {', '.join(f'{v:.1f}' for v in load_end)} "
        f"at the end, torch {torch.__version__}.",
        "",
        "Protocol: " + " ".join(__doc__.split("\n\n")[2:4]).replace("\n", " ").replace("``", "`").replace(":data:", ""),
        "",
    ]
    base = 1 if 1 in args.threads else args.threads[0]
    b16 = 16 if 16 in args.batches else args.batches[0]
    for threads in args.threads:
        growth = " | growth 8x8 -> 28x28 (time per sample, batch " + f"{b16})" if threads == base else ""
        lines += [f"## samples/s, {threads} thread{'s' if threads > 1 else ''}", "",
                  f"| family | sampler | {head}{growth} |", "|---|---|" + "---|" * (len(columns) + bool(growth))]  # fmt: skip
        for (family, label), cells in results.items():
            row = [cell(n, *cells[(threads, s, n)]) for s, n in columns]
            if growth:
                small, large = cells[(threads, 0, b16)][0], cells[(threads, 1, b16)][0]
                row.append(f"{large / small:.1f}x" if large == large else "-")
            lines.append(f"| {family} | {label} | " + " | ".join(row) + " |")
        lines.append("")
    lines += ["## Speed-up of the incremental samplers over the naive one", "",
              "| family | " + " | ".join(f"{t} thr., {SIZES[s][1]}x{SIZES[s][2]}, batch {n}" for t in args.threads
                                        for s, n in columns) + " |",
              "|---|" + "---|" * (len(columns) * len(args.threads))]  # fmt: skip
    for family in families:
        fast = next((results[(family, k)] for k in ("cached", "incremental") if (family, k) in results), None)
        if fast is None:
            continue
        slow = results[(family, "naive")]
        ratios = [
            f"{slow[(t, s, n)][0] / fast[(t, s, n)][0]:.0f}x" if fast[(t, s, n)][0] == fast[(t, s, n)][0] else "-"
            for t in args.threads
            for s, n in columns
        ]
        lines.append(f"| {family} | " + " | ".join(ratios) + " |")
    write_lines(args.out, lines)


if __name__ == "__main__":
    main()
