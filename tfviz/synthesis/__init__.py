"""Synthesis: images made by gradient ascent through a frozen network.

Lucid's split: :mod:`.objectives` (what to maximize), :mod:`.params` (how the image is
parameterized), :mod:`.transforms` (random roll, jitter-crop, scale, rotate before each forward),
:mod:`.regularizers` (Yosinski's steps after each update) and one loop,
:func:`optimize`. Recipes built on it: :func:`class_visualization`,
:func:`neuron_visualization`, :func:`multifaceted`, :func:`fooling_image`, :func:`fgsm`,
:func:`pgd`, :func:`deepdream`, and the statistics matchers of :mod:`.inversion`, :mod:`.texture` and :mod:`.style`
(their loss network: :mod:`.lossnet`; what they share: :mod:`.recipe`; their yardstick:
:mod:`.texture_measure`):
:func:`invert_features`, :func:`inversion_strip`, :func:`synthesize_texture`,
:func:`style_transfer` (L-BFGS by default: :class:`LBFGS`).
"""
from . import objectives, params, regularizers, transforms
from .objectives import (Objective, channel, class_log_prob, class_logit, class_margin, feature_match,
                         gram_match, gram_matrix, l2, layer_l2, total_variation, unit)
from .optimize import LBFGS, GradientStep, Result, SynthesisError, optimize
from .params import fourier, latent, pixel
from .classviz import class_visualization, multifaceted, neuron_visualization
from .fooling import fgsm, fooling_image, pgd
from .deepdream import deepdream
from .lossnet import LOSS_NETWORKS, LossNetwork, loss_network
from .inversion import inversion_strip, invert_features
from .texture import synthesize_texture
from .style import style_transfer
from .objectives import feature_transform
from .texture_measure import HELD_OUT_LAYERS, colour_distance, gram_statistics, texture_distance

__all__ = ["objectives", "params", "regularizers", "transforms", "Objective", "channel", "class_logit",
           "class_log_prob", "class_margin", "feature_match", "gram_match", "gram_matrix", "l2", "layer_l2",
           "total_variation", "unit", "GradientStep", "Result", "SynthesisError", "optimize", "fourier",
           "latent", "pixel", "class_visualization", "neuron_visualization", "multifaceted", "fooling_image",
           "fgsm", "pgd", "deepdream", "LBFGS", "LOSS_NETWORKS", "LossNetwork", "loss_network", "invert_features",
           "inversion_strip", "synthesize_texture", "style_transfer", "feature_transform", "HELD_OUT_LAYERS",
           "texture_distance", "colour_distance", "gram_statistics"]
