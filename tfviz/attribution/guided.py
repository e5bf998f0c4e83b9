"""Guided backprop (Springenberg 2015) and deconvnet (Zeiler & Fergus 2014).

Both are the gradient of the target score with one change at every ReLU on the way
back: *guided backprop* passes only positive gradients, and only where the ReLU's
forward input was positive (where the ReLU was "on"); the *deconvnet* passes positive
gradients regardless of the forward input.

The change is made with ``tf.custom_gradient`` on a copy of the model's graph: every
ReLU-type call -- ``activation="relu"``/``"relu6"`` fused in a Conv/Dense layer, standalone
``ReLU`` layers (``max_value=6`` too), ``Activation("relu")`` / ``Activation("relu6")``,
``keras.ops.relu`` nodes, and all of these inside nested Sequential / Functional models --
is replaced by a wrapper with the identical forward pass. The copy reuses the user's
layers (weights shared, so it stays in sync with training); the user's model and layers
are never modified. The copy is built once per bundle and cached.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..graph import Ref as _Ref, linear_twin
from .errors import NoReLUError

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
    import keras
    from ..keras_internals import ops_nn
    ops_nn = ops_nn()
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
    import keras
    if isinstance(model, keras.Sequential):
        return list(model.layers)
    return list(getattr(model, "operations", model.layers))


def count_relus(model) -> int:
    """Number of ReLU-type calls in ``model``, nested models included."""
    import keras
    n = 0
    for op in _operations(model):
        if isinstance(op, keras.Model):
            n += count_relus(op)
        elif relu_spec(op) is not None:
            n += 1
    return n


def _activations(model, out=None):
    import keras
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


# --------------------------------------------------------------------------- the wrapper
def _backward_rule(z, dy, spec: ReluSpec, mode: str):
    import tensorflow as tf
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
    import tensorflow as tf

    @tf.custom_gradient
    def f(t):
        y = forward(t)

        def grad(dy):
            return _backward_rule(t, dy, spec, mode)
        return y, grad
    return f(z)


def _make_wrapper_class():
    import keras

    class ActivationWrapper(keras.layers.Layer):
        """The wrapped activation call's forward pass, through ``apply(z, forward)``: ``z``
        is the pre-activation (a fused activation's through a linear twin sharing the
        layer's variables), ``forward`` the activation; ``apply`` gives the backward rule."""

        def __init__(self, op, fused: bool, suffix: str, apply, **kw):
            super().__init__(name=f"{getattr(op, 'name', 'activation')}_{suffix}", **kw)
            self._op = _Ref(op)
            self._twin = None
            self.fused, self.apply = fused, apply

        def build(self, input_shape):
            if self.fused:
                self._twin = _Ref(linear_twin(self._op.obj, input_shape))

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

    return ActivationWrapper


_WRAPPER = None


def wrap_activation(op, fused: bool, suffix: str, apply):
    """A layer that replaces one activation call of a graph being re-run (a
    :class:`tfviz.graph.Rewriter` hook's result): the same forward pass, the backward
    pass ``apply(z, forward)`` defines (guided backprop, deconvnet, DeepLIFT)."""
    global _WRAPPER
    if _WRAPPER is None:
        _WRAPPER = _make_wrapper_class()
    return _WRAPPER(op, fused, suffix, apply)


def GuidedReLU(op, spec, mode):  # noqa: N802 - named as the layer it makes
    """A ReLU-type call with the guided (``mode="guided"``) or deconvnet backward pass."""
    return wrap_activation(op, spec.fused, mode, lambda z, forward: _modified_relu(z, forward, spec, mode))


# --------------------------------------------------------------------------- methods
def _guided_x(bundle, x, targets, batch_size=32):
    from .core import gradients, to_rgb_order
    return to_rgb_order(bundle, gradients(bundle, x, targets, relu="guided", batch_size=batch_size)[1])


def _deconv_x(bundle, x, targets, batch_size=32):
    from .core import gradients, to_rgb_order
    return to_rgb_order(bundle, gradients(bundle, x, targets, relu="deconvnet", batch_size=batch_size)[1])


def guided_backprop(bundle, images, target=None, *, batch_size: int = 32) -> np.ndarray:
    """Guided backprop: the signed gradient ``[N, H, W, 3]`` (RGB order, model-input
    units) of the target score, with every ReLU passing back only positive gradients
    where its input was positive. Render with :func:`tfviz.attribution.render_gradient`."""
    from .core import run
    return run(_guided_x, bundle, images, target, batch_size=batch_size)


def deconvnet(bundle, images, target=None, *, batch_size: int = 32) -> np.ndarray:
    """Deconvnet (Zeiler & Fergus): the signed "gradient" ``[N, H, W, 3]`` with every
    ReLU passing back only positive gradients, whatever its forward input was."""
    from .core import run
    return run(_deconv_x, bundle, images, target, batch_size=batch_size)


guided_backprop._on_inputs = _guided_x
deconvnet._on_inputs = _deconv_x
