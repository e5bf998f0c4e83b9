"""ModelBundle: a Keras model plus everything a visualization method needs to use it."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import tensorflow as tf

from .. import images as images_lib
from ..errors import LayerKindError, OptionError, UnknownClassError, UnknownLayerError
from ..utils import did_you_mean, names_hint
from .layers import is_conv, iter_layers, output_shape
from .preprocessing import Preprocessing
from .programs import Programs
from .views import HeldInput, feature_model, final_activation, logit_model, output_index, output_names


@dataclass
class ModelBundle:
    """A Keras model plus its preprocessing, class names and views for methods.

    Attributes: ``model`` (the user's Keras model, never modified), ``name``,
    ``preprocessing`` (:class:`Preprocessing`), ``input_size`` ``(h, w)``,
    ``class_names`` (list or None), ``output`` (which of several outputs the methods
    explain: a name or index; None, the first), ``programs`` (:class:`Programs`: what
    methods built from the model, cached)."""
    model: object
    name: str
    preprocessing: Preprocessing
    input_size: tuple
    class_names: list | None = None
    source: str | None = None  # the spec it was loaded from (a name or a path), for hints
    output: str | int | None = None
    user_model: object = field(default=None, repr=False, compare=False)  # several inputs: the model as given
    programs: Programs = field(default_factory=Programs, repr=False, compare=False)

    def list_hint(self, what: str = "layers", flags: str = "") -> str:
        """How a user lists all valid names of ``what`` (``layers`` or ``classes``)."""
        if self.source:
            src = self.source if " " not in self.source else repr(self.source)
            return f"tfviz {what} {src}{flags}"
        return "bundle.layer_names()" if what == "layers" else "bundle.class_names"

    # -- pixels
    def preprocess(self, images):
        """uint8 RGB NHWC -> model input (float32)."""
        return self.preprocessing(images)

    def deprocess(self, x) -> np.ndarray:
        """model input -> uint8 RGB."""
        return self.preprocessing.deprocess(x)

    @property
    def input_range(self):
        """Per-channel (low, high) arrays of valid images in model-input space."""
        return self.preprocessing.input_range

    def load_images(self, sources, size=None, crop: bool = False) -> np.ndarray:
        """Paths / arrays -> uint8 batch resized to the model's input size (or ``size``).
        Images smaller than the first convolution's kernel are refused; images blown up
        more than 4x get an :class:`~tfviz.images.UpscaleWarning`."""
        return images_lib.load_images(sources, size or self.input_size, crop=crop, min_side=self.min_input_side)

    # -- layers
    def layer_paths(self) -> list[str]:
        return [p for p, _, _ in iter_layers(self.model)]

    def layer(self, name: str):
        """The layer called ``name`` (or ``outer/inner`` path); nested models are searched.
        An unknown name raises :class:`UnknownLayerError` listing the closest names."""
        if not isinstance(name, str):
            return name
        matches = [layer for p, layer, _ in iter_layers(self.model) if p == name or layer.name == name]
        if not matches:
            raise UnknownLayerError(did_you_mean("layer", name, self.layer_paths(), self.list_hint()))
        return matches[0]

    def layer_names(self, spatial: bool = False, conv: bool = False) -> list[str]:
        """Layer names, optionally only those with a 4-D output (``spatial``) or only
        convolution layers (``conv``)."""
        out = []
        for p, layer, _ in iter_layers(self.model):
            if conv and not is_conv(layer):
                continue
            if spatial:
                s = output_shape(layer)
                if s is None or len(s) != 4:
                    continue
            out.append(layer.name if self.is_unique(layer.name) else p)
        return out

    def is_unique(self, name) -> bool:
        """No other layer (nested ones included) has this name."""
        return sum(1 for _, l, _ in iter_layers(self.model) if l.name == name) == 1

    def conv_layers(self) -> list[str]:
        return self.layer_names(conv=True)

    def spatial_layer(self, name: str):
        """Like :meth:`layer` but the layer must have a 4-D ``[N,H,W,C]`` output."""
        layer = self.layer(name)
        s = output_shape(layer)
        if s is None or len(s) != 4:
            raise LayerKindError(f"layer {name!r} has no spatial output (shape {s}); " + self.spatial_hint(name))
        return layer

    def spatial_hint(self, name) -> str:
        """``spatial layers: <the closest few>`` with how to list them all."""
        return "spatial layers: " + names_hint(name, self.layer_names(spatial=True),
                                               self.list_hint("layers", " --spatial"), noun="spatial layers")

    @property
    def min_input_side(self) -> int:
        """The smallest image side (in pixels) the model's first convolution can use: its
        kernel's extent. Smaller images are refused instead of blown up."""
        def build():
            for _, layer, _ in iter_layers(self.model):
                if is_conv(layer):
                    k = getattr(layer, "kernel_size", (1,))
                    d = getattr(layer, "dilation_rate", (1,) * len(k))
                    return max((int(a) - 1) * int(b) + 1 for a, b in zip(k, d))
            return 1
        return self.programs.get("models.min_input_side", build=build)

    def features(self, layer_names: Sequence[str] | str):
        """A Keras model from the model input to the outputs of ``layer_names`` (a list
        in, a list out; one name in, one tensor out) -- one forward pass for all."""
        single = isinstance(layer_names, str)
        names = [layer_names] if single else list(layer_names)
        def build():
            for n in names:
                self.layer(n)  # raise with suggestions on unknown names
            return feature_model(self.model, names, single)
        return self.programs.get("models.features", tuple(names), (single,), build)

    # -- scores
    @property
    def output_names(self) -> list:
        """The names of the model's outputs (``output=`` takes one, or its index)."""
        return output_names(self.model)

    @property
    def output_name(self) -> str:
        """The name of the output the methods explain."""
        return self.output_names[output_index(self.model, self.output)]

    def with_output(self, output) -> "ModelBundle":
        """This bundle explaining another of the model's outputs (a name or index): the same
        model and preprocessing, its own programs (kept, so asking twice builds once)."""
        index = output_index(self.model, output)
        if index == output_index(self.model, self.output):
            return self
        def build():
            names = self.class_names if self.output_names[index] == self.output_name else None
            return replace(self, output=self.output_names[index], class_names=names, programs=Programs())
        return self.programs.get("models.output_view", (), (index,), build)

    @property
    def head_kind(self) -> str:
        """What the explained output's final activation is: ``"softmax"`` (a classifier,
        per pixel for a segmentation map), ``"sigmoid"`` (multi-label), or ``"linear"``
        (plain logits or a regression)."""
        return final_activation(self.model, output_index(self.model, self.output))[1] or "linear"

    @property
    def ends_in_softmax(self) -> bool:
        return self.head_kind == "softmax"

    @property
    def logits(self):
        """A Keras model giving the explained output's scores before its final softmax or
        sigmoid (its own layer, a fused ``activation=`` or a ``keras.ops`` call), which is
        bypassed. Shares weights with ``model``; the user's model is not changed."""
        return self.programs.get("models.logits", build=lambda: logit_model(self.model, self.output))

    @property
    def num_classes(self) -> int:
        return int(self.logits.outputs[0].shape[-1])

    @property
    def is_regression(self) -> bool:
        """A single linear score per image (``[N, 1]``): explained as the value itself."""
        return self.head_kind == "linear" and self.num_classes == 1 and len(self.logits.outputs[0].shape) == 2

    def probabilities(self, logits):
        """Inside TensorFlow: the explained output's logits -> what the model outputs (its
        softmax or sigmoid; a softmax for plain multi-class logits; a regression's value as is)."""
        if self.head_kind == "sigmoid":
            return tf.nn.sigmoid(logits)
        if self.is_regression:
            return logits
        return tf.nn.softmax(logits)

    def class_index(self, target) -> int:
        """A class index from an int or a class name (case-insensitive), validated."""
        n = self.num_classes
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            if not 0 <= int(target) < n:
                raise UnknownClassError(f"class index {int(target)} out of range: the model has {n} classes "
                                        f"(0..{n - 1})")
            return int(target)
        s = str(target).strip()
        if s.lstrip("-").isdigit():
            return self.class_index(int(s))
        names = self.class_names or []
        low = [c.lower() for c in names]
        if s.lower() in low:
            return low.index(s.lower())
        if not names:
            raise UnknownClassError(f"unknown class {s!r}: this model has no class names; use an index 0..{n - 1}")
        raise UnknownClassError(did_you_mean("class", s, names, self.list_hint("classes")))

    def class_name(self, index: int) -> str:
        if self.class_names and 0 <= index < len(self.class_names):
            return self.class_names[index]
        if self.is_regression:
            return self.output_name
        return str(index)

    # -- other inputs (a model with several inputs: the image is explained, these are held)
    @property
    def held_inputs(self) -> dict:
        """``{name: HeldInput}``: the model's inputs other than the image, held at values."""
        return {layer.name.removeprefix("held_"): layer for layer in self.model.layers if isinstance(layer, HeldInput)}

    def input_rows(self, inputs, n: int):
        """``inputs`` ``{name: value}`` -> one ``{name: row}`` for all ``n`` images, or a list
        of ``n`` (one per image). A value is one row (the input's shape, with or without a
        batch axis of 1) or ``n`` rows. Unknown names and wrong shapes raise
        :class:`OptionError` naming the valid ones."""
        held = self.held_inputs
        if not isinstance(inputs, dict):
            raise OptionError(f"inputs= is a dict {{name: array}}; this model's other inputs: "
                              f"{', '.join(held) or '(none: it has only the image input)'}")
        per_image, shared = {}, {}
        for name, value in inputs.items():
            if name not in held:
                raise OptionError(did_you_mean("input", name, list(held)))
            shape = held[name].value_shape
            arr = np.asarray(value, held[name].value.dtype)
            if arr.shape == shape or arr.shape == (1,) + shape:
                shared[name] = arr.reshape(shape)
            elif arr.shape == (n,) + shape:
                per_image[name] = arr
            else:
                raise OptionError(f"input {name!r}: shape {arr.shape}; give one row {shape} or one per image "
                                  f"({n},) + {shape}")
        if not per_image:
            return shared
        return [dict(shared, **{k: v[i] for k, v in per_image.items()}) for i in range(n)]

    def hold(self, row: dict) -> None:
        """Set the held inputs named in ``row`` (no retracing: they are variables)."""
        held = self.held_inputs
        for name, value in row.items():
            held[name].hold(value)

    def _as_input(self, images):
        """uint8 images (or paths) -> model input at the model's size."""
        if isinstance(images, np.ndarray) and images.dtype != np.uint8 and images.ndim == 4:
            return images.astype(np.float32)  # already model input
        batch = self.load_images(images)
        return self.preprocess(batch)

    def predict(self, images, batch_size: int = 32, inputs: dict | None = None) -> np.ndarray:
        """The explained output for uint8 images (or paths): class probabilities ``[N,
        classes]`` (per-class sigmoids for a multi-label head, per pixel for a segmentation
        map, the value for a regression). ``inputs``: a model's other inputs, see
        :meth:`input_rows`."""
        x = self._as_input(images)
        if inputs:
            rows = self.input_rows(inputs, len(x))
            if isinstance(rows, list):  # one row per image: image by image
                parts = []
                for i, row in enumerate(rows):
                    self.hold(row)
                    parts.append(self.predict(x[i:i + 1], batch_size))
                return np.concatenate(parts)
            self.hold(rows)
        def build():
            lm, prob = self.logits, self.probabilities
            return tf.function(lambda t: prob(lm(t, training=False)), reduce_retracing=True, autograph=False)
        fn = self.programs.get("models.predict", build=build)
        out = [fn(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(out)

    def class_probabilities(self, images, inputs: dict | None = None) -> np.ndarray:
        """``[N, classes]``: :meth:`predict`, a segmentation map's classes by their mean
        probability over the pixels."""
        p = self.predict(images, inputs=inputs)
        return p.mean(axis=(1, 2)) if p.ndim == 4 else p

    def top_k(self, images, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """For each image, the ``k`` most probable ``(index, class name, probability)`` (a
        segmentation map: by mean probability over the pixels; a regression: its value)."""
        p = self.class_probabilities(images)
        k = min(k, p.shape[1])
        idx = np.argsort(-p, axis=1)[:, :k]
        return [[(int(i), self.class_name(int(i)), float(row[i])) for i in r] for r, row in zip(idx, p)]
