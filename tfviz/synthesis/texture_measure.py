"""How close a synthesized texture is to its source, measured where the texture loss
does not look: the yardstick for choosing texture-synthesis defaults.

:func:`texture_distance` compares Gram matrices at efficientnet_lite0 layers that
:func:`~tfviz.synthesis.synthesize_texture` does not match (:data:`HELD_OUT_LAYERS`),
so a method cannot score well by matching its own loss harder; :func:`colour_distance`
compares the pixel colours (a grey source grown into a blue-speckled texture scores high).

Definitions
-----------
``texture_distance(a, b)``: for each layer ``l`` of ``layers``, the Gram matrix of the
activations divided by the number of positions, ``G = F F^T / (H W)`` (``F``: C x HW;
so images of any size compare), each image read at its own size; then

    d_l = ||G_a - G_b||_F / ((||G_a||_F + ||G_b||_F) / 2)

and the mean of ``d_l`` over the layers. Each ``d_l`` is free of the layer's scale and
lies in ``[0, 2]``: 0 for equal statistics, 2/3 for ``G_b = 2 G_a``, ``sqrt(2)`` for
two of equal norm with no channel in common, 2 when one is zero (Gram matrices are
positive semi-definite, so they never point apart). On the bundled textures two
256x256 crops of one photo score 0.14-0.50 and the photo against the other bundled
pictures 0.60-1.24, at least 2.1 times its floor (``python bench/bench_texture.py
--floors-only`` prints the table).

``colour_distance(a, b)``: a sliced Wasserstein-1 distance between the two sets of RGB
pixels. Along each of :data:`COLOUR_DIRECTIONS` (the three channel axes, the grey axis,
and 10 fixed random unit directions, seed 0, each in its 6 channel orders, so that red,
green and blue weigh alike) both pixel sets are projected and the 1-D Wasserstein-1
distance of the projections is taken exactly (the area between their distribution
functions, so the sets may differ in size). The mean over the directions is divided by
the mean of ``|d . (1, 1, 1)|``, so the result is in grey levels: a uniform brightness
shift of ``c`` grey levels reads ``c`` (all-black against all-white: 255); a shift of
one channel by ``c`` reads ``0.51 c``, whichever channel.
"""
from __future__ import annotations

from itertools import permutations

import numpy as np
import tensorflow as tf

from ..errors import UnknownLayerError
from ..images import load_image
from ..models import load_model
from .objectives import gram_matrix
from .optimize import forward_fn
from .recipe import check_spatial_layers

#: The layers of :func:`texture_distance`: the output of an efficientnet_lite0 stage at
#: each stride the texture loss works at -- 2, 4, 8 and 16 (stage 1 has one block and no
#: residual sum; the others end in one). None is a texture-loss layer (``stem_relu``,
#: ``block2a/3a/4a/5a_expand_relu``) and each lies past at least one depthwise 3x3
#: convolution after the nearest of them, so its Gram matrix depends on spatial
#: arrangements the loss's Gram matrices (one position at a time) do not fix. At stride 16,
#: ``block5c_add`` and not ``block4c_add``: block4c_add is one 1x1 convolution below
#: block5a_expand_relu, a loss layer, and the default synthesis matches it as well as
#: another crop of the source does; block5c_add feeds no loss layer. Stride 32
#: (``block6d_add``) is left out: 8x8 positions at 256 px, 4x4 at 128, too few for a
#: stable Gram matrix. The stride-2 layer is where a texture's look shows (contrast,
#: grain, edges): without it the default's washed-out, speckled gravel scored close to the
#: floor (bench/bench_texture.py).
HELD_OUT_LAYERS = ("block1a_project_bn", "block2b_add", "block3b_add", "block5c_add")
#: The fine (strides 2, 4) and coarse (8, 16) halves of :data:`HELD_OUT_LAYERS`: the
#: distance over all four is the mean of the distances over each half.
FINE_LAYERS, COARSE_LAYERS = HELD_OUT_LAYERS[:2], HELD_OUT_LAYERS[2:]


def _directions() -> np.ndarray:
    """The three channel axes, the grey axis, and 10 random unit vectors (seed 0) each in
    its 6 channel orders: 64 directions, a set no channel permutation changes (so red,
    green and blue weigh alike)."""
    rng = np.random.default_rng(0)
    d = rng.normal(size=(10, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    spun = [v[list(p)] for v in d for p in permutations(range(3))]
    return np.concatenate([np.eye(3), np.full((1, 3), 3 ** -0.5), spun]).astype(np.float64)


#: ``[64, 3]`` unit vectors in RGB space (see ``_directions``).
COLOUR_DIRECTIONS = _directions()

_BUNDLES: dict = {}   # the measure's default network, loaded once per process


def default_bundle():
    """efficientnet_lite0, loaded once per process and kept (the measure's network; its
    traced programs stay with it)."""
    if "efficientnet_lite0" not in _BUNDLES:
        _BUNDLES["efficientnet_lite0"] = load_model("efficientnet_lite0")
    return _BUNDLES["efficientnet_lite0"]


def _gram_program(bundle, layers):
    """A ``tf.function`` for ``[1, h, w, 3]`` model input of any size -> ``{layer: [C, C]}``
    Gram matrices over positions; traced once (the height and width are left open),
    cached in the bundle per layers."""
    def build():
        run = forward_fn(bundle, list(layers), False, True)

        @tf.function(input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)], autograph=False)
        def grams(x):
            _, feats = run(x)
            return {n: gram_matrix(feats[n])[0] for n in layers}
        return grams
    return bundle.programs.get("synthesis.texture_measure", tuple(layers), (), build)


def gram_statistics(image, bundle=None, layers=HELD_OUT_LAYERS) -> dict:
    """``{layer: [C, C] float64}``: the Gram matrices :func:`texture_distance` compares,
    of ``image`` (uint8 RGB array, path or bundled picture's name) at its own size.
    Compute them once to compare one image against many."""
    bundle = bundle if bundle is not None else default_bundle()
    layers = tuple(layers)
    check_spatial_layers(bundle, layers)
    img = load_image(image, min_side=bundle.min_input_side)
    x = tf.constant(np.asarray(bundle.preprocess(img[None]), np.float32))
    out = _gram_program(bundle, layers)(x)
    return {n: out[n].numpy().astype(np.float64) for n in layers}


def _relative(ga, gb) -> float:
    na, nb = np.linalg.norm(ga), np.linalg.norm(gb)
    if na + nb == 0:
        return 0.0
    return float(np.linalg.norm(ga - gb) / ((na + nb) / 2))


def texture_distance(a, b, bundle=None, layers=HELD_OUT_LAYERS) -> float:
    """Mean over ``layers`` of ``||G_a - G_b||_F / ((||G_a||_F + ||G_b||_F) / 2)`` (see
    the module's doc): 0 for the same statistics, at most 2. ``a``, ``b``: uint8 RGB
    images (arrays, paths or bundled names; any sizes) or dicts from
    :func:`gram_statistics`. ``bundle``: the network (default: efficientnet_lite0, loaded
    once); ``layers``: default :data:`HELD_OUT_LAYERS`."""
    layers = tuple(layers)
    ga = a if isinstance(a, dict) else gram_statistics(a, bundle, layers)
    gb = b if isinstance(b, dict) else gram_statistics(b, bundle, layers)
    missing = [n for n in layers if n not in ga or n not in gb]
    if missing:
        raise UnknownLayerError(f"no Gram matrix for layers {missing}: compute both with the same layers")
    return float(np.mean([_relative(ga[n], gb[n]) for n in layers]))


def _colours(image) -> tuple[np.ndarray, np.ndarray]:
    """The distinct RGB colours of ``image`` as 24-bit codes, and each one's share of the pixels."""
    px = load_image(image).reshape(-1, 3).astype(np.int64)
    codes, counts = np.unique((px[:, 0] << 16) | (px[:, 1] << 8) | px[:, 2], return_counts=True)
    return codes, counts / len(px)


def sliced_w1(a, b, directions=None) -> np.ndarray:
    """Exact 1-D Wasserstein-1 distance between the RGB pixels of ``a`` and ``b`` (any
    sizes) projected on each of ``directions`` (``[k, 3]``; default
    :data:`COLOUR_DIRECTIONS`) -> ``[k]``: the area between the two distribution functions
    of the projections. Computed on the distinct colours with their net share (a's minus
    b's): after one sort per direction their running sum is ``F_a - F_b``."""
    d = COLOUR_DIRECTIONS if directions is None else np.asarray(directions, np.float64)
    (ca, wa), (cb, wb) = _colours(a), _colours(b)
    codes, inverse = np.unique(np.concatenate([ca, cb]), return_inverse=True)
    net = np.zeros(len(codes))
    np.add.at(net, inverse, np.concatenate([wa, -wb]))
    rgb = np.stack([(codes >> 16) & 255, (codes >> 8) & 255, codes & 255], 1).astype(np.float64)
    out = np.zeros(len(d))
    for k, proj in enumerate((rgb @ d.T).T):
        order = np.argsort(proj)
        out[k] = np.sum(np.abs(np.cumsum(net[order])[:-1]) * np.diff(proj[order]))
    return out


def colour_distance(a, b) -> float:
    """Sliced Wasserstein-1 distance between the RGB pixels of ``a`` and ``b`` (uint8
    RGB arrays, paths or bundled names; any sizes), in grey levels: the mean over
    :data:`COLOUR_DIRECTIONS` of the 1-D distance of the projected pixels
    (:func:`sliced_w1`), divided by the mean of ``|d . (1, 1, 1)|`` so that a uniform
    shift of ``c`` grey levels reads ``c``."""
    return float(np.mean(sliced_w1(a, b)) / np.mean(np.abs(COLOUR_DIRECTIONS.sum(1))))
