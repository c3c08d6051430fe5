"""Model families; importing this package registers every built-in one."""

from genlight.modules.autoencoder import AE
from genlight.modules.classifier import CNNClassifier, MLPClassifier
from genlight.modules.ddpm import DDPM
from genlight.modules.ebm import EBM
from genlight.modules.vae import VAE

__all__ = ["AE", "CNNClassifier", "DDPM", "EBM", "MLPClassifier", "VAE"]
