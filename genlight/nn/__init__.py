"""Building blocks shared by the families (each lives here once)."""

from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.nn.conv import ConvDecoder, ConvEncoder, downsample_plan
from genlight.nn.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, PixelLikelihood, make_likelihood
from genlight.nn.priors import DiagonalGaussianMixture, GaussianPrior, MixturePrior, VampPrior, make_prior

__all__ = [
    "Bernoulli",
    "CNNNet",
    "Categorical",
    "ConvDecoder",
    "ConvEncoder",
    "DiagonalGaussianMixture",
    "DiscretizedLogistic",
    "GaussianPrior",
    "MLPNet",
    "MixturePrior",
    "PixelLikelihood",
    "VampPrior",
    "downsample_plan",
    "make_likelihood",
    "make_prior",
]
