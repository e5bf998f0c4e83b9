"""Backward rules: activation calls with the same forward pass and another backward pass.

A rule is applied by re-running the model's graph (:class:`tfviz.graph.Rewriter`) with a
hook that swaps each matching activation call for an :class:`ActivationWrapper` -- the
user's layers are reused (weights shared) and never changed. The wrapper computes the
pre-activation (through a linear twin for an ``activation=`` fused in a Conv / Dense
layer) and applies the activation inside ``tf.custom_gradient``:

* ``"guided"`` (guided backprop, Springenberg et al. 2015): every ReLU passes back only
  positive gradients, and only where its forward input was positive;
* ``"deconvnet"`` (Zeiler & Fergus 2014): every ReLU passes back positive gradients
  whatever its forward input;
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

RULES = ("guided", "deconvnet", "deeplift")


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


def _operations(model):
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    return list(getattr(model, "operations", model.layers))


def count_relus(model) -> int:
    """Number of ReLU-type calls in ``model``, nested models included."""
    n = 0
    for op in _operations(model):
        if isinstance(op, keras.Model):
            n += count_relus(op)
        elif relu_spec(op) is not None:
            n += 1
    return n


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


def check_has_relu(bundle):
    """Raise :class:`NoReLUError` when the model has no ReLU-type nonlinearity at all."""
    if bundle.programs.get("attribution.relu_count", build=lambda: count_relus(bundle.model)) == 0:
        acts = _activations(bundle.model)
        raise NoReLUError(
            f"model {bundle.model.name!r} has no ReLU (activations found: {', '.join(acts) or 'none'}); guided "
            f"backprop and deconvnet change only the backward pass of ReLUs -- use saliency, smoothgrad or "
            f"integrated_gradients for this model")


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


def _modified_relu(z, forward, spec: ReluSpec, mode: str):

    @tf.custom_gradient
    def f(t):
        y = forward(t)

        def grad(dy):
            return _backward_rule(t, dy, spec, mode)
        return y, grad
    return f(z)


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


def _op_classes():
    ops_nn, ops_np = keras_ops_nn(), keras_ops_numpy()
    found = [getattr(ops_nn, n, None) for n in _OP_NAMES] + [getattr(ops_np, "Tanh", None)]
    return tuple(c for c in found if isinstance(c, type))


def nonlinearity(op) -> str | None:
    """``"fused"`` when ``op`` (a layer or a keras.ops operation of a Functional graph)
    is a layer with an element-wise ``activation`` other than linear, ``"standalone"``
    when ``op`` itself is an element-wise nonlinearity, else ``None``."""
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
def _relu_hook(mode):
    def replace(op):
        spec = relu_spec(op)
        return None if spec is None else GuidedReLU(op, spec, mode)
    return replace


def rewriter_hook(rule: str | None):
    """The :class:`tfviz.graph.Rewriter` hook that applies ``rule`` (``None``: no hook)."""
    if rule is None:
        return None
    if rule == "deeplift":
        return deeplift_hook
    if rule in ("guided", "deconvnet"):
        return _relu_hook(rule)
    raise AttributionError(f"unknown backward rule {rule!r}; one of {', '.join(RULES)}")
