"""Ablation-CAM (Desai & Ramaswamy, WACV 2020): class activation maps from the score
drops of ablated channels, without gradients.

Each channel ``k`` of a CAM layer's activations ``A`` is *ablated* -- set to zero at every
position -- and the rest of the network runs on; the channel's weight is the relative drop
of the target's score, ``w_k = (S - S_k) / S`` (the paper's, and pytorch-grad-cam's
``AblationCAM``), ``S`` the score of the image and ``S_k`` its score with channel ``k``
zeroed. The map is ``relu(sum_k w_k A_k)``, upsampled bilinearly like Grad-CAM's. A
channel is ablated by zeroing it, as in the paper, also where the layer's values can be
negative (pytorch-grad-cam then sets it to ``min(A) - 1e7`` instead); a negative score
flips the weights' sign, as ``(S - S_k) / S`` does in both.

How it runs. Only the part of the network *above* the CAM layer sees the ablated copies:
the model's graph (nested models expanded) is split at the CAM layer into

* the *lower* pass, one ordinary forward pass per image: the layer's activations, the
  score ``S``, and every tensor that the upper part reads from below without passing
  through the CAM layer (a skip connection that bypasses it), computed once per image;
* the *upper* pass, one traced program that makes the ablated copies from the
  activations (``a * (1 - onehot(k))``), broadcasts each image's bypassing tensors to its
  copies, and runs the upper layers on a batch of copies of one shape: no Python loop
  over channels.

Where the upper part starts with layers that act on each channel alone and keep zeros at
zero (global pooling, pooling, ReLU, dropout ...), zeroing a channel commutes with them,
so they run once per image and the copies are made after them. A layer that maps each
position's channels linearly (a ``Dense`` without activation, a 1x1 convolution) turns
the zeroed channel into a rank-one update of its output, ``out - a_k W_k`` at every
position, which passes on through batch norm (scaled), a skip connection added to it and
further linear layers; the copies are made where the update meets a nonlinearity. Both
are exact: for the default layer of a CNN (the last conv activation, then pooling and the
classifier) every copy costs one row of the classifier's output instead of a forward
pass; a block lower (a 1x1 projection, batch norm, the residual addition, ReLU) each copy
costs the update and the layers after the ReLU.

``eigen_smooth`` and ``aug_smooth`` mean what they mean for every CAM method
(:mod:`.cam`): the first principal component of ``w_k A_k`` instead of its channel sum,
and the map averaged over flipped and scaled views of the image, each mapped back. Each
view is ablated on its own (its own weights); all views of a chunk of images go through
the lower pass as one batch and all their channels' copies through the upper pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import keras
import numpy as np
import tensorflow as tf

from ..keras_internals import call_nodes, ops_numpy
from ..models.tokens import as_grid
from ..models.views import BypassActivation
from .cam import _cam_layers, _check_aug_targets, aug_views, augment, score_map_hw, view_selection
from .core import DEFAULT_BATCH, SEL_WIDTH, check_finite, even_batches, group_by_head, select_score, selection
from .errors import AttributionError, NoSpatialLayerError, TargetError
from .heads import score_rows, score_source, traced_graph
from .registry import attribution_method
from .scorecam import finish_map, weighted_map

L = keras.layers

# Layers that act on each channel alone and map a zero channel to a zero channel: zeroing a
# channel before them is zeroing it after them, so the ablation mask passes through them.
_CHANNEL_WISE = (L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D,
                 L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D, L.ZeroPadding1D,
                 L.ZeroPadding2D, L.Cropping1D, L.Cropping2D, L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D,
                 L.GaussianNoise, L.GaussianDropout, L.Identity, L.ActivityRegularization)
# Element-wise activations (each keeps 0 at 0 only with its settings: checked on a zero).
_ACTIVATION_LAYERS = (L.ReLU, L.LeakyReLU, L.ELU, L.Activation)
_ELEMENTWISE = {"relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "silu", "swish", "hard_silu", "hard_swish",
                "tanh", "linear", "mish", "softsign", "celu", "tanh_shrink", "hard_tanh", "soft_shrink",
                "hard_shrink", "squareplus"}
# Identity at inference: a per-copy update (``base - delta``) passes through them.
_IDENTITY = (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout, L.Identity,
             L.ActivityRegularization)


# --------------------------------------------------------------------------- the model's graph, flat
def flat_graph(bundle, head_layer, wanted=(), replace=None):
    """``(model, captured)``: the score source of ``head_layer`` (see :func:`score_source`)
    re-run layer by layer with nested models expanded inline (one graph, one node per
    layer call; ``replace`` as :class:`~tfviz.graph.Rewriter`), as a Keras model from the
    image to the score source's output (a unit's layer output for a unit target);
    ``captured`` maps each name in ``wanted`` to its symbolic output."""
    unit = head_layer if isinstance(head_layer, str) else None
    inp, main, captured = traced_graph(bundle, score_source(bundle, head_layer), wanted, unit, replace)
    return keras.Model(inp, main, name=f"{bundle.model.name}_flat"), captured


def run_node(node, vals: dict, call=None):
    """Inside a traced function: ``node``'s operation (or ``call``) on its inputs looked up
    in ``vals`` (``id(symbolic tensor) -> value``); its outputs are stored there."""
    args, kwargs = node.arguments.fill_in(vals)
    out = (call or node.operation)(*args, **kwargs)
    for t, v in zip(node.outputs, tf.nest.flatten(out)):
        vals[id(t)] = v


def apply_score(out, head_layer):
    """A head's output -> what :func:`select_score` reads (a score function's ``[B, 1]``)."""
    if head_layer is not None and not isinstance(head_layer, str):
        return score_rows(head_layer, out)
    return out


# --------------------------------------------------------------------------- planning
@dataclass
class Delta:
    """Copy ``i`` of a tensor is its image's value minus a rank-one update from the ablated
    channel: ``value[img] - src[img][..., ch] * row[ch]`` -- ``src`` the (masked) input of
    a linear layer (a ``Dense`` or a 1x1 convolution: zeroing input channel ``k`` takes
    ``a_k W_k`` off its output at every position), ``row()`` the ``[C, out]`` matrix that
    maps the channel to the output (the kernel, times the scales of later affine layers)."""
    src: object
    row: object


@dataclass
class AblationPlan:
    """The graph split at the CAM layer (see the module docstring).

    ``lazy[id(t)]``: how upper tensor ``t`` is held for the copies without running per
    copy: ``("mask", None)`` -- copy ``i`` is ``t``'s image value with channel ``ch[i]``
    zeroed (last axis); ``("delta", Delta)`` -- see :class:`Delta`. ``run``: the calls
    that run per copy; ``frontier``: the lazy tensors they (or the score) read; ``bypass``:
    the tensors from below the CAM layer they read (a skip connection around it)."""
    model: keras.Model
    cam: object
    main: object
    channels: int
    nodes: list
    run: list = field(default_factory=list)
    lazy: dict = field(default_factory=dict)
    frontier: list = field(default_factory=list)
    bypass: list = field(default_factory=list)

    def per_copy_bytes(self) -> int:
        """Bytes of one copy's largest tensor in the per-copy pass."""
        sizes = [_size(t) for n in self.run for t in n.outputs] + [_size(t) for t in self.frontier]
        return 4 * max(sizes + [self.channels])

    def per_image_bytes(self) -> int:
        """Bytes the lower pass keeps per image for the copies."""
        total = _size(self.cam) + sum(_size(t) for t in self.bypass)
        for t in self.frontier:
            kind, extra = self.lazy[id(t)]
            total += _size(t) + (_size(extra.src) if kind == "delta" else 0)
        return 4 * total


def _size(t) -> int:
    return int(np.prod([int(d) for d in t.shape[1:] if d is not None]))


def _zero_stays_zero(fn) -> bool:
    try:
        return bool(np.all(np.asarray(fn(tf.zeros([1, 2], tf.float32))) == 0.0))
    except Exception:  # noqa: BLE001 - an activation that cannot run alone: not pushed through
        return False


def _channel_wise(op) -> bool:
    """``op`` acts on each channel (last axis) alone and keeps a zero channel zero."""
    if getattr(op, "data_format", "channels_last") != "channels_last":
        return False
    if isinstance(op, _CHANNEL_WISE):
        return True
    if isinstance(op, L.Activation):
        name = getattr(op.activation, "__name__", "")
        return name in _ELEMENTWISE and _zero_stays_zero(op.activation)
    if isinstance(op, _ACTIVATION_LAYERS):
        return _zero_stays_zero(op)
    return False


def _is_linear(op) -> bool:
    """``op`` is an ``Activation("linear")`` or a layer that is the identity at inference."""
    if isinstance(op, _IDENTITY):
        return True
    return isinstance(op, L.Activation) and getattr(op.activation, "__name__", "") == "linear"


def _channel_matrix(op):
    """``f() -> [C_in, C_out]`` when ``op`` maps each position's channels by an affine map
    (a ``Dense``, or a 1x1 convolution with stride 1, without activation), else None."""
    op = op.linear if isinstance(op, BypassActivation) else op
    if getattr(op, "quantization_mode", None) or getattr(getattr(op, "activation", None), "__name__", "") != "linear":
        return None
    if isinstance(op, L.Dense):
        return lambda: tf.convert_to_tensor(op.kernel)
    if type(op) in (L.Conv1D, L.Conv2D, L.Conv3D) and op.data_format == "channels_last" and op.groups == 1 \
            and all(int(k) == 1 for k in op.kernel_size) and all(int(s) == 1 for s in op.strides):
        return lambda: tf.reshape(tf.convert_to_tensor(op.kernel), [op.kernel.shape[-2], op.kernel.shape[-1]])
    return None


def bn_scale_shift(layer):
    """Batch norm at inference as ``x * s + t``: ``(s, t)`` per channel, as Keras computes
    it (``s = gamma / sqrt(var + eps)``, ``t = beta - mean * s``)."""
    s = tf.math.rsqrt(tf.convert_to_tensor(layer.moving_variance) + layer.epsilon)
    if layer.scale:
        s = s * tf.convert_to_tensor(layer.gamma)
    t = -tf.convert_to_tensor(layer.moving_mean) * s
    if layer.center:
        t = t + tf.convert_to_tensor(layer.beta)
    return s, t


def _is_add(op) -> bool:
    return isinstance(op, (L.Add, ops_numpy().Add))


def _lazy_kind(node, lazy, upper):
    """How ``node``'s output is held for the copies (see :class:`AblationPlan`), or None:
    it runs per copy."""
    ins = node.arguments.keras_tensors
    ups = [t for t in ins if id(t) in upper]
    if len(ups) != 1 or len(node.outputs) != 1 or id(ups[0]) not in lazy:
        return None
    op, (t_in,), (t_out,) = node.operation, ups, node.outputs
    kind, delta = lazy[id(t_in)]
    same_positions = tuple(t_out.shape[:-1]) == tuple(t_in.shape[:-1])
    if len(ins) != 1:  # a skip connection from below added to a rank-one update: still one
        return (kind, delta) if kind == "delta" and _is_add(op) and tuple(t_out.shape) == tuple(t_in.shape) else None
    matrix = _channel_matrix(op) if same_positions else None
    if kind == "mask":
        if len(t_out.shape) >= 2 and t_out.shape[-1] == t_in.shape[-1] and _channel_wise(op):
            return ("mask", None)
        return ("delta", Delta(t_in, matrix)) if matrix is not None else None
    if _is_linear(op):
        return (kind, delta)
    if isinstance(op, L.BatchNormalization) and int(op.axis) % len(t_in.shape) == len(t_in.shape) - 1:
        return ("delta", Delta(delta.src, lambda row=delta.row, bn=op: row() * bn_scale_shift(bn)[0][None, :]))
    if matrix is not None:
        return ("delta", Delta(delta.src, lambda row=delta.row, m=matrix: tf.matmul(row(), m())))
    return None


def ablation_plan(bundle, cam_layer: str, head_layer, push: bool = True) -> AblationPlan:
    """The cached :class:`AblationPlan` of ``cam_layer`` for a head; ``push=False``: every
    layer above ``cam_layer`` runs per copy (the plain split, for comparison)."""
    def build():
        model, captured = flat_graph(bundle, head_layer, (cam_layer,))
        cam = captured[cam_layer]
        main = model.outputs[0]
        nodes = call_nodes(model)
        upper = {id(cam)}
        plan = AblationPlan(model, cam, main, int(cam.shape[-1]), nodes)
        plan.lazy[id(cam)] = ("mask", None)
        for node in nodes:
            if any(id(t) in upper for t in node.arguments.keras_tensors):
                kind = _lazy_kind(node, plan.lazy, upper) if push else None
                upper.update(id(t) for t in node.outputs)
                if kind is None:
                    plan.run.append(node)
                else:
                    plan.lazy.update({id(t): kind for t in node.outputs})
        if id(main) not in upper:
            raise TargetError(f"CAM layer {cam_layer!r} does not feed the target "
                              f"({'the logits' if head_layer is None else head_layer!r}); pick a layer before it")
        read = [t for n in plan.run for t in n.arguments.keras_tensors] + [main]
        seen = set()
        for t in read:
            if id(t) in seen:
                continue
            seen.add(id(t))
            if id(t) in plan.lazy:
                plan.frontier.append(t)
            elif id(t) not in upper:
                plan.bypass.append(t)
        return plan
    return bundle.programs.get("attribution.ablation_plan", (cam_layer,) + ((head_layer,) if head_layer else ()),
                               (head_layer, bool(push)), build)


# --------------------------------------------------------------------------- the two programs
def _channels_first(a):
    """``[K, ..., C] -> [K, C, ...]``."""
    rank = len(a.shape)
    return tf.transpose(a, [0, rank - 1] + list(range(1, rank - 1)))


def lower_function(bundle, cam_layer, head_layer, push: bool = True):
    """``f(x [K,H,W,C], sel) -> (scores [K], activations, [frontier arrays], [bypass
    arrays])``: one forward pass per image. A ``"mask"`` frontier tensor gives its value;
    a ``"delta"`` one its value, its source channels first ``[K, C, ...]`` and its
    ``[C, out]`` matrix."""
    plan = ablation_plan(bundle, cam_layer, head_layer, push)

    def build():
        inp = plan.model.inputs[0]
        spec = tf.TensorSpec([None] + list(inp.shape[1:]), inp.dtype)

        @tf.function(autograph=False, input_signature=[spec, tf.TensorSpec([None, SEL_WIDTH], tf.int32)])
        def tfviz_ablation_lower(x, sel):
            vals = {id(inp): x}
            for node in plan.nodes:
                run_node(node, vals)
            s = select_score(apply_score(vals[id(plan.main)], head_layer), sel)
            front = []
            for t in plan.frontier:
                kind, delta = plan.lazy[id(t)]
                front.append(vals[id(t)])
                if kind == "delta":
                    front += [_channels_first(vals[id(delta.src)]), tf.cast(delta.row(), vals[id(t)].dtype)]
            return s, vals[id(plan.cam)], front, [vals[id(t)] for t in plan.bypass]
        return tfviz_ablation_lower
    return bundle.programs.get("attribution.ablation_lower", (cam_layer,) + ((head_layer,) if head_layer else ()),
                               (head_layer, bool(push)), build)


def _spec(shape, dtype):
    return tf.TensorSpec([None] + [None if d is None else int(d) for d in shape], dtype)


def copies_function(bundle, cam_layer, head_layer, push: bool = True):
    """``f([frontier arrays], [bypass arrays], img [B], ch [B], sel [B, 7]) -> scores
    [B]``: copy ``i`` is image ``img[i]`` (an index into the arrays) with channel ``ch[i]``
    of the CAM layer zeroed; only the layers above the CAM layer run, on a batch of
    copies. Traced once per layer and head (any number of images and copies)."""
    plan = ablation_plan(bundle, cam_layer, head_layer, push)

    def build():
        front_spec = []
        for t in plan.frontier:
            kind, delta = plan.lazy[id(t)]
            front_spec.append(_spec(t.shape[1:], t.dtype))
            if kind == "delta":
                src = delta.src.shape
                front_spec += [_spec((src[-1],) + tuple(src[1:-1]), t.dtype),
                               tf.TensorSpec([src[-1], t.shape[-1]], t.dtype)]
        i32 = tf.TensorSpec([None], tf.int32)
        sig = [front_spec, [_spec(t.shape[1:], t.dtype) for t in plan.bypass], i32, i32,
               tf.TensorSpec([None, SEL_WIDTH], tf.int32)]

        @tf.function(autograph=False, input_signature=sig)
        def tfviz_ablation_copies(front, bypass, img, ch, sel):
            vals = {}
            k = 0
            for t in plan.frontier:
                base = tf.gather(front[k], img)
                rank = len(base.shape)
                if plan.lazy[id(t)][0] == "mask":
                    keep = 1.0 - tf.one_hot(ch, plan.channels, dtype=base.dtype)
                    vals[id(t)] = base * tf.reshape(keep, [-1] + [1] * (rank - 2) + [plan.channels])
                    k += 1
                else:
                    src = tf.gather_nd(front[k + 1], tf.stack([img, ch], axis=1))  # [B, ...positions]
                    row = tf.reshape(tf.gather(front[k + 2], ch), [-1] + [1] * (rank - 2) + [base.shape[-1]])
                    vals[id(t)] = base - src[..., None] * row
                    k += 3
            for t, v in zip(plan.bypass, bypass):
                vals[id(t)] = tf.gather(v, img)
            for node in plan.run:
                run_node(node, vals)
            return select_score(apply_score(vals[id(plan.main)], head_layer), sel)
        return tfviz_ablation_copies
    return bundle.programs.get("attribution.ablation_copies", (cam_layer,) + ((head_layer,) if head_layer else ()),
                               (head_layer, bool(push)), build)


# --------------------------------------------------------------------------- batch sizes
def copies_per_batch(plan: AblationPlan, batch_size=None) -> int:
    """Ablated copies per upper pass: ``batch_size`` when given, else 64 MB of a copy's
    largest per-copy tensor on CPUs (256 MB on a GPU), between 8 and 4096 copies. On 2
    CPU cores (bench/bench_ablation_cam.py) larger batches were faster up to about 128
    copies of a 7x7x2048 map and 256 of a 7x7x1280 one, and a rank-one update per copy
    (a few KB) is fastest with every channel in one batch."""
    if batch_size:
        return max(1, int(batch_size))
    budget = (256 << 20) if tf.config.list_logical_devices("GPU") else (64 << 20)
    return int(min(4096, max(8, budget // max(1, plan.per_copy_bytes()))))


def _images_per_lower(plan: AblationPlan) -> int:
    """Images per lower pass: :data:`DEFAULT_BATCH`, fewer where what is kept for the
    copies would pass 256 MB."""
    return int(max(1, min(DEFAULT_BATCH, (256 << 20) // max(1, plan.per_image_bytes()))))


# --------------------------------------------------------------------------- the method
def cam_layer_for(bundle, layer, head_layer) -> str:
    """The CAM layer: ``layer`` (checked), the unit's own layer for a unit of a spatial
    layer, else the default CAM layer (as :func:`tfviz.attribution.grad_cam`)."""
    if layer is not None:
        if not isinstance(layer, str):
            raise NoSpatialLayerError(f"layer must be one layer name for ablation_cam, got {layer!r}")
    return _cam_layers(bundle, layer, head_layer)[0]


def ablation_scores(bundle, x, targets, layer=None, batch_size=None, push: bool = True, views=None):
    """``(scores [N], ablated scores [N, C], activations [N, ...])`` of the CAM layer (one
    layer for every image; the activations as the layer gives them). With ``views``
    (``(flip, scale)`` pairs, see :func:`tfviz.attribution.cam.augment`) every image is
    seen through each view, a position or box target moved with it, and each array gets
    a view axis after the image axis: ``[N, V]``, ``[N, V, C]``, ``[N, V, ...]``. All views
    of a chunk of images go through the lower pass as one batch and their copies through
    the upper pass together."""
    n = len(x)
    nv = len(views) if views else 1
    scores = np.zeros((n, nv), np.float32)
    ablated, acts = None, None
    for head_layer, ids in group_by_head(targets).items():
        cam = cam_layer_for(bundle, layer, head_layer)
        plan = ablation_plan(bundle, cam, head_layer, push)
        lower = lower_function(bundle, cam, head_layer, push)
        copies = copies_function(bundle, cam, head_layer, push)
        rows = selection([targets[i] for i in ids])
        bs = copies_per_batch(plan, batch_size)
        c = plan.channels
        for chunk in even_batches(len(ids), max(1, _images_per_lower(plan) // nv)):
            xs, sel = x[ids[chunk]], rows[chunk]
            m = len(sel)
            if views:  # view-major: view v of image i at v * m + i
                xs = augment(xs, views)
                sel = view_selection(sel, views, score_map_hw(plan.main)).numpy()
            s, a, front, bypass = lower(xs, sel)
            k = len(sel)
            img = np.repeat(np.arange(k, dtype=np.int32), c)
            ch = np.tile(np.arange(c, dtype=np.int32), k)
            out = np.zeros(k * c, np.float32)
            for part in even_batches(k * c, bs):
                out[part] = copies(front, bypass, img[part], ch[part], sel[img[part]]).numpy()
            if ablated is None:
                ablated = np.zeros((n, nv, c), np.float32)
                acts = np.zeros((n, nv) + tuple(a.shape[1:]), np.float32)
            if ablated.shape[2] != c or acts.shape[2:] != tuple(a.shape[1:]):
                raise AttributionError("ablation_cam explains all images at one layer; the targets' layers differ "
                                       "in shape (give layer=, or explain them separately)")
            scores[ids[chunk]] = s.numpy().reshape(nv, m).T
            ablated[ids[chunk]] = out.reshape(nv, m, c).swapaxes(0, 1)
            acts[ids[chunk]] = a.numpy().reshape((nv, m) + tuple(a.shape[1:])).swapaxes(0, 1)
    check_finite(scores, "scores", targets)
    check_finite(ablated, "ablated scores", targets)
    if not views:
        return scores[:, 0], ablated[:, 0], acts[:, 0]
    return scores, ablated, acts


def ablation_weights(scores, ablated):
    """``w_k = (S - S_k) / S`` per image (Desai & Ramaswamy 2020); a score of
    exactly 0 divides by 1."""
    s = scores[:, None].astype(np.float64)
    return ((s - ablated) / np.where(s == 0.0, 1.0, s)).astype(np.float32)


@attribution_method
def ablation_cam(bundle, x, targets, *, layer: str | None = None, batch_size: int | None = None,
                 upsample: bool = True, relu: bool = True, return_weights: bool = False,
                 aug_smooth: bool | tuple = False, eigen_smooth: bool = False):
    """Ablation-CAM map ``[N, H, W]`` (Desai & Ramaswamy 2020): each channel ``k`` of
    ``layer``'s activations ``A`` weighted by the relative drop of the target's score when
    that channel is zeroed, ``w_k = (S - S_k) / S``; the map is ``relu(sum_k w_k A_k)``
    upsampled bilinearly to the input size (``upsample=False``: the layer's own
    resolution; ``relu=False``: the signed sum). No gradients: one forward pass per image,
    then one pass of the layers *above* ``layer`` per channel, all channels' copies batched
    in one traced program (a skip connection that bypasses ``layer`` is computed once per
    image). A negative score flips the weights' sign, as in the paper.

    ``layer``: as :func:`grad_cam` (default: the last spatial conv layer; a vision
    transformer's token layer, each of its features zeroed in every token).
    ``batch_size``: ablated copies per pass (default: sized for the machine).
    ``return_weights=True`` also returns the weights ``[N, C]`` (with ``aug_smooth``,
    each view's: ``[N, V, C]``, in the order of the views).
    ``eigen_smooth``: the first principal component of ``w_k A_k`` instead of their sum.
    ``aug_smooth``: as every CAM method's (:func:`grad_cam`): the map of each view of the
    image (its mirror, scales 1.1 and 0.9; or your ``(flip, scale)`` pairs), each with its
    own ablations, mapped back and averaged -- ``V`` times the work, all views batched."""
    views = aug_views(aug_smooth)
    if views:
        _check_aug_targets(bundle, targets)
    scores, ablated, acts = ablation_scores(bundle, x, targets, layer=layer, batch_size=batch_size, views=views)
    hw = x.shape[1:3]
    if views:  # [N, V, ...] -> view-major [V * N, ...], as the views were made
        n, nv = scores.shape
        w = ablation_weights(scores.T.reshape(-1), ablated.swapaxes(0, 1).reshape(nv * n, -1))
        acts = acts.swapaxes(0, 1).reshape((nv * n,) + acts.shape[2:])
    else:
        w = ablation_weights(scores, ablated)
    cam = weighted_map(as_grid(tf.constant(acts), hw), w, eigen_smooth)
    cam = check_finite(finish_map(cam, hw, relu, upsample, views), "Ablation-CAM maps", targets)
    if views:
        w = w.reshape(nv, n, -1).swapaxes(0, 1)
    return (cam, w) if return_weights else cam
