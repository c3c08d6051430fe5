"""Model families; importing this package registers every built-in one."""

from genlight.modules.autoencoder import AE
from genlight.modules.classifier import CNNClassifier, MLPClassifier
from genlight.modules.pixelrnn import DiagonalBiLSTMPixelRNN, PixelRNN, RowLSTMPixelRNN
from genlight.modules.vae import VAE

__all__ = ["AE", "CNNClassifier", "DiagonalBiLSTMPixelRNN", "MLPClassifier", "PixelRNN", "RowLSTMPixelRNN", "VAE"]
