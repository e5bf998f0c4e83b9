"""Layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019, "Layer-wise
relevance propagation: an overview") for Keras 3, in one modified backward pass.

LRP explains a score by handing it back layer by layer: each layer splits the relevance of
its outputs among its inputs by a *rule* (:mod:`.lrp_rules`), so that (up to what biases and
stabilizers absorb) the relevances of the input pixels add up to the score.

How it is computed (the *gradient x input* formulation, as zennit does): the model's graph
is re-run (:class:`tfviz.graph.Rewriter`, the user's layers reused, nothing changed) with
some layers wrapped by a layer with the identical forward pass and another backward pass
(``tf.custom_gradient``). What flows backwards in place of the gradient is ``g`` such that
the relevance of every tensor ``t`` is ``t * g``; the score's one-hot gradient makes the
relevance of the output the score itself, and the map is ``x * g`` at the input. In this
formulation the ordinary gradient of a linear operation without weights already is LRP's
z-rule (the relevance of each input is its share of the output), and a ReLU's gradient is
LRP's pass rule. So:

* **Dense, Conv1D/2D/3D, DepthwiseConv1D/2D, SeparableConv1D/2D**: the layer's rule (a
  separable convolution is its two maps, both with the rule), with a **BatchNormalization**
  that only reads that layer's output folded in (``W' = W a``, ``b' = a b + beta - a mean``,
  ``a = gamma / sqrt(var + eps)``: computed from the variables, never written back). A batch
  norm that cannot be folded is a linear layer of its own (rule: the composite's
  ``"batchnorm"``, else ``rule``).
* **Activations** pass relevance unchanged (zennit's Pass rule). An element-wise activation
  fused into a layer (``activation=``), or the only reader of a layer's output (a ``ReLU``
  layer after a convolution and batch norm), is run by that layer's wrapper, which starts
  from the relevance ``f(z) g`` of the activation's output. Elsewhere ReLU, LeakyReLU and
  PReLU keep their gradient (which is the pass rule here) and other element-wise
  activations (ReLU6, SiLU, GELU, sigmoid, ...) get ``g_z = g_y f(z) / z``. In-model
  preprocessing of the image (``Rescaling``, ``Normalization``) passes relevance to the
  pixels unchanged (through a second model input: a pixel whose model input is 0 keeps
  the relevance of its rescaled value).
* **Add, Average, AveragePooling, GlobalAveragePooling**: the epsilon rule, relevance split
  in proportion to the inputs' contributions, ``x_i / (y + eps sign y)``, with ``rule``'s
  epsilon when it is an epsilon rule (LRP-0: exactly their gradient), else 1e-6 (zennit's
  Norm).
* **MaxPooling, GlobalMaxPooling** (winner takes all), **Flatten, Reshape, Permute,
  Concatenate, ZeroPadding, Cropping, UpSampling, Subtract, Dropout**-type layers: their
  gradient.
* **LayerNormalization**: the standard deviation taken as a constant, which makes it linear
  (Ali et al. 2022's LN-rule); its gradient is then its z-rule.
* **Multiply** of a signal by a smaller, broadcast gate (squeeze-and-excitation): the
  signal keeps all the relevance (Arras et al. 2017's signal-take-all), the gate none.
* Anything else (attention, ``Lambda``, custom layers...): a one-line
  :class:`~tfviz.errors.UnsupportedModelError` naming the layer and its type.

A final softmax is bypassed (scores are logits). :func:`lrp` runs in one traced program
(``tf.function``) per head and input shape, cached in the bundle; the rewritten model also
runs eagerly.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..errors import AttributionError, TargetError, TfvizError, UnsupportedModelError
from ..graph import Ref, Rewriter, linear_twin
from ..models.views import BypassActivation
from ..utils import did_you_mean
from .core import (DEFAULT_BATCH, check_finite, check_reduce, group_by_head, padded_batches, reduce_channels,
                   select_score, selection)
from .heads import score_source, with_score_function
from .lrp_rules import FAMILIES, STABILIZER, Epsilon, Linear, Rule, ZBox, composite_of, rule_of
from .registry import attribution_method
from .rules import activation_name, nonlinearity, relu_spec, wrap_activation

L = keras.layers
CONV = (L.Conv1D, L.Conv2D, L.Conv3D)
DEPTHWISE = (L.DepthwiseConv1D, L.DepthwiseConv2D)
SEPARABLE = (L.SeparableConv1D, L.SeparableConv2D)
LINEAR = CONV + DEPTHWISE + SEPARABLE + (L.Dense,)
#: Linear operations without weights that get the stabilized z-rule.
NORM = (L.Add, L.Average, L.AveragePooling1D, L.AveragePooling2D, L.AveragePooling3D,
        L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalAveragePooling3D)
#: Layers whose gradient is their LRP rule (routing, max pooling, identities at inference).
ROUTING = (L.ZeroPadding1D, L.ZeroPadding2D, L.ZeroPadding3D, L.Cropping1D, L.Cropping2D, L.Cropping3D)
IDENTITY = (L.Dropout, L.SpatialDropout1D, L.SpatialDropout2D, L.SpatialDropout3D, L.GaussianDropout,
            L.GaussianNoise, L.AlphaDropout, L.ActivityRegularization, L.Identity, L.InputLayer)
PLAIN = ROUTING + IDENTITY + (
    L.Flatten, L.Reshape, L.Permute, L.Concatenate, L.Subtract, L.LeakyReLU, L.PReLU,
    L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D, L.GlobalMaxPooling1D, L.GlobalMaxPooling2D,
    L.GlobalMaxPooling3D, L.UpSampling1D, L.UpSampling2D, L.UpSampling3D)
#: Layers that may stand between the image and a layer with an input-layer rule and move pixels
#: only (the relevance input takes the same way).
MOVES = ROUTING + (L.Flatten, L.Reshape, L.Permute)
#: Per-channel affine layers inside a model (its own preprocessing): relevance passes unchanged.
AFFINE = (L.Rescaling, L.Normalization)
#: ``keras.ops`` calls in a Functional graph (by class name) whose gradient is their rule.
PLAIN_OPS = ("Reshape", "Transpose", "ExpandDims", "Squeeze", "Concatenate", "GetItem", "Subtract", "Flatten")
#: keras.applications' own layers (by class name, in keras' applications package): a weighted
#: sum (Inception-ResNet's residual scale: the z-rule), a per-channel scale (ConvNeXt), and an
#: identity at inference (stochastic depth).
APPLICATION_LAYERS = {"CustomScaleLayer": "norm", "LayerScale": "plain", "StochasticDepth": "plain"}
#: Layers whose outputs are >= 0 when their inputs are.
KEEPS_SIGN = ROUTING + IDENTITY + NORM + (
    L.Flatten, L.Reshape, L.Permute, L.Concatenate, L.MaxPooling1D, L.MaxPooling2D, L.MaxPooling3D,
    L.GlobalMaxPooling1D, L.GlobalMaxPooling2D, L.GlobalMaxPooling3D, L.UpSampling1D, L.UpSampling2D,
    L.UpSampling3D)


# --------------------------------------------------------------------------- what each operation is
def _op_name(op) -> str:
    return getattr(op, "name", None) or type(op).__name__


def _describe(op) -> str:
    return f"{_op_name(op)!r} ({type(op).__name__})"


def _unsupported(op, why: str = "") -> UnsupportedModelError:
    why = why or "LRP has no rule for this kind of layer"
    return UnsupportedModelError(f"lrp cannot explain through layer {_describe(op)}: {why}")


def _layer_of(op):
    """The layer whose weights a linear call uses (a bypassed final softmax's layer)."""
    return op.inner if isinstance(op, BypassActivation) else op


def family(layer) -> str:
    if isinstance(layer, L.Dense):
        return "dense"
    if isinstance(layer, L.BatchNormalization):
        return "batchnorm"
    return "conv"


def _activation_kind(op) -> str | None:
    """A linear call's fused activation: None (linear or bypassed), ``"relu"`` or
    ``"pass"`` (another element-wise one); raises for activations LRP cannot pass."""
    if isinstance(op, BypassActivation):
        return None
    name = activation_name(getattr(op, "activation", None))
    if name in ("", "linear"):
        return None
    spec = relu_spec(op)
    if spec is not None and spec.max_value is None and spec.threshold == 0:
        return "relu"
    if nonlinearity(op) == "fused":
        return "pass"
    raise _unsupported(op, f"its activation {name!r} is not element-wise")


def role(op, ins) -> tuple:
    """``(role, detail)`` of one call of ``op`` on the symbolic tensors ``ins``: ``linear``,
    ``bn``, ``norm``, ``pass``, ``gate`` (detail: the gate's index), ``plain``; raises
    :class:`UnsupportedModelError` for anything else."""
    if isinstance(op, BypassActivation) or isinstance(op, LINEAR):
        layer = _layer_of(op)
        if not isinstance(layer, LINEAR):
            raise _unsupported(layer)
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise _unsupported(layer, "channels_first layers are not supported")
        _activation_kind(op)
        return "linear", None
    if isinstance(op, L.BatchNormalization):
        return "bn", None
    if isinstance(op, L.LayerNormalization):
        return "layernorm", None
    if type(op).__name__ in APPLICATION_LAYERS and type(op).__module__.startswith("keras.src.applications"):
        return APPLICATION_LAYERS[type(op).__name__], None
    if isinstance(op, NORM):
        return "norm", None
    if isinstance(op, AFFINE):
        return "pass", None
    if isinstance(op, L.Multiply):
        return "gate", _gate_index(op, ins)
    if isinstance(op, PLAIN):
        return "plain", None
    if isinstance(op, L.Activation) and activation_name(op.activation) == "linear":
        return "plain", None
    spec = relu_spec(op)
    if spec is not None and not spec.fused:
        exact = spec.max_value is None and spec.threshold == 0
        return ("plain" if exact else "pass"), None
    kind = nonlinearity(op)
    if kind == "standalone":
        return "pass", None
    if isinstance(op, L.Layer):
        raise _unsupported(op)
    cls = type(op).__name__  # a keras.ops call of a Functional graph
    if cls == "Add":
        return "norm", None
    if cls in PLAIN_OPS:
        return "plain", None
    if cls in ("Multiply", "Divide", "TrueDivide") and len(ins) == 1:
        return "plain", None  # scaled by a constant
    if cls == "Multiply":
        return "gate", _gate_index(op, ins)
    raise _unsupported(op, "LRP has no rule for this operation")


def _gate_index(op, ins) -> int:
    """Which of a product's two inputs is the gate: the one broadcast (size 1) along some
    axis where the other is not, and equal to it elsewhere."""
    if len(ins) != 2:
        raise _unsupported(op, "LRP splits a product of two tensors only (a signal and a gate)")
    shapes = [tuple(t.shape)[1:] for t in ins]
    for i in (0, 1):
        mine, other = shapes[i], shapes[1 - i]
        if len(mine) == len(other) and all(m == 1 or m == o for m, o in zip(mine, other)) \
                and any(m == 1 and o != 1 for m, o in zip(mine, other)):
            return i
    raise _unsupported(op, "a product of two tensors of the same shape has no LRP rule (only a signal times a "
                           "broadcast gate, as in squeeze-and-excitation)")


# --------------------------------------------------------------------------- the plan
def _tensors(obj) -> list:
    if isinstance(obj, keras.KerasTensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


class Plan:
    """What one walk over the graph found: each call's role, which batch norms fold into
    which layer, each layer's rule, which inputs are >= 0, what reads the image."""

    def __init__(self, calls, inp, target):
        self.calls = calls                      # [(op, in tensors, out tensors)] in graph order
        self.inp = inp
        self.roles: dict = {}                   # id(op) -> (role, detail)
        self.relevant: set = set()              # id(op) of calls the target depends on
        self.fold: dict = {}                    # id(linear op) -> batch norm op
        self.folded: set = set()                # id(batch norm op)
        self.rules: dict = {}                   # id(op) -> Rule
        self.nonneg: set = set()                # id(op): every call's input is >= 0
        self.absorb: dict = {}                  # id(linear op) -> the activation call alone reading it
        self.absorbed: set = set()              # id(activation op)
        self.chain: dict = {}                   # id(op) -> [(op, routing)] from the image to its input
        producer, consumers = {}, {}
        for i, (_, ins, outs) in enumerate(calls):
            for t in outs:
                producer[id(t)] = i
            for t in ins:
                consumers.setdefault(id(t), []).append(i)
        self.producer, self.consumers, self.target = producer, consumers, target
        counts: dict = {}
        for op, _, _ in calls:
            counts[id(op)] = counts.get(id(op), 0) + 1
        self.counts = counts

    def ancestors(self):
        seen, stack, rel = set(), [id(self.target)], set()
        while stack:
            tid = stack.pop()
            if tid in seen:
                continue
            seen.add(tid)
            i = self.producer.get(tid)
            if i is None:
                continue
            rel.add(i)
            stack.extend(id(t) for t in self.calls[i][1])
        return sorted(rel)


def _is_relu_like(op) -> bool:
    spec = relu_spec(op)
    return spec is not None and spec.negative_slope == 0 and spec.threshold >= 0


def make_plan(bundle, source, layer, rule: Rule, composite):
    """Walk ``source``'s graph once (symbolically) and decide how each call is explained."""
    calls = []

    def replace(op):
        def call(*args, **kwargs):
            out = op(*args, **kwargs)
            calls.append((op, _tensors(args) + _tensors(kwargs), _tensors(out)))
            return out
        return call

    rw = Rewriter((layer,) if layer else (), replace=replace)
    inp, out = rw.trace(source)
    if isinstance(out, (list, tuple)):
        out = out[0]
    if layer:
        if layer not in rw.captured:
            raise TargetError(f"layer {layer!r} is not on the path from the input to the model output; pick "
                              f"another layer")
        target = rw.captured[layer]
    else:
        target = out
    plan = Plan(calls, inp, target)
    order = plan.ancestors()
    for i in order:
        op, ins, _ = calls[i]
        plan.relevant.add(id(op))
        plan.roles[id(op)] = role(op, ins)
    for i in order:  # in-model preprocessing of the image: its relevance goes to the pixels
        op, ins, _ = calls[i]
        if isinstance(op, AFFINE) and len(ins) == 1 and plan.counts[id(op)] == 1:
            chain = _chain(plan, ins[0])
            if chain is not None:
                plan.chain[id(op)] = chain
    _find_folds(plan, order, layer)
    _find_absorbed(plan, order, layer)
    _find_signs(plan)
    _assign_rules(plan, order, rule, composite)
    return plan


def _find_folds(plan, order, wanted):
    calls = plan.calls
    for i in order:
        op, ins, outs = calls[i]
        if plan.roles[id(op)][0] != "bn" or len(ins) != 1 or plan.counts[id(op)] != 1:
            continue
        p = plan.producer.get(id(ins[0]))
        if p is None:
            continue
        lin = calls[p][0]
        axis = op.axis if isinstance(op.axis, int) else -1
        rank = len(ins[0].shape)
        if (plan.roles.get(id(lin), ("",))[0] != "linear" or isinstance(lin, BypassActivation)
                or plan.counts[id(lin)] != 1 or _activation_kind(lin) is not None
                or plan.consumers.get(id(ins[0])) != [i] or ins[0] is plan.target
                or axis not in (-1, rank - 1) or (wanted and _op_name(lin) == wanted.split("/")[-1])):
            continue
        plan.fold[id(lin)] = op
        plan.folded.add(id(op))


def _is_activation(op) -> bool:
    spec = relu_spec(op)
    return (spec is not None and not spec.fused) or nonlinearity(op) == "standalone"


def _last_output(plan, op):
    """The output of a linear call, or of the batch norm folded into it."""
    bn = plan.fold.get(id(op))
    return next(o for b, _, o in plan.calls if b is (op if bn is None else bn))


def _find_absorbed(plan, order, wanted):
    """An element-wise activation that alone reads a linear call's output (a batch norm's,
    when folded) is run by the layer's LRP wrapper: the relevance of the output is
    ``f(z) g`` (LRP passes it through the activation), with no separate backward step."""
    short = wanted.split("/")[-1] if isinstance(wanted, str) else None
    for i in order:
        op = plan.calls[i][0]
        if plan.roles[id(op)][0] not in ("linear", "bn") or id(op) in plan.folded or plan.counts[id(op)] != 1:
            continue
        if plan.roles[id(op)][0] == "linear" and _activation_kind(op) is not None:
            continue
        out = _last_output(plan, op)
        if len(out) != 1 or out[0] is plan.target:
            continue
        users = plan.consumers.get(id(out[0]), [])
        if len(users) != 1:
            continue
        act = plan.calls[users[0]][0]
        bn = plan.fold.get(id(op))
        names = {_op_name(op)} | ({_op_name(bn)} if bn is not None else set())
        if (not _is_activation(act) or plan.counts[id(act)] != 1 or id(act) not in plan.relevant
                or short in names):
            continue
        plan.absorb[id(op)] = act
        plan.absorbed.add(id(act))


def _find_signs(plan):
    """Which linear calls read only tensors >= 0 (ReLU outputs, through pooling, padding,
    reshapes, concatenations and sums)."""
    nonneg = set()
    reads: dict = {}
    for op, ins, outs in plan.calls:
        if _is_relu_like(op):
            nonneg.update(id(t) for t in outs)
        elif isinstance(op, KEEPS_SIGN) and ins and all(id(t) in nonneg for t in ins):
            nonneg.update(id(t) for t in outs)
        if plan.roles.get(id(op), ("",))[0] in ("linear", "bn") and ins:
            reads.setdefault(id(op), []).append(id(ins[0]) in nonneg)
    plan.nonneg = {k for k, v in reads.items() if all(v)}


def _chain(plan, t):
    """The calls from the model input to ``t`` when they only rescale or pad it, as
    ``[(op, routing)]``; else None."""
    chain = []
    while t is not plan.inp:
        p = plan.producer.get(id(t))
        if p is None:
            return None
        op, ins, _ = plan.calls[p]
        ok = isinstance(op, MOVES + IDENTITY + AFFINE) or (isinstance(op, L.Activation)
                                                           and activation_name(op.activation) == "linear")
        if not ok or len(ins) != 1:
            return None
        chain.insert(0, (op, isinstance(op, MOVES)))
        t = ins[0]
    return chain


def _assign_rules(plan, order, rule, composite):
    first_families = composite.first if composite is not None else ()
    first_done = False
    seen = set()
    names = set()
    for i in order:
        op, ins, _ = plan.calls[i]
        names.add(_op_name(op))
        kind = plan.roles[id(op)][0]
        if kind not in ("linear", "bn") or id(op) in plan.folded or id(op) in seen:
            continue
        seen.add(id(op))
        layer = _layer_of(op)
        fam = family(layer)
        is_first = False
        if not first_done and fam in first_families:
            is_first = first_done = True
        chosen = None
        if composite is not None:
            chosen = composite.lookup(layer.name, type(layer).__name__, fam, is_first)
        chosen = chosen or rule
        if chosen.input_layer:
            if isinstance(layer, SEPARABLE):
                raise AttributionError(f"rule {chosen} applies to one linear map; layer {_describe(layer)} is two "
                                       f"(depthwise, then pointwise): give it another rule")
            chain = _chain(plan, ins[0]) if plan.counts[id(op)] == 1 else None
            if chain is None:
                raise AttributionError(f"rule {chosen} is an input-layer rule: it applies only to a layer that "
                                       f"reads the image (through rescaling, padding or reshaping at most); layer "
                                       f"{_describe(layer)} does not")
            plan.chain[id(op)] = chain
        plan.rules[id(op)] = chosen
    if composite is not None and composite.name == "custom":
        kinds = {c.__name__.lower() for c in LINEAR + (L.BatchNormalization,)} | set(FAMILIES) | {"first"}
        for key, _ in composite.entries:
            if key not in names and key.lower() not in kinds:
                raise AttributionError(did_you_mean("layer name or kind in the LRP composite", key,
                                                    sorted(names | {c.__name__ for c in LINEAR})))


# --------------------------------------------------------------------------- the modified layers
def _attach(inputs, value, backward):
    """``value`` (computed without a gradient) as a function of ``inputs`` whose backward
    pass is ``backward(g) -> [gradient of each input]``."""

    @tf.custom_gradient
    def lrp_rule(*ts):
        def grad(g):
            return backward(g)
        return tf.identity(value), grad
    return lrp_rule(*inputs)


def pass_rule(z, forward):
    """``forward(z)`` (element-wise) with LRP's pass rule as its backward pass: ``g_z = g_y
    f(z) / z`` (0 where ``z = 0``), so the relevance ``z g_z`` equals ``y g_y``."""

    @tf.custom_gradient
    def lrp_pass(t):
        y = forward(t)

        def grad(dy, variables=None):
            dt = dy * tf.math.divide_no_nan(y, t)
            return (dt, [tf.zeros_like(v) for v in variables]) if variables else dt
        return y, grad
    return lrp_pass(z)


def norm_rule(y, eps: float = STABILIZER):
    """Identity forward; backward ``g -> y g / (y + eps sign y)``: the epsilon rule on the
    linear operation without weights (sum, average) that produced ``y``."""

    @tf.custom_gradient
    def lrp_norm(t):
        def grad(dy):
            size = tf.abs(t)
            return dy * (size / (size + eps))  # = y / (y + eps sign y), fewer operations
        return tf.identity(t), grad
    return lrp_norm(y)


class NormRule(keras.layers.Layer):
    """The epsilon rule after a sum or an average (see :func:`norm_rule`)."""

    def __init__(self, eps: float, **kw):
        super().__init__(**kw)
        self.eps = float(eps)

    def call(self, inputs):
        return norm_rule(inputs, self.eps)

    def compute_output_shape(self, input_shape):
        return input_shape


class AffineInput(keras.layers.Layer):
    """A per-channel affine layer that preprocesses the image inside the model
    (``Rescaling``, ``Normalization``): relevance passes through it unchanged, handed to
    the relevance input (``inputs[1]``) rather than as a gradient, so that a pixel whose
    model input is 0 keeps the relevance of its rescaled value."""

    def __init__(self, op, **kw):
        super().__init__(name=f"{_op_name(op)}_lrp_input", **kw)
        self._op = Ref(op)

    def call(self, inputs):
        x = inputs[0]
        y = tf.stop_gradient(self._op.obj(x))
        return _attach([x, inputs[1]], y, lambda g: [tf.zeros_like(x), y * g])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])


class LayerNormRule(keras.layers.Layer):
    """Layer normalization with the normalizing standard deviation (or root mean square)
    taken as a constant on the way back, which makes it a linear map: its gradient is then
    its z-rule (Ali et al. 2022, "XAI for Transformers: better explanations through
    conservative propagation", the LN-rule)."""

    def __init__(self, op, **kw):
        super().__init__(name=f"{_op_name(op)}_lrp_ln", **kw)
        self._op = Ref(op)

    def call(self, x):
        op = self._op.obj
        y = op(x)
        rank = len(x.shape)
        axes = [a % rank for a in (op.axis if isinstance(op.axis, (list, tuple)) else [op.axis])]
        xs = tf.stop_gradient(x)
        rms = getattr(op, "rms_scaling", False)
        if rms:
            scale = tf.math.rsqrt(tf.reduce_mean(tf.square(xs), axes, keepdims=True) + op.epsilon)
        else:
            _, var = tf.nn.moments(xs, axes, keepdims=True)
            scale = tf.math.rsqrt(var + op.epsilon)
        if getattr(op, "gamma", None) is not None:
            shape = [1] * rank
            for a in axes:
                shape[a] = -1 if x.shape[a] is None else int(x.shape[a])
            scale = scale * tf.reshape(tf.cast(tf.convert_to_tensor(op.gamma), x.dtype), shape)

        def linear(t):
            if not rms:
                t = t - tf.reduce_mean(t, axes, keepdims=True)
            return t * scale

        def backward(g):
            with tf.GradientTape() as tape:
                tape.watch(xs)
                out = linear(xs)
            return [tape.gradient(out, xs, output_gradients=g)]
        return _attach([x], tf.stop_gradient(y), backward)

    def compute_output_shape(self, input_shape):
        return input_shape


class GateRule(keras.layers.Layer):
    """A product of a signal and a gate, the gate passing back no relevance."""

    def __init__(self, op, gate: int, **kw):
        super().__init__(name=f"{_op_name(op)}_lrp_gate", **kw)
        self.gate = gate

    def call(self, inputs):
        signal, gate = inputs[1 - self.gate], inputs[self.gate]
        return signal * tf.stop_gradient(gate)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[1 - self.gate])


class Fill(keras.layers.Layer):
    """``[1, ...]`` of the input's shape filled with one value per channel."""

    def __init__(self, value, **kw):
        super().__init__(**kw)
        self.value = tuple(float(v) for v in np.asarray(value, np.float32).reshape(-1))

    def call(self, inputs):
        return tf.zeros_like(inputs[:1]) + tf.constant(self.value, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return (1,) + tuple(input_shape[1:])


def _kernel(t, dtype):
    return tf.cast(tf.convert_to_tensor(t), dtype)


def _bn_affine(bn, dtype):
    """``(a, shift)``: inference batch norm is ``a x + shift`` per channel."""
    a = tf.math.rsqrt(_kernel(bn.moving_variance, dtype) + bn.epsilon)
    if bn.scale:
        a = a * _kernel(bn.gamma, dtype)
    shift = -_kernel(bn.moving_mean, dtype) * a
    if bn.center:
        shift = shift + _kernel(bn.beta, dtype)
    return a, shift


def stages(layer, bn, dtype, rank=None) -> list:
    """The linear maps of ``layer`` from input to output (two for a separable
    convolution), a batch norm ``bn`` folded into the last."""
    bias = _kernel(layer.bias, dtype) if getattr(layer, "use_bias", False) and layer.bias is not None else None
    if isinstance(layer, L.BatchNormalization):
        a, shift = _bn_affine(layer, dtype)
        axis = layer.axis if isinstance(layer.axis, int) else -1
        shape = [1] * rank
        shape[axis] = -1
        return [Linear(lambda x, w: x * tf.reshape(w, shape), a, tf.reshape(shift, shape))]
    if isinstance(layer, L.Dense):
        out = [Linear(keras.ops.matmul, _kernel(layer.kernel, dtype), bias)]
    elif isinstance(layer, CONV):
        out = [Linear(layer.convolution_op, _kernel(layer.kernel, dtype), bias)]
    elif isinstance(layer, DEPTHWISE):
        def depthwise(x, w, layer=layer):
            return keras.ops.depthwise_conv(x, w, strides=layer.strides, padding=layer.padding,
                                            dilation_rate=layer.dilation_rate, data_format=layer.data_format)
        out = [Linear(depthwise, _kernel(layer.kernel, dtype), bias)]
    else:  # separable
        def depthwise(x, w, layer=layer):
            return keras.ops.depthwise_conv(x, w, strides=layer.strides, padding=layer.padding,
                                            dilation_rate=layer.dilation_rate, data_format=layer.data_format)

        def pointwise(u, w, layer=layer):
            return keras.ops.conv(u, w, strides=1, padding="valid", data_format=layer.data_format)
        out = [Linear(depthwise, _kernel(layer.depthwise_kernel, dtype)),
               Linear(pointwise, _kernel(layer.pointwise_kernel, dtype), bias)]
    if bn is not None:
        a, shift = _bn_affine(bn, dtype)
        last = out[-1]
        w = last.kernel
        if isinstance(layer, DEPTHWISE):
            scale = tf.reshape(a, tf.shape(w)[-2:])
        else:
            scale = a
        b = shift if last.bias is None else last.bias * a + shift
        out[-1] = Linear(last.fn, w * scale, b)
    return out


class LrpLinear(keras.layers.Layer):
    """A dense / convolution layer (with a folded batch norm, and its activation: fused,
    or ``act``, the activation call alone reading its output) whose backward pass is an
    LRP rule. Its forward pass is the layers' own."""

    def __init__(self, op, bn, act, rule: Rule, nonneg: bool, **kw):
        super().__init__(name=f"{_op_name(op)}_lrp", **kw)
        self._op, self._bn, self._act = Ref(op), Ref(bn), Ref(act)
        self.rule, self.nonneg = rule, nonneg
        self.fused = not isinstance(op, L.BatchNormalization) and _activation_kind(op) is not None
        self.relu_out = _is_relu_like(op) if self.fused else (act is not None and _is_relu_like(act))
        self._twin = None

    def build(self, input_shape):
        shape = input_shape[0] if self.rule.input_layer else input_shape
        if self.fused:
            self._twin = Ref(linear_twin(self._op.obj, shape))

    def call(self, inputs):
        op, bn, act = self._op.obj, self._bn.obj, self._act.obj
        x = inputs[0] if self.rule.input_layer else inputs
        if self._twin is not None:
            z = self._twin.obj(x)
        elif isinstance(op, L.BatchNormalization):
            z = op(x, training=False)
        else:
            z = op(x)
        if bn is not None:
            z = bn(z, training=False)
        a = op.activation(z) if self.fused else (act(z) if act is not None else None)
        maps = stages(_layer_of(op), bn, x.dtype, len(x.shape))
        zc, xs = tf.stop_gradient(z), tf.stop_gradient(x)
        ac = None if a is None else tf.stop_gradient(a)
        rule, nonneg, relu_out = self.rule, self.nonneg, self.relu_out
        bounds = None
        if self.rule.input_layer and len(inputs) == 4:
            lo, hi = tf.stop_gradient(inputs[2]), tf.stop_gradient(inputs[3])
            bounds = (tf.minimum(lo, hi), tf.maximum(lo, hi))

        def backward(g):
            ins, outs = [xs], []
            for m in maps[:-1]:
                outs.append(m(ins[-1], bias=m.bias))
                ins.append(outs[-1])
            outs.append(zc)
            last = len(maps) - 1
            for k in range(last, -1, -1):
                g = rule.backward(maps[k], ins[k], outs[k], g, a=ac if k == last else None,
                                  nonneg=nonneg and k == 0, relu_out=relu_out and k == last, bounds=bounds)
            return g

        out = zc if ac is None else ac
        if self.rule.input_layer:
            return _attach([x, inputs[1]], out, lambda g: [tf.zeros_like(x), backward(g)])
        return _attach([x], out, lambda g: [backward(g)])

    def compute_output_shape(self, input_shape):
        shape = input_shape[0] if self.rule.input_layer else input_shape
        return _layer_of(self._op.obj).compute_output_shape(shape)


# --------------------------------------------------------------------------- the rewritten model
class _Hook:
    """The Rewriter hook: each call the target depends on, with its LRP backward pass."""

    def __init__(self, bundle, plan, inp, norm_eps: float):
        self.bundle, self.plan, self.inp, self.norm_eps = bundle, plan, inp, norm_eps
        self.u = None
        self._n = 0

    def __call__(self, op):
        plan = self.plan
        if id(op) not in plan.relevant:
            return None
        kind, detail = plan.roles[id(op)]
        if kind == "plain":
            return None
        if id(op) in plan.folded or id(op) in plan.absorbed:
            return lambda *args, **kwargs: args[0]
        if kind in ("linear", "bn"):
            return lambda *args, **kwargs: self.linear(op, args[0])
        if kind == "norm":
            if self.norm_eps == 0:  # the gradient is the z-rule
                return None
            return lambda *args, **kwargs: NormRule(self.norm_eps, name=self._name(op, "norm"))(op(*args, **kwargs))
        if kind == "layernorm":
            return LayerNormRule(op)
        if kind == "pass" and id(op) in plan.chain:  # rescales the image: relevance straight to it
            return lambda *args, **kwargs: AffineInput(op)([args[0], self._relevance_input(op, args[0])])
        if kind == "pass":
            return wrap_activation(op, False, "lrp_pass", pass_rule)
        # a gate: the signal keeps the relevance
        def gate(*args, **kwargs):
            ts = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
            return GateRule(op, detail)(ts)
        return gate

    def _name(self, op, what):
        self._n += 1
        return f"{_op_name(op)}_lrp_{what}_{self._n}"

    def linear(self, op, x):
        plan = self.plan
        rule = plan.rules[id(op)]
        layer = LrpLinear(op, plan.fold.get(id(op)), plan.absorb.get(id(op)), rule, id(op) in plan.nonneg)
        if not rule.input_layer:
            return layer(x)
        return layer(self._input_layer_inputs(op, rule, x))

    def _relevance_input(self, op, x):
        """A tensor of ``x``'s shape on the way back to a second model input, the
        relevance input (of the image's shape, through the same padding and reshapes as
        ``x``): what reaches it is relevance of the image, not a gradient."""
        if self.u is None:
            self.u = keras.Input(batch_shape=tuple(self.inp.shape), dtype=self.inp.dtype, name="tfviz_lrp_relevance")
        xu = self.u
        for c, routing in self.plan.chain[id(op)]:
            if routing:
                xu = c(xu)
        if tuple(xu.shape)[1:] != tuple(x.shape)[1:]:
            raise AttributionError(f"layer {_describe(op)} reads the image with shape {tuple(x.shape)[1:]}, not "
                                   f"{tuple(xu.shape)[1:]}: lrp cannot hand relevance back to the pixels")
        return xu

    def _input_layer_inputs(self, op, rule, x):
        """``[x, relevance input, (low, high)]`` for an input-layer rule."""
        chain = self.plan.chain[id(op)]
        xu = self._relevance_input(op, x)
        if not isinstance(rule, ZBox):
            return [x, xu]
        if rule.low is None:
            low, high = self.bundle.input_range
        else:
            low, high = rule.low, rule.high
        channels = int(self.inp.shape[-1])
        lo = Fill(np.broadcast_to(np.asarray(low, np.float32), (channels,)), name=self._name(op, "low"))(self.inp)
        hi = Fill(np.broadcast_to(np.asarray(high, np.float32), (channels,)), name=self._name(op, "high"))(self.inp)
        for c, _ in chain:
            lo, hi = c(lo), c(hi)
        return [x, xu, lo, hi]


def lrp_head(bundle, layer, key):
    """``(model, has relevance input)``: the rewritten model ``input -> score source``
    (the logits, a unit's layer, or a score function of the logits) with LRP's backward
    pass; cached per bundle, head and ``key = (rule, composite)``."""
    def build():
        if layer is not None and not isinstance(layer, str):  # a score function of the logits
            base, has_u = lrp_head(bundle, None, key)
            return with_score_function(base, layer, f"{bundle.model.name}_lrp_{layer.name}"), has_u
        if layer is not None:
            bundle.layer(layer)  # unknown names -> UnknownLayerError listing valid ones
        rule, composite = key
        source = score_source(bundle, layer)
        plan = make_plan(bundle, source, layer, rule, composite)
        ref = source.inputs[0]
        inp = keras.Input(batch_shape=tuple(ref.shape), dtype=ref.dtype)
        # sums and average pools: the epsilon rule, with the method's epsilon when ``rule``
        # is an epsilon rule (LRP-0: their gradient), else the stabilizer
        norm_eps = float(rule.epsilon) if isinstance(rule, Epsilon) else STABILIZER
        hook = _Hook(bundle, plan, inp, norm_eps)
        rw = Rewriter((layer,) if layer else (), replace=hook)
        out = rw.run_model(source, inp, "")
        if isinstance(out, (list, tuple)):
            out = out[0]
        main = rw.captured[layer] if layer else out
        inputs = [inp] if hook.u is None else [inp, hook.u]
        return keras.Model(inputs, main, name=f"{bundle.model.name}_lrp_head"), hook.u is not None
    return bundle.programs.get("attribution.lrp_head", layer, key, build)


def lrp_function(bundle, layer, key):
    """``f(x, sel) -> (relevance [B, ...x], scores [B])`` for one head; traced once per
    input shape."""
    def build():
        model, has_u = lrp_head(bundle, layer, key)

        @tf.function(autograph=False)
        def tfviz_lrp(x, sel):
            u = tf.zeros_like(x)
            with tf.GradientTape() as tape:
                tape.watch(x)
                tape.watch(u)
                out = model([x, u] if has_u else x, training=False)
                s = select_score(out, sel)
                total = tf.reduce_sum(s)
            gx, gu = tape.gradient(total, [x, u])
            r = tf.zeros_like(x) if gx is None else x * gx
            if gu is not None:
                r = r + gu
            return r, s
        return tfviz_lrp
    return bundle.programs.get("attribution.lrp", layer, key, build)


def lrp_key(rule="epsilon", composite=None) -> tuple:
    """The hashable ``(Rule, Composite or None)`` of the options."""
    return rule_of(rule), composite_of(composite)


def lrp_reason(bundle):
    """None when :func:`lrp` can explain the bundle's model (with its defaults), else why
    not in one line (``applies=`` in the registry: ``tfviz attribute all`` and
    :func:`trust_report` leave LRP out then)."""
    def build():
        try:
            make_plan(bundle, bundle.logits, None, rule_of("epsilon"), None)
        except TfvizError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - a graph tfviz cannot walk: say so, do not fail the caller
            first = (str(exc).strip().splitlines() or [""])[0]
            return f"lrp cannot rewrite model {bundle.model.name!r}: {type(exc).__name__}: {first}"
        return None
    return bundle.programs.get("attribution.lrp_reason", build=build)


@attribution_method(applies=lrp_reason)
def lrp(bundle, x, targets, *, rule="epsilon", composite=None, reduce: str | None = "sum",
        return_delta: bool = False, batch_size: int = DEFAULT_BATCH):
    """Layer-wise relevance propagation: the target score handed back layer by layer,
    each layer with weights splitting its outputs' relevance among its inputs by an LRP
    rule; signed relevance ``[N, H, W]`` summed over colour channels (``reduce=None``:
    ``[N, H, W, 3]``, RGB order).

    ``rule``: the rule of every layer with weights that ``composite`` does not assign --
    ``"epsilon"`` (default, epsilon 1e-6 as zennit: near-exact conservation),
    ``"zero"`` (LRP-0), ``"gamma"`` (0.25), ``"alpha1beta0"`` / ``"zplus"``,
    ``"alpha2beta1"``, ``"flat"``, ``"wsquare"``, ``"zbox"`` (the last three only for a
    layer reading the image), ``"epsilon=0.25"`` / ``"gamma=0.5"``, or a rule object from
    :mod:`tfviz.attribution.lrp_rules` (``Gamma(0.5)``, ``ZBox(low, high)``...).
    ``composite``: ``"epsilon_plus_flat"`` (flat first layer, z+ convolutions, epsilon dense
    layers), ``"epsilon_gamma_box"`` (z^B first convolution with the preprocessing's pixel
    range, gamma convolutions, epsilon dense layers), ``"epsilon_plus"``,
    ``"epsilon_alpha2_beta1"``, or a dict ``{layer name, class name ("Conv2D"), family
    ("conv", "dense", "batchnorm") or "first": rule}``.

    Batch norms are folded into the layer before them; sums and average pooling split
    relevance in proportion to their inputs, max pooling gives it to the winner, ReLUs
    pass it unchanged. The relevances add up to the score minus what biases (and epsilon)
    absorb; ``return_delta=True`` also returns that sum minus the score, per image."""
    check_reduce(reduce)
    key = lrp_key(rule, composite)
    n = len(x)
    rel = np.zeros_like(x, dtype=np.float32)
    scores = np.zeros(n, np.float32)
    for layer, ids in group_by_head(targets).items():
        f = lrp_function(bundle, layer, key)
        rows = selection([targets[i] for i in ids])
        for it, real in padded_batches(len(ids), batch_size):
            sel = ids[it]
            r, s = f(np.asarray(x[sel], np.float32), rows[it])
            keep = sel[:real]
            rel[keep] = r.numpy()[:real]
            scores[keep] = s.numpy()[:real]
    check_finite(scores, "scores", targets)
    check_finite(rel, "LRP relevances", targets)
    delta = (rel.reshape(n, -1).sum(axis=1, dtype=np.float64) - scores.astype(np.float64)).astype(np.float32)
    out = reduce_channels(bundle, rel, reduce)
    return (out, delta) if return_delta else out
