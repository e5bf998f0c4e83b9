"""Every keras.applications classifier by name: the table in tfviz/models/loading.py against
keras.applications itself (every constructor listed, each family's preprocess_input), and
each family built with random weights (weights=None: no download) and run on one photo.

The default tier builds each family's smallest model at the smallest input Keras allows;
the heaviest graphs and every other constructor at its default size are in the slow tier."""
import inspect
import os

import keras
import numpy as np
import pytest

from tfviz import load_model
from tfviz.errors import ModelError
from tfviz.images import sample_photo
from tfviz.models import APPLICATIONS, PREPROCESSINGS
from tfviz.models.loading import FAMILIES, application_key

# The smallest input keras.applications takes with weights=None (its min_size); 32 elsewhere.
MIN_SIZE = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 71}
# Families whose smallest model still has ~780 layers: 7-8 s each to build and trace on 2 cores.
HEAVY = {"inception_resnet_v2", "nasnet"}


def _families():
    return [pytest.param(f, marks=pytest.mark.slow) if f in HEAVY else f for f in FAMILIES]


def _keras_classifiers() -> dict:
    """Every image classifier constructor in keras.applications and its public submodules (a
    public function taking ``include_top`` and ``classes``), by name -> the name of the
    module defining it (its family: ``ResNet50`` -> ``resnet``)."""
    modules = [keras.applications] + [m for _, m in inspect.getmembers(keras.applications, inspect.ismodule)]
    found = {}
    for module in modules:
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if name[0].isupper() and {"include_top", "classes"} <= set(inspect.signature(fn).parameters):
                found[name] = fn.__module__.rsplit(".", 1)[-1]
    return found


def test_every_keras_classifier_is_known():
    keras_ctors = _keras_classifiers()
    assert {"VGG16", "MobileNetV3Small", "EfficientNetV2L", "ConvNeXtXLarge"} <= set(keras_ctors)
    ours = {app.constructor for app in APPLICATIONS.values()}
    missing = sorted(set(keras_ctors) - ours)
    assert not missing, (f"keras.applications classifiers tfviz does not know: {', '.join(missing)}; add each to "
                         f"FAMILIES in tfviz/models/loading.py with its preprocessing and default size")
    unknown = sorted(ours - set(keras_ctors))
    assert not unknown, f"FAMILIES lists constructors keras.applications lacks: {', '.join(unknown)}"
    for family, (_, sizes) in FAMILIES.items():
        for ctor in sizes:
            assert keras_ctors[ctor] == family, f"{ctor} is defined in {keras_ctors[ctor]}, listed under {family}"


@pytest.mark.parametrize("family", list(FAMILIES))
def test_preprocessing_is_keras_own(family):
    """tfviz's preprocessing of a family does what keras.applications.<family>.preprocess_input
    does to uint8 RGB pixels (the identity for the families that rescale inside the model)."""
    pre, _ = FAMILIES[family]
    pixels = np.stack(np.meshgrid(np.arange(0, 256, 51), [0, 17, 255], [3, 128, 250], indexing="ij"), -1)
    pixels = pixels.reshape(1, -1, 1, 3).astype(np.float32)
    theirs = np.asarray(getattr(keras.applications, family).preprocess_input(pixels.copy()))
    np.testing.assert_allclose(PREPROCESSINGS[pre](pixels), theirs, rtol=1e-5, atol=1e-4)


def test_names():
    """tfviz's name of a constructor is its lower-case name; "_" and "-" do not count, so the
    names tfviz used before (and the docs use) still work."""
    assert set(APPLICATIONS) == {application_key(c) for _, sizes in FAMILIES.values() for c in sizes}
    assert len(APPLICATIONS) == sum(len(sizes) for _, sizes in FAMILIES.values())
    for name, ctor in [("mobilenet_v2", "MobileNetV2"), ("mobilenet_v3_small", "MobileNetV3Small"),
                       ("inception_v3", "InceptionV3"), ("convnext_tiny", "ConvNeXtTiny"),
                       ("efficientnetb0", "EfficientNetB0"), ("efficientnetv2b0", "EfficientNetV2B0"),
                       ("resnet50v2", "ResNet50V2"), ("vgg16", "VGG16"), ("NASNetLarge", "NASNetLarge"),
                       ("efficientnet_v2_s", "EfficientNetV2S"), ("resnet-152", "ResNet152")]:
        assert name in APPLICATIONS and APPLICATIONS[name].constructor == ctor
    assert "resnet" not in APPLICATIONS and 3 not in APPLICATIONS
    with pytest.raises(ModelError, match="did you mean 'efficientnetv2s'"):
        load_model("efficientnet_v2s2")


def _check_bundle(bundle, family, size):
    pre, _ = FAMILIES[family]
    assert bundle.preprocessing.name == pre and bundle.input_size == (size, size)
    assert len(bundle.class_names) == 1000
    # the "raw" families take 0..255 pixels: their model starts by rescaling them, the others do not
    first = [type(layer).__name__ for layer in bundle.model.layers[:3]]
    assert (pre == "raw") == any(n in ("Rescaling", "Normalization") for n in first), first
    p = bundle.predict(sample_photo("chelsea")[None])
    assert p.shape == (1, 1000) and np.all(np.isfinite(p)) and abs(float(p.sum()) - 1) < 1e-3


@pytest.mark.parametrize("family", _families())
def test_family_builds_and_predicts(family):
    """The family's smallest model, at the smallest input Keras allows: the preprocessing of
    the table, the size it was built for, one photo through predict."""
    ctor = next(iter(FAMILIES[family][1]))
    size = MIN_SIZE.get(family, 32)
    bundle = load_model(application_key(ctor), weights=None, input_shape=(size, size, 3))
    assert bundle.model.inputs[0].shape[1:3] == (size, size)
    _check_bundle(bundle, family, size)


def test_open_input_size_gets_the_default():
    """MobileNetV3 is built for any input size (None, None); the bundle takes the table's."""
    bundle = load_model("mobilenet_v3_small", weights=None)
    assert tuple(bundle.model.inputs[0].shape[1:3]) == (None, None)
    assert bundle.input_size == (APPLICATIONS["mobilenet_v3_small"].size,) * 2 == (224, 224)


def test_without_its_rescaling_the_model_asks_for_preprocess():
    with pytest.raises(ModelError, match="preprocess="):
        load_model("mobilenet_v3_small", weights=None, include_preprocessing=False, input_shape=(32, 32, 3))
    bundle = load_model("mobilenet_v3_small", weights=None, include_preprocessing=False, input_shape=(32, 32, 3),
                        preprocess="-1-1")
    assert bundle.preprocessing.name == "-1-1"


def _every_constructor():
    return [pytest.param(family, ctor, size, id=application_key(ctor))
            for family, (_, sizes) in FAMILIES.items() for ctor, size in sizes.items()]


@pytest.mark.slow
@pytest.mark.parametrize("family, ctor, size", _every_constructor())
def test_every_constructor_at_its_default_size(family, ctor, size):
    """Every constructor by its tfviz name, as Keras builds it by default: the table's input
    size is the model's (or fills in an open one), one photo through predict."""
    bundle = load_model(application_key(ctor), weights=None)
    assert tuple(bundle.model.inputs[0].shape[1:3]) in ((size, size), (None, None))
    _check_bundle(bundle, family, size)


@pytest.mark.slow
def test_every_method_runs_on_every_family(tmp_path):
    # bench/coverage.py's table (docs/models.md) on each family's smallest model at 96 px: every
    # method of tfviz runs ("ok") on every family; only attention rollout refuses, in its one
    # line, as none of them has attention. "FAILED" (an error that is not a TfvizError) is a bug.
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    smallest = [application_key(next(iter(ctors))) for _, ctors in FAMILIES.values()]
    r = subprocess.run([sys.executable, os.path.join(root, "bench", "coverage.py"), "--size", "96"] + smallest,
                       capture_output=True, text=True, timeout=3600, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    header = next(line for line in r.stdout.splitlines() if line.startswith("| model |"))
    columns = [c.strip() for c in header.strip("|").split("|")[1:]]
    for name in smallest:
        row = next(line for line in r.stdout.splitlines() if line.startswith(f"| {name} |"))
        cells = dict(zip(columns, (c.strip() for c in row.strip("|").split("|")[1:])))
        assert len(cells) == len(columns) > 15, row
        broken = {m: c for m, c in cells.items() if not c.startswith("ok") and m != "attention_rollout"}
        assert not broken, f"{name}: {broken}"
        assert cells["attention_rollout"].startswith("refused: NoSpatialLayerError"), row
