"""Building blocks shared by the families (each lives here once)."""

from genlight.nn.autoregressive import AutoregressiveImageModel, draw_levels
from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.nn.conv import ConvDecoder, ConvEncoder, downsample_plan
from genlight.nn.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, PixelLikelihood, make_likelihood
from genlight.nn.logistic_mixture import LogisticMixture, logistic_mixture_log_probs
from genlight.nn.masked import MaskedConv2d, causal_mask, channel_groups, shift_down

__all__ = [
    "AutoregressiveImageModel",
    "Bernoulli",
    "CNNNet",
    "Categorical",
    "ConvDecoder",
    "ConvEncoder",
    "DiscretizedLogistic",
    "LogisticMixture",
    "MLPNet",
    "MaskedConv2d",
    "PixelLikelihood",
    "causal_mask",
    "channel_groups",
    "downsample_plan",
    "draw_levels",
    "logistic_mixture_log_probs",
    "make_likelihood",
    "shift_down",
]
