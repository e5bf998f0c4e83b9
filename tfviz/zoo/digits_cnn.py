"""digits_cnn: a small CNN trained on scikit-learn's bundled 8x8 digits -- the offline
default for the data-set methods (patches, neighbours, embeddings).

The 8x8 digits (values 0..16) are upsampled to 32x32 RGB uint8 images so that every
method sees an ordinary image model. Training takes well under a minute on 2 cores, is
deterministic for a seed, and the result is cached in tfviz's cache directory.
"""
from __future__ import annotations

import os
import time

import numpy as np

SIZE = 32
VERSION = 1
FEATURE_LAYER = "features"  # the layer before the classifier


def digits_images(size: int = SIZE):
    """scikit-learn's 1,797 digits as uint8 RGB ``[N, size, size, 3]`` and labels ``[N]``."""
    from PIL import Image
    from sklearn.datasets import load_digits
    d = load_digits()
    small = (d.images / 16.0 * 255.0).round().astype(np.uint8)
    big = np.stack([np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR)) for im in small])
    return np.repeat(big[..., None], 3, axis=-1), d.target.astype(np.int64)


def split(n: int, seed: int = 0, held_out: float = 0.2):
    """Deterministic train / held-out index split."""
    rng = np.random.default_rng(seed)
    idx = rng.permutation(n)
    k = int(round(n * held_out))
    return np.sort(idx[k:]), np.sort(idx[:k])


def build():
    import keras
    from keras import layers
    inp = keras.Input((SIZE, SIZE, 3), name="image")
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv4")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(64, activation="relu", name=FEATURE_LAYER)(x)
    out = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inp, out, name="digits_cnn")


def train(seed: int = 0, epochs: int = 30, verbose: int = 0):
    """Train from scratch; returns ``(model, held-out accuracy)``."""
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(seed)
    x, y = digits_images()
    tr, te = split(len(x), seed)
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    xf = x.astype(np.float32) / 255.0
    ds = (tf.data.Dataset.from_tensor_slices((xf[tr], y[tr]))
          .shuffle(len(tr), seed=seed, reshuffle_each_iteration=True).batch(64))
    model.fit(ds, epochs=epochs, verbose=verbose, shuffle=False)  # ds shuffles, seeded
    acc = float(np.mean(model.predict(xf[te], verbose=0).argmax(1) == y[te]))
    return model, acc


def load(seed: int = 0, cache: bool = True, verbose: bool = False):
    """The trained model for ``seed``, from the cache or trained now (and cached)."""
    import keras
    from ..utils import atomic_path, cache_dir
    path = os.path.join(cache_dir(), f"digits_cnn-v{VERSION}-seed{seed}.keras")
    if cache and os.path.exists(path):
        try:
            return keras.models.load_model(path, compile=False)
        except Exception:
            os.remove(path)
    t0 = time.perf_counter()
    model, acc = train(seed)
    if verbose:
        print(f"trained digits_cnn in {time.perf_counter() - t0:.0f}s, held-out accuracy {acc:.3f}")
    if cache:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_path(path) as tmp:
            model.save(tmp)
    return model
