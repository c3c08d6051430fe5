"""Sample-quality metrics during training: FID, KID, IS, precision/recall and density/coverage of any
``Sampler``; intra-class FID and CAS of a class-conditional one.

Every ``every_n_epochs`` validation epochs, ``num_samples`` images are drawn with a fixed seed and
passed through a feature extractor (see :mod:`genlight.metrics.extractors`), which lives in this
callback, never in the model or its checkpoint. Reference statistics of the real data are computed
once per (data set, split, extractor weights, image size), saved under ``cache_dir`` keyed by a hash,
and reused across epochs and runs. Under DDP each rank draws its share of fixed, seeded chunks and the
torchmetrics states are gathered, so the value is the one a single process gets on the same samples.
Metrics are logged as ``{prefix}/fid_{extractor}`` etc.; the protocol is logged as text.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import pickle
import socket
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor
from torch.utils.data import Dataset

from genlight.callbacks.base import PeriodicCallback, evaluating
from genlight.callbacks.data import class_labels, images_of, ordered_loader, split_dataset_of
from genlight.callbacks.image_logging import run_dir
from genlight.errors import DataFilesError
from genlight.metrics.cas import ClassificationAccuracyScore
from genlight.metrics.extractors import FeatureExtractor, cache_root, create_extractor
from genlight.metrics.feature_sets import DensityCoverage, InceptionScore, KernelDistance, PrecisionRecall
from genlight.metrics.fid import FrechetDistance
from genlight.metrics.intra_fid import IntraClassFID
from genlight.ranges import Decay, NonNegativeInt, PositiveInt, Seed, check_arguments
from genlight.types import Sampler, is_conditional

__all__ = ["FIDCallback", "default_cache_dir"]

METRICS = ("fid", "kid", "is", "pr", "dc", "intra_fid", "cas")
#: the metrics that need class labels: a class-conditional sampler and a labelled real split
CLASS_METRICS = ("intra_fid", "cas")
#: data-loading settings that do not change the data, left out of cache keys
_LOADER_HPARAMS = {"batch_size", "num_workers", "pin_memory", "persistent_workers"}


def default_cache_dir() -> Path:
    """``$GENLIGHT_FID_CACHE``, else ``$GENLIGHT_CACHE_DIR/fid``, else ``~/.cache/genlight/fid``."""
    if os.environ.get("GENLIGHT_FID_CACHE"):
        return Path(os.environ["GENLIGHT_FID_CACHE"])
    return cache_root() / "fid"


class FIDCallback(PeriodicCallback):
    """FID (and optionally KID, IS, precision/recall, density/coverage, intra-class FID, CAS) of generated
    samples, every few epochs.

    Args:
        metrics: any of ``fid``, ``kid``, ``is``, ``pr`` (precision/recall), ``dc`` (density/coverage,
            Naeem et al. 2020), and for a class-conditional sampler ``intra_fid`` (the FID of each class's
            samples against that class's real images, and their mean) and ``cas`` (classification
            accuracy score, Ravuri & Vinyals 2019: a classifier trained on the samples only, its accuracy
            on the real ``cas_split`` images). Samples get the labels ``index % num_classes``.
        extractor: a registered extractor (``digits``, ``inception``, ``mnist``; ``list_extractors()``).
        weights_path: extractor weights file (``None``: the extractor's default place).
        num_samples: generated images per evaluation.
        every_n_epochs: evaluate at the end of every n-th validation epoch (0 = off).
        reference_split: the real split the samples are compared with (``train``, ``val`` or ``test``).
        max_reference: use at most this many real images (the first ones; ``None`` = all).
        batch_size: images per sampling chunk and per extractor call. Chunk ``i`` is drawn with seed
            ``(seed, i)``, so the same samples arise on any number of processes.
        seed: sampling seed; the same samples at every evaluation, so epochs are comparable.
        cache_dir: reference-statistics cache (``None``: :func:`default_cache_dir`).
        kid_subsets: KID subsets.
        kid_subset_size: KID subset size (capped at the smaller sample count).
        is_splits: IS splits.
        pr_k: ``k`` of the k-NN balls of precision/recall.
        dc_k: ``k`` of the real k-NN balls of density/coverage (5 in the paper).
        cas_split: the real labelled split CAS is measured on (``val`` by default, so that no training-time
            figure looks at the test split; ``genlight test`` measures it on ``test``).
        cas_net: the CAS classifier, ``mlp`` or ``cnn`` (:mod:`genlight.nn.classifier_nets`; the CNN costs
            about 100x more to train on the CPU at 28x28).
        cas_steps: CAS classifier training steps (Adam 1e-3, batches of 64, seeded with ``seed``).
        max_reference_features: real feature vectors kept in the cache for KID and precision/recall.
        prefix: metric name prefix.
        max_time_fraction: skip due evaluations while sampling would exceed this share of the training
            time so far (``None``: never skip; an evaluation a checkpoint monitors is never skipped).
    """

    def __init__(
        self,
        metrics: Sequence[str] = ("fid",),
        extractor: str = "digits",
        weights_path: str | None = None,
        num_samples: PositiveInt = 1000,
        every_n_epochs: NonNegativeInt = 5,
        reference_split: str = "train",
        max_reference: PositiveInt | None = None,
        batch_size: PositiveInt = 250,
        seed: Seed = 0,
        cache_dir: str | None = None,
        kid_subsets: PositiveInt = 100,
        kid_subset_size: PositiveInt = 1000,
        is_splits: PositiveInt = 10,
        pr_k: PositiveInt = 3,
        dc_k: PositiveInt = 5,
        cas_split: Literal["train", "val", "test"] = "val",
        cas_net: Literal["mlp", "cnn"] = "mlp",
        cas_steps: PositiveInt = 500,
        max_reference_features: PositiveInt = 10000,
        prefix: str = "val",
        max_time_fraction: Decay | None = 0.25,
    ) -> None:
        check_arguments(self, locals())
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
        if reference_split not in ("train", "val", "test"):
            raise ValueError(f"reference_split must be train, val or test, got {reference_split!r}")
        super().__init__(every_n_epochs, max_time_fraction)
        self.metrics = tuple(metrics)
        self.extractor_name = extractor
        self.weights_path = weights_path
        self.num_samples = num_samples
        self.reference_split = reference_split
        self.max_reference = max_reference
        self.batch_size = batch_size
        self.seed = seed
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.kid_subsets = kid_subsets
        self.kid_subset_size = kid_subset_size
        self.is_splits = is_splits
        self.pr_k = pr_k
        self.dc_k, self.cas_split, self.cas_net, self.cas_steps = dc_k, cas_split, cas_net, cas_steps
        self.num_classes = 0  # of the sampler evaluated (set by evaluate); labels index % num_classes
        self._cas_real: tuple[Tensor, Tensor] | None = None
        self.max_reference_features = max_reference_features
        self.prefix = prefix
        self.reference_passes = 0  # passes over the real data (0 when the disk cache was hit)
        self.protocol: str | None = None
        self.last_results: dict[str, float] = {}
        self._extractor: FeatureExtractor | None = None
        self._reference: dict[str, Any] | None = None
        self._reference_key: str | None = None

    # ------------------------------------------------------------------ hooks
    capability = Sampler
    needs = "sample(n)"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Check the settings when the run starts, before the first training step (see :meth:`check`)."""
        self.check(trainer, pl_module)

    def check(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Raise :class:`~genlight.errors.ConfigError` now for what would otherwise fail at the first
        evaluation, after training: an unknown extractor, missing extractor weights, an extractor made for
        another image size than the data's, non-positive sample counts."""
        from genlight.errors import ConfigError
        from genlight.metrics.extractors import EXTRACTORS

        if self.every_n_epochs <= 0 or not isinstance(pl_module, self.capability):
            return
        wanted_classes = [m for m in self.metrics if m in CLASS_METRICS]
        if wanted_classes and not is_conditional(pl_module):
            raise ConfigError(
                f"FIDCallback: {' and '.join(wanted_classes)} need a class-conditional sampler (num_classes > 0); "
                f"{type(pl_module).__name__} draws without labels: drop them from metrics"
            )
        if self.num_samples < 1 or self.batch_size < 1:
            raise ConfigError(
                f"FIDCallback needs num_samples >= 1 and batch_size >= 1, got {self.num_samples} and {self.batch_size}"
            )
        if EXTRACTORS.resolve(self.extractor_name) is None:
            raise ConfigError(f"FIDCallback: {EXTRACTORS.unknown_message(self.extractor_name)}")
        try:
            extractor = self.extractor(torch.device("cpu"))
        except Exception as err:
            raise ConfigError(f"FIDCallback cannot build the {self.extractor_name!r} extractor: {err}") from err
        dm = getattr(trainer, "datamodule", None)
        shape = getattr(dm, "image_shape", None) or pl_module.hparams.get("image_shape")
        wanted = extractor.image_shape
        if wanted is not None and shape and tuple(shape) != tuple(wanted):
            size = "x".join(str(s) for s in shape)
            fits = [n for n in EXTRACTORS.list() if EXTRACTORS.get(n).image_shape in (None, tuple(shape))]
            raise ConfigError(
                f"FIDCallback: the {self.extractor_name!r} extractor takes {'x'.join(map(str, wanted))} images, "
                f"the data are {size}; use extractor={' or '.join(fits) or 'inception'} "
                f"(`genlight list extractors`)"
            )

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.is_due(trainer, pl_module):
            return
        for name, value in self.evaluate(trainer, pl_module).items():
            pl_module.log(name, value, sync_dist=False, rank_zero_only=False)  # the same value on every rank

    def draw_final(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The last epoch's evaluation when no validation epoch end of it evaluated (the stop came after
        this callback's hook, or the last epoch ran no validation): every rank evaluates, the loggers
        get the values at the final step (``self.log`` is closed after training)."""
        results = self.evaluate(trainer, pl_module)
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.log_metrics(results, step=trainer.global_step)
                logger.save()
        values = ", ".join(f"{k} = {v:.4g}" for k, v in results.items())
        rank_zero_info(f"FIDCallback: after the last epoch ({self._drawn_epoch}): {values}")

    # ------------------------------------------------------------------ evaluation
    @property
    def cache_folder(self) -> Path:
        return self.cache_dir or default_cache_dir()

    def extractor(self, device: torch.device) -> FeatureExtractor:
        """The feature network, built once and kept here (out of the model and its checkpoint)."""
        if self._extractor is None:
            self._extractor = create_extractor(self.extractor_name, self.weights_path)
        return self._extractor.to(device)

    def evaluate(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, float]:
        """Draw the samples (this rank's chunks), update the metrics, compute them on every rank."""
        self.num_classes = int(pl_module.num_classes) if is_conditional(pl_module) else 0
        return self.score(trainer, self.generate(pl_module, trainer.global_rank, trainer.world_size), pl_module.device)

    def score(
        self, trainer: pl.Trainer, batches: Iterable[tuple[Tensor, Tensor]], device: torch.device | str = "cpu"
    ) -> dict[str, float]:
        """The metrics of ``(sample indices, images)`` batches (this rank's share) against the reference; the
        class metrics take the labels ``index % num_classes`` (:meth:`evaluate` sets ``num_classes``)."""
        if self.num_classes == 0 and any(m in CLASS_METRICS for m in self.metrics):
            raise ValueError(f"FIDCallback: {'/'.join(CLASS_METRICS)} score a class-conditional sampler only")
        device = torch.device(device)
        extractor = self.extractor(device)
        reference = self.reference(trainer, extractor)
        metrics = self._build_metrics(extractor.num_features, reference, device)
        classes = self.num_classes
        for index, images in batches:
            features, logits = extractor(images)
            labels = index % classes if classes else index
            for name, metric in metrics.items():
                if name == "fid":
                    metric.update(features)
                elif name == "intra_fid":
                    metric.update(features, labels, real=False)
                elif name == "cas":
                    metric.update(images, labels, index, real=False)
                else:  # IS scores the classifier's logits; KID, precision/recall, density/coverage the features
                    metric.update(logits if name == "is" else features, index)
        if "cas" in metrics:  # this rank's share of the real labelled images, the classifier's test set
            real, real_labels = self.cas_images(trainer)
            share = torch.arange(trainer.global_rank, len(real), trainer.world_size)
            metrics["cas"].update(real[share].to(device), real_labels[share], share.to(device), real=True)
        return self._compute(metrics)

    def cas_images(self, trainer: pl.Trainer) -> tuple[Tensor, Tensor]:
        """All images and labels of ``cas_split`` (read once, kept on the CPU)."""
        if self._cas_real is None:
            images, labels = [], []
            for batch in ordered_loader(split_dataset_of(trainer, self.cas_split), self.batch_size):
                y = class_labels(batch)
                if y is None:
                    raise DataFilesError(f"FIDCallback: cas needs class labels, the {self.cas_split} split has none")
                images.append(images_of(batch))
                labels.append(y)
            self._cas_real = torch.cat(images), torch.cat(labels)
        return self._cas_real

    def generate(
        self, pl_module: pl.LightningModule, rank: int = 0, world_size: int = 1
    ) -> Iterator[tuple[Tensor, Tensor]]:
        """This rank's share of the ``num_samples`` images: chunk ``i`` (of ``batch_size``) is drawn with
        seed ``(seed, i)`` and goes to rank ``i % world_size``; yields ``(sample indices, images)``.
        Conditional samplers get the labels ``index % num_classes`` of the global sample indices, so
        the classes are balanced and the same on any number of processes. Runs in eval mode under
        ``no_grad``, restores train mode, leaves the global RNG untouched; the drawing time counts
        towards the callback's time budget."""
        device = pl_module.device
        num_chunks = math.ceil(self.num_samples / self.batch_size)
        classes = int(pl_module.num_classes) if is_conditional(pl_module) else 0
        seconds = 0.0
        for chunk in range(rank, num_chunks, world_size):
            start = chunk * self.batch_size
            n = min(self.batch_size, self.num_samples - start)
            index = torch.arange(start, start + n, device=device)
            began = self.clock()
            with evaluating(pl_module, seed=self.seed * 1_000_003 + chunk):
                images = pl_module.sample(n, y=index % classes if classes else None).to(device)
            seconds += self.clock() - began
            yield index, images
        self.record_draw(seconds)

    def _build_metrics(self, num_features: int, reference: dict[str, Any], device: torch.device) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if "fid" in self.metrics:
            metrics["fid"] = FrechetDistance(num_features)
            reference["sqrt_sigma"] = metrics["fid"].set_reference(  # kept in memory for the next epochs
                reference["mu"], reference["sigma"], reference.get("sqrt_sigma")
            )
        if "kid" in self.metrics:
            metrics["kid"] = KernelDistance(self.kid_subsets, self.kid_subset_size)
            metrics["kid"].set_reference(reference["features"])
        if "is" in self.metrics:
            metrics["is"] = InceptionScore(self.is_splits)
        if "pr" in self.metrics:
            metrics["pr"] = PrecisionRecall(self.pr_k)
            metrics["pr"].set_reference(reference["features"])
        if "dc" in self.metrics:
            metrics["dc"] = DensityCoverage(self.dc_k)
            metrics["dc"].set_reference(reference["features"])
        if "intra_fid" in self.metrics and self.num_classes:
            metrics["intra_fid"] = IntraClassFID(self.num_classes, num_features)
            metrics["intra_fid"].set_reference(
                reference["class_sum"], reference["class_outer"], reference["class_count"]
            )
        if "cas" in self.metrics and self.num_classes:
            metrics["cas"] = ClassificationAccuracyScore(self.num_classes, self.cas_net, self.cas_steps, seed=self.seed)
        return {k: m.to(device) for k, m in metrics.items()}

    def _compute(self, metrics: dict[str, Any]) -> dict[str, float]:
        tag, out = f"{self.prefix}/{{}}_{self.extractor_name}", {}
        for name, metric in metrics.items():  # every rank computes: compute() syncs the states
            value = metric.compute()
            if name == "fid":
                out[tag.format("fid")] = float(value)
            elif name == "pr":
                out[tag.format("precision")], out[tag.format("recall")] = float(value[0]), float(value[1])
            elif name == "dc":
                out[tag.format("density")], out[tag.format("coverage")] = float(value[0]), float(value[1])
            elif name == "intra_fid":
                out[tag.format("intra_fid")] = float(value["mean"])
                for c, v in enumerate(value["per_class"].tolist()):
                    out[f"{tag.format('intra_fid')}_class{c}"] = v
            elif name == "cas":
                out[f"{self.prefix}/cas"] = float(value)
            else:
                out[tag.format(name)], out[tag.format(f"{name}_std")] = float(value[0]), float(value[1])
        self.last_results = out
        return out

    # ------------------------------------------------------------------ reference statistics
    def cache_key(self, trainer: pl.Trainer, dataset: Dataset, extractor: FeatureExtractor) -> str:
        """Hash of what the reference statistics depend on: data source and split, its size and a
        fingerprint of its first and last images, image shape, extractor and its weights."""
        dm = getattr(trainer, "datamodule", None)
        hparams = {k: v for k, v in dict(getattr(dm, "hparams", {}) or {}).items() if k not in _LOADER_HPARAMS}
        n = len(dataset)
        first, last = images_of(dataset[0]), images_of(dataset[n - 1])
        fingerprint = hashlib.sha256(first.numpy().tobytes() + last.numpy().tobytes()).hexdigest()[:16]
        key = {
            "version": 1,
            "data": f"{type(dm).__module__}.{type(dm).__qualname__}" if dm is not None else None,
            "data_hparams": hparams,
            "split": self.reference_split,
            "size": n,
            "max_reference": self.max_reference,
            "max_reference_features": self.max_reference_features,
            **({"per_class": self.num_classes} if "intra_fid" in self.metrics else {}),
            "fingerprint": fingerprint,
            "image_shape": list(first.shape),
            "extractor": extractor.name,
            "weights": extractor.weights_id,
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:20]

    def reference(self, trainer: pl.Trainer, extractor: FeatureExtractor) -> dict[str, Any]:
        """Reference ``mu``, ``sigma`` and (up to ``max_reference_features``) features: from memory,
        else from the disk cache, else one pass over the real split on global rank 0 (others wait, then
        read). Across nodes the cache folder may be node-local (``~/.cache``): then the first process of
        every other node, finding no file after rank 0 wrote it, makes its node's copy."""
        dataset = split_dataset_of(trainer, self.reference_split)
        key = self.cache_key(trainer, dataset, extractor)
        if self._reference is not None and self._reference_key == key:
            return self._reference
        path = self.cache_folder / f"{self.extractor_name}_{self.reference_split}_{key}.pt"
        if trainer.is_global_zero and not path.is_file():
            self.write_reference(path, dataset, extractor)
        trainer.strategy.barrier("genlight_fid_reference")
        if trainer.num_nodes > 1:  # a shared file system has the file now; a node-local cache does not
            if trainer.local_rank == 0 and not path.is_file():
                self.write_reference(path, dataset, extractor)
            trainer.strategy.barrier("genlight_fid_reference_node")
        try:  # weights_only: a cache file planted by someone else cannot run code
            self._reference, self._reference_key = torch.load(path, map_location="cpu", weights_only=True), key
        except pickle.UnpicklingError as err:
            raise DataFilesError(
                f"FID reference cache {path} holds more than tensors (refused: loading it could run "
                f"code); delete it and it is computed again"
            ) from err
        self._announce(trainer, dataset, extractor, path)
        return self._reference

    def write_reference(self, path: Path, dataset: Dataset, extractor: FeatureExtractor) -> None:
        """Compute the reference statistics and save them to ``path`` atomically (a temporary file named
        after this host and process, then a rename), so a concurrent reader never sees half a file."""
        stats = self.compute_reference(dataset, extractor)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{path.name}.{socket.gethostname()}.{os.getpid()}.tmp"
        torch.save(stats, tmp)
        os.replace(tmp, path)

    def compute_reference(self, dataset: Dataset, extractor: FeatureExtractor) -> dict[str, Any]:
        """One pass of the extractor over the real images (float64 sufficient statistics; per class too,
        ``class_sum``, ``class_outer``, ``class_count``, when ``intra_fid`` is asked for)."""
        self.reference_passes += 1
        device = next(iter([*extractor.parameters(), *extractor.buffers()]), torch.empty(0)).device
        fid = FrechetDistance(extractor.num_features).to(device)
        per_class = IntraClassFID(self.num_classes, extractor.num_features).to(device) if self._per_class else None
        kept: list[Tensor] = []
        seen, limit = 0, self.max_reference or len(dataset)
        for batch in ordered_loader(dataset, self.batch_size):
            x = images_of(batch)[: limit - seen].to(device)
            features, _ = extractor(x)
            fid.update(features)
            if per_class is not None:
                y = class_labels(batch)
                if y is None:
                    raise DataFilesError(
                        f"FIDCallback: intra_fid needs class labels, the {self.reference_split} split has none"
                    )
                per_class.update(features, y[: len(x)].to(device), real=True)
            if seen < self.max_reference_features:
                kept.append(features[: self.max_reference_features - seen].cpu())
            seen += len(x)
            if seen >= limit:
                break
        mu, sigma = fid.statistics()
        out = {"mu": mu.cpu(), "sigma": sigma.cpu(), "features": torch.cat(kept), "num_images": seen}
        if per_class is not None:  # this process's pass (rank 0 writes the cache): no sync
            out.update(class_sum=per_class.real_sum.cpu(), class_outer=per_class.real_outer.cpu(),
                       class_count=per_class.real_count.cpu())  # fmt: skip
        return out

    @property
    def _per_class(self) -> bool:
        return "intra_fid" in self.metrics and self.num_classes > 0

    def _announce(self, trainer: pl.Trainer, dataset: Dataset, extractor: FeatureExtractor, path: Path) -> None:
        if self.protocol is not None:
            return
        dm = getattr(trainer, "datamodule", None)
        dm = type(dm).__name__ if dm is not None else "data"
        self.protocol = (
            f"{'/'.join(self.metrics)} of {self.num_samples} samples (seed {self.seed}) vs "
            f"{self._reference['num_images']} real images of the {dm} {self.reference_split} split; "  # type: ignore[index]
            f"extractor {extractor.name} (weights sha256 {extractor.weights_id}); reference cache {path}"
        )
        rank_zero_info(f"FIDCallback protocol: {self.protocol}")
        if trainer.is_global_zero:
            folder = run_dir(trainer)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{self.prefix}_{self.extractor_name}_protocol.txt").write_text(self.protocol + "\n")
            for logger in trainer.loggers:
                if isinstance(logger, WandbLogger):
                    logger.experiment.config.update(
                        {f"protocol/{self.prefix}_{self.extractor_name}": self.protocol}, allow_val_change=True
                    )
