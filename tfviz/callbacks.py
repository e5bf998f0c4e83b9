"""Keras callbacks that log tfviz pictures while ``model.fit`` trains -- what
tf-explain offered for Keras 2, for Keras 3 -- into the tfviz TensorBoard tab.

    import tfviz.callbacks as cb
    model.fit(x, y, epochs=10, callbacks=[
        cb.FilterGrids("logs"),                                   # first conv layer's kernels
        cb.ActivationMaps("logs", val_images[:2], layers=["conv2"]),
        cb.MaxPatches("logs", val_images[:200], layer="conv2", channels=[0, 1, 2, 3]),
        cb.Attributions("logs", val_images[:4], targets=val_labels[:4]),  # saliency + Grad-CAM
        cb.Embeddings("logs", val_images[:500], labels=val_labels[:500], every=5),
    ])

Then ``tfviz board logs``. Every callback writes into the run ``run`` (default
``"train"``) of ``logdir`` at step = epoch (0-based), on the first epoch, every
``every`` epochs, and on the last epoch. ``images`` are uint8 RGB ``[N,H,W,3]`` as the
model sees them before its preprocessing. The model is wrapped in a
:class:`tfviz.models.ModelBundle` once (pass ``preprocess=`` / ``class_names=`` when
tfviz cannot infer them); the wrapper shares the model's weights, so each picture shows
the weights of that epoch. The pictures come from :mod:`tfviz.inspect` and
:mod:`tfviz.attribution`.
"""
from __future__ import annotations

import os

import keras
import numpy as np

from . import attribution
from .errors import CallbackError  # noqa: F401  (the classes live in tfviz.errors)
from .inspect import activation_grid, embed, filter_grid, max_activating_patches, thumbnail_map
from .inspect.reduce import METHODS as _REDUCERS
from .models import load_model
from .summary import Writer
from .utils import OptionError

__all__ = ["FilterGrids", "ActivationMaps", "MaxPatches", "Attributions", "Embeddings", "TfvizCallback"]


def _uint8_images(images, what="images") -> np.ndarray:
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] not in (1, 3):
        raise CallbackError(f"{what}: pass uint8 RGB images [N,H,W,3] as the model sees them before its "
                         f"preprocessing (got dtype {arr.dtype}, shape {arr.shape})")
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return arr


def _names(names, n):
    if names is None:
        return [f"image {i}" for i in range(n)]
    names = [str(x) for x in names]
    if len(names) != n:
        raise CallbackError(f"{len(names)} names for {n} images")
    return names


# Callbacks that log into the same run share one Writer (one event file): TensorBoard's
# Python loader stops re-reading older event files of a run once a newer one appears.
_WRITERS: dict = {}  # (abs logdir, run) -> [Writer, users]


def _acquire_writer(logdir, run):
    key = (os.path.abspath(logdir), run)
    entry = _WRITERS.get(key)
    if entry is None:
        entry = _WRITERS[key] = [Writer(logdir, run=run), 0]
    entry[1] += 1
    return entry[0]


def _release_writer(writer):
    for key, entry in list(_WRITERS.items()):
        if entry[0] is writer:
            entry[1] -= 1
            if entry[1] <= 0:
                del _WRITERS[key]
                writer.close()
            else:
                writer.flush()
            return
    writer.close()


class TfvizCallback(keras.callbacks.Callback):
    """Base: a :class:`tfviz.summary.Writer` on ``logdir/run`` while training, a bundle
    around the trained model, and :meth:`log` called on the epochs to log."""

    def __init__(self, logdir: str, run: str = "train", every: int = 1, preprocess=None, class_names=None):
        super().__init__()
        if int(every) < 1:
            raise CallbackError(f"every must be >= 1 epochs, got {every}")
        self.logdir, self.run, self.every = logdir, run, int(every)
        self.preprocess, self.class_names = preprocess, class_names
        self.writer = None
        self._bundle = None
        self._last_epoch = None
        self._logged = set()

    # -- plumbing
    @property
    def bundle(self):
        """The trained model as a ModelBundle (made once; shares the model's weights)."""
        if self._bundle is None or self._bundle.model is not self.model:
            self._bundle = load_model(self.model, preprocess=self.preprocess, class_names=self.class_names)
        return self._bundle

    def on_train_begin(self, logs=None):
        if self.writer is not None:  # a fit that ended without on_train_end
            _release_writer(self.writer)
        self.writer = _acquire_writer(self.logdir, self.run)
        self._logged = set()
        self._last_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        self._last_epoch = epoch
        if epoch % self.every == 0:
            self._log(epoch)

    def on_train_end(self, logs=None):
        if self._last_epoch is not None and self._last_epoch not in self._logged:
            self._log(self._last_epoch)
        if self.writer is not None:
            _release_writer(self.writer)
            self.writer = None

    def _log(self, epoch):
        self._logged.add(epoch)
        self.log(epoch)
        self.writer.flush()

    def log(self, epoch: int):  # pragma: no cover - abstract
        raise NotImplementedError


class FilterGrids(TfvizCallback):
    """The kernels of ``layers`` (default: the first convolution) as filter grids."""

    def __init__(self, logdir, layers=None, **kwargs):
        super().__init__(logdir, **kwargs)
        self.layers = [layers] if isinstance(layers, str) else layers

    def log(self, epoch):
        for layer in self.layers or [None]:
            name = layer or self.bundle.conv_layers()[0]
            self.writer.filters(name, filter_grid(self.bundle, layer=name), step=epoch,
                                caption=f"{name}, epoch {epoch}")


class ActivationMaps(TfvizCallback):
    """The activation maps of ``layers`` for fixed ``images`` (one grid per image and layer)."""

    def __init__(self, logdir, images, layers, names=None, **kwargs):
        super().__init__(logdir, **kwargs)
        self.images = _uint8_images(images)
        self.layers = [layers] if isinstance(layers, str) else list(layers)
        if not self.layers:
            raise CallbackError("ActivationMaps needs at least one layer")
        self.names = _names(names, len(self.images))

    def log(self, epoch):
        for layer in self.layers:
            grids = [activation_grid(self.bundle, img, layer) for img in self.images]
            self.writer.activations(layer, grids, names=self.names, step=epoch)


class MaxPatches(TfvizCallback):
    """Per channel of ``layer`` (``channels``: a list, or None for the first 8), the ``k``
    patches of fixed ``images`` that activate it most, with their scores and places --
    :func:`tfviz.inspect.max_activating_patches`, one patch per image by default
    (``per_image=None``: the plain top-``k`` over all positions)."""

    def __init__(self, logdir, images, layer, channels=None, k=4, names=None, per_image=1, **kwargs):
        super().__init__(logdir, **kwargs)
        self.images = _uint8_images(images)
        if not isinstance(layer, str) or not layer:
            raise CallbackError("MaxPatches needs one layer name")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise CallbackError(f"k must be a positive integer, not {k!r}")
        if per_image == 1 and k > len(self.images):
            raise CallbackError(f"k={k} patches, one per image, need at least {k} images; got {len(self.images)}")
        self.layer, self.k, self.per_image = layer, int(k), per_image
        self.channels = None if channels is None else ([channels] if isinstance(channels, int) else list(channels))
        self.names = _names(names, len(self.images))

    def log(self, epoch):
        channels = self.channels
        if channels is None:
            channels = list(range(min(8, int(self.bundle.spatial_layer(self.layer).output.shape[-1]))))
        res = max_activating_patches(self.bundle, self.images, self.layer, channels, k=self.k,
                                     per_image=self.per_image)
        self.writer.patches(self.layer, res, step=epoch, names=self.names)


class Attributions(TfvizCallback):
    """Saliency and Grad-CAM (``methods``) for fixed validation ``images``; each map
    is logged with its target and the target's score (logit). ``targets``: one class
    (index or name) per image, one for all, or None for the class predicted at that
    epoch."""

    METHODS = ("saliency", "grad_cam")

    def __init__(self, logdir, images, targets=None, methods=METHODS, names=None, layer=None, **kwargs):
        super().__init__(logdir, **kwargs)
        self.images = _uint8_images(images)
        self.targets = targets
        self.methods = [methods] if isinstance(methods, str) else list(methods)
        unknown = [m for m in self.methods if m not in self.METHODS]
        if unknown:
            raise CallbackError(f"unknown attribution method(s) {unknown}; one of {list(self.METHODS)}")
        self.names = _names(names, len(self.images))
        self.layer = layer

    def _target_indices(self, logits):
        n = len(self.images)
        if self.targets is None:
            return [int(i) for i in np.argmax(logits, axis=-1)]
        if isinstance(self.targets, (list, tuple, np.ndarray)):
            targets = list(self.targets)
            if len(targets) != n:
                raise CallbackError(f"{len(targets)} targets for {n} images")
        else:
            targets = [self.targets] * n
        return [self.bundle.class_index(t.item() if isinstance(t, np.generic) else t) for t in targets]

    def log(self, epoch):
        b = self.bundle
        logits = np.asarray(b.logits.predict_on_batch(b.preprocess(self.images)))
        idx = self._target_indices(logits)
        scores = [float(logits[i, t]) for i, t in enumerate(idx)]
        names = [b.class_name(t) for t in idx]
        for method in self.methods:
            if method == "grad_cam":
                maps = attribution.grad_cam(b, self.images, idx, layer=self.layer)
            else:
                maps = attribution.saliency(b, self.images, idx)
            self.writer.attribution(method, self.images, np.asarray(maps), step=epoch, targets=names,
                                    scores=scores, names=self.names, target_indices=idx)


class Embeddings(TfvizCallback):
    """A 2-D map (PCA by default, or t-SNE, UMAP) of the features of ``images`` drawn as a
    thumbnail map, every ``every`` epochs (default 5)."""

    def __init__(self, logdir, images, labels=None, method="pca", every=5, tag="embedding", **kwargs):
        super().__init__(logdir, every=every, **kwargs)
        self.images = _uint8_images(images)
        self.labels = None if labels is None else [str(x) for x in np.asarray(labels).ravel()]
        if self.labels is not None and len(self.labels) != len(self.images):
            raise CallbackError(f"{len(self.labels)} labels for {len(self.images)} images")
        if method not in _REDUCERS:
            raise CallbackError(f"method must be one of {', '.join(_REDUCERS)}, got {method!r}")
        self.method, self.tag = method, tag

    def log(self, epoch):
        coords = embed(self.bundle, self.images, method=self.method)
        picture = thumbnail_map(coords, self.images)
        self.writer.embedding_map(self.tag, picture, step=epoch, method=self.method,
                                  caption=f"{self.method.upper()} of {len(self.images)} images, epoch {epoch}")
