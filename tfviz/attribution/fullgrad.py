"""FullGrad (Srinivas & Fleuret, NeurIPS 2019, "Full-Gradient Representation for Neural
Network Visualization").

A network with biases is not explained by its input gradient alone. For a network that is
piecewise linear in its input *and* its biases together (ReLU, max and average pooling,
convolutions, dense layers, batch norm at inference, residual additions), Euler's theorem
gives the *full-gradient decomposition*::

    S(x) = sum(x * dS/dx) + sum_layers sum(b * dS/db)

where ``dS/db`` for a bias added at every position of a layer's output ``z`` is the sum
over positions of ``dS/dz``: each layer's *bias-gradient map* is ``b * dS/dz`` (the bias
broadcast over positions), and the decomposition sums it. Batch norm at inference is
``x * s + (beta - mean * s)``, ``s = gamma / sqrt(var + eps)``: its own bias
``beta - mean * s``; by default it is folded into the convolution (or dense layer) right
before it, one bias ``s * b_conv + beta - mean * s`` at the batch norm's output, which
gives the same sum. A ``Rescaling`` offset, a ``Normalization`` layer's shift and a
held input (:class:`tfviz.models.views.HeldInput`) are biases too.

The saliency map (the paper's, as its code does): ``|x * dS/dx|`` and every spatial
layer's ``|b * dS/dz|`` each shifted and scaled to ``[0, 1]`` over the whole map (all
channels and positions of one image: ``(m - min) / (max + 1e-6)``), summed over channels,
upsampled bilinearly to the input size and added. Everything -- the input gradient and
every layer's output gradient -- comes from one backward pass of one traced program.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from ..errors import UnsupportedModelError
from ..graph import Ref, linear_twin
from ..keras_internals import call_nodes
from ..models import iter_layers
from ..models.views import BypassActivation, HeldInput
from .ablation import apply_score, bn_scale_shift, flat_graph, run_node
from .core import (DEFAULT_BATCH, SEL_WIDTH, check_finite, group_by_head, padded_batches, select_score, selection,
                   to_rgb_order)
from .registry import attribution_method

L = keras.layers

#: Layers whose output is ``linear(x) + bias`` (the bias per channel, or per output unit).
AFFINE_LAYERS = (L.Conv1D, L.Conv2D, L.Conv3D, L.Conv1DTranspose, L.Conv2DTranspose, L.Conv3DTranspose,
                 L.DepthwiseConv1D, L.DepthwiseConv2D, L.SeparableConv1D, L.SeparableConv2D, L.Dense, L.EinsumDense)
#: Normalizations with an offset added after normalizing.
NORM_LAYERS = (L.BatchNormalization, L.LayerNormalization, L.GroupNormalization)
#: Layers with weights but no bias (a per-channel slope or scale).
NO_BIAS_LAYERS = (L.PReLU, L.Embedding)
NO_BIAS_NAMES = ("LayerScale",)  # keras.applications ConvNeXt's per-channel scale
#: Minimum of a post-processed map's denominator (the paper's code).
POST_EPS = 1e-6


def bias_reason(layer) -> str | None:
    """Why full_grad cannot follow ``layer``'s bias, or None: it knows where the bias is in
    convolutions, dense layers, normalizations, rescaling and held inputs, and that layers
    with no weights add none."""
    if isinstance(layer, (keras.Model, L.InputLayer, BypassActivation, HeldInput)):
        return None
    if isinstance(layer, AFFINE_LAYERS + NORM_LAYERS + NO_BIAS_LAYERS + (L.Rescaling, L.Normalization)):
        return None
    if type(layer).__name__ in NO_BIAS_NAMES or not layer.weights:
        return None
    if isinstance(layer, L.MultiHeadAttention):
        return (f"layer {layer.name!r} (MultiHeadAttention) adds the biases of its query, key, value and output "
                f"projections inside its own call, where full_grad cannot reach their gradients")
    return (f"layer {layer.name!r} ({type(layer).__name__}) has weights, and full_grad cannot tell whether it adds "
            f"a bias (FullGrad sums the gradient of every bias; it follows convolutions, dense layers and "
            f"normalizations)")


def full_grad_reason(bundle) -> str | None:
    """None when full_grad can explain ``bundle``'s model, else why not (one line)."""
    def build():
        for _, layer, _ in iter_layers(bundle.model):
            reason = bias_reason(layer)
            if reason is not None:
                return reason
        return None
    return bundle.programs.get("attribution.full_grad_reason", build=build)


# --------------------------------------------------------------------------- where the biases are
def _channel_axis(layer, rank: int) -> int:
    if isinstance(layer, L.BatchNormalization):
        return int(layer.axis) % rank
    if isinstance(layer, (L.LayerNormalization, L.GroupNormalization)):
        axis = layer.axis if isinstance(layer.axis, int) else (layer.axis[0] if len(layer.axis) == 1 else None)
        if axis is None:
            raise UnsupportedModelError(f"layer {layer.name!r} normalizes over several axes {layer.axis}; full_grad "
                                        f"follows an offset on one axis")
        return int(axis) % rank
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        return 1
    return rank - 1


def _along(v, axis: int, rank: int):
    """A vector as a tensor broadcasting along ``axis`` of a rank-``rank`` tensor."""
    if len(v.shape) != 1:
        return v  # already shaped like the output's trailing dimensions (EinsumDense)
    shape = [1] * rank
    shape[axis] = -1
    return tf.reshape(v, shape)


def _bias_of(layer, rank: int):
    """``layer``'s bias as a function of its variables (read in the traced program), shaped
    to broadcast against its output; None when it adds none."""
    if isinstance(layer, AFFINE_LAYERS):
        if getattr(layer, "bias", None) is None:
            return None
        axis = _channel_axis(layer, rank)
        return lambda: _along(tf.convert_to_tensor(layer.bias), axis, rank)
    if isinstance(layer, L.BatchNormalization):
        axis = _channel_axis(layer, rank)
        return lambda: _along(bn_scale_shift(layer)[1], axis, rank)
    if isinstance(layer, (L.LayerNormalization, L.GroupNormalization)):
        if not layer.center or getattr(layer, "rms_scaling", False):
            return None
        axis = _channel_axis(layer, rank)
        return lambda: _along(tf.convert_to_tensor(layer.beta), axis, rank)
    if isinstance(layer, L.Rescaling):
        if np.all(np.asarray(layer.offset) == 0):
            return None
        return lambda: tf.constant(np.asarray(layer.offset, np.float32))
    if isinstance(layer, L.Normalization):
        mean, var = layer.mean, layer.variance
        if layer.invert:
            return lambda: tf.convert_to_tensor(mean)
        return lambda: -tf.convert_to_tensor(mean) / tf.maximum(tf.sqrt(tf.convert_to_tensor(var)),
                                                                keras.backend.epsilon())
    return None


@dataclass
class BiasPoint:
    """A layer's bias: ``tensor`` is where it is added (the pre-activation of a fused
    activation), ``bias()`` its value broadcasting against it; ``layer`` names it."""
    layer: object
    tensor: object
    bias: object
    source: object = None     # the layer's input (batch norm: to fold the layer before it)

    @property
    def name(self) -> str:
        return self.layer.name

    @property
    def spatial(self) -> bool:
        """A map ``[N, h, w, C]``: it gets a saliency map of its own."""
        return len(self.tensor.shape) == 4


@dataclass
class FullGradPlan:
    model: keras.Model
    nodes: list
    points: list
    keep: list               # Refs to the linear twins the graph calls


def _unwrap(op):
    return op.inner if isinstance(op, BypassActivation) else op


def full_grad_plan(bundle, head_layer, fold_batchnorm: bool = True) -> FullGradPlan:
    """The cached :class:`FullGradPlan` of a head: the score source's graph, flat, with
    every fused activation of a layer with a bias split from it (its linear twin, then the
    activation), and the bias points in graph order."""
    def build():
        reason = full_grad_reason(bundle)
        if reason is not None:
            raise UnsupportedModelError(reason)
        found, keep = [], []

        def replace(op):
            layer = _unwrap(op)
            if isinstance(op, HeldInput):
                return lambda *a, **k: _record_held(found, op, op(*a, **k))
            if not isinstance(layer, AFFINE_LAYERS + NORM_LAYERS + (L.Rescaling, L.Normalization)):
                return None
            act = getattr(layer, "activation", None)
            fused = (not isinstance(op, BypassActivation) and act is not None
                     and getattr(act, "__name__", "linear") != "linear")
            if fused and getattr(layer, "bias", None) is not None:
                def split(x, *a, **k):
                    twin = Ref(linear_twin(layer, tuple(x.shape)))
                    keep.append(twin)
                    pre = twin.obj(x, *a, **k)
                    _record(found, layer, pre, x)
                    return L.Activation(act, name=f"{layer.name}_activation")(pre)
                return split

            def plain(x, *a, **k):
                out = op(x, *a, **k)
                _record(found, layer, out, x)
                return out
            return plain

        model, _ = flat_graph(bundle, head_layer, replace=replace)
        nodes = call_nodes(model)
        in_graph = {id(t) for n in nodes for t in n.outputs}
        points = [p for p in found if id(p.tensor) in in_graph]
        if fold_batchnorm:
            points = _fold(points, nodes, model.outputs[0])
        return FullGradPlan(model, nodes, points, keep)
    return bundle.programs.get("attribution.full_grad_plan", (head_layer,) if head_layer else (),
                               (head_layer, bool(fold_batchnorm)), build)


def _record(found, layer, out, x):
    bias = _bias_of(layer, len(out.shape))
    if bias is not None:
        found.append(BiasPoint(layer, out, bias, x))
    return out


def _record_held(found, layer, out):
    found.append(BiasPoint(layer, out, None))
    return out


def _fold(points, nodes, main):
    """Each batch norm right after a layer whose output only it reads (no activation in
    between): one bias point, ``s * b + t`` at the batch norm's output."""
    readers: dict = {}
    for node in nodes:
        for t in node.arguments.keras_tensors:
            readers[id(t)] = readers.get(id(t), 0) + 1
    by_tensor = {id(p.tensor): p for p in points}
    dropped = set()
    out = []
    for p in points:
        before = by_tensor.get(id(p.source)) if isinstance(p.layer, L.BatchNormalization) else None
        if (before is not None and isinstance(before.layer, AFFINE_LAYERS) and readers.get(id(before.tensor)) == 1
                and before.tensor is not main):
            dropped.add(id(before.tensor))
            bn, rank = p.layer, len(p.tensor.shape)
            axis = _channel_axis(bn, rank)
            conv_bias = before.bias

            def folded(bn=bn, axis=axis, rank=rank, conv_bias=conv_bias):
                s, t = bn_scale_shift(bn)
                return _along(t, axis, rank) + _along(s, axis, rank) * conv_bias()
            p = BiasPoint(p.layer, p.tensor, folded, p.source)
        out.append(p)
    return [p for p in out if id(p.tensor) not in dropped]


def bias_layers(bundle, fold_batchnorm: bool = True) -> list:
    """The names of the layers whose biases :func:`full_grad` sums, in the order of the
    columns of its ``post=False`` bias parts (the logits' graph; a folded batch norm
    is named, the layer before it is not)."""
    return [p.name for p in full_grad_plan(bundle, None, fold_batchnorm).points]


# --------------------------------------------------------------------------- the program
def _post(m):
    """``|m|`` shifted and scaled to ``[0, 1]`` over all of one image's axes, summed over
    channels (the paper's code): ``[B, h, w, C] -> [B, h, w]``."""
    m = tf.abs(m)
    axes = list(range(1, len(m.shape)))
    m = m - tf.reduce_min(m, axis=axes, keepdims=True)
    m = m / (tf.reduce_max(m, axis=axes, keepdims=True) + POST_EPS)
    return tf.reduce_sum(m, axis=-1)


def full_grad_function(bundle, head_layer, fold_batchnorm: bool = True):
    """``f(x, sel) -> (scores [B], x * dS/dx [B,H,W,C], bias parts [B, P], map [B,H,W])``
    (``P`` bias points of the head's plan): one forward and one backward pass."""
    plan = full_grad_plan(bundle, head_layer, fold_batchnorm)

    def build():
        inp = plan.model.inputs[0]
        spec = tf.TensorSpec([None] + list(inp.shape[1:]), inp.dtype)
        watch = {id(p.tensor) for p in plan.points}

        @tf.function(autograph=False, input_signature=[spec, tf.TensorSpec([None, SEL_WIDTH], tf.int32)])
        def tfviz_full_grad(x, sel):
            with tf.GradientTape() as tape:
                tape.watch(x)
                vals = {id(inp): x}
                for node in plan.nodes:
                    run_node(node, vals)
                    for t in node.outputs:
                        if id(t) in watch:  # a held input does not depend on x: the tape must watch it
                            tape.watch(vals[id(t)])
                s = select_score(apply_score(vals[id(plan.model.outputs[0])], head_layer), sel)
                total = tf.reduce_sum(s)
            zs = [vals[id(p.tensor)] for p in plan.points]
            grads = tape.gradient(total, [x] + zs)
            gx = grads[0] if grads[0] is not None else tf.zeros_like(x)
            xg = x * gx
            hw = tf.shape(x)[1:3]
            saliency = _post(xg)
            parts = []
            for p, z, g in zip(plan.points, zs, grads[1:]):
                if g is None:  # after a unit's layer: no part of this score
                    parts.append(tf.zeros_like(s))
                    continue
                bg = g * tf.cast(z if p.bias is None else p.bias(), g.dtype)
                parts.append(tf.reduce_sum(tf.reshape(bg, [tf.shape(bg)[0], -1]), axis=1))
                if p.spatial:
                    saliency += tf.image.resize(_post(bg)[..., None], hw, method="bilinear")[..., 0]
            parts = tf.stack(parts, axis=1) if parts else tf.zeros([tf.shape(x)[0], 0], x.dtype)
            return s, xg, parts, saliency
        return tfviz_full_grad
    return bundle.programs.get("attribution.full_grad", (head_layer,) if head_layer else (),
                               (head_layer, bool(fold_batchnorm)), build)


@attribution_method(applies=full_grad_reason)
def full_grad(bundle, x, targets, *, post: bool = True, fold_batchnorm: bool = True,
              batch_size: int = DEFAULT_BATCH):
    """FullGrad saliency ``[N, H, W]`` (>= 0; Srinivas & Fleuret 2019): the input gradient
    times the input plus, for every convolution, dense layer and batch norm, the gradient
    of the score with respect to the layer's output times its bias (the *bias-gradient*
    map) -- each map's absolute value scaled to ``[0, 1]`` per image, summed over
    channels, upsampled bilinearly to the input size, and the maps added (the paper's
    post-processing). One forward and one backward pass.

    ``post=False``: the raw signed parts instead, ``(x * dS/dx [N, H, W, 3] (RGB order),
    bias parts [N, P])``, column ``p`` the sum of layer ``p``'s ``bias * dS/dz`` (the layers
    of :func:`tfviz.attribution.fullgrad.bias_layers`). For a piecewise-linear network
    (ReLU, pooling, convolutions, dense layers, batch norm, residual additions) they sum
    to the score exactly -- the full-gradient completeness; saturating activations (ReLU6,
    sigmoid, swish) hold implicit biases it leaves out.

    ``fold_batchnorm``: a batch norm right after a convolution or dense layer counts as one
    layer with one bias (default); ``False`` gives each its own map, as the paper's code
    does. Models with a layer whose bias full_grad cannot follow (an attention layer, a
    custom layer with weights) are refused."""
    n = len(x)
    xg_out = parts_out = maps = None
    for head_layer, ids in group_by_head(targets).items():
        f = full_grad_function(bundle, head_layer, fold_batchnorm)
        columns = bias_layers(bundle, fold_batchnorm) if not post else None
        names = [p.name for p in full_grad_plan(bundle, head_layer, fold_batchnorm).points]
        rows = selection([targets[i] for i in ids])
        for it, real in padded_batches(len(ids), batch_size):
            sel = ids[it][:real]
            _, xg, parts, sal = f(x[ids[it]], rows[it])
            if post:
                if maps is None:
                    maps = np.zeros((n,) + tuple(sal.shape[1:]), np.float32)
                maps[sel] = sal.numpy()[:real]
                continue
            if xg_out is None:
                xg_out = np.zeros((n,) + tuple(xg.shape[1:]), np.float32)
                parts_out = np.zeros((n, len(columns)), np.float32)
            xg_out[sel] = xg.numpy()[:real]
            got = parts.numpy()[:real]
            for j, name in enumerate(names):
                if name in columns:
                    parts_out[sel, columns.index(name)] += got[:, j]
    if post:
        return check_finite(maps, "FullGrad maps", targets)
    check_finite(xg_out, "input gradients", targets)
    return to_rgb_order(bundle, xg_out), check_finite(parts_out, "bias gradients", targets)
