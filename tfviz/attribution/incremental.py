"""Incremental occlusion (Nakandala et al., SIGMOD 2019, "Krypton"): re-run only what a
patch can change.

Covering a patch changes only the units whose receptive field touches it -- its
*projective field*. The image's activations are computed once (per image); then, for a
batch of patch positions, every spatial layer recomputes only a window around the
patch's projective field and reads everything else from those cached activations.

How it runs. The model's graph (nested models expanded) is walked once in numpy to make
a *plan*: per spatial tensor and per axis, the changed interval ``[lo, hi)`` of every
patch position, and a window of one static size per tensor (the largest interval; at
the border it is shifted inward, so every batch item has the same shape). A layer that
slides a window (``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``, max / average
pooling) gathers its input window from the cached input (padded once the way TF pads
``'same'``: ``pad_before = total // 2``), inserts the changed input window by index
arithmetic, and runs its own kernel with ``'valid'`` padding (a segmentation head's fused
softmax runs as its linear twin, as the score needs); layers that act on each position
alone (batch norm in inference, layer norm over channels, activations, dropout, a
``Dense`` on a map, ConvNeXt's ``LayerScale``) run on the window; merges (``Add``,
``Multiply``, ``Concatenate`` ..., and ``x + y`` written as an operator) take the union
of their inputs' windows; zero padding and cropping move the window. A window
that covers its whole map turns into a full map and the rest of the graph runs as usual
(as in efficientnet_lite0's last stages); global pooling and the dense head run in full.
Everything is batched with ``tf.gather`` inside one ``tf.function`` per shape.

``inference="approximate"`` adds Krypton's two approximations: a projective-field
threshold ``tau`` (a window never grows past ``tau`` of its map; what lies outside is
read from the cache), and adaptive drill-down (a coarse stride first; the fine stride
only where the coarse map drops most). :func:`fidelity` measures how far such a map is
from the exact one.

Models the planner cannot follow (subclassed models, a global-context gate such as
squeeze-and-excitation multiplying a map that is not yet fully changed, layer types it
does not know) raise :class:`IncrementalUnsupported` internally; :func:`tfviz.attribution.occlusion`
then warns once (a ``UserWarning`` naming the reason) and falls back to full re-inference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import tensorflow as tf
from keras import Model, layers, ops
from scipy.stats import spearmanr

from ..graph import Rewriter, graph_kind
from ..keras_internals import call_nodes, ops_numpy
from ..models.views import BypassActivation
from .core import as_bundle
from .errors import AttributionError
from .heads import head
from .patch_grid import PatchGrid

INFERENCE_MODES = ("auto", "incremental", "approximate", "full")
MIN_SAVING = 1.2             # auto mode: below this multiply-add saving, the windows' gathers and a
                             # second traced program cost more than they save (NASNetMobile at 96 px:
                             # 1.08x fewer multiply-adds, 3.7x slower than full)
DEFAULT_TAU = 0.9            # approximate mode: windows grow to at most 90% of their map
DEFAULT_COARSE = 2           # approximate mode: the coarse stride is 2x the stride
DEFAULT_REFINE = 0.5         # approximate mode: fraction of the fine positions re-run

# Layers that slide a window over the map (their kernel reruns on a window of its input).
_WINDOW_LAYERS = (layers.Conv2D, layers.DepthwiseConv2D, layers.SeparableConv2D, layers.MaxPooling2D,
                  layers.AveragePooling2D)
_NOT_WINDOW_LAYERS = (layers.Conv2DTranspose, layers.Conv1D, layers.Conv3D)  # convolutions of another shape
# Layers that act on each position alone, whatever their settings.
_ELEMENTWISE_LAYERS = (layers.Activation, layers.ReLU, layers.LeakyReLU, layers.ELU, layers.Dropout,
                       layers.SpatialDropout2D, layers.GaussianNoise, layers.GaussianDropout, layers.AlphaDropout,
                       layers.ActivityRegularization, layers.Identity, layers.Rescaling)
_MERGE_LAYERS = (layers.Add, layers.Subtract, layers.Multiply, layers.Average, layers.Maximum, layers.Minimum,
                 layers.Concatenate)
# The same merges written as operators on Keras tensors (``x + y``: ConvNeXt's residuals).
_MERGE_OPS = tuple(getattr(ops_numpy(), n) for n in ("Add", "Subtract", "Multiply", "Maximum", "Minimum"))


class IncrementalUnsupported(Exception):
    """The model cannot be run incrementally; ``str(exc)`` is the reason. Internal: the
    planner raises it and :func:`tfviz.attribution.occlusion` turns it into a fallback to
    full re-inference with one warning (it never reaches a caller of a public function)."""


# --------------------------------------------------------------------------- planning
@dataclass
class _Axis:
    """One spatial axis of one tensor: length ``n``; per patch position the changed
    interval ``[lo, hi)``; the static window length ``L`` and its origins ``o``."""
    n: int
    lo: np.ndarray
    hi: np.ndarray
    L: int
    o: np.ndarray

    @property
    def full(self):
        return self.L >= self.n

    def same(self, other):
        return self.L == other.L and np.array_equal(self.o, other.o)


def _axis(n, lo, hi, tau=None):
    lo = np.clip(np.asarray(lo, np.int64), 0, n)
    hi = np.clip(np.asarray(hi, np.int64), 0, n)
    hi = np.maximum(hi, lo)
    if tau is not None:
        cap = max(1, int(np.ceil(tau * n)))
        wide = hi - lo > cap
        start = np.clip((lo + hi - cap) // 2, 0, n - cap)
        lo = np.where(wide, start, lo)
        hi = np.where(wide, start + cap, hi)
    L = int(min(n, max(1, int((hi - lo).max()))))
    o = np.clip(lo, 0, n - L).astype(np.int32)
    return _Axis(n, lo, hi, L, o)


def _pair(v):
    return (int(v), int(v)) if isinstance(v, int) else tuple(int(a) for a in v)


def _same_pad(n, k, s, d):
    ke = d * (k - 1) + 1
    n_out = -(-n // s)
    total = max((n_out - 1) * s + ke - n, 0)
    return n_out, total // 2, total - total // 2


def _window_geometry(op, n_in):
    """``[(k, s, d, n_out, pad_before, pad_after)] * 2`` of a sliding-window layer."""
    if isinstance(op, (layers.MaxPooling2D, layers.AveragePooling2D)):
        k, s, d = _pair(op.pool_size), _pair(op.strides), (1, 1)
    else:
        k, s, d = _pair(op.kernel_size), _pair(op.strides), _pair(op.dilation_rate)
    out = []
    for a in range(2):
        ke = d[a] * (k[a] - 1) + 1
        if op.padding.lower() == "same":
            n_out, pb, pa = _same_pad(n_in[a], k[a], s[a], d[a])
        elif op.padding.lower() == "valid":
            n_out, pb, pa = (n_in[a] - ke) // s[a] + 1, 0, 0
        else:
            raise IncrementalUnsupported(f"layer {op.name!r} uses padding {op.padding!r}")
        out.append((k[a], s[a], d[a], n_out, pb, pa))
    return out


def _conv_axis(ax, k, s, d, n_out, pb, tau):
    ke = d * (k - 1) + 1
    lo = (ax.lo + pb - ke) // s + 1        # first output unit whose window reaches lo
    hi = -((-(ax.hi + pb)) // s)           # one past the last one that starts before hi
    return _axis(n_out, lo, hi, tau)


def _layer_of(op):
    """The layer that computes ``op``: for a bypassed final activation (a segmentation
    head's fused softmax, see :func:`tfviz.models.logit_model`), its linear twin."""
    return op.linear if isinstance(op, BypassActivation) else op


def _is_window_layer(op):
    return isinstance(op, _WINDOW_LAYERS) and not isinstance(op, _NOT_WINDOW_LAYERS)


def _elementwise(op):
    """Layers that act on each position alone (so they can run on a window)."""
    if isinstance(op, _ELEMENTWISE_LAYERS):
        return True
    last = (-1, 3)
    if isinstance(op, layers.BatchNormalization):
        return op.axis in last
    if isinstance(op, layers.LayerNormalization):
        return list(op.axis) in ([-1], [3])
    if isinstance(op, (layers.Normalization, layers.Softmax)):
        ax = op.axis if isinstance(op.axis, (tuple, list)) else (op.axis,)
        return tuple(ax) in ((-1,), (3,))
    if isinstance(op, layers.PReLU):
        return op.shared_axes is not None and {1, 2} <= set(op.shared_axes)
    # a per-channel scale (ConvNeXt's LayerScale: x * gamma, gamma [C])
    gamma = getattr(op, "gamma", None)
    return type(op).__name__ == "LayerScale" and gamma is not None and len(gamma.shape) == 1


def _pointwise(n):
    """One input, acting on each position alone: the element-wise layers, and a ``Dense``
    on a map (it acts on the channels of each position, as ConvNeXt's 1x1 convolutions do)."""
    if len(n.ins) != 1:
        return False
    return _elementwise(n.op) or (isinstance(n.op, layers.Dense) and len(n.ins[0].shape) == 4)


def _spatial_shape(t):
    shape = tuple(t.shape)
    return (int(shape[1]), int(shape[2])) if len(shape) == 4 and None not in shape[1:3] else None


def _is_map(t):
    """A spatial map (not a flat tensor, not a global ``[N, 1, 1, C]`` one)."""
    return _spatial_shape(t) not in (None, (1, 1))


def _conv_macs(op, out_hw, in_ch):
    pos = int(out_hw[0]) * int(out_hw[1])
    k = _pair(getattr(op, "kernel_size", 1))
    if isinstance(op, layers.SeparableConv2D):
        m = op.depth_multiplier
        return pos * in_ch * m * k[0] * k[1] + pos * in_ch * m * op.filters
    if isinstance(op, layers.DepthwiseConv2D):
        return pos * in_ch * op.depth_multiplier * k[0] * k[1]
    if isinstance(op, layers.Conv2D):
        return pos * op.filters * k[0] * k[1] * in_ch // max(1, op.groups)
    return 0


def _dense_macs(op, in_shape):
    if isinstance(op, layers.Dense):
        return int(np.prod([int(v) for v in in_shape[1:]])) * int(op.units)
    return 0


class _PlanNode:
    """What planning reads of one node: its layer, its inputs and their states (``("win",
    ay, ax)`` or ``("full",)``), its output, and its multiply-adds in full."""

    def __init__(self, node, states):
        self.op = _layer_of(node.operation)
        self.ins = list(node.input_tensors)
        self.outs = list(node.outputs)
        self.states = [states[id(t)] for t in self.ins]
        self.out_sp = _spatial_shape(self.outs[0]) if self.outs else None
        self.name = f"{self.op.name!r} ({type(self.op).__name__})"
        if _is_window_layer(self.op):
            self.macs_full = _conv_macs(self.op, self.out_sp or (1, 1), int(self.ins[0].shape[-1]))
        elif len(self.ins) == 1:
            self.macs_full = _dense_macs(self.op, tuple(self.ins[0].shape))
        else:
            self.macs_full = 0

    @property
    def out(self):
        return self.outs[0]


class Plan:
    """Per-tensor window plans of ``model`` for a grid of patch positions (``tops`` x
    ``lefts``, patch ``ph`` x ``pw``); raises :class:`IncrementalUnsupported`.

    ``nodes[id(node)]`` is ``(kind, extra)``: the node's :class:`_Kind` (one of
    :data:`_KINDS`) and what its run rule needs."""

    def __init__(self, model, tops, lefts, ph, pw, tau=None):
        if graph_kind(model) == "subclassed":
            raise IncrementalUnsupported(f"model {model.name!r} is a subclassed Keras model "
                                         f"({type(model).__name__}): there is no graph of layers to follow")
        self.model = model
        self.states = {}            # id(tensor) -> ("win", ay, ax) | ("full",)
        self.nodes = {}             # id(node) -> (kind, extra)
        self.cache_keys = []        # (id(tensor), padding (bh, ah, bw, aw), pad value)
        self.full_macs = 0
        self.inc_macs = 0
        self.windowed_layers = 0
        self.switch_layer = None    # the first layer computed in full
        inp = model.inputs[0]
        if _spatial_shape(inp) is None:
            raise IncrementalUnsupported(f"model {model.name!r} takes images of any size {tuple(inp.shape)}: the "
                                         f"windows of each layer are planned for one input size")
        h, w = _spatial_shape(inp)
        self.states[id(inp)] = ("win", _axis(h, tops, np.asarray(tops) + ph), _axis(w, lefts, np.asarray(lefts) + pw))
        for node in self._nodes():
            self._plan_node(node, tau)
        out = model.outputs[0]
        if self.states[id(out)][0] == "win":
            self.need(out)

    def _nodes(self):
        return call_nodes(self.model)

    def _plan_node(self, node, tau):
        n = _PlanNode(node, self.states)
        self.full_macs += n.macs_full
        if len(n.outs) != 1:
            raise IncrementalUnsupported(f"layer {n.name} has {len(n.outs)} outputs")
        if getattr(n.op, "data_format", "channels_last") == "channels_first":
            raise IncrementalUnsupported(f"layer {n.name} uses channels_first")
        kind = next((k for k in _KINDS if k.applies(n)), None)
        if kind is None:
            raise IncrementalUnsupported(f"layer {n.name}: tfviz does not know how this layer type acts on part of "
                                         f"a map")
        self.nodes[id(node)] = (kind, kind.plan(self, n, tau))

    def need(self, t, pads=(0, 0, 0, 0), value=0.0):
        """Cache the map ``t`` (padded by ``pads`` with ``value``); its cache key."""
        key = (id(t), tuple(int(p) for p in pads), float(value))
        if key not in self.cache_keys:
            self.cache_keys.append(key)
        return key

    def set_full(self, t):
        self.states[id(t)] = ("full",)

    def set_window(self, t, oy, ox, op):
        """``t`` changes in windows ``oy`` x ``ox``, or in full where they cover its map."""
        if oy.full and ox.full:
            self.set_full(t)
            if self.switch_layer is None:
                self.switch_layer = op.name
        else:
            self.states[id(t)] = ("win", oy, ox)

    @property
    def saving(self) -> float:
        return self.full_macs / max(1, self.inc_macs)


# --------------------------------------------------------------------------- execution helpers
def _take(flat, width, r0, c0, h, w):
    """``[B, h, w, C]`` windows at ``(r0, c0)`` of a map stored flat as ``[rows * width, C]``."""
    rr = r0[:, None] + tf.range(h)[None, :]
    cc = c0[:, None] + tf.range(w)[None, :]
    return tf.gather(flat, rr[:, :, None] * width + cc[:, None, :])


def _insert(region, upd, dr, dc):
    """``region [B, h, w, C]`` with ``upd [B, hu, wu, C]`` written at offsets ``(dr, dc)``
    (per item; the parts outside the region are dropped)."""
    h, w = region.shape[1], region.shape[2]
    hu, wu = upd.shape[1], upd.shape[2]
    iu = tf.range(h)[None, :] - dr[:, None]
    ju = tf.range(w)[None, :] - dc[:, None]
    mr = (iu >= 0) & (iu < hu)
    mc = (ju >= 0) & (ju < wu)
    idx = tf.clip_by_value(iu, 0, hu - 1)[:, :, None] * wu + tf.clip_by_value(ju, 0, wu - 1)[:, None, :]
    flat = tf.reshape(upd, [tf.shape(upd)[0], hu * wu, upd.shape[-1]])
    got = tf.gather(flat, idx, batch_dims=1)
    return tf.where((mr[:, :, None] & mc[:, None, :])[..., None], got, region)


class _Win:
    """A map computed on windows only: ``u [B, ay.L, ax.L, C]`` at the origins of ``ay``, ``ax``."""

    def __init__(self, u, ay, ax):
        self.u, self.ay, self.ax = u, ay, ax


def _window_op(op, x, geo):
    """``op`` on window ``x`` with 'valid' padding, using the layer's own weights."""
    s = (geo[0][1], geo[1][1])
    d = (geo[0][2], geo[1][2])
    if isinstance(op, layers.MaxPooling2D):
        return ops.max_pool(x, (geo[0][0], geo[1][0]), s, "valid")
    if isinstance(op, layers.AveragePooling2D):
        return ops.average_pool(x, (geo[0][0], geo[1][0]), s, "valid")
    if isinstance(op, layers.SeparableConv2D):
        y = ops.separable_conv(x, op.depthwise_kernel, op.pointwise_kernel, s, "valid", dilation_rate=d)
    elif isinstance(op, layers.DepthwiseConv2D):
        y = ops.depthwise_conv(x, op.kernel, s, "valid", dilation_rate=d)
    else:
        y = ops.conv(x, op.kernel, s, "valid", dilation_rate=d)
    if op.use_bias:
        y = y + tf.convert_to_tensor(op.bias)
    if op.activation is not None:
        y = op.activation(y)
    return y


def _avg_count(geo, n_in):
    """``[n_out_y, n_out_x]`` float: how many real (not padding) inputs each window of a
    'same' average pooling sees, times its size (TF excludes the padding)."""
    cnt = []
    for a in range(2):
        k, s, _, n_out, pb, _ = geo[a]
        starts = np.arange(n_out) * s - pb
        cnt.append((np.minimum(starts + k, n_in[a]) - np.maximum(starts, 0)).astype(np.float32) / k)
    return np.outer(cnt[0], cnt[1])


def _call(node, values):
    """The node's layer on its inputs looked up in ``values`` (id(tensor) -> value)."""
    args, kwargs = node.arguments.fill_in(values)
    return node.operation(*args, **kwargs)


class _Run:
    """One batch of occluded copies inside a traced function: the image's cached maps,
    the patch positions (indices ``ti``, ``li`` into the plan's rows and columns), and
    the values computed so far (``vals``: id(tensor) -> tensor, or :class:`_Win`)."""

    def __init__(self, plan, caches, ti, li):
        self.plan = plan
        self.cache = dict(zip(plan.cache_keys, caches))
        self.ti, self.li = ti, li
        self.vals = {}

    def gy(self, a):
        """Per batch item: the row origin of the window of axis ``a``."""
        return tf.gather(tf.constant(a.o), self.ti)

    def gx(self, a):
        """Per batch item: the column origin of the window of axis ``a``."""
        return tf.gather(tf.constant(a.o), self.li)

    def materialize(self, t, v, key, r0, c0, h, w, pb=0, pw=0):
        """``[B, h, w, C]`` of map ``t`` at ``(r0, c0)``: the cached map (key ``key``)
        with the changed window ``v`` written in (shifted by the padding ``pb``, ``pw``)."""
        width = int(t.shape[2]) + key[1][2] + key[1][3]
        region = _take(self.cache[key], width, r0, c0, h, w)
        return _insert(region, v.u, self.gy(v.ay) + pb - r0, self.gx(v.ax) + pw - c0)

    def whole(self, t, v, key):
        """The whole map ``t`` with its changed window ``v`` written in."""
        b = tf.zeros_like(self.ti)
        return self.materialize(t, v, key, b, b, v.ay.n, v.ax.n)

    def wrap(self, t, res, oy, ox):
        """``res`` as the value of ``t``: a window, or the map where ``t`` is planned full."""
        return res if self.plan.states[id(t)][0] == "full" else _Win(res, oy, ox)


# --------------------------------------------------------------------------- node kinds
# Each kind: when a node is of it (``applies(n)``, n a _PlanNode), how it is planned
# (``plan(plan, n, tau)``: records the output's state, returns what running needs), and
# how it runs (``run(r, node, extra)``, r a _Run: the output's value). A node no kind
# applies to cannot run incrementally (Plan._plan_node raises; occlusion falls back).

def _plan_full(plan, n, tau):
    if plan.switch_layer is None and n.out_sp is not None:
        plan.switch_layer = n.op.name
    plan.set_full(n.out)
    plan.inc_macs += n.macs_full


def _run_full(r, node, extra):
    return _call(node, r.vals)


def _plan_window(plan, n, tau):
    if getattr(n.op, "quantization_mode", None):
        raise IncrementalUnsupported(f"layer {n.name} is quantized")
    _, ay, ax = n.states[0]
    geo = _window_geometry(n.op, (ay.n, ax.n))
    oy = _conv_axis(ay, *geo[0][:5], tau)
    ox = _conv_axis(ax, *geo[1][:5], tau)
    value = float(np.finfo(np.float32).min) if isinstance(n.op, layers.MaxPooling2D) else 0.0
    key = plan.need(n.ins[0], (geo[0][4], geo[0][5], geo[1][4], geo[1][5]), value)
    plan.inc_macs += _conv_macs(n.op, (oy.L, ox.L), int(n.ins[0].shape[-1]))
    plan.windowed_layers += 1
    plan.set_window(n.out, oy, ox, n.op)
    return key, geo, oy, ox


def _run_window(r, node, extra):
    key, geo, oy, ox = extra
    op, t = _layer_of(node.operation), node.input_tensors[0]
    v = r.vals[id(t)]
    (ky, sy, dy, _, pby, _), (kx, sx, dx, _, pbx, _) = geo
    h = (oy.L - 1) * sy + dy * (ky - 1) + 1
    w = (ox.L - 1) * sx + dx * (kx - 1) + 1
    xw = r.materialize(t, v, key, r.gy(oy) * sy, r.gx(ox) * sx, h, w, pby, pbx)
    res = _window_op(op, xw, geo)
    if isinstance(op, layers.AveragePooling2D) and op.padding.lower() == "same":
        cnt = tf.constant(_avg_count(geo, (v.ay.n, v.ax.n)).reshape(-1, 1))
        res = res / _take(cnt, ox.n, r.gy(oy), r.gx(ox), oy.L, ox.L)
    return r.wrap(node.outputs[0], res, oy, ox)


def _plan_pad(plan, n, tau):
    (t, _), (lft, _) = n.op.padding
    _, ay, ax = n.states[0]
    ny, nx = n.out_sp
    oy = _Axis(ny, ay.lo + t, ay.hi + t, ay.L, (ay.o + t).astype(np.int32))
    ox = _Axis(nx, ax.lo + lft, ax.hi + lft, ax.L, (ax.o + lft).astype(np.int32))
    plan.states[id(n.out)] = ("win", oy, ox)
    return oy, ox


def _run_pad(r, node, extra):
    return _Win(r.vals[id(node.input_tensors[0])].u, *extra)


def _plan_crop(plan, n, tau):
    (t, _), (lft, _) = n.op.cropping
    _, ay, ax = n.states[0]
    ny, nx = n.out_sp
    oy = _axis(ny, ay.lo - t, ay.hi - t)
    ox = _axis(nx, ax.lo - lft, ax.hi - lft)
    key = plan.need(n.ins[0])
    plan.set_window(n.out, oy, ox, n.op)
    return key, oy, ox, t, lft


def _run_crop(r, node, extra):
    # the output window is the input map's region under it (cached, with the changed window
    # written in): a changed window that the crop cuts is cut with it
    key, oy, ox, t, lft = extra
    src = node.input_tensors[0]
    res = r.materialize(src, r.vals[id(src)], key, r.gy(oy) + t, r.gx(ox) + lft, oy.L, ox.L)
    return r.wrap(node.outputs[0], res, oy, ox)


def _plan_elementwise(plan, n, tau):
    plan.states[id(n.out)] = n.states[0]
    if isinstance(n.op, layers.Dense):  # its multiply-adds on the window
        _, ay, ax = n.states[0]
        plan.inc_macs += ay.L * ax.L * int(n.ins[0].shape[-1]) * int(n.op.units)


def _run_elementwise(r, node, extra):
    v = r.vals[id(node.input_tensors[0])]
    return _Win(node.operation(v.u), v.ay, v.ax)


def _merge_maps(n):
    """The inputs of merge ``n`` that are maps, as ``(tensor, state)``; raises where a
    patch's window cannot be merged."""
    if isinstance(n.op, layers.Concatenate) and n.op.axis not in (-1, 3):
        raise IncrementalUnsupported(f"layer {n.name} concatenates along a spatial axis")
    if any(s[0] == "full" for t, s in zip(n.ins, n.states) if not _is_map(t)):
        raise IncrementalUnsupported(
            f"layer {n.name} multiplies or adds a global-context input (e.g. a squeeze-and-excitation gate) "
            f"to a map that a patch changes only in part: every unit then depends on the whole image")
    return [(t, s) for t, s in zip(n.ins, n.states) if _is_map(t)]


def _is_merge(n):
    return isinstance(n.op, _MERGE_LAYERS) or (isinstance(n.op, _MERGE_OPS) and len(n.ins) == 2)


def _merges_a_full_map(n):
    return _is_merge(n) and any(s[0] == "full" for t, s in zip(n.ins, n.states) if _is_map(t))


def _plan_merge_full(plan, n, tau):
    keys = [plan.need(t) for t, s in _merge_maps(n) if s[0] == "win"]
    plan.set_full(n.out)
    return keys


def _plan_merge(plan, n, tau):
    maps = _merge_maps(n)
    ay = [s[1] for _, s in maps]
    ax = [s[2] for _, s in maps]
    oy = _axis(ay[0].n, np.min([a.lo for a in ay], 0), np.max([a.hi for a in ay], 0))
    ox = _axis(ax[0].n, np.min([a.lo for a in ax], 0), np.max([a.hi for a in ax], 0))
    keys = {id(t): plan.need(t) for t, s in maps if not (s[1].same(oy) and s[2].same(ox))}
    plan.set_window(n.out, oy, ox, n.op)
    return keys, oy, ox


def _run_merge(r, node, extra):
    keys, oy, ox = extra
    sub = {}
    for t in node.input_tensors:
        v = r.vals[id(t)]
        if not isinstance(v, _Win):
            sub[id(t)] = v
        elif id(t) not in keys:
            sub[id(t)] = v.u
        else:
            sub[id(t)] = r.materialize(t, v, keys[id(t)], r.gy(oy), r.gx(ox), oy.L, ox.L)
    return r.wrap(node.outputs[0], _call(node, sub), oy, ox)


def _plan_to_full(plan, n, tau):
    keys = [plan.need(t) for t, s in zip(n.ins, n.states) if s[0] == "win"]
    plan.set_full(n.out)
    plan.inc_macs += n.macs_full
    return keys


def _run_to_full(r, node, keys):
    sub = {}
    for t in node.input_tensors:
        v = r.vals[id(t)]
        sub[id(t)] = r.whole(t, v, next(k for k in keys if k[0] == id(t))) if isinstance(v, _Win) else v
    return _call(node, sub)


@dataclass(frozen=True)
class _Kind:
    """One kind of node incremental inference can follow (see the comment above)."""
    name: str
    applies: Callable[[_PlanNode], bool]
    plan: Callable[[Plan, _PlanNode, Any], Any]
    run: Callable[[_Run, Any, Any], Any]


_KINDS = (  # the first kind that applies wins
    # every input unchanged by the patch, or changed all over: run the layer as usual
    _Kind("full", lambda n: all(s[0] == "full" for s in n.states), _plan_full, _run_full),
    # a sliding window (conv, pooling): its kernel on the window its changed input reaches
    _Kind("window", lambda n: _is_window_layer(n.op) and len(n.ins) == 1, _plan_window, _run_window),
    # zero padding: the window moves by the padding
    _Kind("pad", lambda n: isinstance(n.op, layers.ZeroPadding2D) and len(n.ins) == 1, _plan_pad, _run_pad),
    # cropping: the window moves by the crop, and what the crop cuts off is dropped
    _Kind("crop", lambda n: isinstance(n.op, layers.Cropping2D) and len(n.ins) == 1, _plan_crop, _run_crop),
    # per position (activations, inference batch norm, a Dense on a map...): the layer on the window
    _Kind("elementwise", _pointwise, _plan_elementwise, _run_elementwise),
    # a merge with a map changed all over: every windowed input made whole
    _Kind("merge_full", _merges_a_full_map, _plan_merge_full, _run_to_full),
    # a merge of windows: the union of their windows
    _Kind("merge", _is_merge, _plan_merge, _run_merge),
    # global pooling, flatten, dense head...: materialize the whole map, run in full
    _Kind("to_full", lambda n: not _is_map(n.out), _plan_to_full, _run_to_full),
)


# --------------------------------------------------------------------------- execution
def run_cache(plan, x):
    """Inside a traced function: the plan's cached maps of image ``x [1, H, W, 3]``."""
    vals = {id(plan.model.inputs[0]): x}
    for node in plan._nodes():
        vals[id(node.outputs[0])] = _call(node, vals)
    outs = []
    for tid, (bh, ah, bw, aw), value in plan.cache_keys:
        t = vals[tid][0]
        if bh or ah or bw or aw:
            t = tf.pad(t, [[bh, ah], [bw, aw], [0, 0]], constant_values=value)
        outs.append(tf.reshape(t, [-1, t.shape[-1]]))
    return outs


def run_incremental(plan, caches, fill_flat, ti, li):
    """Inside a traced function: the model's output for the occluded copies at patch
    positions ``(tops[ti], lefts[li])`` of the image whose cached maps are ``caches``
    (:func:`run_cache`); ``fill_flat`` is the fill image ``[H * W, 3]``."""
    r = _Run(plan, caches, ti, li)
    inp = plan.model.inputs[0]
    _, ay, ax = plan.states[id(inp)]
    r.vals[id(inp)] = _Win(_take(fill_flat, ax.n, r.gy(ay), r.gx(ax), ay.L, ax.L), ay, ax)
    for node in plan._nodes():
        kind, extra = plan.nodes[id(node)]
        r.vals[id(node.outputs[0])] = kind.run(r, node, extra)
    out = plan.model.outputs[0]
    v = r.vals[id(out)]
    if isinstance(v, _Win):
        key = next(k for k in plan.cache_keys if k[0] == id(out) and k[1] == (0, 0, 0, 0))
        v = r.whole(out, v, key)
    return v


# --------------------------------------------------------------------------- model access
def flat_model(bundle, layer=None):
    """The (cached) score model of ``layer`` (``None``: the logits) with nested models
    expanded inline, so that one graph holds every layer."""
    def build():
        model = head(bundle, layer)
        if any(isinstance(lay, Model) for lay in getattr(model, "layers", [])):
            for sub in _nested_models(model):
                if graph_kind(sub) == "subclassed":
                    raise IncrementalUnsupported(f"layer {sub.name!r} is a subclassed Keras model "
                                                 f"({type(sub).__name__}): there is no graph of layers to follow")
            inp, out = Rewriter().trace(model)
            model = Model(inp, out, name=model.name + "_flat")
        return model
    return bundle.programs.get("attribution.incremental_flat", layer, (), build)


def _nested_models(model):
    for lay in getattr(model, "layers", []):
        if isinstance(lay, Model):
            yield lay
            yield from _nested_models(lay)


def plan_for(bundle, layer, tops, lefts, ph, pw, tau=None) -> Plan:
    """The cached :class:`Plan` (raises :class:`IncrementalUnsupported`)."""
    def build():  # a plan, or the reason there is none (kept, so it is found once)
        try:
            if graph_kind(bundle.model) == "subclassed":
                raise IncrementalUnsupported(
                    f"model {bundle.model.name!r} is a subclassed Keras model ({type(bundle.model).__name__}): there "
                    f"is no graph of layers to follow")
            head(bundle, layer)
            return Plan(flat_model(bundle, layer), tops, lefts, ph, pw, tau)
        except IncrementalUnsupported as exc:
            return exc
    got = bundle.programs.get("attribution.incremental_plan", layer, (tuple(np.asarray(tops).tolist()),
                              tuple(np.asarray(lefts).tolist()), ph, pw, tau), build)
    if isinstance(got, IncrementalUnsupported):
        raise got
    return got


def theoretical_saving(bundle, patch=16, stride=8, tau=None, layer=None, size=None) -> dict:
    """Multiply-adds of full re-inference over those of incremental inference, per patch
    position (convolutions and dense layers; pooling and element-wise layers are not
    counted), for ``patch`` / ``stride`` on the model's input size. Returns
    ``{"full_macs", "incremental_macs", "saving", "switch_layer"}``; ``saving`` is
    ``nan`` with a ``"reason"`` where the model cannot run incrementally.

    ``bundle`` may be a :class:`~tfviz.models.ModelBundle`, a model spec, or a Keras
    model (wrapped on the fly)."""
    bundle = as_bundle(bundle)
    h, w = size or bundle.input_size
    grid = PatchGrid.of(h, w, patch, stride)
    try:
        p = plan_for(bundle, layer, grid.tops, grid.lefts, grid.ph, grid.pw, tau)
    except IncrementalUnsupported as exc:
        return {"full_macs": None, "incremental_macs": None, "saving": float("nan"), "reason": str(exc)}
    return {"full_macs": int(p.full_macs), "incremental_macs": int(p.inc_macs), "saving": p.saving,
            "switch_layer": p.switch_layer}


# --------------------------------------------------------------------------- fidelity
def fidelity(approx: np.ndarray, exact: np.ndarray) -> dict:
    """How close an approximate occlusion map is to the exact one, per image and
    overall: ``spearman`` (rank correlation of the pixel values; 1 = same order) and
    ``peak_agrees`` (the approximate map's peak is also a peak of the exact map, within
    0.1% of its range), plus ``peak_distance`` (pixels between the two peaks)."""
    a = np.asarray(approx, np.float64)
    e = np.asarray(exact, np.float64)
    if a.shape != e.shape:
        raise AttributionError(f"maps of different shapes: {a.shape} and {e.shape}")
    if a.ndim == 2:
        a, e = a[None], e[None]
    rho, agree, dist = [], [], []
    for ai, ei in zip(a, e):
        r = spearmanr(ai.ravel(), ei.ravel())[0]
        rho.append(1.0 if not np.isfinite(r) else float(r))
        k = int(np.argmax(ai))
        tol = 1e-3 * max(float(ei.max() - ei.min()), 1e-12)
        agree.append(bool(ei.flat[k] >= ei.max() - tol))
        pa = np.unravel_index(k, ai.shape)
        pe = np.unravel_index(int(np.argmax(ei)), ei.shape)
        dist.append(float(np.hypot(pa[0] - pe[0], pa[1] - pe[1])))
    return {"spearman": float(np.mean(rho)), "peak_agrees": bool(all(agree)), "per_image_spearman": rho,
            "per_image_peak_agrees": agree, "peak_distance": dist}


__all__ = ["INFERENCE_MODES", "MIN_SAVING", "IncrementalUnsupported", "Plan", "plan_for", "theoretical_saving", "fidelity",
           "run_cache", "run_incremental", "flat_model"]
