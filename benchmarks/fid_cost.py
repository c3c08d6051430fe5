"""Cost of one FID evaluation: genlight's FIDCallback (reference cache warm) vs torch-fidelity afresh.

    python benchmarks/fid_cost.py [--ckpt runs/vae/version_0/checkpoints/last.ckpt]
    python benchmarks/fid_cost.py --repeats 1 --num_samples 100 --out /tmp/fid_cost.md   # smoke run

Both sides use the same digits CNN extractor (torch-fidelity gets it wrapped as a
``FeatureExtractorBase``) and the same 1000 seeded VAE samples vs the digits train split. The
callback is timed twice: ``evaluate`` (drawing the samples too) and ``score`` on the ready-made
samples, which is what torch-fidelity is given; torch-fidelity recomputes the real-data features, as a fresh ``calculate_metrics(..., cache=False)`` call does.
Also reports the real-vs-real floor (digits train vs test and train vs val). Writes
``benchmarks/results/fid_cost.md``. Without ``--ckpt`` the model is the newest ``runs/vae`` checkpoint
(``make demo`` trains one), else an untrained VAE.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch_fidelity
from torch.utils.data import Dataset
from torch_fidelity.feature_extractor_base import FeatureExtractorBase

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python benchmarks/<name>.py` finds `benchmarks`

from benchmarks.common import RESULTS, all_images, command, write_lines
from genlight import create_datamodule, create_model, load_model
from genlight.callbacks import FIDCallback
from genlight.metrics import FrechetDistance, create_extractor
from genlight.metrics.functional import frechet_distance

OUT = RESULTS / "fid_cost.md"


class DigitsForFidelity(FeatureExtractorBase):
    """genlight's digits extractor behind torch-fidelity's interface (uint8 images in, features out)."""

    def __init__(self, name: str, features_list: list[str], **kwargs: object) -> None:
        super().__init__(name, features_list)
        self.extractor = create_extractor("digits")

    @staticmethod
    def get_provided_features_list() -> tuple[str, ...]:
        return ("features", "logits")

    @staticmethod
    def get_default_feature_layer_for_metric(metric: str) -> str:
        return "logits" if metric == "isc" else "features"

    @staticmethod
    def can_be_compiled() -> bool:
        return False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features, logits = self.extractor(x.float() / 255.0)
        out = {"features": features, "logits": logits}
        return tuple(out[name] for name in self.features_list)


class Uint8Images(Dataset):
    def __init__(self, images: torch.Tensor) -> None:
        self.images = (images.clamp(0, 1) * 255).round().to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


def split_fid(a: Dataset, b: Dataset) -> float:
    extractor = create_extractor("digits")
    stats = []
    for ds in (a, b):
        m = FrechetDistance(extractor.num_features)
        m.update(extractor(all_images(ds))[0])
        stats.append(m.statistics())
    return float(frechet_distance(*stats[0], *stats[1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ckpt", help="a trained VAE checkpoint (default: the newest runs/vae one, else untrained)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    torch.manual_seed(0)
    ckpts = sorted(Path("runs/vae").glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
    ckpt = args.ckpt or (str(ckpts[-1]) if ckpts else None)
    model = load_model(ckpt) if ckpt else create_model("vae")
    dm = create_datamodule("digits")
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         limit_val_batches=1, default_root_dir=tempfile.mkdtemp(prefix="fid_cost_"))
    trainer.validate(model, dm, verbose=False)  # attaches the datamodule (setup) to the trainer
    callback = FIDCallback(num_samples=args.num_samples, every_n_epochs=0, cache_dir=str(RESULTS.parent / ".fid_cache"))
    callback.evaluate(trainer, model)  # warm: reference statistics on disk and in memory

    ours, value = [], 0.0
    for _ in range(args.repeats):
        start = time.perf_counter()
        value = callback.evaluate(trainer, model)["val/fid_digits"]
        ours.append(time.perf_counter() - start)

    batches = list(callback.generate(model))
    generated = torch.cat([images for _, images in batches])
    scored = []  # the callback's metric path on the ready-made images (what torch-fidelity gets)
    for _ in range(args.repeats):
        start = time.perf_counter()
        score_value = callback.score(trainer, batches)["val/fid_digits"]
        scored.append(time.perf_counter() - start)
    torch_fidelity.register_feature_extractor("genlight-digits", DigitsForFidelity)
    fake, real = Uint8Images(generated), Uint8Images(all_images(dm.train_set))
    theirs, tf_value = [], 0.0
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = torch_fidelity.calculate_metrics(
            input1=fake, input2=real, fid=True, feature_extractor="genlight-digits", feature_layer_fid="features",
            cuda=False, cache=False, verbose=False, batch_size=250, save_cpu_ram=True,
        )
        theirs.append(time.perf_counter() - start)
        tf_value = result["frechet_inception_distance"]

    floor_test, floor_val = split_fid(dm.train_set, dm.test_set), split_fid(dm.train_set, dm.val_set)
    med_ours, med_theirs, med_scored = statistics.median(ours), statistics.median(theirs), statistics.median(scored)
    lines = [
        "# FID evaluation cost (digits extractor)",
        "",
        f"`{command()}` on {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}, torch-fidelity {torch_fidelity.__version__}.",
        f"Model: {'VAE from ' + ckpt if ckpt else 'untrained VAE'}; {args.num_samples} seeded samples vs the digits "
        f"train split ({len(dm.train_set)} images); median of {args.repeats} runs.",
        "",
        "| method | s / evaluation (median) | runs (s) | FID |",
        "|---|---|---|---|",
        f"| genlight FIDCallback.evaluate, cache warm (incl. sampling) | {med_ours:.4f} | "
        f"{', '.join(f'{t:.3f}' for t in ours)} | {value:.4f} |",
        f"| genlight FIDCallback.score on the ready-made samples, cache warm | {med_scored:.4f} | "
        f"{', '.join(f'{t:.3f}' for t in scored)} | {score_value:.4f} |",
        f"| torch-fidelity calculate_metrics afresh (same extractor, same images as uint8) | {med_theirs:.4f} | "
        f"{', '.join(f'{t:.3f}' for t in theirs)} | {tf_value:.4f} |",
        "",
        f"Speed-up on the same ready-made images: **{med_theirs / med_scored:.1f}x**; including the callback's "
        f"own sampling of the 1000 images: {med_theirs / med_ours:.1f}x. (The small FID difference comes from torch-fidelity's uint8 "
        "input: images are quantised to 1/255 before the extractor.)",
        "",
        "## Real-vs-real floor (digits extractor, all images of each split)",
        "",
        f"- train ({len(dm.train_set)}) vs test ({len(dm.test_set)}): **{floor_test:.3f}**",
        f"- train ({len(dm.train_set)}) vs val ({len(dm.val_set)}): {floor_val:.3f}",
        "",
        "FID is biased upwards for small sets, so the floor depends on the split sizes; compare models at equal n.",
    ]
    write_lines(args.out, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
