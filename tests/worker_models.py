"""Small models that the worker scripts (run as their own processes: scale_worker.py,
multiworker_worker.py) and the tests comparing against them build alike, defined once."""
import keras
import numpy as np

import tfviz

#: A tiny classifier for stylizer training, as code to exec in a scope that has ``keras`` and
#: ``tfviz`` (the tests also run it in child processes): it defines ``bundle``.
TINY_STYLIZE = """
keras.utils.set_random_seed(0)
inp = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
x = keras.layers.GlobalAveragePooling2D()(x)
bundle = tfviz.load_model(keras.Model(inp, keras.layers.Dense(2)(x)), preprocess="0-1", class_names=["a", "b"])
"""


def tiny_model():
    """A tiny seeded CNN on 20x20 images for the scans: conv c1, pool p1, conv c2, features feat."""
    keras.utils.set_random_seed(7)
    L = keras.layers
    inp = keras.Input((20, 20, 3))
    x = L.Conv2D(6, 3, activation="relu", name="c1")(inp)
    x = L.MaxPooling2D(2, name="p1")(x)
    x = L.Conv2D(5, 3, name="c2")(x)
    f = L.Dense(8, activation="relu", name="feat")(L.GlobalAveragePooling2D(name="gap")(x))
    return tfviz.load_model(keras.Model(inp, L.Dense(3, name="out")(f)), preprocess="0-1")


def same_patches(a, b) -> bool:
    """Two max-activating-patches results (a list, or a dict by layer) are the same: channels,
    locations, patches and boxes exactly, scores to float rounding."""
    a = a if isinstance(a, dict) else {"": a}
    b = b if isinstance(b, dict) else {"": b}
    ok = a.keys() == b.keys()
    for key in a:
        for ra, rb in zip(a[key], b[key]):
            ok = ok and ra.channel == rb.channel and np.array_equal(ra.locations, rb.locations)
            ok = ok and np.array_equal(ra.patches, rb.patches) and np.array_equal(ra.boxes, rb.boxes)
            ok = ok and np.allclose(ra.scores, rb.scores, rtol=1e-5, atol=1e-6)
    return bool(ok)


def same_features(a, b) -> bool:
    """Two FeatureSets are the same: indices and labels exactly, features to float rounding."""
    ok = np.array_equal(a.indices, b.indices) and np.allclose(a.features, b.features, rtol=1e-5, atol=1e-6)
    ok = ok and (a.labels is None) == (b.labels is None)
    return bool(ok and (a.labels is None or np.array_equal(a.labels, b.labels)))
