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
arithmetic, and runs its own kernel with ``'valid'`` padding; element-wise layers (batch
norm in inference, activations, dropout) run on the window; merges (``Add``,
``Multiply``, ``Concatenate`` ...) take the union of their inputs' windows. A window
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

import numpy as np

from .patch_grid import check_patch, positions

INFERENCE_MODES = ("incremental", "approximate", "full")
DEFAULT_TAU = 0.9            # approximate mode: windows grow to at most 90% of their map
DEFAULT_COARSE = 2           # approximate mode: the coarse stride is 2x the stride
DEFAULT_REFINE = 0.5         # approximate mode: fraction of the fine positions re-run


class IncrementalUnsupported(Exception):
    """The model cannot be run incrementally; ``str(exc)`` is the reason."""


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
    import keras
    L = keras.layers
    if isinstance(op, (L.MaxPooling2D, L.AveragePooling2D)):
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


def _types():
    import keras
    L = keras.layers
    window = (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D, L.MaxPooling2D, L.AveragePooling2D)
    not_window = tuple(getattr(L, n) for n in ("Conv2DTranspose", "Conv1D", "Conv3D") if hasattr(L, n))
    elementwise = tuple(getattr(L, n) for n in (
        "Activation", "ReLU", "LeakyReLU", "ELU", "Dropout", "SpatialDropout2D", "GaussianNoise",
        "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity", "Rescaling") if hasattr(L, n))
    merges = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum, L.Concatenate)
    return window, not_window, elementwise, merges


def _elementwise(op, types):
    """Layers that act on each position alone (so they can run on a window)."""
    import keras
    L = keras.layers
    if isinstance(op, types[2]):
        return True
    last = (-1, 3)
    if isinstance(op, L.BatchNormalization):
        return op.axis in last
    if isinstance(op, L.LayerNormalization):
        return list(op.axis) in ([-1], [3])
    if isinstance(op, L.Normalization):
        ax = op.axis if isinstance(op.axis, (tuple, list)) else (op.axis,)
        return tuple(ax) in ((-1,), (3,))
    if isinstance(op, L.Softmax):
        ax = op.axis if isinstance(op.axis, (tuple, list)) else (op.axis,)
        return tuple(ax) in ((-1,), (3,))
    if isinstance(op, L.PReLU):
        return op.shared_axes is not None and {1, 2} <= set(op.shared_axes)
    return False


def _spatial_shape(t):
    shape = tuple(t.shape)
    return (int(shape[1]), int(shape[2])) if len(shape) == 4 and None not in shape[1:3] else None


def _conv_macs(op, out_hw, in_ch):
    import keras
    L = keras.layers
    pos = int(out_hw[0]) * int(out_hw[1])
    k = _pair(getattr(op, "kernel_size", 1))
    if isinstance(op, L.SeparableConv2D):
        m = op.depth_multiplier
        return pos * in_ch * m * k[0] * k[1] + pos * in_ch * m * op.filters
    if isinstance(op, L.DepthwiseConv2D):
        return pos * in_ch * op.depth_multiplier * k[0] * k[1]
    if isinstance(op, L.Conv2D):
        return pos * op.filters * k[0] * k[1] * in_ch // max(1, op.groups)
    return 0


def _dense_macs(op, in_shape):
    import keras
    if isinstance(op, keras.layers.Dense):
        return int(np.prod([int(v) for v in in_shape[1:]])) * int(op.units)
    return 0


class Plan:
    """Per-tensor window plans of ``model`` for a grid of patch positions (``tops`` x
    ``lefts``, patch ``ph`` x ``pw``); raises :class:`IncrementalUnsupported`."""

    def __init__(self, model, tops, lefts, ph, pw, tau=None):
        from ..graph import graph_kind
        if graph_kind(model) == "subclassed":
            raise IncrementalUnsupported(f"model {model.name!r} is a subclassed Keras model "
                                         f"({type(model).__name__}): there is no graph of layers to follow")
        types = _types()
        self.model = model
        self.states = {}            # id(tensor) -> ("win", ay, ax) | ("full",)
        self.nodes = {}             # id(node) -> (kind, extra)
        self.cache_keys = []        # (id(tensor), padding (bh, ah, bw, aw), pad value)
        self.full_macs = 0
        self.inc_macs = 0
        self.windowed_layers = 0
        self.switch_layer = None    # the first layer computed in full
        inp = model.inputs[0]
        h, w = _spatial_shape(inp)
        self.states[id(inp)] = ("win", _axis(h, tops, np.asarray(tops) + ph), _axis(w, lefts, np.asarray(lefts) + pw))
        for node in self._nodes():
            self._plan_node(node, types, tau)
        out = model.outputs[0]
        if self.states[id(out)][0] == "win":
            self._need(out)

    def _nodes(self):
        from ..keras_internals import nodes_in_order
        for node in nodes_in_order(self.model):
            if node.operation is None or node.is_input:
                continue
            yield node

    def _need(self, t, pads=(0, 0, 0, 0), value=0.0):
        key = (id(t), tuple(int(p) for p in pads), float(value))
        if key not in self.cache_keys:
            self.cache_keys.append(key)
        return key

    def _plan_node(self, node, types, tau):
        import keras
        op = node.operation
        ins = list(node.input_tensors)
        outs = list(node.outputs)
        name = f"{op.name!r} ({type(op).__name__})"
        states = [self.states[id(t)] for t in ins]
        out_sp = _spatial_shape(outs[0]) if outs else None
        macs_full = 0
        if isinstance(op, types[0]) and not isinstance(op, types[1]):
            macs_full = _conv_macs(op, out_sp or (1, 1), int(ins[0].shape[-1]))
        elif len(ins) == 1:
            macs_full = _dense_macs(op, tuple(ins[0].shape))
        self.full_macs += macs_full
        if len(outs) != 1:
            raise IncrementalUnsupported(f"layer {name} has {len(outs)} outputs")
        if getattr(op, "data_format", "channels_last") == "channels_first":
            raise IncrementalUnsupported(f"layer {name} uses channels_first")
        if all(s[0] == "full" for s in states):
            if self.switch_layer is None and out_sp is not None:
                self.switch_layer = op.name
            self.nodes[id(node)] = ("full", None)
            self.states[id(outs[0])] = ("full",)
            self.inc_macs += macs_full
            return
        win = [(t, s) for t, s in zip(ins, states) if s[0] == "win"]
        if isinstance(op, types[0]) and not isinstance(op, types[1]) and len(ins) == 1:
            if getattr(op, "quantization_mode", None):
                raise IncrementalUnsupported(f"layer {name} is quantized")
            _, ay, ax = states[0]
            geo = _window_geometry(op, (ay.n, ax.n))
            oy = _conv_axis(ay, *geo[0][:5], tau)
            ox = _conv_axis(ax, *geo[1][:5], tau)
            value = 0.0
            if isinstance(op, keras.layers.MaxPooling2D):
                value = float(np.finfo(np.float32).min)
            key = self._need(ins[0], (geo[0][4], geo[0][5], geo[1][4], geo[1][5]), value)
            self.nodes[id(node)] = ("window", (key, geo, oy, ox))
            self.inc_macs += _conv_macs(op, (oy.L, ox.L), int(ins[0].shape[-1]))
            self.windowed_layers += 1
            self._set(outs[0], oy, ox, op)
            return
        if isinstance(op, keras.layers.ZeroPadding2D) and len(ins) == 1:
            (t, b), (lft, r) = op.padding
            _, ay, ax = states[0]
            ny, nx = out_sp
            oy = _Axis(ny, ay.lo + t, ay.hi + t, ay.L, (ay.o + t).astype(np.int32))
            ox = _Axis(nx, ax.lo + lft, ax.hi + lft, ax.L, (ax.o + lft).astype(np.int32))
            self.nodes[id(node)] = ("pad", None)
            self.states[id(outs[0])] = ("win", oy, ox)
            return
        if len(ins) == 1 and _elementwise(op, types):
            self.nodes[id(node)] = ("elementwise", None)
            self.states[id(outs[0])] = states[0]
            return
        if isinstance(op, types[3]):
            if isinstance(op, keras.layers.Concatenate) and op.axis not in (-1, 3):
                raise IncrementalUnsupported(f"layer {name} concatenates along a spatial axis")
            is_sp = [_spatial_shape(t) not in (None, (1, 1)) for t in ins]
            spatial = [(t, s) for t, s, sp in zip(ins, states, is_sp) if sp]
            others = [(t, s) for t, s, sp in zip(ins, states, is_sp) if not sp]
            if any(s[0] == "full" for _, s in others):
                raise IncrementalUnsupported(
                    f"layer {name} multiplies or adds a global-context input (e.g. a squeeze-and-excitation gate) "
                    f"to a map that a patch changes only in part: every unit then depends on the whole image")
            if any(s[0] == "full" for _, s in spatial):
                keys = [self._need(t) for t, s in spatial if s[0] == "win"]
                self.nodes[id(node)] = ("merge_full", keys)
                self.states[id(outs[0])] = ("full",)
                return
            ay = [s[1] for _, s in spatial]
            ax = [s[2] for _, s in spatial]
            oy = _axis(ay[0].n, np.min([a.lo for a in ay], 0), np.max([a.hi for a in ay], 0))
            ox = _axis(ax[0].n, np.min([a.lo for a in ax], 0), np.max([a.hi for a in ax], 0))
            keys = {id(t): self._need(t) for t, s in spatial if not (s[1].same(oy) and s[2].same(ox))}
            self.nodes[id(node)] = ("merge", (keys, oy, ox))
            self._set(outs[0], oy, ox, op)
            return
        if out_sp is not None and out_sp != (1, 1):
            raise IncrementalUnsupported(f"layer {name}: tfviz does not know how this layer type acts on part of "
                                         f"a map")
        # global pooling, flatten, dense head...: materialize the whole map, run in full
        keys = [self._need(t) for t, _ in win]
        self.nodes[id(node)] = ("to_full", keys)
        self.states[id(outs[0])] = ("full",)
        self.inc_macs += macs_full

    def _set(self, t, oy, ox, op):
        if oy.full and ox.full:
            self.states[id(t)] = ("full",)
            if self.switch_layer is None:
                self.switch_layer = op.name
        else:
            self.states[id(t)] = ("win", oy, ox)

    @property
    def saving(self) -> float:
        return self.full_macs / max(1, self.inc_macs)


# --------------------------------------------------------------------------- execution
def _take(flat, width, r0, c0, h, w):
    """``[B, h, w, C]`` windows at ``(r0, c0)`` of a map stored flat as ``[rows * width, C]``."""
    import tensorflow as tf
    rr = r0[:, None] + tf.range(h)[None, :]
    cc = c0[:, None] + tf.range(w)[None, :]
    return tf.gather(flat, rr[:, :, None] * width + cc[:, None, :])


def _insert(region, upd, dr, dc):
    """``region [B, h, w, C]`` with ``upd [B, hu, wu, C]`` written at offsets ``(dr, dc)``
    (per item; the parts outside the region are dropped)."""
    import tensorflow as tf
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
    def __init__(self, u, ay, ax):
        self.u, self.ay, self.ax = u, ay, ax


def _window_op(op, x, geo):
    """``op`` on window ``x`` with 'valid' padding, using the layer's own weights."""
    import keras
    import tensorflow as tf
    L = keras.layers
    ops = keras.ops
    s = (geo[0][1], geo[1][1])
    d = (geo[0][2], geo[1][2])
    if isinstance(op, L.MaxPooling2D):
        return ops.max_pool(x, (geo[0][0], geo[1][0]), s, "valid")
    if isinstance(op, L.AveragePooling2D):
        return ops.average_pool(x, (geo[0][0], geo[1][0]), s, "valid")
    if isinstance(op, L.SeparableConv2D):
        y = ops.separable_conv(x, op.depthwise_kernel, op.pointwise_kernel, s, "valid", dilation_rate=d)
    elif isinstance(op, L.DepthwiseConv2D):
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


def run_cache(plan, x):
    """Inside a traced function: the plan's cached maps of image ``x [1, H, W, 3]``."""
    import tensorflow as tf
    vals = {id(plan.model.inputs[0]): x}
    for node in plan._nodes():
        args, kwargs = node.arguments.fill_in(vals)
        out = node.operation(*args, **kwargs)
        vals[id(node.outputs[0])] = out
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
    import keras
    import tensorflow as tf
    cache = dict(zip(plan.cache_keys, caches))
    inp = plan.model.inputs[0]
    _, ay, ax = plan.states[id(inp)]

    def origin(a, idx):
        return tf.gather(tf.constant(a.o), idx)

    def gy(a):
        return origin(a, ti)

    def gx(a):
        return origin(a, li)

    def materialize(t, v, key, r0, c0, h, w, pb=0, pw=0):
        width = int(t.shape[2]) + key[1][2] + key[1][3]
        region = _take(cache[key], width, r0, c0, h, w)
        return _insert(region, v.u, gy(v.ay) + pb - r0, gx(v.ax) + pw - c0)

    u = _take(fill_flat, ax.n, gy(ay), gx(ax), ay.L, ax.L)
    vals = {id(inp): _Win(u, ay, ax)}
    for node in plan._nodes():
        kind, extra = plan.nodes[id(node)]
        op = node.operation
        out_t = node.outputs[0]
        ins = list(node.input_tensors)
        if kind == "full":
            args, kwargs = node.arguments.fill_in(vals)
            res = op(*args, **kwargs)
        elif kind == "window":
            key, geo, oy, ox = extra
            v = vals[id(ins[0])]
            r0 = gy(oy) * geo[0][1]
            c0 = gx(ox) * geo[1][1]
            h = (oy.L - 1) * geo[0][1] + geo[0][2] * (geo[0][0] - 1) + 1
            w = (ox.L - 1) * geo[1][1] + geo[1][2] * (geo[1][0] - 1) + 1
            xw = materialize(ins[0], v, key, r0, c0, h, w, geo[0][4], geo[1][4])
            res = _window_op(op, xw, geo)
            if isinstance(op, keras.layers.AveragePooling2D) and op.padding.lower() == "same":
                cnt = tf.constant(_avg_count(geo, (v.ay.n, v.ax.n)).reshape(-1, 1))
                res = res / _take(cnt, ox.n, gy(oy), gx(ox), oy.L, ox.L)
            res = _wrap(plan, out_t, res, oy, ox)
        elif kind == "pad":
            v = vals[id(ins[0])]
            _, oy, ox = plan.states[id(out_t)]
            res = _Win(v.u, oy, ox)
        elif kind == "elementwise":
            v = vals[id(ins[0])]
            res = _Win(op(v.u), v.ay, v.ax)
        elif kind in ("merge", "merge_full", "to_full"):
            if kind == "merge":
                keys, oy, ox = extra
            else:
                keys = extra
            sub = {}
            for t in ins:
                v = vals[id(t)]
                if not isinstance(v, _Win):
                    sub[id(t)] = v
                elif kind == "merge" and id(t) not in keys:
                    sub[id(t)] = v.u
                elif kind == "merge":
                    sub[id(t)] = materialize(t, v, keys[id(t)], gy(oy), gx(ox), oy.L, ox.L)
                else:
                    key = next(k for k in keys if k[0] == id(t))
                    b = tf.zeros_like(ti)
                    sub[id(t)] = materialize(t, v, key, b, b, v.ay.n, v.ax.n)
            args, kwargs = node.arguments.fill_in(sub)
            res = op(*args, **kwargs)
            if kind == "merge":
                res = _wrap(plan, out_t, res, oy, ox)
        else:  # pragma: no cover
            raise AssertionError(kind)
        vals[id(out_t)] = res
    out = plan.model.outputs[0]
    v = vals[id(out)]
    if isinstance(v, _Win):
        key = next(k for k in plan.cache_keys if k[0] == id(out) and k[1] == (0, 0, 0, 0))
        b = tf.zeros_like(ti)
        v = materialize(out, v, key, b, b, v.ay.n, v.ax.n)
    return v


def _wrap(plan, t, res, oy, ox):
    return res if plan.states[id(t)][0] == "full" else _Win(res, oy, ox)


# --------------------------------------------------------------------------- model access
def flat_model(bundle, layer=None):
    """The (cached) score model of ``layer`` (``None``: the logits) with nested models
    expanded inline, so that one graph holds every layer."""
    import keras
    from .graph import head
    def build():
        model = head(bundle, layer)
        if any(isinstance(lay, keras.Model) for lay in getattr(model, "layers", [])):
            from ..graph import Rewriter, graph_kind
            for sub in _nested_models(model):
                if graph_kind(sub) == "subclassed":
                    raise IncrementalUnsupported(f"layer {sub.name!r} is a subclassed Keras model "
                                                 f"({type(sub).__name__}): there is no graph of layers to follow")
            inp, out = Rewriter().trace(model)
            model = keras.Model(inp, out, name=model.name + "_flat")
        return model
    return bundle.programs.get("attribution.incremental_flat", layer, (), build)


def _nested_models(model):
    import keras
    for lay in getattr(model, "layers", []):
        if isinstance(lay, keras.Model):
            yield lay
            yield from _nested_models(lay)


def plan_for(bundle, layer, tops, lefts, ph, pw, tau=None) -> Plan:
    """The cached :class:`Plan` (raises :class:`IncrementalUnsupported`)."""
    def build():  # a plan, or the reason there is none (kept, so it is found once)
        try:
            from ..graph import graph_kind
            from .graph import head
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
    from .core import as_bundle
    bundle = as_bundle(bundle)
    h, w = size or bundle.input_size
    (ph, pw), (sh, sw) = check_patch(h, w, patch, stride)
    try:
        p = plan_for(bundle, layer, positions(h, ph, sh), positions(w, pw, sw), ph, pw, tau)
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
    from scipy.stats import spearmanr
    a = np.asarray(approx, np.float64)
    e = np.asarray(exact, np.float64)
    if a.shape != e.shape:
        raise ValueError(f"maps of different shapes: {a.shape} and {e.shape}")
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


__all__ = ["INFERENCE_MODES", "IncrementalUnsupported", "Plan", "plan_for", "theoretical_saving", "fidelity",
           "run_cache", "run_incremental", "flat_model"]
