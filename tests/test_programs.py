"""One cache of traced programs per bundle (``bundle.programs``), one key scheme."""
import pathlib

import numpy as np
import pytest

import tfviz
from tfviz import attribution as A, inspect
from tfviz.models import Programs


def small_bundle():
    import keras
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, name="logits")(x)
    return tfviz.load_model(keras.Model(inp, out), preprocess="0-1", class_names=["a", "b", "c"])


def test_keys_are_normalized_and_built_once():
    p = Programs()
    calls = []

    def build():
        calls.append(1)
        return object()

    a = p.get("x.y", "conv", "guided", build)
    assert p.get("x.y", ("conv",), ("guided",), build) is a       # one name == a 1-tuple
    assert p.get("x.y", ["conv"], ("guided",)) is a               # a list too; no build needed
    assert len(calls) == 1 and len(p) == 1
    assert p.get("x.y", None, (), build) is not a                 # None == () == the logits
    assert p.get("x.y", (), (), build) is p.get("x.y", None, ())
    assert len(calls) == 2
    with pytest.raises(KeyError):
        p.get("x.z")
    assert p.put("x.z", value=3) == 3 and p.has("x.z") and not p.has("x.z", "conv")
    assert sorted(k[0] for k in p) == ["x.y", "x.y", "x.z"]
    p.clear()
    assert len(p) == 0


def test_every_method_uses_the_bundle_programs():
    b = small_bundle()
    imgs = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    A.saliency(b, imgs, 0)
    A.grad_cam(b, imgs, 0)
    A.guided_backprop(b, imgs, 0)
    inspect.activation_maps(b, imgs[0], "conv")
    b.predict(imgs)
    whats = {k[0] for k in b.programs}
    assert {"attribution.gradient", "attribution.head", "attribution.cam", "inspect.forward", "models.logits",
            "models.predict", "models.features", "attribution.relu_count", "default_layers.cam_layer"} <= whats
    guided = [k for k in b.programs if k[0] == "attribution.gradient" and k[2] == ("guided",)]
    assert len(guided) == 1
    n = len(b.programs)
    A.saliency(b, imgs, 1)                # same programs, another target: nothing new built
    A.grad_cam(b, imgs[:1], 2)
    inspect.activation_maps(b, imgs[1], "conv")
    assert len(b.programs) == n


def test_a_second_call_reuses_the_traced_function():
    from tfviz.attribution import core
    b = small_bundle()
    imgs = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    A.saliency(b, imgs, 0)
    f = core.gradient_function(b)
    assert f is core.gradient_function(b, None, None)
    n = f.experimental_get_tracing_count()
    A.saliency(b, imgs, [0, 1, 2])
    assert f.experimental_get_tracing_count() == n


def test_no_module_keeps_its_own_cache_on_the_bundle():
    root = pathlib.Path(tfviz.__file__).parent
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py") if "bundle._cache" in p.read_text()
                 or "self._cache" in p.read_text()]
    assert offenders == []
    assert not hasattr(small_bundle(), "_cache")
