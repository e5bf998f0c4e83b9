"""Backward rules: activation calls with the same forward pass and another backward pass.

A rule is applied by re-running the model's graph (:class:`tfviz.graph.Rewriter`) with a
hook that swaps each matching activation call for an :class:`ActivationWrapper` -- the
user's layers are reused (weights shared) and never changed. The wrapper computes the
pre-activation (through a linear twin for an ``activation=`` fused in a Conv / Dense
layer) and applies the activation inside ``tf.custom_gradient``:

* ``"guided"`` (guided backprop, Springenberg et al. 2015): every ReLU passes back only
  positive gradients, and only where its forward input was positive; every smooth gate
  ``f`` (SiLU / swish, GELU, hard-swish, Mish: :data:`SMOOTH_GATES`) passes back
  ``relu(dy) * [z > 0] * f'(z)`` -- on a ReLU, ``f'(z) = [z > 0]``, the same rule;
* ``"deconvnet"`` (Zeiler & Fergus 2014): every ReLU and every smooth gate passes back
  positive gradients, ``relu(dy)``, whatever its forward input;
* ``"guided_relu"`` / ``"deconvnet_relu"``: the same, on ReLUs only (smooth gates keep
  their ordinary gradient) -- the ``activations="relu"`` option;
* ``"deeplift"`` (the rescale rule, Shrikumar et al. 2017): every element-wise
  nonlinearity passes back the secant slope between the image half and the reference
  half of a doubled batch.

:func:`rewriter_hook` maps a rule's name to its Rewriter hook; :mod:`.heads` builds the
rewritten models. New rules (LRP) are added here the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

from ..errors import AttributionError, NoReLUError
from ..graph import Ref, linear_twin
from ..keras_internals import ops_nn as keras_ops_nn
from ..keras_internals import ops_numpy as keras_ops_numpy

RULES = ("guided", "deconvnet", "guided_relu", "deconvnet_relu", "deeplift")

#: The guided-family rules: name -> (mode, whether smooth gates get the rule too).
GUIDED_RULES = {"guided": ("guided", True), "deconvnet": ("deconvnet", True),
                "guided_relu": ("guided", False), "deconvnet_relu": ("deconvnet", False)}

#: Values of the ``activations=`` option of guided backprop, deconvnet and guided
#: Grad-CAM: the rule on ReLUs and smooth gates (the default), or on ReLUs only.
ACTIVATIONS = ("relu+smooth", "relu")


def guided_rule(mode: str, activations: str) -> str:
    """The rule name (a key of :data:`GUIDED_RULES`) of ``mode`` (``"guided"`` or
    ``"deconvnet"``) applied to ``activations`` (one of :data:`ACTIVATIONS`)."""
    if activations not in ACTIVATIONS:
        raise AttributionError(f"activations must be one of {', '.join(map(repr, ACTIVATIONS))}, got "
                               f"{activations!r}")
    return mode if activations == "relu+smooth" else f"{mode}_relu"


# --------------------------------------------------------------------------- which calls are ReLUs
RELU_NAMES = {"relu": None, "relu6": 6.0}


@dataclass(frozen=True)
class ReluSpec:
    """How a ReLU-type call behaves: fused into a layer's ``activation`` or standalone,
    with Keras' ``ReLU`` parameters."""
    fused: bool
    max_value: float | None = None
    threshold: float = 0.0
    negative_slope: float = 0.0


def activation_name(fn) -> str:
    if fn is None:
        return ""
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name).lower()


def relu_spec(op) -> ReluSpec | None:
    """A :class:`ReluSpec` if ``op`` (a layer or a keras.ops operation of a Functional
    graph) applies a ReLU-type nonlinearity, else ``None``."""
    ops_nn = keras_ops_nn()
    if isinstance(op, keras.layers.ReLU):
        mv = op.max_value
        return ReluSpec(False, None if mv is None else float(mv), float(op.threshold or 0.0),
                        float(op.negative_slope or 0.0))
    if isinstance(op, keras.layers.Activation):
        name = activation_name(op.activation)
        return ReluSpec(False, RELU_NAMES[name]) if name in RELU_NAMES else None
    if isinstance(op, ops_nn.Relu6):
        return ReluSpec(False, 6.0)
    if isinstance(op, ops_nn.Relu):
        return ReluSpec(False)
    if isinstance(op, keras.layers.Layer) and not isinstance(op, keras.layers.RNN) and not isinstance(op, keras.Model):
        name = activation_name(getattr(op, "activation", None))
        if name in RELU_NAMES and callable(getattr(op, "activation", None)):
            return ReluSpec(True, RELU_NAMES[name])
    return None


# --------------------------------------------------------------------------- which calls are smooth gates
#: Smooth gates (``activation.__name__``): ``f(z) = z * g(z)`` with ``g`` rising from 0 to
#: 1, so ``f(z) > 0`` exactly where ``z > 0`` -- the unit is "on" there, as a ReLU is.
SMOOTH_GATES = frozenset({"silu", "swish", "gelu", "hard_silu", "hard_swish", "mish"})
GATES_TEXT = "SiLU/swish, GELU, hard-swish, Mish"

#: ``keras.ops`` operations (classes in :func:`tfviz.keras_internals.ops_nn`) that are smooth gates.
_GATE_OP_NAMES = ("Silu", "Gelu", "HardSilu")


def _op_classes(names):
    ops_nn, ops_np = keras_ops_nn(), keras_ops_numpy()
    found = [getattr(ops_nn, n, None) or getattr(ops_np, n, None) for n in names]
    return tuple(c for c in found if isinstance(c, type))


def _activation_kind(op, names, classes) -> str | None:
    """``"fused"`` when ``op`` is a layer whose ``activation`` is named in ``names``,
    ``"standalone"`` when ``op`` is an ``Activation`` of one or an instance of
    ``classes``, else ``None``."""
    L = keras.layers
    if isinstance(op, L.Activation):
        return "standalone" if activation_name(op.activation) in names else None
    if isinstance(op, classes):
        return "standalone"
    if isinstance(op, L.Layer) and not isinstance(op, (L.RNN, keras.Model)):
        act = getattr(op, "activation", None)
        if callable(act) and activation_name(act) in names:
            return "fused"
    return None


def smooth_gate(op) -> str | None:
    """``"fused"`` / ``"standalone"`` when ``op`` (a layer or a keras.ops operation of a
    Functional graph) applies a smooth gate (:data:`SMOOTH_GATES`), else ``None``."""
    return _activation_kind(op, SMOOTH_GATES, _op_classes(_GATE_OP_NAMES))


def _operations(model):
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    return list(getattr(model, "operations", model.layers))


def _count(model, found) -> int:
    """Number of calls in ``model`` (nested models included) for which ``found(op)``."""
    n = 0
    for op in _operations(model):
        if isinstance(op, keras.Model):
            n += _count(op, found)
        elif found(op) is not None:
            n += 1
    return n


def count_relus(model) -> int:
    """Number of ReLU-type calls in ``model``, nested models included."""
    return _count(model, relu_spec)


def count_gates(model) -> int:
    """Number of smooth-gate calls (:data:`SMOOTH_GATES`) in ``model``, nested models included."""
    return _count(model, smooth_gate)


def _activations(model, out=None):
    out = out if out is not None else []
    for op in _operations(model):
        if isinstance(op, keras.Model):
            _activations(op, out)
            continue
        name = activation_name(getattr(op, "activation", None)) if hasattr(op, "activation") else ""
        if not name and not isinstance(op, keras.layers.Layer):
            name = type(op).__name__.lower()
        if name and name != "linear" and name not in out:
            out.append(name)
    return out


def guided_rule_reason(bundle):
    """None when guided backprop and deconvnet (their default rule) can explain the model,
    else why not in one line (``applies=`` of those methods in the registry)."""
    try:
        check_has_relu(bundle)
    except NoReLUError as exc:
        return str(exc)
    return None


def check_has_relu(bundle, rule: str = "guided"):
    """Raise :class:`NoReLUError` when ``rule`` (a key of :data:`GUIDED_RULES`) would
    change nothing in the model: it has no ReLU-type call and, for ``"guided"`` /
    ``"deconvnet"``, no smooth gate either."""
    smooth = GUIDED_RULES[rule][1]
    programs = bundle.programs
    if programs.get("attribution.relu_count", build=lambda: count_relus(bundle.model)):
        return
    if smooth and programs.get("attribution.gate_count", build=lambda: count_gates(bundle.model)):
        return
    acts = ", ".join(_activations(bundle.model)) or "none"
    name = bundle.model.name
    if smooth:
        raise NoReLUError(
            f"model {name!r} has no ReLU and no smooth gate ({GATES_TEXT}; activations found: {acts}); guided "
            f"backprop and deconvnet (activations='relu+smooth') change only the backward pass of these -- use "
            f"saliency, smoothgrad or integrated_gradients for this model")
    raise NoReLUError(
        f"model {name!r} has no ReLU (activations found: {acts}); with activations='relu' guided backprop and "
        f"deconvnet change only the backward pass of ReLUs -- pass activations='relu+smooth' (the default) to "
        f"apply the rule to smooth gates ({GATES_TEXT}) too, or use saliency, smoothgrad or integrated_gradients")


def _backward_rule(z, dy, spec: ReluSpec, mode: str):
    pos = tf.nn.relu(dy)
    if mode == "deconvnet":
        return pos
    on = tf.cast(z > spec.threshold, dy.dtype)
    if spec.max_value is not None:
        on = on * tf.cast(z < spec.max_value, dy.dtype)
    if spec.negative_slope:
        on = on + spec.negative_slope * tf.cast(z <= spec.threshold, dy.dtype)
    return pos * on


def _with_backward(z, forward, backward):
    """``forward(z)`` with ``backward(z, dy)`` as its backward pass."""

    @tf.custom_gradient
    def f(t):
        y = forward(t)

        def grad(dy):
            return backward(t, dy)
        return y, grad
    return f(z)


def _modified_relu(z, forward, spec: ReluSpec, mode: str):
    return _with_backward(z, forward, lambda t, dy: _backward_rule(t, dy, spec, mode))


def _gate_rule(z, dy, forward, mode: str):
    """A smooth gate's backward pass: deconvnet ``relu(dy)``; guided
    ``relu(dy) * [z > 0] * f'(z)``, ``f'`` the gate's own derivative."""
    pos = tf.nn.relu(dy)
    if mode == "deconvnet":
        return pos
    with tf.GradientTape() as tape:
        tape.watch(z)
        y = forward(z)
    local = tape.gradient(y, z)  # element-wise: d sum f(z) / dz = f'(z)
    return pos * tf.cast(z > 0, dy.dtype) * tf.cast(local, dy.dtype)


class ActivationWrapper(keras.layers.Layer):
    """The wrapped activation call's forward pass, through ``apply(z, forward)``: ``z``
    is the pre-activation (a fused activation's through a linear twin sharing the
    layer's variables), ``forward`` the activation; ``apply`` gives the backward rule."""

    def __init__(self, op, fused: bool, suffix: str, apply, **kw):
        super().__init__(name=f"{getattr(op, 'name', 'activation')}_{suffix}", **kw)
        self._op = Ref(op)
        self._twin = None
        self.fused, self.apply = fused, apply

    def build(self, input_shape):
        if self.fused:
            self._twin = Ref(linear_twin(self._op.obj, input_shape))

    def call(self, inputs, **kwargs):
        op = self._op.obj
        if self.fused:
            z = self._twin.obj(inputs)
            forward = op.activation
        else:
            z = inputs

            def forward(t):
                return op(t)
        return self.apply(z, forward)

    def compute_output_shape(self, input_shape):
        op = self._op.obj
        if self.fused:
            return op.compute_output_shape(input_shape)
        return input_shape


def wrap_activation(op, fused: bool, suffix: str, apply):
    """A layer that replaces one activation call of a graph being re-run (a
    :class:`tfviz.graph.Rewriter` hook's result): the same forward pass, the backward
    pass ``apply(z, forward)`` defines (guided backprop, deconvnet, DeepLIFT)."""
    return ActivationWrapper(op, fused, suffix, apply)


def GuidedReLU(op, spec, mode):  # noqa: N802 - named as the layer it makes
    """A ReLU-type call with the guided (``mode="guided"``) or deconvnet backward pass."""
    return wrap_activation(op, spec.fused, mode, lambda z, forward: _modified_relu(z, forward, spec, mode))


def GuidedGate(op, kind, mode):  # noqa: N802 - named as the layer it makes
    """A smooth-gate call (``kind``: ``"fused"`` or ``"standalone"``) with the guided or
    deconvnet backward pass."""
    def apply(z, forward):
        return _with_backward(z, forward, lambda t, dy: _gate_rule(t, dy, forward, mode))
    return wrap_activation(op, kind == "fused", mode, apply)


# --------------------------------------------------------------------------- DeepLIFT's rescale rule
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


def nonlinearity(op) -> str | None:
    """``"fused"`` when ``op`` (a layer or a keras.ops operation of a Functional graph)
    is a layer with an element-wise ``activation`` other than linear, ``"standalone"``
    when ``op`` itself is an element-wise nonlinearity, else ``None``."""
    L = keras.layers
    if isinstance(op, (L.ReLU, L.LeakyReLU, L.PReLU, L.ELU)):
        return "standalone"
    return _activation_kind(op, ELEMENTWISE, _op_classes(_OP_NAMES + ("Tanh",)))


def _rescale(z, forward):
    """``forward(z)`` with the rescale rule as its backward pass; ``z`` is the doubled
    batch ``[x half; reference half]``."""

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
    return wrap_activation(op, kind == "fused", "deeplift", _rescale)


def deeplift_hook(op):
    """The :class:`tfviz.graph.Rewriter` hook of ``head(..., relu="deeplift")``."""
    kind = nonlinearity(op)
    return None if kind is None else RescaleNonlinearity(op, kind)


# --------------------------------------------------------------------------- rule name -> Rewriter hook
def _guided_hook(mode, smooth: bool):
    def replace(op):
        spec = relu_spec(op)
        if spec is not None:
            return GuidedReLU(op, spec, mode)
        kind = smooth_gate(op) if smooth else None
        return None if kind is None else GuidedGate(op, kind, mode)
    return replace


def rewriter_hook(rule: str | None):
    """The :class:`tfviz.graph.Rewriter` hook that applies ``rule`` (``None``: no hook)."""
    if rule is None:
        return None
    if rule == "deeplift":
        return deeplift_hook
    if rule in GUIDED_RULES:
        return _guided_hook(*GUIDED_RULES[rule])
    raise AttributionError(f"unknown backward rule {rule!r}; one of {', '.join(RULES)}")
