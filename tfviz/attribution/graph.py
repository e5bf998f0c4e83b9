"""Views of the user's model that the attribution methods differentiate through.

A *head* is a Keras model from the model input to the tensor a target's score comes from
-- the logits (a final softmax bypassed, see :attr:`tfviz.models.ModelBundle.logits`) or
a unit's layer -- optionally also returning the outputs of other layers (Grad-CAM needs
its conv layer) and optionally with every ReLU's backward pass replaced (guided backprop,
deconvnet). Heads are built by re-running the model's graph of layers with the *same
layer objects* (weights shared, nothing copied, nothing changed in the user's model),
expanding nested Functional / Sequential models inline. Each head is built once per
bundle and cached in it.
"""
from __future__ import annotations

from .errors import UnsupportedModelError

_CACHE_PREFIX = "tfviz.attribution"


def is_model(op) -> bool:
    """A nested Keras model (Functional or Sequential) used as a layer."""
    import keras
    return isinstance(op, keras.Model)


def _graph_kind(model) -> str:
    import keras
    from keras.src.models.functional import Functional
    if isinstance(model, keras.Sequential):
        return "sequential"
    if isinstance(model, Functional):
        return "functional"
    return "subclassed"


class Rewriter:
    """Re-runs a model's graph on new symbolic inputs, layer by layer.

    ``relu_mode``: ``None``, ``"guided"`` or ``"deconvnet"`` -- wrap every ReLU-type
    call (see :mod:`tfviz.attribution.guided`). ``wanted``: layer names / ``outer/inner``
    paths whose outputs are captured in ``self.captured``."""

    def __init__(self, relu_mode=None, wanted=()):
        self.relu_mode = relu_mode
        self.wanted = set(wanted)
        self.captured: dict[str, object] = {}
        self.relus = 0

    def run_model(self, model, inputs, prefix: str = ""):
        import keras
        kind = _graph_kind(model)
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
            runner = getattr(model, "_run_through_graph", None)
            if runner is not None:
                out = runner(inputs, operation_fn=lambda op: op, call_fn=call)
            else:  # pragma: no cover - older/newer Keras without the private walker
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
        if is_model(op):
            inputs = args[0] if len(args) == 1 else list(args)
            out = self.run_model(op, inputs, path + "/")
        elif self.relu_mode is not None and _relu_spec(op) is not None:
            from .guided import GuidedReLU
            out = GuidedReLU(op, _relu_spec(op), self.relu_mode)(*args, **kwargs)
            self.relus += 1
        else:
            out = op(*args, **kwargs)
        for key in (path, name):
            if key in self.wanted and key not in self.captured:
                self.captured[key] = out
        return out


def _relu_spec(op):
    from .guided import relu_spec
    return relu_spec(op)


def head(bundle, layer: str | None = None, relu: str | None = None, capture: tuple = ()):
    """The (cached) Keras model ``input -> [captured layers..., score source]``.

    ``layer=None``: the score source is the logits; otherwise the output of ``layer`` (a
    unit target). ``relu``: ``None``, ``"guided"`` or ``"deconvnet"``. ``capture``: extra
    layer names whose outputs come first. With nothing to capture the model has a single
    output."""
    import keras
    capture = tuple(capture)
    key = (_CACHE_PREFIX, "head", layer, relu, capture)
    cache = bundle._cache
    if key in cache:
        return cache[key]
    if layer is None and relu is None and not capture:
        model = bundle.logits
    else:
        if relu is not None:
            from .guided import check_has_relu
            check_has_relu(bundle)
        source = bundle.logits if layer is None else bundle.model
        for name in capture + ((layer,) if layer else ()):
            bundle.layer(name)  # unknown names -> UnknownLayerError listing valid ones
        rw = Rewriter(relu, capture + ((layer,) if layer else ()))
        ref = source.inputs[0]
        inp = keras.Input(batch_shape=tuple(ref.shape), dtype=ref.dtype)
        out = rw.run_model(source, inp, "")
        if isinstance(out, (list, tuple)):
            out = out[0]
        missing = [n for n in capture + ((layer,) if layer else ()) if n not in rw.captured]
        if missing:
            from .errors import TargetError
            raise TargetError(f"layer(s) {', '.join(map(repr, missing))} are not on the path from the input to "
                              f"the {'scores' if layer is None else 'model output'} (an input layer, or a "
                              f"layer after the logits); pick another layer")
        main = rw.captured[layer] if layer else out
        outs = [rw.captured[n] for n in capture] + [main]
        model = keras.Model(inp, outs if capture else main,
                            name=f"{bundle.model.name}_{relu or 'plain'}_head")
    cache[key] = model
    return model
