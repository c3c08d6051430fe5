"""Building blocks shared by the families (each lives here once)."""

from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.nn.conv import ConvDecoder, ConvEncoder, downsample_plan
from genlight.nn.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, PixelLikelihood, make_likelihood

__all__ = [
    "Bernoulli",
    "CNNNet",
    "Categorical",
    "ConvDecoder",
    "ConvEncoder",
    "DiscretizedLogistic",
    "MLPNet",
    "PixelLikelihood",
    "downsample_plan",
    "make_likelihood",
]
