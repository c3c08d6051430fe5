"""Classification accuracy score (CAS, Ravuri & Vinyals 2019): train a classifier on a conditional
sampler's labelled samples only, report its accuracy on real labelled images (the test split).

High CAS needs samples that carry their class *and* cover the class's variety; a real-data classifier's
accuracy (train it on the real training images instead) is its ceiling. The classifier is one of the
project's nets (:mod:`genlight.nn.classifier_nets`), trained from a fixed seed for a fixed number of
steps. The images and labels are list states gathered across DDP processes and ordered by their global
sample index, so every rank trains on the same data in the same order; rank 0's accuracy is broadcast
so that the ranks agree even where a device's kernels are not deterministic.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from genlight.nn.classifier_nets import CNNNet, MLPNet

__all__ = ["ClassificationAccuracyScore", "classifier_accuracy", "train_classifier"]


def train_classifier(
    images: Tensor,
    labels: Tensor,
    num_classes: int,
    net: str = "mlp",
    steps: int = 500,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
) -> nn.Module:
    """A ``net`` (``cnn``: :class:`CNNNet`, ``mlp``: :class:`MLPNet`) trained by Adam on ``(images, labels)``
    for ``steps`` minibatches drawn with seed ``seed`` (cross-entropy); returned in eval mode. Runs with
    gradients on, also inside ``inference_mode`` (Lightning's test loop), and leaves the global RNG as it was."""
    if net not in ("cnn", "mlp"):
        raise ValueError(f"CAS classifier net must be 'cnn' or 'mlp', got {net!r}")
    device = images.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.inference_mode(False), torch.enable_grad():
        x, y = images.float().clone(), labels.long().clone()  # clones: normal tensors, usable by autograd
        torch.manual_seed(seed)
        cls = CNNNet if net == "cnn" else MLPNet
        model = cls(tuple(x.shape[1:]), num_classes).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        g = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(steps):
            batch = torch.randint(len(x), (min(batch_size, len(x)),), generator=g).to(device)
            loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


@torch.no_grad()
def classifier_accuracy(model: nn.Module, images: Tensor, labels: Tensor, batch_size: int = 500) -> Tensor:
    """Share of ``images`` that ``model`` assigns to their ``labels`` (float64 scalar)."""
    pred = torch.cat([model(chunk.float()).argmax(1) for chunk in images.split(batch_size)])
    return (pred == labels.to(pred.device)).double().mean()


class ClassificationAccuracyScore(Metric):
    """CAS: accuracy on the real images of a classifier trained on the sample images only.

    Args:
        num_classes: ``C``; labels are in ``[0, C)``.
        net: ``mlp`` (default: about 100x cheaper to train on the CPU than ``cnn`` at 28x28) or ``cnn``
            (:mod:`genlight.nn.classifier_nets`).
        steps: classifier training steps (minibatches).
        batch_size: classifier minibatch size.
        lr: Adam learning rate.
        seed: classifier initialisation and minibatch seed.

    ``update(images, labels, indices, real=...)``: ``(n, C, H, W)`` images in [0, 1] with their labels and
    global sample indices; ``real=False`` for samples (the training set), ``True`` for real images (the
    test set). ``compute()`` returns the accuracy (float32 scalar).
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(
        self,
        num_classes: int,
        net: str = "mlp",
        steps: int = 500,
        batch_size: int = 64,
        lr: float = 1e-3,
        seed: int = 0,
    ) -> None:
        super().__init__()  # default process group: compute() broadcasts over it
        if net not in ("cnn", "mlp"):
            raise ValueError(f"CAS classifier net must be 'cnn' or 'mlp', got {net!r}")
        self.num_classes, self.net, self.steps, self.batch_size, self.lr, self.seed = (
            int(num_classes),
            net,
            steps,
            batch_size,
            lr,
            seed,
        )
        for side in ("real", "fake"):
            for what in ("images", "labels", "indices"):
                self.add_state(f"{side}_{what}", [], dist_reduce_fx="cat")

    def update(self, images: Tensor, labels: Tensor, indices: Tensor, real: bool) -> None:
        side = "real" if real else "fake"
        if len(labels) != len(images) or len(indices) != len(images):
            raise ValueError("CAS needs one label and one sample index per image")
        getattr(self, f"{side}_images").append(images.detach().float())
        getattr(self, f"{side}_labels").append(labels.detach().long().to(images.device))
        getattr(self, f"{side}_indices").append(indices.detach().long().to(images.device))

    def _ordered(self, side: str) -> tuple[Tensor, Tensor]:
        images, labels, indices = (getattr(self, f"{side}_{w}") for w in ("images", "labels", "indices"))
        if isinstance(images, list) and not images:
            raise RuntimeError(f"CAS has no {'real' if side == 'real' else 'sample'} images; call update first")
        order = dim_zero_cat(indices).argsort(stable=True)
        return dim_zero_cat(images)[order], dim_zero_cat(labels)[order]

    def compute(self) -> Tensor:
        fake_x, fake_y = self._ordered("fake")
        real_x, real_y = self._ordered("real")
        model = train_classifier(
            fake_x, fake_y, self.num_classes, self.net, self.steps, self.batch_size, self.lr, self.seed
        )
        accuracy = classifier_accuracy(model, real_x, real_y).float().to(fake_x.device)
        if self.sync_on_compute and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.broadcast(accuracy, src=0)  # every rank computes (compute() is collective): rank 0's value
        return accuracy
