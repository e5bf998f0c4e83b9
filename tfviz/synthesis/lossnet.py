"""The loss network of the statistics-matching recipes (inversion, texture, style):
which layers and feature transform each model family uses
(:data:`LOSS_NETWORKS`, :func:`loss_network`), and the memory estimate that refuses sizes
that would not fit. The helpers the recipes share are in :mod:`.recipe`."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from ..models import iter_layers, output_shape
from . import recipe as _recipe
from .optimize import LBFGS, SynthesisError, _optimizer

MEMORY_HEADROOM = 0.7       # use at most this share of the free memory


@dataclass(frozen=True)
class LossNetwork:
    """Which layers of a model the style methods read, and how.

    ``content_layer``: the layer whose activations the content loss matches;
    ``style_layers``: ``{layer: weight}`` whose Gram matrices the style and texture
    losses match; ``transform``: the feature transform applied before both (see
    :func:`tfviz.synthesis.objectives.feature_transform`); ``inversion_layers``: the
    layers of an inversion strip, first block to last; ``texture_layers``: the texture
    loss's layers when they differ from the style's. The texture defaults:
    ``histogram_weight`` (Risser et al.'s histogram loss beside the Gram loss's 1),
    ``color_weight`` (the pixel colour histogram loss), ``match_colors`` (the colour
    transfer after the run), ``texture_scales`` (coarse-to-fine stages, fractions of the
    size) and ``texture_steps`` (L-BFGS steps per stage)."""
    family: str
    content_layer: str
    style_layers: dict
    transform: str | None = None
    inversion_layers: tuple = ()
    texture_layers: dict | None = None
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 5.0
    texture_tv_weight: float = 2.0
    histogram_weight: float = 1.0
    color_weight: float = 0.1
    match_colors: str | None = "histogram"
    texture_scales: tuple = (0.5, 1.0)
    texture_steps: tuple = (100, 100)

    @property
    def texture(self) -> dict:
        return dict(self.texture_layers or self.style_layers)


#: Per-model defaults. VGG's are the papers' (Gatys et al. use conv1_1 ... conv5_1 and
#: conv4_2 on VGG19; Johnson et al. relu1_2 ... relu4_3 and relu3_3 on VGG16). The
#: efficientnet_lite0 entry was chosen by comparing candidates side by side
#: (examples/style_candidates.py, docs/img/style_candidates.jpg).
LOSS_NETWORKS = {
    "efficientnet_lite0": LossNetwork(
        family="efficientnet_lite0",
        content_layer="block4c_add",
        style_layers={"stem_relu": 1.0, "block2a_expand_relu": 1.0, "block3a_expand_relu": 1.0,
                      "block4a_expand_relu": 1.0, "block5a_expand_relu": 1.0},
        transform=None,
        inversion_layers=("stem_relu", "block2b_add", "block3b_add", "block4c_add", "block5c_add",
                          "block6d_add", "top_relu"),
        content_weight=1.0, style_weight=10.0, tv_weight=5.0, texture_tv_weight=0.5),
    "vgg16": LossNetwork(
        family="vgg16", content_layer="block3_conv3",
        style_layers={"block1_conv2": 1.0, "block2_conv2": 1.0, "block3_conv3": 1.0, "block4_conv3": 1.0},
        inversion_layers=("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3", "block5_conv3"),
        content_weight=1.0, style_weight=10.0, tv_weight=1.0),
    "vgg19": LossNetwork(
        family="vgg19", content_layer="block4_conv2",
        style_layers={"block1_conv1": 1.0, "block2_conv1": 1.0, "block3_conv1": 1.0, "block4_conv1": 1.0,
                      "block5_conv1": 1.0},
        inversion_layers=("block1_conv2", "block2_conv2", "block3_conv4", "block4_conv4", "block5_conv4"),
        content_weight=1.0, style_weight=10.0, tv_weight=1.0),
    # One layer of random filters (tfviz.zoo.random_multiscale, Ustyuzhaninov et al. 2017):
    # every scale's ReLU, each its own Gram term; content at a middle scale (15 px). Texture
    # TV 0.1, by eye on the bundled textures at 128 px: 0.5 and more blur them (the 3 px
    # scale already holds pixel noise down) and brighten the image's edges.
    "random_multiscale": LossNetwork(
        family="random_multiscale", content_layer="scale15_relu",
        style_layers={f"scale{s}_relu": 1.0 for s in (1, 3, 5, 7, 11, 15, 23, 37, 55)},
        transform=None,
        inversion_layers=tuple(f"scale{s}_relu" for s in (1, 3, 5, 7, 11, 15, 23, 37, 55)),
        texture_tv_weight=0.1),
}


def _family(bundle) -> str | None:
    names = set(bundle.layer_paths())
    if {"stem_relu", "block4c_add", "block5a_expand_relu", "top_relu"} <= names:
        return "efficientnet_lite0"
    if {"subtract_mean", *LOSS_NETWORKS["random_multiscale"].style_layers} <= names:
        return "random_multiscale"
    if "block5_conv4" in names and "block4_conv2" in names:
        return "vgg19"
    if "block5_conv3" in names and "block5_conv4" not in names and "block3_conv3" in names:
        return "vgg16"
    return None


def stage_ends(bundle) -> list[str]:
    """The last spatial layer of each resolution, input to output (any model)."""
    ends, last_hw = [], None
    for path, layer, _ in iter_layers(bundle.model):
        s = output_shape(layer)
        if s is None or len(s) != 4 or path == bundle.model.layers[0].name:
            continue
        if type(layer).__name__ == "InputLayer":
            continue
        hw = tuple(s[1:3])
        if hw != last_hw:
            ends.append(path)
            last_hw = hw
        else:
            ends[-1] = path
    return ends


def loss_network(bundle) -> LossNetwork:
    """The default :class:`LossNetwork` of ``bundle``'s model: the tuned entry of
    :data:`LOSS_NETWORKS` for efficientnet_lite0, random_multiscale, VGG16 and VGG19; for
    other models the last layer of each resolution (style: all but the deepest; content:
    the middle one)."""
    fam = _family(bundle)
    if fam is not None:
        return LOSS_NETWORKS[fam]
    ends = stage_ends(bundle)
    if not ends:
        raise SynthesisError(f"model {bundle.name!r} has no spatial layers: style and texture methods match "
                             "statistics of convolutional feature maps")
    style = ends[:-1] if len(ends) > 2 else ends
    return LossNetwork(family="generic", content_layer=ends[len(ends) // 2],
                       style_layers={n: 1.0 for n in style[:5]}, inversion_layers=tuple(ends))


# ---------------------------------------------------------------------- memory
def available_memory() -> int:
    """Bytes this process can still allocate: the smaller of the system's available
    memory and the cgroup's limit minus its usage."""
    avail = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = 8 << 30
    try:
        with open("/sys/fs/cgroup/memory.max") as fh:
            lim = fh.read().strip()
        if lim != "max":
            with open("/sys/fs/cgroup/memory.current") as fh:
                used = int(fh.read().strip())
            avail = min(avail, int(lim) - used)
    except (OSError, ValueError):
        pass
    return int(avail)


def _bytes_per_pixel(bundle, layers) -> float:
    """Float32 activation bytes per input pixel of one forward pass up to the deepest
    of ``layers`` (every layer's output counted, at the model's input size); cached."""
    return bundle.programs.get("style.bytes_per_pixel", tuple(layers), (), lambda: _count_bytes(bundle, layers))


def _count_bytes(bundle, layers) -> float:
    h, w = (int(s) for s in bundle.input_size)
    order = [p for p, _, _ in iter_layers(bundle.model)]
    wanted = {p for p, layer, _ in iter_layers(bundle.model) if p in layers or layer.name in layers}
    deepest = max((order.index(p) for p in wanted), default=len(order) - 1)
    total = 0
    for i, (p, layer, _) in enumerate(iter_layers(bundle.model)):
        if i > deepest:
            break
        s = output_shape(layer)
        if s is None or len(s) != 4 or s[1] is None:
            continue
        total += int(np.prod([int(d) for d in s[1:]]))
    return 4.0 * total / (h * w)


def estimate_memory(bundle, layers, hw, optimizer="lbfgs") -> int:
    """Bytes one optimization step of an ``hw`` image through ``layers`` needs: the
    activations kept for the backward pass and their gradients (3x one forward), plus
    L-BFGS's curvature pairs (float64, ``2 * memory + 6`` copies of the image)."""
    h, w = hw
    act = 3.0 * _bytes_per_pixel(bundle, list(layers)) * h * w
    opt = _optimizer(optimizer) if isinstance(optimizer, str) else optimizer
    copies = 2 * opt.memory + 6 if isinstance(opt, LBFGS) else 4
    return int(act + copies * 8.0 * h * w * 3 + (256 << 20))


def check_fits(bundle, layers, hw, optimizer="lbfgs", memory_limit: int | None = None) -> None:
    """Refuse, before any work, an image too large for the free memory, naming the
    largest size that fits."""
    limit = int((memory_limit if memory_limit is not None else available_memory()) * MEMORY_HEADROOM)
    need = estimate_memory(bundle, layers, hw, optimizer)
    if need <= limit:
        return
    h, w = hw
    scale = math.sqrt(max(limit - (256 << 20), 1) / max(need - (256 << 20), 1))
    side = int(max(h, w) * scale) // 16 * 16
    raise SynthesisError(
        f"a {w}x{h} image needs about {need / 2**30:.1f} GB here and about {limit / 2**30:.1f} GB can be used: "
        f"the largest that fits is about {max(side, 16)} px on the longer side"
        + ("; run coarse-to-fine up to that size" if side >= 64 else ""))


# ---------------------------------------------------------------------- old names
# Deprecated: the helpers the recipes share moved to :mod:`.recipe` under public names;
# their old names here (``from tfviz.synthesis.lossnet import _grams``) keep working.
_MOVED_TO_RECIPE = {
    "_hw_longer": "hw_longer", "_check_positive_int": "check_positive_int", "_check_weight": "check_weight",
    "_size_arg": "check_size", "_features": "layer_features", "_grams": "layer_grams",
    "_spatial_layers": "check_spatial_layers", "_tv": "tv_term", "_lbfgs_or_adam": "lbfgs_or_adam",
    "_shift_callbacks": "shift_callbacks", "_merge": "merge_results", "_ended": "run_ended",
    "_layer_weights": "layer_weights"}
_stage_ends = stage_ends   # deprecated name of stage_ends


def __getattr__(name):
    if name in _MOVED_TO_RECIPE:
        return getattr(_recipe, _MOVED_TO_RECIPE[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
