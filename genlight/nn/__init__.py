"""Building blocks shared by the families (each lives here once).

Where a part lives: a network, loss or schedule that one family alone uses is in that family's file
(``genlight/modules/<family>.py``, read top to bottom: its networks, then the module); what several
families share, or what stands on its own as a published layer (the U-Net, the Row / Diagonal LSTM, the
progressive-growing layers, the masked convolution), is here and exported below. No family imports
another (an import-linter contract in ``pyproject.toml``); the bases ``genlight.modules.adversarial``,
``autoregressive`` and ``flow`` hold the training steps families share.
"""

from genlight.nn.adversarial import (
    ConditionalBatchNorm2d,
    ImagePool,
    dcgan_init_,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from genlight.nn.autoregressive import draw_levels
from genlight.nn.autoregressive_flows import Flatten, MaskedAffineAutoregressive, MaskedSplineAutoregressive
from genlight.nn.classifier_nets import CNNNet, MLPNet
from genlight.nn.code_prior import GatedCodePrior
from genlight.nn.conv import ConvDecoder, ConvEncoder, downsample_plan
from genlight.nn.dcgan import DCGANDiscriminator, DCGANGenerator
from genlight.nn.diffusion import beta_schedule, discretized_gaussian_log_prob, normal_kl
from genlight.nn.diffusion_solvers import dpm_solver_pp_2m, solver_times
from genlight.nn.flows import ActNorm, AffineCoupling, InvConv1x1, MultiScaleFlow, Split, Squeeze
from genlight.nn.gated import GatedLayer, gate
from genlight.nn.likelihoods import Bernoulli, Categorical, DiscretizedLogistic, PixelLikelihood, make_likelihood
from genlight.nn.logistic_mixture import LogisticMixture, logistic_mixture_log_prob_at, logistic_mixture_log_probs
from genlight.nn.made import MADE, MaskedLinear, made_masks
from genlight.nn.masked import MaskedConv2d, causal_mask, channel_groups, shift_down
from genlight.nn.mlp import MLPDiscriminator, mlp_layers
from genlight.nn.ode import divergence, solve
from genlight.nn.priors import DiagonalGaussianMixture, GaussianPrior, MixturePrior, VampPrior, make_prior
from genlight.nn.progressive import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm
from genlight.nn.quantizer import QuantizerOutput, VectorQuantizer, codebook_stats
from genlight.nn.recurrent import DiagonalBiLSTM, RowLSTM, lstm_cell, skew, unskew
from genlight.nn.schedules import linear_decay, warmup_cosine, warmup_cosine_scheduler
from genlight.nn.spline_coupling import SplineCoupling
from genlight.nn.splines import rational_quadratic_spline
from genlight.nn.unet import UNet, timestep_embedding, unet_channel_mults

__all__ = [
    "ActNorm",
    "AffineCoupling",
    "Bernoulli",
    "CNNNet",
    "Categorical",
    "ConditionalBatchNorm2d",
    "ConvDecoder",
    "ConvEncoder",
    "DCGANDiscriminator",
    "DCGANGenerator",
    "DiagonalBiLSTM",
    "DiagonalGaussianMixture",
    "DiscretizedLogistic",
    "EqualizedConv2d",
    "EqualizedLinear",
    "Flatten",
    "GaussianPrior",
    "ImagePool",
    "InvConv1x1",
    "LogisticMixture",
    "MADE",
    "MLPDiscriminator",
    "MLPNet",
    "MaskedAffineAutoregressive",
    "MaskedConv2d",
    "MaskedLinear",
    "MaskedSplineAutoregressive",
    "MinibatchStdDev",
    "MixturePrior",
    "MultiScaleFlow",
    "PixelLikelihood",
    "PixelNorm",
    "RowLSTM",
    "SplineCoupling",
    "Split",
    "Squeeze",
    "UNet",
    "VampPrior",
    "beta_schedule",
    "causal_mask",
    "channel_groups",
    "dcgan_init_",
    "discretized_gaussian_log_prob",
    "discriminator_loss",
    "divergence",
    "downsample_plan",
    "dpm_solver_pp_2m",
    "draw_levels",
    "generator_loss",
    "gradient_penalty",
    "linear_decay",
    "logistic_mixture_log_prob_at",
    "logistic_mixture_log_probs",
    "lstm_cell",
    "made_masks",
    "make_likelihood",
    "make_prior",
    "mlp_layers",
    "normal_kl",
    "rational_quadratic_spline",
    "shift_down",
    "skew",
    "solve",
    "solver_times",
    "timestep_embedding",
    "unet_channel_mults",
    "unskew",
    "warmup_cosine",
    "warmup_cosine_scheduler",
    "GatedCodePrior",
    "GatedLayer",
    "QuantizerOutput",
    "VectorQuantizer",
    "codebook_stats",
    "gate",
]
