"""Fashion-MNIST against MNIST: the failure of likelihoods found by Nalisnick et al. 2019 (arXiv
1810.09136), where models trained on Fashion-MNIST give MNIST digits *higher* likelihood."""

from __future__ import annotations

from torch import Tensor

from genlight.datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from genlight.datamodules.outliers import OutlierSets, stack_images
from genlight.registry import register_datamodule

__all__ = ["FashionOutliersDataModule"]


@register_datamodule("fashion_outliers")
class FashionOutliersDataModule(OutlierSets, FashionMNISTDataModule):
    """Fashion-MNIST (its splits as ``fashion_mnist``) with the outlier set ``mnist``, the MNIST test
    images (read from ``<data_dir>/MNIST/raw``), and the synthetic sets of
    :mod:`genlight.datamodules.outliers` on the 256-level grid. Batches are Fashion-MNIST's ``(x, y)``."""

    def extra_outlier_sets(self) -> tuple[str, ...]:
        return ("mnist",)

    def extra_outlier_set(self, name: str) -> Tensor:
        mnist = MNISTDataModule(data_dir=str(self.data_dir), download=self.download, seed=self.seed)
        mnist.prepare_data()
        mnist.setup("test")
        return stack_images(mnist.reference_dataset("test"))[0]
