"""Views of the user's model that share its layers and weights: the logits (a final
softmax bypassed) and feature taps on any layers, nested models included. The user's
model is never changed."""
from __future__ import annotations

import keras

from ..errors import ModelError, UnsupportedModelError
from ..graph import Ref, Rewriter, is_model, linear_twin, producing_operation
from .layers import is_softmax

def is_softmax_op(op) -> bool:
    """A softmax over the last axis: a ``Softmax`` layer, a layer with a fused
    ``activation="softmax"`` (``Dense``, ``Activation``), or a ``keras.ops.softmax`` call
    (an operation in the graph, not a layer)."""
    if isinstance(op, keras.layers.Softmax) or (type(op).__name__ == "Softmax" and not isinstance(op, keras.Model)):
        axis = getattr(op, "axis", -1)
        return axis in (-1, None) or axis == [-1] or axis == (-1,)
    return is_softmax(getattr(op, "activation", None))


def final_softmax(model):
    """The operation holding a final softmax (layer, fused activation or ``ops.softmax``
    call), or None. Follows the graph back from the output, not ``model.layers[-1]``
    (which skips operations that are not layers); descends into a nested last model."""
    last = producing_operation(model)
    if last is None:
        return None
    if is_softmax_op(last):
        return last
    if is_model(last) and getattr(last, "layers", None) and hasattr(last, "inputs"):
        return final_softmax(last)
    return None


def model_input(model):
    """The model's input tensor (not a one-element list, which makes Keras warn when the
    derived model is called on a plain tensor)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def logit_model(model):
    """The model with its final softmax bypassed: the graph is re-run with the same
    layer objects (weights shared), the softmax layer replaced by identity or, for a
    fused ``activation="softmax"``, by its linear part. Nested last models are
    expanded; the user's model is not changed."""
    if len(model.outputs) != 1:
        raise ModelError(f"model {model.name!r} has {len(model.outputs)} outputs; tfviz needs one score vector")
    sm = final_softmax(model)
    if sm is None:
        return model

    def replace(op):
        if op is not sm:
            return None
        if not isinstance(op, keras.layers.Layer) or isinstance(op, keras.layers.Softmax) \
                or type(op).__name__ == "Activation":  # a softmax of its own (layer or ops call): identity
            return lambda x, *args, **kwargs: x
        return BypassActivation(op)

    rw = Rewriter(replace=replace)
    try:
        inp, out = rw.trace(model)
    except UnsupportedModelError as exc:
        raise ModelError(f"cannot bypass the final softmax: {exc}") from None
    return keras.Model(inp, out, name=model.name + "_logits")


class BypassActivation(keras.layers.Layer):
    """Computes ``layer``'s pre-activation through a linear twin that shares its
    variables; ``layer`` itself is never changed, not even for a moment."""

    def __init__(self, layer, **kw):
        super().__init__(name=layer.name + "_linear", **kw)
        self.inner = layer  # tracked, so the view lists the weights it uses
        self._twin = None

    def build(self, input_shape):
        self._twin = Ref(linear_twin(self.inner, input_shape))

    def call(self, x):
        return self._twin.obj(x)

    def compute_output_shape(self, input_shape):
        return self.inner.compute_output_shape(input_shape)


def feature_model(model, names: list[str], single: bool):
    """One model from ``model``'s input to several (possibly nested) layers' outputs."""
    top = {l.name: l for l in model.layers}
    if not all(n in top for n in names):
        return _feature_model_nested(model, names, single)
    outs = [top[n].output for n in names]
    return keras.Model(model_input(model), outs[0] if single else outs, name=model.name + "_features")


def _feature_model_nested(model, names, single):
    """Re-run the model's graph (sharing its layers), expanding nested models inline so
    every requested output is reachable from the outer input in one pass."""
    rw = Rewriter(names)
    inp, _ = rw.trace(model)
    missing = [n for n in names if n not in rw.captured]
    if missing:
        raise ModelError(f"could not reach layers {missing} through nested models")
    outs = [rw.captured[n] for n in names]
    return keras.Model(inp, outs[0] if single else outs, name=model.name + "_features")
