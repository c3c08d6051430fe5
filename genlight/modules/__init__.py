"""Model families; importing this package registers every built-in one."""

from genlight.modules.autoencoder import AE
from genlight.modules.classifier import CNNClassifier, MLPClassifier
from genlight.modules.ddpm import DDPM
from genlight.modules.ebm import EBM
from genlight.modules.gated_pixelcnn import GatedPixelCNN
from genlight.modules.nade import NADE
from genlight.modules.pixelcnn import PixelCNN
from genlight.modules.vae import VAE

__all__ = ["AE", "CNNClassifier", "DDPM", "EBM", "GatedPixelCNN", "MLPClassifier", "NADE", "PixelCNN", "VAE"]
