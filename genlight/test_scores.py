"""What ``genlight test`` reports for a model without a test figure of its own: a score on the TEST split.

* A :class:`~genlight.types.Sampler` (GANs, EBM, ...): for every test batch of ``n`` real images it draws
  ``n`` samples (so ``n`` samples in all = the size of the test split), seeded by ``(seed, batch, rank)``;
  conditional samplers get the batch's labels, so the classes match the test split's. Samples and test
  images go through the feature extractor that fits the image size
  (:func:`~genlight.metrics.extractors.extractor_for`: ``digits`` for 8x8, ``mnist`` for 28x28 when its
  weights are in place, else ``mnist5k``, otherwise ``inception``; 2-D points are compared as they are) and
  :class:`~genlight.metrics.sample_quality.SampleQuality` gives ``test/fid``, ``test/kid``,
  ``test/kid_std``, ``test/precision``, ``test/recall``, ``test/density`` and ``test/coverage`` (Naeem et
  al. 2020, k = 5). A class-conditional sampler of images also gets ``test/intra_fid`` (the mean over the
  classes of the FID of the samples of a test label against the test images of that class, Miyato &
  Koyama 2018) with ``test/intra_fid_class<c>``, and ``test/cas`` (classification accuracy score, Ravuri &
  Vinyals 2019: an MLP classifier, :class:`~genlight.nn.classifier_nets.MLPNet`, trained on the samples
  only for ``CAS_STEPS`` steps, its accuracy on the test images).
* A :class:`~genlight.types.Translator` (CycleGAN) on unpaired ``(x_a, x_b)`` batches has no paired
  ground truth, so what is measured is: ``test/cycle_a`` = ``|b2a(a2b(a)) - a|`` and ``test/cycle_b``
  (mean L1 round-trip error, [0, 1] units; ``test/cycle`` their mean), ``test/identity`` (``|a2b(b) - b|``
  and ``|b2a(a) - a|``, the change a generator makes to an image already in its target domain), and how
  well each direction's outputs match the real images of the target domain: ``test/fid_a2b`` (``a2b(A)``
  vs the test images of B), ``test/kid_a2b``, ``test/fid_b2a``, ``test/kid_b2a``.

Every state is a torchmetrics state (sums, or gathered feature lists), so the numbers are DDP-correct
and every rank computes them. The extractor lives here, never in the model or its checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics.aggregation import MeanMetric

from genlight.errors import ConfigError
from genlight.metrics.cas import ClassificationAccuracyScore
from genlight.metrics.extractors import FeatureExtractor, create_extractor, extractor_for
from genlight.metrics.intra_fid import IntraClassFID
from genlight.metrics.sample_quality import SampleQuality
from genlight.types import Sampler, Translator, is_conditional

__all__ = ["TestScores"]

_SEED_STRIDE = 1_000_003
#: training steps of the CAS classifier (an MLP, batches of 64, Adam 1e-3)
CAS_STEPS = 500


class TestScores:
    """Accumulates one test epoch of a sampler or translator (see the module docstring); a plain object,
    kept out of the model's module tree. ``update(model, batch, batch_idx, rank, world_size)`` per test
    batch, ``compute()`` on every rank at epoch end -> ``{"test/...": float}``; :attr:`protocol` says
    what was measured."""

    __test__ = False  # not a pytest class

    def __init__(self, seed: int = 0, prefix: str = "test") -> None:
        self.seed, self.prefix = seed, prefix
        self.extractor_name: str | None = None
        self.extractor: FeatureExtractor | None = None
        self.metrics: dict[str, Any] = {}
        self.seen = {"real": 0, "fake": 0}
        self.kind: str | None = None
        self.conditional = False
        self.protocol = ""
        self._ready = False

    # ------------------------------------------------------------------ features
    def _features(self, x: Tensor, shape: tuple[int, ...]) -> Tensor:
        """Features of images in [0, 1] (the fitting extractor, built at the first call), or the points
        themselves (float64)."""
        if not self._ready:
            self.extractor_name, self._ready = extractor_for(shape), True
            if self.extractor_name is not None:
                try:
                    self.extractor = create_extractor(self.extractor_name)
                except Exception as err:
                    raise ConfigError(
                        f"genlight test scores samples of {'x'.join(map(str, shape))} images in the feature space of "
                        f"the {self.extractor_name!r} extractor, which cannot be built: {err}"
                    ) from err
        if self.extractor is None:
            return x.flatten(1).double()
        return self.extractor.to(x.device)(x.float())[0]

    def _quality(self, name: str, num_features: int, device: torch.device) -> SampleQuality:
        if name not in self.metrics:
            self.metrics[name] = SampleQuality(num_features).to(device)
        return self.metrics[name]

    def _mean(self, name: str, device: torch.device) -> MeanMetric:
        if name not in self.metrics:
            self.metrics[name] = MeanMetric().to(device)
        return self.metrics[name]

    def _indices(self, side: str, n: int, rank: int, world_size: int, device: torch.device) -> Tensor:
        """Global sample indices of this rank's next ``n`` items (the interleaving of Lightning's
        distributed sampler), so gathered sets sort into one order on any number of processes."""
        start = self.seen[side]
        self.seen[side] += n
        return torch.arange(start, start + n, device=device) * world_size + rank

    # ------------------------------------------------------------------ updates
    def update(self, model: Any, batch: Any, batch_idx: int, rank: int = 0, world_size: int = 1) -> None:
        """Score one test batch: a translator's ``(x_a, x_b)`` or a sampler's ``(x, y)``."""
        if (
            isinstance(model, Translator)
            and isinstance(batch, (tuple, list))
            and len(batch) == 2
            and (batch[1].shape == batch[0].shape)
        ):
            self.kind = self.kind or "translator"
            self._update_translator(model, batch[0], batch[1], rank, world_size)
        elif isinstance(model, Sampler):
            self.kind = self.kind or "sampler"
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            y = batch[1] if isinstance(batch, (tuple, list)) and len(batch) > 1 else None
            self._update_sampler(model, x, y, batch_idx, rank, world_size)
        else:
            name = type(model).__name__
            raise ConfigError(
                f"{name} has no test figure: it is neither a sampler (sample(n)) nor a translator "
                f"(translate(x, direction)) and defines no test_step; score it with `genlight validate`"
            )

    def _update_sampler(
        self, model: Any, x: Tensor, y: Tensor | None, batch_idx: int, rank: int, world_size: int
    ) -> None:
        n, device, shape = len(x), x.device, tuple(x.shape[1:])
        labels = None
        if is_conditional(model) and isinstance(y, Tensor) and not y.dtype.is_floating_point and bool((y >= 0).all()):
            labels = y.long()
        cuda = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda), torch.inference_mode(False), torch.no_grad():
            torch.manual_seed(self.seed * _SEED_STRIDE + batch_idx * max(world_size, 1) + rank)
            fake = model.sample(n, y=labels) if labels is not None else model.sample(n)
        fake = fake.to(device)
        if tuple(fake.shape[1:]) != shape:
            raise ConfigError(
                f"{type(model).__name__} draws samples of shape {tuple(fake.shape[1:])} but the test data are {shape}; "
                "test it on the data it was trained on"
            )
        with torch.no_grad():
            real_f, fake_f = self._features(x, shape), self._features(fake, shape)
        quality = self._quality("samples", real_f.shape[1], device)
        real_index, fake_index = (self._indices(side, n, rank, world_size, device) for side in ("real", "fake"))
        quality.update(real_f, real_index, real=True)
        quality.update(fake_f, fake_index, real=False)
        self.conditional = self.conditional or labels is not None
        if labels is not None and x.dim() == 4:  # class-conditional images: per-class figures
            classes = int(model.num_classes)
            if "intra_fid" not in self.metrics:
                self.metrics["intra_fid"] = IntraClassFID(classes, real_f.shape[1]).to(device)
                self.metrics["cas"] = ClassificationAccuracyScore(classes, "mlp", CAS_STEPS, seed=self.seed).to(device)
            self.metrics["intra_fid"].update(real_f, labels, real=True)
            self.metrics["intra_fid"].update(fake_f, labels, real=False)
            self.metrics["cas"].update(fake, labels, fake_index, real=False)
            self.metrics["cas"].update(x, labels, real_index, real=True)

    def _update_translator(self, model: Any, x_a: Tensor, x_b: Tensor, rank: int, world_size: int) -> None:
        device, shape, n = x_a.device, tuple(x_a.shape[1:]), len(x_a)
        with torch.inference_mode(False), torch.no_grad():
            a2b, b2a = model.translate(x_a, "a2b"), model.translate(x_b, "b2a")
            cycle_a, cycle_b = model.translate(a2b, "b2a"), model.translate(b2a, "a2b")
            ident_b, ident_a = model.translate(x_b, "a2b"), model.translate(x_a, "b2a")
            for name, err in (
                ("cycle_a", (cycle_a - x_a).abs()),
                ("cycle_b", (cycle_b - x_b).abs()),
                ("identity", (ident_b - x_b).abs()),
                ("identity", (ident_a - x_a).abs()),
            ):
                self._mean(name, device).update(err.flatten(1).mean(1).float())
            features = {k: self._features(v, shape) for k, v in (("a", x_a), ("b", x_b), ("a2b", a2b), ("b2a", b2a))}
        real_index = self._indices("real", n, rank, world_size, device)
        self.seen["fake"] = self.seen["real"]
        for direction, target in (("a2b", "b"), ("b2a", "a")):
            quality = self._quality(direction, features[target].shape[1], device)
            quality.update(features[target], real_index, real=True)
            quality.update(features[direction], real_index, real=False)
        self.protocol = (
            "unpaired test pairs (no paired ground truth); cycle = mean L1 round-trip error per domain, identity = "
            "mean L1 change of an image already in the target domain, fid/kid_a2b = translations a2b(A) vs the "
            f"test images of B (b2a likewise); features: {self._feature_text()}"
        )

    def _feature_text(self) -> str:
        if self.extractor is None:
            return "the raw coordinates"
        return f"the {self.extractor.name} extractor (weights sha256 {self.extractor.weights_id})"

    # ------------------------------------------------------------------ results
    def compute(self) -> dict[str, float]:
        """The figures of the epoch, on every rank (each ``compute()`` gathers its states)."""
        out: dict[str, float] = {}
        p = self.prefix
        for name, metric in self.metrics.items():
            value = metric.compute()
            if isinstance(metric, (MeanMetric, ClassificationAccuracyScore)):
                out[f"{p}/{name}"] = float(value)
                continue
            if isinstance(metric, IntraClassFID):
                out[f"{p}/intra_fid"] = float(value["mean"])
                out.update({f"{p}/intra_fid_class{c}": v for c, v in enumerate(value["per_class"].tolist())})
                continue
            suffix = "" if name == "samples" else f"_{name}"
            for key, v in value.items():
                if key.startswith("num_"):
                    continue
                if suffix and key in ("precision", "recall", "density", "coverage"):
                    continue  # per-direction: fid and kid
                out[f"{p}/{key}{suffix}"] = float(v)
            if name == "a2b":
                self.protocol = f"{int(value['num_real'])} {self.protocol}"
            if name == "samples":
                self.protocol = (
                    f"{int(value['num_fake'])} samples (one seeded draw per test batch, seed {self.seed}"
                    f"{', with the test labels' if self.conditional else ''}) vs {int(value['num_real'])} test images; "
                    f"features: {self._feature_text()}"
                    + (
                        f"; intra_fid per test label, cas: an MLP trained on the samples only ({CAS_STEPS} steps), "
                        "its accuracy on the test images"
                        if "cas" in self.metrics
                        else ""
                    )
                )
        if f"{p}/cycle_a" in out and f"{p}/cycle_b" in out:
            out[f"{p}/cycle"] = (out[f"{p}/cycle_a"] + out[f"{p}/cycle_b"]) / 2
        return out

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
        self.metrics, self.seen, self.kind, self.conditional = {}, {"real": 0, "fake": 0}, None, False
