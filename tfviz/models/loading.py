"""``load_model``: a model by name, file or object, wrapped in a ModelBundle.

``load_model(spec, **options)`` accepts

* ``"efficientnet_lite0"`` -- the built-in offline ImageNet classifier (default),
* ``"digits_cnn"`` -- a small CNN trained on scikit-learn's digits (shipped with tfviz),
* ``"random_multiscale"`` -- one layer of seeded random filters of eight sizes, a texture
  loss network (Ustyuzhaninov et al. 2017; no weights: they come from the seed),
* a ``keras.applications`` name (``"vgg16"``, ``"resnet50"``, ...) with ``weights=``
  ``"imagenet"`` (default; downloaded by Keras when online), a local path, or ``None``,
* a ``keras.Model`` already in memory, or a path to a ``.keras`` / ``.h5`` file.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import socket
import urllib.error
import zipfile
from collections.abc import Mapping
from typing import NamedTuple

import keras

from ..errors import ModelError, OfflineError
from ..utils import cache_dir, notice, suggest
from ..zoo import digits_cnn, efficientnet_lite0, random_multiscale, shapes_segmenter
from .bundle import ModelBundle
from .preprocessing import PREPROCESSINGS, get_preprocessing
from .views import image_view, output_index, output_names

# Every image classifier in keras.applications, by the submodule whose ``preprocess_input``
# the family shares: that function's convention in tfviz's terms ("caffe", "torch", "-1-1"
# for Keras's "tf" mode), then each constructor with its default input size (square). The
# families whose preprocess_input does nothing (MobileNetV3, EfficientNet, EfficientNetV2,
# ConvNeXt) rescale inside the model and take 0..255 pixels: "raw".
# tests/test_applications.py checks this against keras.applications itself.
FAMILIES = {
    "vgg16": ("caffe", {"VGG16": 224}),
    "vgg19": ("caffe", {"VGG19": 224}),
    "resnet": ("caffe", {"ResNet50": 224, "ResNet101": 224, "ResNet152": 224}),
    "resnet_v2": ("-1-1", {"ResNet50V2": 224, "ResNet101V2": 224, "ResNet152V2": 224}),
    "inception_v3": ("-1-1", {"InceptionV3": 299}),
    "inception_resnet_v2": ("-1-1", {"InceptionResNetV2": 299}),
    "xception": ("-1-1", {"Xception": 299}),
    "mobilenet": ("-1-1", {"MobileNet": 224}),
    "mobilenet_v2": ("-1-1", {"MobileNetV2": 224}),
    "mobilenet_v3": ("raw", {"MobileNetV3Small": 224, "MobileNetV3Large": 224}),
    "densenet": ("torch", {"DenseNet121": 224, "DenseNet169": 224, "DenseNet201": 224}),
    "nasnet": ("-1-1", {"NASNetMobile": 224, "NASNetLarge": 331}),
    "efficientnet": ("raw", {"EfficientNetB0": 224, "EfficientNetB1": 240, "EfficientNetB2": 260,
                             "EfficientNetB3": 300, "EfficientNetB4": 380, "EfficientNetB5": 456,
                             "EfficientNetB6": 528, "EfficientNetB7": 600}),
    "efficientnet_v2": ("raw", {"EfficientNetV2B0": 224, "EfficientNetV2B1": 240, "EfficientNetV2B2": 260,
                                "EfficientNetV2B3": 300, "EfficientNetV2S": 384, "EfficientNetV2M": 480,
                                "EfficientNetV2L": 480}),
    "convnext": ("raw", {"ConvNeXtTiny": 224, "ConvNeXtSmall": 224, "ConvNeXtBase": 224,
                         "ConvNeXtLarge": 224, "ConvNeXtXLarge": 224}),
}


class Application(NamedTuple):
    """One ``keras.applications`` classifier: its constructor's name, tfviz's preprocessing
    name for it and its default input size (square)."""
    constructor: str
    preprocessing: str
    size: int


def application_key(name: str) -> str:
    """tfviz's name of a keras.applications model: lower case, without ``_`` or ``-``. So
    ``"MobileNetV2"``, ``"mobilenet_v2"`` and ``"mobilenetv2"`` name one model."""
    return name.lower().replace("_", "").replace("-", "")


class Applications(Mapping):
    """tfviz's name of each keras.applications classifier (:func:`application_key` of its
    constructor: ``"resnet50v2"``, ``"efficientnetb0"``, ``"convnexttiny"``) -> its
    :class:`Application`. A name is looked up by its key, so ``"mobilenet_v2"``,
    ``"inception_v3"`` and ``"convnext_tiny"`` work too."""

    def __init__(self, families: dict):
        self._rows = {application_key(ctor): Application(ctor, pre, size)
                      for pre, sizes in families.values() for ctor, size in sizes.items()}

    def __getitem__(self, name) -> Application:
        if not isinstance(name, str):
            raise KeyError(name)
        return self._rows[application_key(name)]

    def __iter__(self):
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


APPLICATIONS = Applications(FAMILIES)
ZOO = ("efficientnet_lite0", "digits_cnn", "shapes_segmenter", "random_multiscale")


def imagenet_class_names() -> list[str]:
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "imagenet_classes.txt")
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
    """Build keras.applications' ``name`` with ``weights``; returns the model and its
    preprocessing name (None when ``include_preprocessing=False`` took the model's own
    rescaling out: then the caller must say, ``preprocess=``)."""
    ctor_name, pre, _ = APPLICATIONS[name]
    ctor = getattr(keras.applications, ctor_name)
    kw = dict(options)
    if pre == "raw" and kw.get("include_preprocessing", True) is False:
        pre = None
    local = weights not in (None, "imagenet")
    if local and not os.path.exists(weights):
        raise ModelError(f"weights file {weights!r} does not exist")
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # Keras prints "Downloading data from ..."
            model = ctor(weights=None if local else weights, **kw)
    except Exception as exc:
        if weights == "imagenet" and looks_offline(exc):
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


def looks_offline(exc) -> bool:
    """True when ``exc`` (or what it was raised from) says the network could not be reached:
    a URL or socket error, or Keras's "URL fetch failure" wrapper of one. Not an HTTP error
    (the server answered, e.g. 404), and not any message that merely mentions "http"."""
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
    return OfflineError(
        f"cannot download ImageNet weights for {name!r}: no network. Either go online once (Keras "
        f"caches them in ~/.keras/models), pass weights=PATH (CLI: --weights PATH) with a local "
        f"weights file, or use weights=None for random initialization. The built-in offline "
        f"model is 'efficientnet_lite0'.")


def _load_model_file(path):
    """``keras.models.load_model`` with one clear message for files that are not models."""
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
               input_size=None, name=None, output=None, image_input=None, **options) -> ModelBundle:
    """Load a model and wrap it in a :class:`ModelBundle`.

    spec: ``"efficientnet_lite0"`` (default, offline), ``"digits_cnn"`` (offline,
    shipped), ``"shapes_segmenter"`` (offline, trained on first use),
    ``"random_multiscale"`` (offline, random weights from ``seed=``, default 0), a
    ``keras.applications`` name (see ``APPLICATIONS``), a ``keras.Model`` or a path to a
    ``.keras`` / ``.h5`` file.
    weights: for keras.applications names: ``"imagenet"``, a local path, or ``None``.
    preprocess: one of ``0-1``, ``-1-1``, ``caffe``, ``torch``, ``raw`` (``lite``), or a
    :class:`Preprocessing`; required for user models when it cannot be inferred.
    class_names: a list or a text file with one name per line (for the explained output).
    output: which output the methods explain, for a model with several (a name -- a key of
    a dict of outputs, or an output layer's name -- or an index; default: the first).
    image_input: for a model with several inputs, which is the image (a name or index;
    default: the one 4-D input). The others are held at values the methods take as
    ``inputs={name: value}`` (zeros until given); the methods explain the image.
    """
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
        model = efficientnet_lite0.load(cache_dir())
        default_pre, default_names, bname = efficientnet_lite0.NORMALIZATION, imagenet_class_names(), "efficientnet_lite0"
    elif isinstance(spec, str) and spec.lower() == "digits_cnn":
        model = digits_cnn.load(**options)
        options = {}
        default_pre, default_names, bname = "0-1", [str(i) for i in range(10)], "digits_cnn"
    elif isinstance(spec, str) and spec.lower() == "shapes_segmenter":
        model, options = shapes_segmenter.load(**options), {}
        default_pre, default_names, bname = "0-1", list(shapes_segmenter.CLASS_NAMES), "shapes_segmenter"
    elif isinstance(spec, str) and spec.lower() == "random_multiscale":
        model, options = random_multiscale.load(**options), {}
        default_pre, default_names, bname = "0-1", None, "random_multiscale"
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
    check_explainable(model, bname)
    user_model = model
    if len(model.inputs) > 1:
        model = image_view(model, image_input)
    index = output_index(model, output)
    size = tuple(input_size) if input_size else _input_size(model)
    cn = names or default_names
    if cn is not None:
        n_out = model.outputs[index].shape[-1]
        if n_out is not None and len(cn) != n_out:
            raise ModelError(f"{len(cn)} class names given but the model's output {output_names(model)[index]!r} "
                             f"has {n_out} channels")
    source = os.fspath(spec) if isinstance(spec, (str, os.PathLike)) else None
    return ModelBundle(model=model, name=bname, preprocessing=get_preprocessing(pre), input_size=size,
                       class_names=cn, source=source, output=None if output is None else output_names(model)[index],
                       user_model=user_model)


def check_explainable(model, name) -> None:
    """Refuse, in one line naming what was found, a model tfviz cannot explain: outputs that
    are not numbers per image (a vector, a map or a scalar). (Inputs: the image input must
    be ``[N, H, W, 3]``, see ``_input_size``; several inputs need one image among them.)"""
    for out, oname in zip(model.outputs, output_names(model)):
        dtype = str(getattr(out, "dtype", "float32"))
        if not ("float" in dtype or "int" in dtype):
            raise ModelError(f"model {name!r} output {oname!r} has dtype {dtype}; tfviz explains numeric outputs")
        if len(out.shape) not in (2, 4):
            raise ModelError(f"model {name!r} output {oname!r} has shape {tuple(out.shape)}; tfviz explains a "
                             f"score vector [N, C], a scalar [N, 1] or a map [N, H, W, C]")
