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
``concat([x, x'])``, through a copy of the model's graph (:func:`.graph.head`, the
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

from .core import DEFAULT_BATCH, run

#: Activation names (``activation.__name__``) that act element-wise. ``linear`` is left
#: out (nothing to wrap), and so are softmax / log_softmax / sparsemax / glu (not
#: element-wise).
ELEMENTWISE = frozenset({
    "relu", "relu6", "leaky_relu", "elu", "selu", "celu", "gelu", "silu", "swish", "hard_silu", "hard_swish",
    "mish", "sigmoid", "hard_sigmoid", "sparse_sigmoid", "log_sigmoid", "tanh", "hard_tanh", "tanh_shrink",
    "softplus", "softsign", "sparse_plus", "squareplus", "soft_shrink", "hard_shrink", "threshold",
    "exponential",
})

#: ``keras.ops`` operations (classes in :func:`tfviz.keras_internals.ops_nn` / ``ops_numpy``) that act
#: element-wise on their single input.
_OP_NAMES = ("Relu", "Relu6", "LeakyRelu", "Elu", "Selu", "Celu", "Gelu", "Silu", "HardSilu", "Sigmoid",
             "HardSigmoid", "SparseSigmoid", "LogSigmoid", "HardTanh", "TanhShrink", "Softplus", "Softsign",
             "SparsePlus", "Squareplus", "SoftShrink", "HardShrink", "Threshold")

_EPS = 1e-6


def _op_classes():
    from ..keras_internals import ops_nn, ops_numpy
    ops_nn, ops_np = ops_nn(), ops_numpy()
    found = [getattr(ops_nn, n, None) for n in _OP_NAMES] + [getattr(ops_np, "Tanh", None)]
    return tuple(c for c in found if isinstance(c, type))


def nonlinearity(op) -> str | None:
    """``"fused"`` when ``op`` (a layer or a keras.ops operation of a Functional graph)
    is a layer with an element-wise ``activation`` other than linear, ``"standalone"``
    when ``op`` itself is an element-wise nonlinearity, else ``None``."""
    import keras
    from .guided import activation_name
    L = keras.layers
    if isinstance(op, (L.ReLU, L.LeakyReLU, L.PReLU, L.ELU)):
        return "standalone"
    if isinstance(op, L.Activation):
        return "standalone" if activation_name(op.activation) in ELEMENTWISE else None
    if isinstance(op, _op_classes()):
        return "standalone"
    if isinstance(op, L.Layer) and not isinstance(op, (L.RNN, keras.Model)):
        act = getattr(op, "activation", None)
        if callable(act) and activation_name(act) in ELEMENTWISE:
            return "fused"
    return None


# --------------------------------------------------------------------------- the wrapper
def _rescale(z, forward):
    """``forward(z)`` with the rescale rule as its backward pass; ``z`` is the doubled
    batch ``[x half; reference half]``."""
    import tensorflow as tf

    @tf.custom_gradient
    def f(t):
        y = forward(t)

        def grad(dy, variables=None):
            n = tf.shape(t)[0] // 2
            zx, zr = t[:n], t[n:]
            dz = zx - zr
            with tf.GradientTape() as tape:
                tape.watch(zx)
                fx = forward(zx)
            local = tape.gradient(fx, zx)  # element-wise: d sum f(z) / dz = f'(z)
            if local is None:  # pragma: no cover - a constant activation
                local = tf.zeros_like(zx)
            # the secant's slope where z moved enough to divide (relative to its size:
            # float32 differences below that are rounding noise), else the derivative
            far = tf.abs(dz) > _EPS * (1.0 + tf.maximum(tf.abs(zx), tf.abs(zr)))
            secant = (y[:n] - y[n:]) / tf.where(far, dz, tf.ones_like(dz))
            m = tf.where(far, secant, tf.cast(local, dz.dtype))
            gx = dy[:n] * m
            dt = tf.concat([gx, tf.zeros_like(gx)], axis=0)
            if variables:  # e.g. PReLU's slopes: attributions do not need their gradient
                return dt, [tf.zeros_like(v) for v in variables]
            return dt
        return y, grad
    return f(z)


def RescaleNonlinearity(op, kind):  # noqa: N802 - named as the layer it makes
    """An element-wise nonlinearity call with the rescale backward pass."""
    from .guided import wrap_activation
    return wrap_activation(op, kind == "fused", "deeplift", _rescale)


def replace_hook(op):
    """The :class:`tfviz.graph.Rewriter` hook of ``head(..., relu="deeplift")``."""
    kind = nonlinearity(op)
    return None if kind is None else RescaleNonlinearity(op, kind)


# --------------------------------------------------------------------------- the program
def deeplift_function(bundle, layer=None):
    """``f(x, ref, idx, ys, xs) -> ((x - ref) * m, scores of x, scores of ref)`` for one
    head (logits when ``layer`` is None, else a unit's layer); traced once per shape."""
    def build():
        import tensorflow as tf

        from .core import select_score
        from .graph import head
        model = head(bundle, layer, "deeplift")

        @tf.function(autograph=False)
        def tfviz_deeplift(x, ref, idx, ys, xs):
            n = tf.shape(x)[0]
            both = tf.concat([x, ref], axis=0)
            with tf.GradientTape() as tape:
                tape.watch(both)
                out = model(both, training=False)
                sx = select_score(out[:n], idx, ys, xs)
                total = tf.reduce_sum(sx)
            g = tape.gradient(total, both)
            sr = select_score(out[n:], idx, ys, xs)
            if g is None:  # the score does not depend on the input
                g = tf.zeros_like(both)
            return (x - ref) * g[:n], sx, sr
        return tfviz_deeplift

    return bundle.programs.get("attribution.deeplift", layer, (), build)


def _deeplift_x(bundle, x, targets, baseline="black", reduce="sum", return_delta=False,
                batch_size=DEFAULT_BATCH):
    from .core import check_finite, check_reduce, group_by_head, padded_batches, reduce_channels, selection, substitute
    check_reduce(reduce)
    ref = substitute(bundle, x, baseline, what="baseline")
    n = len(x)
    attr = np.zeros_like(x, dtype=np.float32)
    fx = np.zeros(n, np.float32)
    fr = np.zeros(n, np.float32)
    per_call = max(1, int(batch_size or DEFAULT_BATCH) // 2)  # the model sees image + reference
    for layer, ids in group_by_head(targets).items():
        f = deeplift_function(bundle, layer)
        idx, ys, xs = selection([targets[i] for i in ids])
        for it, real in padded_batches(len(ids), per_call):
            sel = ids[it]
            a, sx, sr = f(np.asarray(x[sel], np.float32), np.asarray(ref[sel], np.float32), idx[it], ys[it],
                          xs[it])
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


def deeplift(bundle, images, target=None, *, baseline="black", reduce: str | None = "sum",
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
    return run(_deeplift_x, bundle, images, target, baseline=baseline, reduce=reduce, return_delta=return_delta,
               batch_size=batch_size)


deeplift._on_inputs = _deeplift_x
