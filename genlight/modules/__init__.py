"""Model families; importing this package registers every built-in one."""

from genlight.modules.autoencoder import AE
from genlight.modules.beta_vae import BetaVAE
from genlight.modules.classifier import CNNClassifier, MLPClassifier
from genlight.modules.cvae import CVAE
from genlight.modules.vae import VAE

__all__ = ["AE", "BetaVAE", "CNNClassifier", "CVAE", "MLPClassifier", "VAE"]
