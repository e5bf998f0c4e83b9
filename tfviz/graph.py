"""Re-running a Keras model's graph of layers on new symbolic inputs.

Derived views of a user's model (feature taps on nested layers, guided-backprop heads)
are built by calling the model's *own layer objects* again, layer by layer, on a fresh
``keras.Input`` -- weights shared, nothing copied, nothing changed in the user's model --
expanding nested Functional / Sequential models inline so that their inner layers become
reachable from the outer input in one forward pass.
"""
from __future__ import annotations

from typing import Callable

import keras

from .keras_internals import is_functional, producer, run_through_graph
from .errors import ModelError, UnsupportedModelError


def is_model(op) -> bool:
    """A nested Keras model (Functional or Sequential) used as a layer."""
    return isinstance(op, keras.Model)


def producing_operation(model):
    """The operation (layer, nested model or ``keras.ops`` call) that computes a
    single-output model's output: the last layer of a Sequential, the output tensor's
    producer in a Functional model; None for subclassed models."""
    kind = graph_kind(model)
    if kind == "sequential":
        return model.layers[-1] if model.layers else None
    if kind != "functional" or len(model.outputs) != 1:
        return None
    return producer(model.outputs[0]) or model.layers[-1]


def graph_kind(model) -> str:
    if isinstance(model, keras.Sequential):
        return "sequential"
    if is_functional(model):
        return "functional"
    return "subclassed"


class Rewriter:
    """Re-runs a model's graph layer by layer.

    ``wanted``: layer names or ``outer/inner`` paths whose outputs are captured in
    ``self.captured``. ``replace(layer)``: optionally returns a callable used *instead*
    of calling that layer (e.g. a ReLU with another backward pass), else None."""

    def __init__(self, wanted=(), replace: Callable | None = None):
        self.wanted = set(wanted)
        self.replace = replace
        self.captured: dict[str, object] = {}
        self.replaced = 0

    def run_model(self, model, inputs, prefix: str = ""):
        kind = graph_kind(model)
        if kind == "sequential":
            x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
            for layer in model.layers:
                if isinstance(layer, keras.layers.InputLayer):
                    continue
                x = self.call(layer, (x,), {}, prefix)
            return x
        if kind == "functional":
            # Walk the graph without building a new Functional model: building one on
            # intermediate tensors makes Keras re-wire their history (clone_graph_nodes),
            # which would cut a nested model's copy off from the outer graph.
            call = lambda op, *a, **k: self.call(op, a, k, prefix)  # noqa: E731
            out = run_through_graph(model, inputs, call)
            if out is None:  # pragma: no cover - a Keras without the private walker
                ref = model.input
                if isinstance(ref, (list, tuple)) and not isinstance(inputs, (list, tuple)):
                    inputs = [inputs]
                out = keras.models.clone_model(model, input_tensors=inputs, clone_function=lambda layer: layer,
                                               call_function=call).outputs
            flat = out if isinstance(out, (list, tuple)) else [out]
            return flat[0] if len(flat) == 1 else list(flat)
        raise UnsupportedModelError(
            f"model {model.name!r} is a subclassed Keras model ({type(model).__name__}); this method needs "
            f"a Functional or Sequential model so it can follow the graph of layers")

    def call(self, op, args, kwargs, prefix):
        name = getattr(op, "name", type(op).__name__)
        path = prefix + name
        swap = self.replace(op) if self.replace is not None and not is_model(op) else None
        if is_model(op):
            out = self.run_model(op, args[0] if len(args) == 1 else list(args), path + "/")
        elif swap is not None:
            out = swap(*args, **kwargs)
            self.replaced += 1
        else:
            out = op(*args, **kwargs)
        for key in (path, name):
            if key in self.wanted and key not in self.captured:
                self.captured[key] = out
        return out

    def trace(self, model):
        """Run ``model`` on a fresh input; returns ``(input, output)``."""
        ref = model.inputs[0]
        inp = keras.Input(batch_shape=tuple(ref.shape), dtype=ref.dtype)
        out = self.run_model(model, inp, "")
        return inp, out


class Ref:
    """Holds a layer without Keras tracking it (the holder owns no weights)."""

    def __init__(self, obj):
        self.obj = obj


def linear_twin(layer, input_shape):
    """A copy of ``layer`` with ``activation="linear"`` that uses the *same* variables
    (rebound, not copied): it computes ``layer``'s pre-activation without touching
    ``layer`` -- how a fused ReLU (guided backprop) or softmax (logits) is bypassed."""
    cfg = dict(layer.get_config())
    cfg["activation"] = "linear"
    cfg["name"] = layer.name + "_preactivation"
    try:
        twin = layer.__class__.from_config(cfg)
        twin.build(input_shape)
    except Exception as exc:  # pragma: no cover - exotic layers
        raise ModelError(f"cannot separate the fused activation of layer {layer.name!r} "
                         f"({type(layer).__name__}): {exc}") from None
    own = {k: v for k, v in vars(layer).items() if isinstance(v, keras.Variable)}
    theirs = {k for k, v in vars(twin).items() if isinstance(v, keras.Variable)}
    if not own or set(own) != theirs:
        raise ModelError(f"cannot separate the fused activation of layer {layer.name!r} ({type(layer).__name__}): "
                         f"its variables are not plain attributes")
    for k, v in own.items():
        object.__setattr__(twin, k, v)  # share, bypassing Keras' tracking (the twin is built and locked)
    return twin
