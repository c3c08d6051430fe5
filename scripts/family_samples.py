"""Short-budget sample grids for the README picture, one per family the benchmarks draw no grid for.

    PYTHONPATH=. python scripts/family_samples.py                  # every such family, then the README picture
    PYTHONPATH=. python scripts/family_samples.py --families vae ddpm --scale 0.1 --out /tmp/try   # quick try

These are short-budget samples, not benchmark results: each family is trained with
``genlight fit -c examples/digits/<name>.yaml --seed_everything 0`` for the wall-clock budget of
``BUDGETS`` (``--trainer.max_time``; the config's ``max_epochs`` still caps it), one torch thread,
``nice -n 10``, at most ``--parallel`` (2) trainings at a time, without the config's metric callbacks
(FID, reconstructions) and periodic sample grids so that the budget goes to training. Then 100 samples are
drawn with seed 0 from ``last.ckpt`` through :func:`genlight.load_model` (EMA weights where the family
trains with EMA; conditional samplers: labels ``arange(100) % 10``, one class per column) and saved as a
10x10 grid, ``docs/images/families/<name>.png``. ``ae`` cannot sample: its panel is reconstructions
(rows 1, 3, ... are test images, the row below each its reconstruction). Families that neither sample nor
reconstruct (the classifiers) are left out and named in ``docs/images/families/families.json``, which
also records each run's budget, epochs, steps, wall and CPU seconds. Runs are written to a temporary
folder, not to ``runs/``. Last, ``scripts/readme_figure.py`` composes ``docs/images/samples.png``.
The committed grids: 12 families, 18 min of budgets, 6.3 min of training CPU (the machine was shared,
load average about 8 on 2 cores, so a run got well under one core), about 12 min of wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import genlight  # noqa: E402
from genlight.callbacks import image_grid  # noqa: E402
from genlight.checkpoint import EMA_KEY  # noqa: E402
from genlight.datamodules.digits import DigitsDataModule  # noqa: E402
from genlight.types import Autoencoder, Sampler, is_conditional  # noqa: E402

EXAMPLES = ROOT / "examples" / "digits"
OUT = ROOT / "docs" / "images" / "families"
#: families whose grids come from the benchmarks (scripts/readme_figure.py reads them there)
BENCHMARKED = ("gan", "dcgan", "wgan_gp", "cgan", "infogan", "aae", "cyclegan", "ebm")
#: wall-clock training budget in seconds; slower learners get more (about 18 min of budgets in all)
BUDGETS = {
    "ae": 30, "vae": 60, "beta_vae": 60, "cvae": 60, "nade": 60, "pixelcnn": 90, "gated_pixelcnn": 90,
    "pixelrnn_row": 120, "pixelrnn_diag": 120, "realnvp": 120, "glow": 120, "ddpm": 150, "progan": 300,
    "maf": 120, "nsf": 120,
    "flow_matching": 150,
    "vqvae": 120,
}  # fmt: skip
DEFAULT_BUDGET = 60
#: the digits recipe of a family whose panel is not drawn from ``<name>.yaml`` (vqvae: both stages at once,
#: the prior fitted on the detached codes, since stage one alone samples codes from a uniform prior)
CONFIGS = {"vqvae": "vqvae_prior"}
COMMAND = "PYTHONPATH=. python scripts/family_samples.py"


def families() -> tuple[list[str], list[str]]:
    """``(to_train, left_out)``: genlight's own families with a digits config that sample or reconstruct
    and have no benchmark grid, and those that do neither (classifiers). Plug-in families are not shown."""
    todo, left_out = [], []
    for name in genlight.list_models():
        cls = genlight.get_model_class(name)
        if name in BENCHMARKED or not cls.__module__.startswith("genlight.modules."):
            continue
        if not (issubclass(cls, Sampler) or issubclass(cls, Autoencoder)):
            left_out.append(name)
        elif (EXAMPLES / f"{name}.yaml").is_file():
            todo.append(name)
    return todo, left_out


def budget_text(seconds: float) -> str:
    """``90`` -> ``00:00:01:30`` (Lightning's ``max_time`` as DD:HH:MM:SS)."""
    s = int(round(seconds))
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def train(name: str, seconds: float, workdir: Path) -> dict:
    """``genlight fit`` of the family's digits config for ``seconds`` of wall clock in ``workdir/name``."""
    cwd = workdir / name
    cwd.mkdir(parents=True, exist_ok=True)
    cmd = [
        "nice", "-n", "10", sys.executable, "-m", "genlight.cli", "fit", "-c", str(EXAMPLES / f"{CONFIGS.get(name, name)}.yaml"),
        "--seed_everything", "0", "--trainer.max_time", budget_text(seconds), "--trainer.callbacks=[]",
        "--samples.every_n_epochs", "0", "--trainer.enable_progress_bar", "false",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    with open(cwd / "fit.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall, cpu = time.perf_counter() - start, usage.ru_utime + usage.ru_stime
    ckpts = sorted(cwd.glob("runs/*/version_*/checkpoints/last.ckpt"))
    print(f"{name}: fit exit {proc.returncode}, {wall:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    return {"rc": proc.returncode, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
            "ckpt": str(ckpts[-1]) if ckpts else None, "log": str(cwd / "fit.log")}  # fmt: skip


def test_images(n: int) -> torch.Tensor:
    """The first ``n`` images of the digits test split (the seed-0 split every config uses)."""
    dm = DigitsDataModule()
    dm.setup("test")
    return torch.stack([dm.test_set[i][0] for i in range(n)])


@torch.no_grad()
def draw(ckpt: str) -> tuple[torch.Tensor, str]:
    """A 10x10 grid from the checkpoint (EMA weights where saved) and what it shows."""
    model = genlight.load_model(ckpt)
    torch.manual_seed(0)
    if isinstance(model, Sampler):
        y = torch.arange(100) % model.num_classes if is_conditional(model) else None
        images, what = model.sample(100, y=y), "samples" if y is None else "samples (column = class)"
    else:  # an autoencoder: rows of test images, each followed by its reconstructions
        x = test_images(50).view(5, 10, *model.hparams.image_shape)
        recon = model.decode(model.encode(x.flatten(0, 1))).view_as(x)
        images, what = torch.stack([x, recon], 1).flatten(0, 2), "reconstructions (odd rows: test images)"
    return image_grid(images.float().clamp(0, 1), nrow=10, min_cell=24), what


def save(grid: torch.Tensor, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((grid.permute(1, 2, 0) * 255).round().byte().numpy()).save(path, optimize=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="*", help="registry names (default: every family without a grid)")
    parser.add_argument("--parallel", type=int, default=2, help="trainings at a time (default 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every budget (a quick try: 0.1)")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the grids and families.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    todo, left_out = families()
    names = sorted(args.families or todo, key=lambda n: -BUDGETS.get(n, DEFAULT_BUDGET))  # longest first
    budgets = {n: BUDGETS.get(n, DEFAULT_BUDGET) * args.scale for n in names}
    out: Path = args.out
    index_path = out / "families.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {"families": {}}
    workdir = Path(tempfile.mkdtemp(prefix="family_samples_"))
    print(f"training {', '.join(f'{n} {budgets[n]:.0f} s' for n in names)} in {workdir}", flush=True)
    with ThreadPoolExecutor(max_workers=max(1, args.parallel)) as pool:
        runs = dict(zip(names, pool.map(lambda n: train(n, budgets[n], workdir), names)))
    failed = []
    for name, run in runs.items():
        if run["rc"] != 0 or run["ckpt"] is None:
            failed.append(name)
            print(f"{name}: FAILED (see {run['log']})", flush=True)
            continue
        try:
            grid, what = draw(run["ckpt"])
        except Exception as err:  # one family's sampling bug must not cost the others' grids
            failed.append(name)
            print(f"{name}: sampling FAILED: {type(err).__name__}: {err}", flush=True)
            continue
        save(grid, out / f"{name}.png")
        ckpt = torch.load(run["ckpt"], map_location="cpu", weights_only=False)
        index["families"][name] = {
            "budget_s": budgets[name], "epochs": ckpt.get("epoch"), "steps": ckpt.get("global_step"),
            "wall_s": run["wall_s"], "cpu_s": run["cpu_s"], "shows": what, "ema": EMA_KEY in ckpt,
        }  # fmt: skip
        print(f"{name}: wrote {out / f'{name}.png'} ({what})", flush=True)
    index.update(left_out=left_out, command=COMMAND, threads=1, seed=0)
    index_path.parent.mkdir(parents=True, exist_ok=True)
    index_path.write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")
    cpu = sum(r["cpu_s"] for r in runs.values())
    own = resource.getrusage(resource.RUSAGE_SELF)
    print(f"total training CPU {cpu:.0f} s ({cpu / 60:.1f} min), drawing {own.ru_utime + own.ru_stime:.0f} s; "
          f"failed: {', '.join(failed) or 'none'}")  # fmt: skip
    if not args.families and out.resolve() == OUT:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "readme_figure.py")], check=True)


if __name__ == "__main__":
    main()
