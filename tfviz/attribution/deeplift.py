"""DeepLIFT with the rescale rule (Shrikumar, Greenside & Kundaje 2017).

DeepLIFT explains the *difference* of the target score from its value at a reference
input ``x'`` (the ``baseline``): each pixel gets ``(x - x') * m``, where the multiplier
``m`` is backpropagated like a gradient except at every element-wise nonlinearity
``y = f(z)``, which passes back ``(f(z) - f(z')) / (z - z')`` -- the slope of the secant
between the unit's input on the image and on the reference -- instead of ``f'(z)``
(``f'(z)`` where ``z`` and ``z'`` are too close to divide). Linear layers pass the
multiplier back unchanged, so where every nonlinearity is element-wise the attributions
sum to ``f(x) - f(x')`` exactly (completeness, "summation-to-delta"), and units that are
saturated or switched off on the image still get credit for what changed since the
reference (where the gradient is zero).

How it is computed: the "doubled batch" trick (as in DeepExplain and SHAP's
DeepExplainer). The image and its reference run through the model together as one batch
``concat([x, x'])``, through a copy of the model's graph (:func:`.heads.head`, rule in :mod:`.rules`, the
user's layers reused, nothing changed) in which every element-wise nonlinearity -- a
fused ``activation=`` of a Conv / Dense / ... layer (any activation but ``linear``),
``ReLU`` layers (``max_value``, ``threshold``, ``negative_slope``), ``LeakyReLU``,
``PReLU``, ``ELU``, ``Activation(...)`` of relu, relu6, sigmoid, tanh, swish / silu, gelu,
elu, selu, softplus, hard_sigmoid, ... and the ``keras.ops`` versions of these -- is
wrapped by a layer with the identical forward pass whose backward pass splits the batch
into its halves, applies the rescale multiplier to the image half and returns zeros for
the reference half. One backward pass of the image half's score then gives ``m``. It
needs layers that treat each batch item on its own (batch normalization in inference
mode does). A softmax is not element-wise and is never wrapped (scores are logits: a
final softmax is bypassed anyway).

Completeness is exact (up to float32 rounding) for networks whose only nonlinearities
are element-wise, with convolutions, dense layers, batch normalization (inference),
additions, padding and average pooling in between -- efficientnet_lite0 is one. Max
pooling, and products of two activations (squeeze-and-excitation, a swish written as
``x * sigmoid(x)`` with ``Multiply``), take the plain gradient there, and the sum is then
only approximately ``f(x) - f(x')``: ``return_delta=True`` reports the error.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .core import (DEFAULT_BATCH, check_finite, check_reduce, group_by_head, padded_batches, reduce_channels,
                   select_score, selection, substitute)
from .heads import head
from .registry import attribution_method
from .rules import ELEMENTWISE, deeplift_hook, nonlinearity  # noqa: F401 (old home)


# --------------------------------------------------------------------------- the program
def deeplift_function(bundle, layer=None):
    """``f(x, ref, sel) -> ((x - ref) * m, scores of x, scores of ref)`` for one
    head (logits when ``layer`` is None, else a unit's layer); traced once per shape."""
    def build():
        model = head(bundle, layer, "deeplift")

        @tf.function(autograph=False)
        def tfviz_deeplift(x, ref, sel):
            n = tf.shape(x)[0]
            both = tf.concat([x, ref], axis=0)
            with tf.GradientTape() as tape:
                tape.watch(both)
                out = model(both, training=False)
                sx = select_score(out[:n], sel)
                total = tf.reduce_sum(sx)
            g = tape.gradient(total, both)
            sr = select_score(out[n:], sel)
            if g is None:  # the score does not depend on the input
                g = tf.zeros_like(both)
            return (x - ref) * g[:n], sx, sr
        return tfviz_deeplift

    return bundle.programs.get("attribution.deeplift", layer, (), build)


@attribution_method
def deeplift(bundle, x, targets, *, baseline="black", reduce: str | None = "sum",
             return_delta: bool = False, batch_size: int = DEFAULT_BATCH):
    """DeepLIFT (rescale rule): ``(x - x') * m`` where ``m`` is the multiplier of the
    target score backpropagated with every element-wise nonlinearity passing back the
    secant slope ``(f(z) - f(z')) / (z - z')`` between the image and the reference
    ``x'`` instead of its derivative.

    ``baseline`` (the reference): ``"black"`` (default), ``"blur"``, ``"gray"``,
    ``"white"``, ``"zero"``, ``"mean"``, a gray level 0..255, an RGB triple, or images /
    an array (anything :mod:`tfviz.images` loads). Returns signed attributions
    ``[N, H, W]`` summed over color channels (``reduce=None``: ``[N, H, W, 3]``, RGB
    order). They sum to ``f(x) - f(x')`` exactly when every nonlinearity of the model is
    element-wise (max pooling and products of activations, e.g. squeeze-and-excitation,
    make it approximate); ``return_delta=True`` also returns that sum minus
    ``f(x) - f(x')`` per image. ``batch_size``: inputs through the model per call (an
    image and its reference count as two)."""
    check_reduce(reduce)
    ref = substitute(bundle, x, baseline, what="baseline")
    n = len(x)
    attr = np.zeros_like(x, dtype=np.float32)
    fx = np.zeros(n, np.float32)
    fr = np.zeros(n, np.float32)
    per_call = max(1, int(batch_size or DEFAULT_BATCH) // 2)  # the model sees image + reference
    for layer, ids in group_by_head(targets).items():
        f = deeplift_function(bundle, layer)
        rows = selection([targets[i] for i in ids])
        for it, real in padded_batches(len(ids), per_call):
            sel = ids[it]
            a, sx, sr = f(np.asarray(x[sel], np.float32), np.asarray(ref[sel], np.float32), rows[it])
            keep = sel[:real]
            attr[keep] = a.numpy()[:real]
            fx[keep] = sx.numpy()[:real]
            fr[keep] = sr.numpy()[:real]
    check_finite(fx, "scores", targets)
    check_finite(fr, "reference scores", targets)
    check_finite(attr, "DeepLIFT attributions", targets)
    delta = (attr.reshape(n, -1).sum(axis=1, dtype=np.float64) - (fx.astype(np.float64) - fr)).astype(np.float32)
    out = reduce_channels(bundle, attr, reduce)
    return (out, delta) if return_delta else out


