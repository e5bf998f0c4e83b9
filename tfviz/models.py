"""ModelBundle: a Keras model plus everything a visualization method needs to use it.

``load_model(spec, **options)`` accepts

* ``"efficientnet_lite0"`` -- the built-in offline ImageNet classifier (default),
* ``"digits_cnn"`` -- a small CNN trained on scikit-learn's digits (shipped with tfviz),
* a ``keras.applications`` name (``"vgg16"``, ``"resnet50"``, ...) with ``weights=``
  ``"imagenet"`` (default; downloaded by Keras when online), a local path, or ``None``,
* a ``keras.Model`` already in memory, or a path to a ``.keras`` / ``.h5`` file.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from . import images as _images
from .utils import LayerKindError, ModelError, UnknownClassError, UnknownLayerError, did_you_mean, names_hint, notice, \
    suggest

# ----------------------------------------------------------------------- preprocessing
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@dataclass(frozen=True)
class Preprocessing:
    """An affine, per-channel map from uint8 RGB to model input, optionally to BGR:
    ``x_model = (x[..., order] - mean) / std``. ``deprocess`` inverts it exactly."""
    name: str
    mean: tuple = (0.0, 0.0, 0.0)
    std: tuple = (1.0, 1.0, 1.0)
    bgr: bool = False

    def __call__(self, x):
        """uint8 (or float 0..255) RGB NHWC -> float32 model input. numpy in, numpy out;
        a TensorFlow tensor in, a tensor out (differentiable)."""
        if _is_tensor(x):
            import tensorflow as tf
            x = tf.cast(x, tf.float32)
            if self.bgr:
                x = x[..., ::-1]
            return (x - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
        x = np.asarray(x, np.float32)
        if self.bgr:
            x = x[..., ::-1]
        return ((x - np.float32(self.mean)) / np.float32(self.std)).astype(np.float32)

    def to_float_rgb(self, x):
        """Model input -> float RGB on the 0..255 scale (unclipped, differentiable)."""
        if _is_tensor(x):
            import tensorflow as tf
            x = x * tf.constant(self.std, x.dtype) + tf.constant(self.mean, x.dtype)
            return x[..., ::-1] if self.bgr else x
        x = np.asarray(x, np.float32) * np.float32(self.std) + np.float32(self.mean)
        return x[..., ::-1] if self.bgr else x

    def deprocess(self, x) -> np.ndarray:
        """Model input -> uint8 RGB (rounded, clipped)."""
        x = np.asarray(self.to_float_rgb(np.asarray(x, np.float32)))
        return np.clip(np.round(x), 0, 255).astype(np.uint8)

    @property
    def input_range(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (low, high) of valid images in model-input space."""
        lo = self(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0]
        hi = self(np.full((1, 1, 1, 3), 255.0, np.float32))[0, 0, 0]
        return np.minimum(lo, hi), np.maximum(lo, hi)


PREPROCESSINGS = {
    "0-1": Preprocessing("0-1", std=(255.0,) * 3),
    "-1-1": Preprocessing("-1-1", mean=(127.5,) * 3, std=(127.5,) * 3),
    "caffe": Preprocessing("caffe", mean=CAFFE_MEAN_BGR, bgr=True),
    "torch": Preprocessing("torch", mean=tuple(255 * m for m in IMAGENET_MEAN),
                           std=tuple(255 * s for s in IMAGENET_STD)),
    "raw": Preprocessing("raw"),
}


def _is_tensor(x) -> bool:
    return (type(x).__module__.startswith(("tensorflow", "keras"))
            or (hasattr(x, "numpy") and not isinstance(x, np.ndarray)))


def get_preprocessing(p) -> Preprocessing:
    if isinstance(p, Preprocessing):
        return p
    if p not in PREPROCESSINGS:
        raise ModelError(did_you_mean("preprocess", p, PREPROCESSINGS))
    return PREPROCESSINGS[p]


# ----------------------------------------------------------------------- layer helpers
def iter_layers(model, prefix: str = ""):
    """Yield ``(path, layer, parent_model)`` for every layer, descending into nested
    models; ``path`` is ``outer/inner`` for nested layers."""
    for layer in model.layers:
        path = prefix + layer.name
        yield path, layer, model
        if hasattr(layer, "layers") and layer.layers and hasattr(layer, "inputs"):
            yield from iter_layers(layer, path + "/")


def _output_shape(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    if isinstance(out, (list, tuple)):
        return None
    return tuple(out.shape)


def is_softmax(fn) -> bool:
    name = getattr(fn, "__name__", "") or type(fn).__name__
    return name.lower() == "softmax"


# ----------------------------------------------------------------------- the bundle
class Programs:
    """What methods build from one model, built once per :class:`ModelBundle`.

    Traced ``tf.function``s, feature and rewritten models, and facts found by walking the
    model (its ReLU count, its default layers) all live here, under one key scheme:
    ``(what, layers, signature)``:

    * ``what`` -- a dotted name for the program: its module and purpose
      (``"attribution.gradient"``, ``"inspect.forward"``, ``"synthesis.forward"``);
    * ``layers`` -- the layer names it reads, a tuple (``()`` for the logits or the whole
      model; one name or ``None`` are accepted and normalized);
    * ``signature`` -- everything else that changes the program: options such as
      ``relu="guided"`` or ``probability=True``, and an input shape ``(h, w, c)`` where a
      program is built for one shape.

    A ``tf.function`` kept here traces once per input shape and reuses its traces on every
    later call, so a method called twice with the same key does not trace again. A cached
    program lives as long as its bundle; the bundle never changes the user's model.
    ``len(bundle.programs)`` and ``list(bundle.programs)`` show what has been built."""

    def __init__(self):
        self._store: dict = {}

    @staticmethod
    def key(what: str, layers=(), signature=()) -> tuple:
        if layers is None:
            layers = ()
        elif isinstance(layers, str):
            layers = (layers,)
        if not isinstance(signature, tuple):
            signature = (signature,)
        return (str(what), tuple(layers), signature)

    def get(self, what: str, layers=(), signature=(), build=None):
        """The program under ``(what, layers, signature)``; ``build()`` makes it the
        first time (without ``build``, a missing program raises ``KeyError``)."""
        k = self.key(what, layers, signature)
        if k not in self._store:
            if build is None:
                raise KeyError(k)
            self._store[k] = build()
        return self._store[k]

    def put(self, what: str, layers=(), signature=(), value=None):
        """Keep ``value`` under the key (replacing what was there); returns it."""
        self._store[self.key(what, layers, signature)] = value
        return value

    def has(self, what: str, layers=(), signature=()) -> bool:
        return self.key(what, layers, signature) in self._store

    def __len__(self) -> int:
        return len(self._store)

    def __iter__(self):
        return iter(list(self._store))

    def clear(self):
        """Forget every program (to free memory; new weights need no clearing: programs
        read the model's variables)."""
        self._store.clear()


@dataclass
class ModelBundle:
    """A Keras model plus its preprocessing, class names and views for methods.

    Attributes: ``model`` (the user's Keras model, never modified), ``name``,
    ``preprocessing`` (:class:`Preprocessing`), ``input_size`` ``(h, w)``,
    ``class_names`` (list or None), ``programs`` (:class:`Programs`: what methods
    built from the model, cached)."""
    model: object
    name: str
    preprocessing: Preprocessing
    input_size: tuple
    class_names: list | None = None
    source: str | None = None  # the spec it was loaded from (a name or a path), for hints
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
        return _images.load_images(sources, size or self.input_size, crop=crop, min_side=self.min_input_side)

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
            if conv and not _is_conv(layer):
                continue
            if spatial:
                s = _output_shape(layer)
                if s is None or len(s) != 4:
                    continue
            out.append(layer.name if self._unique(layer.name) else p)
        return out

    def _unique(self, name):
        return sum(1 for _, l, _ in iter_layers(self.model) if l.name == name) == 1

    def conv_layers(self) -> list[str]:
        return self.layer_names(conv=True)

    def spatial_layer(self, name: str):
        """Like :meth:`layer` but the layer must have a 4-D ``[N,H,W,C]`` output."""
        layer = self.layer(name)
        s = _output_shape(layer)
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
                if _is_conv(layer):
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
            return _feature_model(self.model, names, single)
        return self.programs.get("models.features", tuple(names), (single,), build)

    # -- scores
    @property
    def ends_in_softmax(self) -> bool:
        return _final_softmax(self.model) is not None

    @property
    def logits(self):
        """A Keras model giving pre-softmax scores: the user's model with a final
        softmax (its own layer or a fused ``activation="softmax"``) bypassed. Shares
        weights with ``model``; the user's model is not changed."""
        return self.programs.get("models.logits", build=lambda: _logit_model(self.model))

    @property
    def num_classes(self) -> int:
        return int(self.logits.outputs[0].shape[-1])

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
        return str(index)

    def _as_input(self, images):
        """uint8 images (or paths) -> model input at the model's size."""
        if isinstance(images, np.ndarray) and images.dtype != np.uint8 and images.ndim == 4:
            return images.astype(np.float32)  # already model input
        batch = self.load_images(images)
        return self.preprocess(batch)

    def predict(self, images, batch_size: int = 32) -> np.ndarray:
        """Class probabilities ``[N, classes]`` for uint8 images (or paths)."""
        x = self._as_input(images)
        def build():
            import tensorflow as tf
            lm = self.logits
            return tf.function(lambda t: tf.nn.softmax(lm(t, training=False)), reduce_retracing=True, autograph=False)
        fn = self.programs.get("models.predict", build=build)
        out = [fn(x[i:i + batch_size]).numpy() for i in range(0, len(x), batch_size)]
        return np.concatenate(out)

    def top_k(self, images, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """For each image, the ``k`` most probable ``(index, class name, probability)``."""
        p = self.predict(images)
        k = min(k, p.shape[1])
        idx = np.argsort(-p, axis=1)[:, :k]
        return [[(int(i), self.class_name(int(i)), float(row[i])) for i in r] for r, row in zip(idx, p)]


def describe_layers(bundle, spatial: bool = False, conv: bool = False) -> list[tuple[str, str, str]]:
    """``(name, layer type, output shape)`` for every layer (nested ones as
    ``outer/inner``), optionally only spatial or convolution layers."""
    names = set(bundle.layer_names(spatial=spatial, conv=conv))
    rows = []
    for path, layer, _ in iter_layers(bundle.model):
        shown = layer.name if bundle._unique(layer.name) else path
        if shown in names:
            shape = _output_shape(layer)
            rows.append((shown, type(layer).__name__, "?" if shape is None else str(tuple(shape))))
    return rows


def _is_conv(layer) -> bool:
    import keras
    return isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D,
                              keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D,
                              keras.layers.Conv2DTranspose))


def _is_softmax_op(op) -> bool:
    """A softmax over the last axis: a ``Softmax`` layer, a layer with a fused
    ``activation="softmax"`` (``Dense``, ``Activation``), or a ``keras.ops.softmax`` call
    (an operation in the graph, not a layer)."""
    import keras
    if isinstance(op, keras.layers.Softmax) or (type(op).__name__ == "Softmax" and not isinstance(op, keras.Model)):
        axis = getattr(op, "axis", -1)
        return axis in (-1, None) or axis == [-1] or axis == (-1,)
    return is_softmax(getattr(op, "activation", None))


def _final_softmax(model):
    """The operation holding a final softmax (layer, fused activation or ``ops.softmax``
    call), or None. Follows the graph back from the output, not ``model.layers[-1]``
    (which skips operations that are not layers); descends into a nested last model."""
    from .graph import is_model, producing_operation
    last = producing_operation(model)
    if last is None:
        return None
    if _is_softmax_op(last):
        return last
    if is_model(last) and getattr(last, "layers", None) and hasattr(last, "inputs"):
        return _final_softmax(last)
    return None


def _model_input(model):
    """The model's input tensor (not a one-element list, which makes Keras warn when the
    derived model is called on a plain tensor)."""
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _logit_model(model):
    """The model with its final softmax bypassed: the graph is re-run with the same
    layer objects (weights shared), the softmax layer replaced by identity or, for a
    fused ``activation="softmax"``, by its linear part. Nested last models are
    expanded; the user's model is not changed."""
    import keras
    from .graph import Rewriter, UnsupportedModelError
    if len(model.outputs) != 1:
        raise ModelError(f"model {model.name!r} has {len(model.outputs)} outputs; tfviz needs one score vector")
    sm = _final_softmax(model)
    if sm is None:
        return model

    def replace(op):
        if op is not sm:
            return None
        if not isinstance(op, keras.layers.Layer) or isinstance(op, keras.layers.Softmax) \
                or type(op).__name__ == "Activation":  # a softmax of its own (layer or ops call): identity
            return lambda x, *args, **kwargs: x
        return _BypassActivation(op)

    rw = Rewriter(replace=replace)
    try:
        inp, out = rw.trace(model)
    except UnsupportedModelError as exc:
        raise ModelError(f"cannot bypass the final softmax: {exc}") from None
    return keras.Model(inp, out, name=model.name + "_logits")


def _make_bypass_class():
    import keras
    from .graph import Ref, linear_twin

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

    return BypassActivation


_BYPASS_CLS = None


def _BypassActivation(layer):
    global _BYPASS_CLS
    if _BYPASS_CLS is None:
        _BYPASS_CLS = _make_bypass_class()
    return _BYPASS_CLS(layer)


def _feature_model(model, names: list[str], single: bool):
    """One model from ``model``'s input to several (possibly nested) layers' outputs."""
    import keras
    top = {l.name: l for l in model.layers}
    if not all(n in top for n in names):
        return _feature_model_nested(model, names, single)
    outs = [top[n].output for n in names]
    return keras.Model(_model_input(model), outs[0] if single else outs, name=model.name + "_features")


def _feature_model_nested(model, names, single):
    """Re-run the model's graph (sharing its layers), expanding nested models inline so
    every requested output is reachable from the outer input in one pass."""
    import keras
    from .graph import Rewriter
    rw = Rewriter(names)
    inp, _ = rw.trace(model)
    missing = [n for n in names if n not in rw.captured]
    if missing:
        raise ModelError(f"could not reach layers {missing} through nested models")
    outs = [rw.captured[n] for n in names]
    return keras.Model(inp, outs[0] if single else outs, name=model.name + "_features")


# ----------------------------------------------------------------------- loading
APPLICATIONS = {
    # name: (constructor in keras.applications, preprocessing, default size)
    "vgg16": ("VGG16", "caffe", 224),
    "vgg19": ("VGG19", "caffe", 224),
    "resnet50": ("ResNet50", "caffe", 224),
    "resnet101": ("ResNet101", "caffe", 224),
    "resnet50v2": ("ResNet50V2", "-1-1", 224),
    "mobilenet": ("MobileNet", "-1-1", 224),
    "mobilenet_v2": ("MobileNetV2", "-1-1", 224),
    "mobilenet_v3_small": ("MobileNetV3Small", "raw", 224),
    "mobilenet_v3_large": ("MobileNetV3Large", "raw", 224),
    "inception_v3": ("InceptionV3", "-1-1", 299),
    "xception": ("Xception", "-1-1", 299),
    "densenet121": ("DenseNet121", "torch", 224),
    "efficientnetb0": ("EfficientNetB0", "raw", 224),
    "efficientnetv2b0": ("EfficientNetV2B0", "raw", 224),
    "convnext_tiny": ("ConvNeXtTiny", "raw", 224),
}
ZOO = ("efficientnet_lite0", "digits_cnn")


def imagenet_class_names() -> list[str]:
    path = os.path.join(os.path.dirname(__file__), "assets", "imagenet_classes.txt")
    with open(path, encoding="utf-8") as fh:
        return [line.rstrip("\n") for line in fh]


def _read_class_names(path) -> list[str]:
    if path is None:
        return None
    if isinstance(path, (list, tuple)):
        return [str(c) for c in path]
    try:
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except OSError as exc:
        raise ModelError(f"cannot read class names from {path}: {exc.strerror}") from None


def _infer_preprocessing(model) -> str | None:
    """Guess the input range from a Rescaling/Normalization layer at the model's start."""
    import keras
    for layer in model.layers[:4]:
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            return "raw"
    return None


def _input_size(model) -> tuple:
    shape = model.inputs[0].shape
    if len(shape) == 4 and shape[-1] == 1:
        raise ModelError(
            f"model {model.name!r} takes one-channel (grayscale) images {tuple(shape)}; tfviz works on RGB "
            f"models. Wrap it so it takes RGB and averages the channels: inp = keras.Input(({shape[1]}, "
            f"{shape[2]}, 3)); rgb = keras.Model(inp, model(keras.ops.mean(inp, axis=-1, keepdims=True)))")
    if len(shape) != 4 or shape[-1] != 3:
        raise ModelError(f"model input has shape {tuple(shape)}; tfviz needs images [N, H, W, 3]")
    if shape[1] is None or shape[2] is None:
        return (224, 224)
    return (int(shape[1]), int(shape[2]))


def _application(name, weights, options):
    import keras
    ctor_name, pre, size = APPLICATIONS[name]
    ctor = getattr(keras.applications, ctor_name)
    kw = dict(options)
    local = weights not in (None, "imagenet")
    if local and not os.path.exists(weights):
        raise ModelError(f"weights file {weights!r} does not exist")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # Keras prints "Downloading data from ..."
            model = ctor(weights=None if local else weights, **kw)
    except Exception as exc:
        if weights == "imagenet" and _looks_offline(exc):
            raise _offline_error(name) from None
        raise ModelError(f"cannot build {name}: {exc}") from None
    if "Downloading" in printed.getvalue():
        notice(f"downloaded the ImageNet weights of {name} (Keras keeps them in ~/.keras/models)")
    if local:
        try:
            model.load_weights(weights)
        except Exception as exc:
            raise ModelError(f"cannot load weights {weights!r} into {name}: {exc}") from None
    return model, pre


def _looks_offline(exc) -> bool:
    """True when ``exc`` (or what it was raised from) says the network could not be reached:
    a URL or socket error, or Keras's "URL fetch failure" wrapper of one. Not an HTTP error
    (the server answered, e.g. 404), and not any message that merely mentions "http"."""
    import socket
    import urllib.error
    seen, e = set(), exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, urllib.error.HTTPError):
            return False
        if isinstance(e, (urllib.error.URLError, ConnectionError, socket.gaierror, TimeoutError)):
            return True
        e = e.__cause__ or e.__context__
    # keras.utils.get_file re-raises URL errors as Exception("URL fetch failure on URL: ERRNO -- REASON");
    # an HTTP status in the ERRNO slot means the server answered.
    m = re.search(r"url fetch failure on .*?:\s*(\S+)\s*--", str(exc), re.IGNORECASE | re.DOTALL)
    return bool(m) and not re.fullmatch(r"[1-5]\d\d", m.group(1))


def _offline_error(name):
    from .utils import OfflineError
    return OfflineError(
        f"cannot download ImageNet weights for {name!r}: no network. Either go online once (Keras "
        f"caches them in ~/.keras/models), pass weights=PATH (CLI: --weights PATH) with a local "
        f"weights file, or use weights=None for random initialization. The built-in offline "
        f"model is 'efficientnet_lite0'.")


def _load_model_file(path):
    """``keras.models.load_model`` with one clear message for files that are not models."""
    import zipfile

    import keras
    if os.path.isdir(path):
        raise ModelError(f"{path}: is a folder, not a .keras/.h5 model file")
    if path.lower().endswith(".keras") and not zipfile.is_zipfile(path):
        raise ModelError(f"{path}: not a Keras model file (a .keras file is a zip archive saved by model.save)")
    if path.lower().endswith((".h5", ".hdf5")):
        with open(path, "rb") as fh:
            if fh.read(8) != b"\x89HDF\r\n\x1a\n":
                raise ModelError(f"{path}: not a Keras model file (an .h5 file is an HDF5 file saved by model.save)")
    try:
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load model {path}: {first}") from None


def load_model(spec="efficientnet_lite0", *, weights="imagenet", preprocess=None, class_names=None,
               input_size=None, name=None, **options) -> ModelBundle:
    """Load a model and wrap it in a :class:`ModelBundle`.

    spec: ``"efficientnet_lite0"`` (default, offline), ``"digits_cnn"`` (offline,
    shipped), a ``keras.applications`` name (see ``APPLICATIONS``), a ``keras.Model``
    or a path to a ``.keras`` / ``.h5`` file.
    weights: for keras.applications names: ``"imagenet"``, a local path, or ``None``.
    preprocess: one of ``0-1``, ``-1-1``, ``caffe``, ``torch``, ``raw`` (``lite``), or a
    :class:`Preprocessing`; required for user models when it cannot be inferred.
    class_names: a list or a text file with one name per line.
    """
    import keras
    names = _read_class_names(class_names)
    if isinstance(spec, ModelBundle):
        return spec
    if isinstance(spec, keras.Model):
        model, default_pre, default_names = spec, _infer_preprocessing(spec), None
        bname = name or spec.name
    elif isinstance(spec, (str, os.PathLike)) and str(spec).lower().endswith((".keras", ".h5", ".hdf5")):
        path = os.fspath(spec)
        if not os.path.exists(path):
            raise ModelError(f"model file {path!r} does not exist")
        model = _load_model_file(path)
        default_pre, default_names = _infer_preprocessing(model), None
        bname = name or os.path.splitext(os.path.basename(path))[0]
    elif isinstance(spec, str) and spec.lower() == "efficientnet_lite0":
        from .utils import cache_dir
        from .zoo import efficientnet_lite0 as lite
        model = lite.load(cache_dir())
        default_pre, default_names, bname = lite.NORMALIZATION, imagenet_class_names(), "efficientnet_lite0"
    elif isinstance(spec, str) and spec.lower() == "digits_cnn":
        from .zoo import digits_cnn
        model = digits_cnn.load(**options)
        options = {}
        default_pre, default_names, bname = "0-1", [str(i) for i in range(10)], "digits_cnn"
    elif isinstance(spec, str) and spec.lower() in APPLICATIONS:
        model, default_pre = _application(spec.lower(), weights, options)
        options = {}
        default_names, bname = (imagenet_class_names() if weights is not None else None), spec.lower()
        if weights is None and getattr(model.outputs[0], "shape", [0])[-1] == 1000:
            default_names = imagenet_class_names()
    else:
        close = suggest(str(spec), list(ZOO) + sorted(APPLICATIONS), n=8)
        hint = "did you mean " + ", ".join(repr(c) for c in close) + "? " if close else ""
        raise ModelError(f"unknown model {spec!r}; {hint}built in (offline): {', '.join(ZOO)}; keras.applications: "
                         f"{', '.join(sorted(APPLICATIONS))}; or a path to a .keras/.h5 model file")
    if options:
        raise ModelError(f"unexpected options for {bname}: {sorted(options)}")
    pre = preprocess or default_pre
    if pre is None:
        raise ModelError(
            f"cannot infer the input range of model {bname!r}: pass preprocess= one of "
            + ", ".join(PREPROCESSINGS) + " (CLI: --preprocess)")
    if len(model.outputs) != 1:
        raise ModelError(f"model {bname!r} has {len(model.outputs)} outputs; tfviz needs a single classifier output")
    size = tuple(input_size) if input_size else _input_size(model)
    cn = names or default_names
    if cn is not None:
        n_out = model.outputs[0].shape[-1]
        if n_out is not None and len(cn) != n_out:
            raise ModelError(f"{len(cn)} class names given but the model has {n_out} outputs")
    source = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else None
    return ModelBundle(model=model, name=bname, preprocessing=get_preprocessing(pre), input_size=size,
                       class_names=cn, source=source)
