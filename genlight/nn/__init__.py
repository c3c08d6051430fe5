"""Building blocks shared by the families (each lives here once)."""

from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.nn.conv import ConvDecoder, ConvEncoder, downsample_plan
from genlight.nn.flows import ActNorm, AffineCoupling, InvConv1x1, MultiScaleFlow, Split, Squeeze
from genlight.nn.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, PixelLikelihood, make_likelihood
from genlight.nn.normalizing_flow import NormalizingFlow

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bernoulli",
    "CNNNet",
    "Categorical",
    "ConvDecoder",
    "ConvEncoder",
    "DiscretizedLogistic",
    "InvConv1x1",
    "MLPNet",
    "MultiScaleFlow",
    "NormalizingFlow",
    "PixelLikelihood",
    "Split",
    "Squeeze",
    "downsample_plan",
    "make_likelihood",
]
