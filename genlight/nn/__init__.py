"""Building blocks shared by the families (each lives here once)."""

from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.nn.conv import ConvDecoder, ConvEncoder, downsample_plan
from genlight.nn.diffusion import beta_schedule, discretized_gaussian_log_prob, normal_kl
from genlight.nn.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, PixelLikelihood, make_likelihood
from genlight.nn.unet import UNet, timestep_embedding, unet_channel_mults

__all__ = [
    "Bernoulli",
    "CNNNet",
    "Categorical",
    "ConvDecoder",
    "ConvEncoder",
    "DiscretizedLogistic",
    "MLPNet",
    "PixelLikelihood",
    "UNet",
    "beta_schedule",
    "discretized_gaussian_log_prob",
    "downsample_plan",
    "make_likelihood",
    "normal_kl",
    "timestep_embedding",
    "unet_channel_mults",
]
