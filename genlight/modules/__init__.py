"""Model families; importing this package registers every built-in one.

One file per family: ``<family>.py`` holds the family's own networks, then its module. The bases
:mod:`~genlight.modules.adversarial`, :mod:`~genlight.modules.autoregressive` and
:mod:`~genlight.modules.flow` hold what several families' training steps share, :mod:`genlight.nn` the
shared building blocks; no family imports another, except a variant that subclasses its family
(``beta_vae`` and ``cvae`` of ``vae``, ``wgan_gp`` of ``dcgan``), the import-linter contract
"families are independent" of ``pyproject.toml``.
"""

from genlight.modules.aae import AAE
from genlight.modules.autoencoder import AE
from genlight.modules.beta_vae import BetaVAE
from genlight.modules.cgan import CGAN
from genlight.modules.classifier import CNNClassifier, MLPClassifier
from genlight.modules.cvae import CVAE
from genlight.modules.cyclegan import CycleGAN
from genlight.modules.dcgan import DCGAN
from genlight.modules.ddpm import DDPM
from genlight.modules.ebm import EBM
from genlight.modules.flow_matching import FlowMatching
from genlight.modules.gan import GAN
from genlight.modules.gated_pixelcnn import GatedPixelCNN
from genlight.modules.glow import Glow
from genlight.modules.infogan import InfoGAN
from genlight.modules.maf import MAF
from genlight.modules.nade import NADE
from genlight.modules.nsf import NSF
from genlight.modules.pixelcnn import PixelCNN
from genlight.modules.pixelrnn import DiagonalBiLSTMPixelRNN, PixelRNN, RowLSTMPixelRNN
from genlight.modules.progan import ProGAN
from genlight.modules.puzzlegan import PuzzleGAN
from genlight.modules.realnvp import RealNVP
from genlight.modules.stargan import StarGAN
from genlight.modules.text2image import Text2Image
from genlight.modules.vae import VAE
from genlight.modules.vqvae import VQVAE
from genlight.modules.wgan_gp import WGANGP

__all__ = [
    "AAE",
    "AE",
    "BetaVAE",
    "CGAN",
    "CNNClassifier",
    "CVAE",
    "CycleGAN",
    "DCGAN",
    "DDPM",
    "DiagonalBiLSTMPixelRNN",
    "EBM",
    "FlowMatching",
    "GAN",
    "GatedPixelCNN",
    "Glow",
    "InfoGAN",
    "MAF",
    "MLPClassifier",
    "NADE",
    "NSF",
    "PixelCNN",
    "PixelRNN",
    "PuzzleGAN",
    "ProGAN",
    "RealNVP",
    "RowLSTMPixelRNN",
    "Text2Image",
    "StarGAN",
    "VAE",
    "VQVAE",
    "WGANGP",
]
