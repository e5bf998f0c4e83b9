"""Views of the user's model that share its layers and weights: the logits of one output
(its final softmax or sigmoid bypassed) and feature taps on any layers, nested models included. The user's
model is never changed."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..errors import ModelError, UnsupportedModelError
from ..graph import Ref, Rewriter, is_model, linear_twin, producing_operation
from ..keras_internals import has_graph, producer
from ..utils import did_you_mean
from .layers import is_softmax

def is_softmax_op(op) -> bool:
    """A softmax over the last axis: a ``Softmax`` layer, a layer with a fused
    ``activation="softmax"`` (``Dense``, ``Activation``), or a ``keras.ops.softmax`` call
    (an operation in the graph, not a layer)."""
    if isinstance(op, keras.layers.Softmax) or (type(op).__name__ == "Softmax" and not isinstance(op, keras.Model)):
        axis = getattr(op, "axis", -1)
        return axis in (-1, None) or axis == [-1] or axis == (-1,)
    return is_softmax(getattr(op, "activation", None))


def is_sigmoid_op(op) -> bool:
    """A sigmoid: a layer with a fused ``activation="sigmoid"`` or an ``Activation("sigmoid")``
    layer, or a ``keras.ops.sigmoid`` call."""
    if type(op).__name__ == "Sigmoid" and not isinstance(op, keras.layers.Layer):
        return True
    act = getattr(op, "activation", None)
    return (getattr(act, "__name__", "") or "").lower() == "sigmoid"


def output_names(model) -> list:
    """The names of a model's outputs, in the order ``output=INDEX`` counts them: the keys
    of a dict of outputs as written, else the output layers' names."""
    if isinstance(getattr(model, "output", None), dict):
        return [str(k) for k in model.output]
    return [str(n) for n in getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(model.outputs))]]


def output_index(model, output=None) -> int:
    """The position (in :func:`output_names`) of ``output``: a name, an index, or None (the
    first output); an unknown one raises :class:`ModelError` listing the valid names."""
    names = output_names(model)
    if output is None:
        return 0
    if isinstance(output, (int, np.integer)) and not isinstance(output, bool):
        if not -len(names) <= int(output) < len(names):
            raise ModelError(f"output {int(output)} out of range: model {model.name!r} has {len(names)} outputs "
                             f"({', '.join(names)})")
        return int(output) % len(names)
    if str(output) in names:
        return names.index(str(output))
    raise ModelError(did_you_mean("output", output, names) + f" (model {model.name!r})")


def _output_tensor(model, index):
    out = model.output
    if isinstance(out, dict):
        return list(out.values())[index]
    return model.outputs[index]


def _pick(out, index):
    """Output ``index`` of a traced graph's outputs (a tensor, a list or a dict)."""
    if isinstance(out, dict):
        return list(out.values())[index]
    if isinstance(out, (list, tuple)):
        return out[index]
    return out


def final_activation(model, index: int = 0):
    """``(operation, "softmax" | "sigmoid")`` holding output ``index``'s final softmax or
    sigmoid (a layer, a fused activation or a ``keras.ops`` call), or ``(None, None)``.
    Follows the graph back from the output, not ``model.layers[-1]`` (which skips
    operations that are not layers); descends into a nested last model."""
    if len(model.outputs) == 1:
        last = producing_operation(model)
    else:
        last = producer(_output_tensor(model, index)) if has_graph(model) else None
    if last is None:
        return None, None
    if is_softmax_op(last):
        return last, "softmax"
    if is_sigmoid_op(last):
        return last, "sigmoid"
    if is_model(last) and getattr(last, "layers", None) and hasattr(last, "inputs") and len(last.outputs) == 1:
        return final_activation(last)
    return None, None


def final_softmax(model):
    """The operation holding a final softmax, or None (see :func:`final_activation`)."""
    op, kind = final_activation(model)
    return op if kind == "softmax" else None


def model_input(model):
    """The model's input tensor (not a one-element list, which makes Keras warn when the
    derived model is called on a plain tensor)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def logit_model(model, output=None):
    """The model from its input to output ``output`` (a name or index; None: the first)
    with that output's final softmax or sigmoid bypassed: the graph is re-run with the same
    layer objects (weights shared), the activation replaced by identity or, for a fused
    ``activation=``, by the layer's linear part. Nested last models are expanded; the
    user's model is not changed."""
    index = output_index(model, output)
    act, _ = final_activation(model, index)
    if act is None and len(model.outputs) == 1:
        return model

    def replace(op):
        if op is not act:
            return None
        if not isinstance(op, keras.layers.Layer) or isinstance(op, keras.layers.Softmax) \
                or type(op).__name__ == "Activation":  # an activation of its own (layer or ops call): identity
            return lambda x, *args, **kwargs: x
        return BypassActivation(op)

    rw = Rewriter(replace=replace)
    try:
        inp, out = rw.trace(model)
    except UnsupportedModelError as exc:
        raise ModelError(f"cannot bypass the final activation: {exc}") from None
    suffix = "_logits" if len(model.outputs) == 1 else f"_{output_names(model)[index]}_logits"
    return keras.Model(inp, _pick(out, index), name=model.name + suffix)


class BypassActivation(keras.layers.Layer):
    """Computes ``layer``'s pre-activation through a linear twin that shares its
    variables; ``layer`` itself is never changed, not even for a moment."""

    def __init__(self, layer, **kw):
        super().__init__(name=layer.name + "_linear", **kw)
        self.inner = layer  # tracked, so the view lists the weights it uses
        self._twin = None

    def build(self, input_shape):
        self._twin = Ref(linear_twin(self.inner, input_shape))

    @property
    def linear(self):
        """The built linear twin of the wrapped layer (what :meth:`call` runs)."""
        return self._twin.obj

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


# --------------------------------------------------------------------------- several inputs
@keras.saving.register_keras_serializable(package="tfviz")
class HeldInput(keras.layers.Layer):
    """Another input of the user's model (a table row, a text embedding, a mask), held at a
    value while the image varies: the value, one row, is repeated for every image of the
    batch. :meth:`hold` sets it without retracing anything."""

    def __init__(self, shape, dtype="float32", **kw):
        kw.pop("trainable", None)
        super().__init__(trainable=False, dtype=dtype, **kw)
        self.value_shape = tuple(shape)
        self.value = self.add_weight(shape=(1,) + self.value_shape, initializer="zeros", trainable=False,
                                     dtype=dtype, name="value")

    def call(self, image):
        batch = tf.shape(image)[:1]
        return tf.broadcast_to(self.value, tf.concat([batch, tf.shape(self.value)[1:]], 0))

    def compute_output_shape(self, input_shape):
        return (input_shape[0],) + self.value_shape

    def get_config(self):  # so the model can be cloned (the randomization check re-initializes a clone)
        return {**super().get_config(), "shape": self.value_shape}

    def hold(self, row):
        self.value.assign(np.asarray(row, self.value.dtype).reshape((1,) + self.value_shape))


def input_names(model) -> list:
    """The names of a model's inputs: the keys of a dict of inputs, else the inputs' names."""
    if isinstance(getattr(model, "input", None), dict):
        return [str(k) for k in model.input]
    return [str(getattr(t, "name", f"input_{i}")) for i, t in enumerate(model.inputs)]


def image_input_index(model, image_input=None) -> int:
    """Which input is the image: ``image_input`` (a name or index), else the one 4-D input."""
    names = input_names(model)
    if image_input is not None:
        if isinstance(image_input, (int, np.integer)) and 0 <= int(image_input) < len(names):
            return int(image_input)
        if str(image_input) in names:
            return names.index(str(image_input))
        raise ModelError(did_you_mean("image input", image_input, names) + f" (model {model.name!r})")
    four_d = [i for i, t in enumerate(model.inputs) if len(t.shape) == 4]
    if len(four_d) != 1:
        shapes = ", ".join(f"{n} {tuple(t.shape)}" for n, t in zip(names, model.inputs))
        raise ModelError(f"model {model.name!r} has inputs {shapes}: {'no' if not four_d else 'several'} 4-D "
                         f"image input; name the image input (load_model(..., image_input=NAME))")
    return four_d[0]


def image_view(model, image_input=None):
    """A one-input model: the image input of ``model``; its other inputs held at values
    (:class:`HeldInput` layers, zeros until set). Shares every layer and weight of ``model``."""
    index = image_input_index(model, image_input)
    names = input_names(model)
    image = keras.Input(batch_shape=tuple(model.inputs[index].shape), dtype=model.inputs[index].dtype,
                        name=names[index])
    feeds = [image if i == index else HeldInput(tuple(t.shape[1:]), t.dtype, name=f"held_{names[i]}")(image)
             for i, t in enumerate(model.inputs)]
    args = dict(zip(names, feeds)) if isinstance(model.input, dict) else feeds
    return keras.Model(image, model(args), name=f"{model.name}_on_{names[index]}")
