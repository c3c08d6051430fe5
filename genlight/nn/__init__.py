"""Building blocks shared by the families (each lives here once)."""

from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.nn.conv import ConvDecoder, ConvEncoder, downsample_plan
from genlight.nn.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, PixelLikelihood, make_likelihood
from genlight.nn.recurrent import DiagonalBiLSTM, MaskedConv2d, RowLSTM, channel_groups, lstm_cell, skew, unskew

__all__ = [
    "Bernoulli",
    "CNNNet",
    "Categorical",
    "ConvDecoder",
    "ConvEncoder",
    "DiagonalBiLSTM",
    "DiscretizedLogistic",
    "MaskedConv2d",
    "MLPNet",
    "PixelLikelihood",
    "RowLSTM",
    "channel_groups",
    "downsample_plan",
    "lstm_cell",
    "make_likelihood",
    "skew",
    "unskew",
]
