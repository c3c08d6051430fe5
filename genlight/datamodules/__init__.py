"""Registered datamodules; importing this package registers every built-in one."""

from genlight.datamodules.binarized_mnist import BinarizedMNISTDataModule
from genlight.datamodules.celeba import CelebADataModule
from genlight.datamodules.cifar10 import CIFAR10DataModule
from genlight.datamodules.common import DataFilesError
from genlight.datamodules.digit_captions import DigitCaptionsDataModule
from genlight.datamodules.digit_domains import DigitDomainsDataModule
from genlight.datamodules.digit_outliers import DigitOutliersDataModule
from genlight.datamodules.digits import DigitsDataModule
from genlight.datamodules.fashion_outliers import FashionOutliersDataModule
from genlight.datamodules.image_folder import ImageFolderDataModule
from genlight.datamodules.mnist import FashionMNISTDataModule, MNISTDataModule
from genlight.datamodules.mnist5k import MNIST5kDataModule
from genlight.datamodules.toy2d import Toy2DDataModule
from genlight.datamodules.unpaired_folders import UnpairedFoldersDataModule

__all__ = [
    "BinarizedMNISTDataModule",
    "CIFAR10DataModule",
    "CelebADataModule",
    "DataFilesError",
    "DigitCaptionsDataModule",
    "DigitOutliersDataModule",
    "DigitDomainsDataModule",
    "DigitsDataModule",
    "FashionMNISTDataModule",
    "FashionOutliersDataModule",
    "ImageFolderDataModule",
    "MNIST5kDataModule",
    "MNISTDataModule",
    "Toy2DDataModule",
    "UnpairedFoldersDataModule",
]
