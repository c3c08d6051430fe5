"""Model families; importing this package registers every built-in one."""

from genlight.modules.autoencoder import AE
from genlight.modules.classifier import CNNClassifier, MLPClassifier
from genlight.modules.glow import Glow
from genlight.modules.realnvp import RealNVP
from genlight.modules.vae import VAE

__all__ = ["AE", "CNNClassifier", "Glow", "MLPClassifier", "RealNVP", "VAE"]
