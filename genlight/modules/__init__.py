"""Model families; importing this package registers every built-in one."""

from genlight.modules.autoencoder import AE
from genlight.modules.beta_vae import BetaVAE
from genlight.modules.classifier import CNNClassifier, MLPClassifier
from genlight.modules.cvae import CVAE
from genlight.modules.ddpm import DDPM
from genlight.modules.ebm import EBM
from genlight.modules.gated_pixelcnn import GatedPixelCNN
from genlight.modules.glow import Glow
from genlight.modules.nade import NADE
from genlight.modules.pixelcnn import PixelCNN
from genlight.modules.pixelrnn import DiagonalBiLSTMPixelRNN, PixelRNN, RowLSTMPixelRNN
from genlight.modules.realnvp import RealNVP
from genlight.modules.vae import VAE

__all__ = [
    "AE", "BetaVAE", "CNNClassifier", "CVAE", "DDPM", "DiagonalBiLSTMPixelRNN", "EBM", "GatedPixelCNN", "Glow",
    "MLPClassifier", "NADE", "PixelCNN", "PixelRNN", "RealNVP", "RowLSTMPixelRNN", "VAE",
]  # fmt: skip
