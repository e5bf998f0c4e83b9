"""Image sets for the data-set methods (max-activating patches, neighbours, embeddings).

``image_set(source)`` turns any of these into an :class:`ImageSet`:

* a folder -- searched recursively; first-level sub-folder names are the labels
  (``cats/a.jpg`` -> ``cats``); files that cannot be read are skipped with one warning
  listing them, or raise :class:`~tfviz.utils.ImageError` with ``strict=True``,
* ``"digits"`` -- scikit-learn's 1,797 bundled 8x8 digits as 32x32 RGB (offline),
* a ``keras.datasets`` name (``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
  ``"cifar100"``) -- downloaded by Keras when online; offline (and not cached) it raises
  :class:`~tfviz.utils.OfflineError` naming the alternatives,
* an array ``[N, H, W(, C)]`` (with ``labels=``) or a tuple ``(images, labels)``,
* any iterable of batches (arrays ``[B, H, W, C]`` or ``(images, labels)`` pairs), for data
  sets that do not fit in memory.

Sets stream: :meth:`ImageSet.batches` loads one batch at a time, so scanning a million
files needs the memory of one batch. Folder and array sets also allow random access
(:meth:`ImageSet.take`), used to draw neighbours and thumbnails after a scan.

The scans (patches, features, neighbours, maps) read folders through ``tf.data``
(:meth:`ImageSet.batches` with ``pipeline=True``, :class:`TFPass`): files are decoded
and resized in parallel and prefetched, so reading overlaps the network. PNG and JPEG
files are decoded by TensorFlow (pixel-identical to Pillow), other formats by Pillow
inside the pipeline, and any file TensorFlow fails on is retried with Pillow; resizing
is TensorFlow's antialiased bicubic (within a level or two of Pillow's).
"""
from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import tensorflow as tf
from PIL import Image

from . import images as _images
from .errors import (DataError, DataLoadError, UnknownLengthError,  # noqa: F401  (the classes live in tfviz.errors)
                     UnreadableImagesWarning)
from .models import looks_offline
from .utils import ImageError, OfflineError, OptionError, TfvizError, did_you_mean
from .zoo.digits_cnn import digits_images

KERAS_DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")


@dataclass
class Batch:
    images: np.ndarray         # uint8 [B, H, W, 3]
    indices: np.ndarray        # int64 [B], positions in the set
    labels: np.ndarray | None  # int64 [B] or None


class ImageSet:
    """A set of images read in batches. ``len()`` is known for folders and arrays
    (``None`` for plain iterables: use :attr:`length`); ``labels`` (int array or None)
    and ``class_names`` describe the labels; ``names`` gives one display name per image
    (file paths for folders)."""

    def __init__(self, name: str, length: int | None, *, loader: Callable | None = None,
                 iterable: Iterable | None = None, labels=None, class_names=None, names=None):
        self.name = name
        self.length = length
        self._loader = loader            # indices -> uint8 images (random access)
        self._iterable = iterable        # batches for plain iterables
        self.labels = None if labels is None else np.asarray(labels, np.int64)
        self.class_names = list(class_names) if class_names is not None else None
        self.names = names
        self.skipped: list[tuple[str, str]] = []  # (file, why) for unreadable files
        self._warned = 0
        self._consumed = False
        self.pipeline = False            # read through tf.data when a scan asks (file sets)
        self._files = None               # file sets: the paths
        self._tf_ok = None               # file sets: per file 0 Pillow, 1/2 TensorFlow decodes it

    def __len__(self):
        if self.length is None:
            raise UnknownLengthError(f"image set {self.name!r} is a stream of unknown length")
        return self.length

    def __repr__(self):
        n = "?" if self.length is None else self.length
        return f"ImageSet({self.name!r}, {n} images{', labelled' if self.labels is not None else ''})"

    @property
    def random_access(self) -> bool:
        return self._loader is not None

    def label_name(self, label) -> str:
        if label is None:
            return ""
        if self.class_names and 0 <= int(label) < len(self.class_names):
            return self.class_names[int(label)]
        return str(int(label))

    def take(self, indices, size=None) -> np.ndarray:
        """The images at ``indices`` as a uint8 batch (resized to ``size`` if given)."""
        if self._loader is None:
            raise DataError(f"image set {self.name!r} is a one-pass stream; it cannot fetch images by index")
        idx = np.asarray(indices, np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or (self.length is not None and idx.max() >= self.length)):
            raise DataError(f"image index out of range for {self.name!r} ({self.length} images)")
        imgs, ok = self._loader(idx, size)
        if not np.all(ok):
            bad = [self.names[i] if self.names else str(i) for i in idx[~ok]]
            raise ImageError(f"cannot read {', '.join(map(str, bad))}")
        return imgs

    def batches(self, batch_size: int = 64, size=None, *, pipeline: bool = False) -> Iterable[Batch]:
        """Yield :class:`Batch` es of at most ``batch_size`` images, resized to ``size``
        ``(h, w)`` when given. Unreadable files are skipped (recorded in :attr:`skipped`).

        ``pipeline=True`` (what the scans use): a file set with :attr:`pipeline` on is read
        through ``tf.data`` -- decoded and resized in parallel, prefetched -- when ``size``
        is given; batches may then hold a few more images than ``batch_size`` (files
        TensorFlow could not decode, read again with Pillow, join the batch they belong
        to). Other sets ignore it."""
        if batch_size < 1:
            raise OptionError("batch_size must be >= 1")
        if pipeline and self.uses_pipeline(size):
            yield from self._iter_pipeline(batch_size, size)
            return
        if self._iterable is not None:
            yield from self._iter_stream(size)
            return
        for start in range(0, self.length, batch_size):
            idx = np.arange(start, min(start + batch_size, self.length), dtype=np.int64)
            imgs, ok = self._loader(idx, size)   # images of the readable ones only
            idx = idx[ok]
            if len(idx) == 0:
                continue
            yield Batch(imgs, idx, None if self.labels is None else self.labels[idx])
        self._warn_skipped()

    def batches_at(self, indices, batch_size: int = 64, size=None) -> Iterable[Batch]:
        """:meth:`batches` of the images at ``indices`` only (random-access sets), in that
        order; unreadable files are skipped and warned about as there."""
        if self._loader is None:
            raise DataError(f"image set {self.name!r} is a one-pass stream; it cannot fetch images by index")
        indices = np.asarray(indices, np.int64)
        for start in range(0, len(indices), batch_size):
            idx = indices[start:start + batch_size]
            imgs, ok = self._loader(idx, size)
            idx = idx[ok]
            if len(idx):
                yield Batch(imgs, idx, None if self.labels is None else self.labels[idx])
        self._warn_skipped()

    def uses_pipeline(self, size) -> bool:
        """Whether a scan at ``size`` reads this set through the tf.data file pipeline."""
        return bool(self.pipeline and self._files is not None and size is not None)

    def _iter_pipeline(self, batch_size, size):
        tp = TFPass(self, batch_size, size)
        expected = 0
        for images, idx, labels, hw in tp.dataset:
            images, idx, hw = images.numpy(), idx.numpy(), hw.numpy()
            self._check_upscale(idx, hw, size)
            # files TensorFlow dropped between the previous batch and this one: Pillow
            gap = np.setdiff1d(np.arange(expected, idx[-1] + 1), idx)
            expected = int(idx[-1]) + 1
            if len(gap):
                more, ok = self._loader(gap, size)
                if ok.any():
                    idx = np.concatenate([idx, gap[ok]])
                    order = np.argsort(idx, kind="stable")
                    idx, images = idx[order], np.concatenate([images, more])[order]
            yield Batch(images, idx, None if self.labels is None else self.labels[idx])
        for start in range(expected, self.length, batch_size):
            batch = self._rescue(np.arange(start, min(start + batch_size, self.length)), size)
            if batch is not None:
                yield batch
        self._warn_skipped()

    def _rescue(self, idx, size) -> Batch | None:
        """Read files TensorFlow did not decode with Pillow (skips / raises as usual)."""
        imgs, ok = self._loader(np.asarray(idx, np.int64), size)
        idx = np.asarray(idx, np.int64)[ok]
        if len(idx) == 0:
            return None
        return Batch(imgs, idx, None if self.labels is None else self.labels[idx])

    def _check_upscale(self, idx, hw, size):
        """The Pillow path's warning for images enlarged more than 4x (once per batch)."""
        factor = np.max(np.asarray(size, np.float64)[None] / np.maximum(hw, 1), axis=1)
        j = int(np.argmax(factor))
        if factor[j] > _images.MAX_UPSCALE:
            _images.check_size(hw[j], size, self._files[int(idx[j])])

    def _iter_stream(self, size):
        if self._consumed and iter(self._iterable) is self._iterable:
            raise DataError(f"image set {self.name!r} is a one-pass stream (a generator) and was read already")
        self._consumed = True
        start = 0
        for item in self._iterable:
            labels = None
            if isinstance(item, (tuple, list)) and len(item) == 2 and not _looks_like_image(item):
                item, labels = item
                labels = np.asarray(labels, np.int64).reshape(-1)
            arr = np.asarray(item)
            if arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4):
                arr = arr[..., None]  # a batch of grayscale [B, H, W]
            if arr.ndim != 4:
                raise DataError(f"image set {self.name!r}: each batch must be [B, H, W, C], got shape {arr.shape}")
            imgs = _as_uint8_rgb(arr, size)
            idx = np.arange(start, start + len(imgs), dtype=np.int64)
            if labels is not None and len(labels) != len(imgs):
                raise DataError(f"image set {self.name!r}: batch of {len(imgs)} images has {len(labels)} labels")
            start += len(imgs)
            yield Batch(imgs, idx, labels)
        self.length = start

    def _warn_skipped(self):
        new = self.skipped[self._warned:]
        if new:
            self._warned = len(self.skipped)
            warnings.warn(_skipped_message(new), UnreadableImagesWarning, stacklevel=3)


def _looks_like_image(pair) -> bool:
    """A 2-sequence that is really a batch of two images, not (images, labels)."""
    a, b = (np.asarray(x) for x in pair)
    return a.shape == b.shape and a.ndim >= 2


def _skipped_message(skipped) -> str:
    shown = "; ".join(f"{f} ({why})" for f, why in skipped[:20])
    more = f"; and {len(skipped) - 20} more" if len(skipped) > 20 else ""
    return f"skipped {len(skipped)} unreadable file(s): {shown}{more} (use strict=True / --strict to fail instead)"


def _as_uint8_rgb(arr: np.ndarray, size) -> np.ndarray:
    if not (arr.dtype == np.uint8 and arr.shape[-1] == 3):
        arr = np.stack([_images._to_rgb_uint8(a, f"image {k}") for k, a in enumerate(arr)])
    if size is not None and tuple(arr.shape[1:3]) != tuple(size):
        arr = _images.resize(arr, size)
    return arr


# ----------------------------------------------------------------------------- tf.data


class TFPass:
    """One pass over an :class:`ImageSet` as a ``tf.data.Dataset`` of batches
    ``(images uint8 [B, h, w, 3], indices int64 [B], labels int64 [B] (-1: none),
    sizes int32 [B, 2])`` -- the input of ``strategy.experimental_distribute_dataset``.

    File sets with :attr:`ImageSet.pipeline` on: paths are decoded and resized by
    ``Dataset.map`` (``num_parallel_calls=AUTOTUNE``) and prefetched; files TensorFlow
    fails on are dropped from the dataset and read by Pillow afterwards with
    :meth:`leftovers`. Other sets: :meth:`ImageSet.batches` wrapped by
    ``Dataset.from_generator`` (an error in it is raised again by :meth:`leftovers`).

    ``shard=(workers, worker)``: only the images ``i`` with ``i mod workers == worker``
    (one worker of several): a file set shards its file list before anything is decoded,
    a random-access set loads only those images, a one-pass stream is read whole and
    keeps its share."""

    def __init__(self, data: ImageSet, batch_size: int, size, shard=None):
        self.data, self.batch_size = data, int(batch_size)
        self.shard = None if shard is None else (int(shard[0]), int(shard[1]))
        self.size = _images._size_hw(size)
        self.has_labels = data.labels is not None
        self._errors: list[BaseException] = []
        h, w = self.size
        if data.uses_pipeline(self.size):
            n = len(data._files)
            labels = data.labels if data.labels is not None else np.full(n, -1, np.int64)
            ds = tf.data.Dataset.from_tensor_slices(
                (np.asarray(data._files, dtype=object).astype(str), np.arange(n, dtype=np.int64),
                 labels.astype(np.int64), np.asarray(data._tf_ok, np.int32)))
            if self.shard is not None:
                ds = ds.shard(*self.shard)
            ds = ds.map(_decode_fn(self.size), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            ds = ds.ignore_errors().batch(self.batch_size)
        else:
            spec = (tf.TensorSpec((None, h, w, 3), tf.uint8), tf.TensorSpec((None,), tf.int64),
                    tf.TensorSpec((None,), tf.int64), tf.TensorSpec((None, 2), tf.int32))
            ds = tf.data.Dataset.from_generator(self._generate, output_signature=spec)
            if self.shard is not None and not data.random_access:
                ds = ds.unbatch().shard(*self.shard).batch(self.batch_size)
        opts = tf.data.Options()
        opts.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        self.dataset = ds.prefetch(tf.data.AUTOTUNE).with_options(opts)

    def _generate(self):
        self.has_labels = True
        if self.shard is not None and self.data.random_access:
            workers, worker = self.shard
            batches = self.data.batches_at(np.arange(worker, self.data.length, workers), self.batch_size, self.size)
        else:
            batches = self.data.batches(self.batch_size, size=self.size)
        try:
            for b in batches:
                if b.labels is None:
                    self.has_labels = False
                lab = b.labels if b.labels is not None else np.full(len(b.indices), -1, np.int64)
                hw = np.tile(np.asarray(b.images.shape[1:3], np.int32), (len(b.indices), 1))
                yield b.images, b.indices.astype(np.int64), lab.astype(np.int64), hw
        except Exception as exc:  # noqa: BLE001 -- raised again, with its type, by leftovers()
            self._errors.append(exc)

    def leftovers(self, seen=None) -> Iterable[Batch]:
        """After the pass: batches of the files the dataset dropped (``seen``: bool per
        image, those that came through), read by Pillow; then the unreadable-files
        warning. Raises what the wrapped batches raised."""
        if self._errors:
            raise self._errors[0]
        data = self.data
        if data.uses_pipeline(self.size):
            missing = np.flatnonzero(~np.asarray(seen, bool))
            for start in range(0, len(missing), self.batch_size):
                batch = data._rescue(missing[start:start + self.batch_size], self.size)
                if batch is not None:
                    yield batch
            data._warn_skipped()


def _pil_read(path) -> np.ndarray:
    return _images.load_image(path.decode() if isinstance(path, bytes) else str(path))


def _decode_fn(size):
    """``(path, index, label, kind) -> (image uint8 [h, w, 3], index, label, [H, W])``:
    TensorFlow's PNG / JPEG decoders with Pillow's conversions (16-bit grey rescaled,
    other 16-bit images cut to their high byte, alpha over white, JPEG with the accurate
    DCT Pillow uses), or Pillow itself; then TensorFlow's antialiased bicubic resize."""
    h, w = size

    def tf_rgb(path):  # 8-bit JPEG / PNG without alpha: the decoders expand grey / palette to RGB
        raw = tf.io.read_file(path)
        return tf.cond(tf.io.is_jpeg(raw),
                       lambda: tf.io.decode_jpeg(raw, channels=3, dct_method="INTEGER_ACCURATE"),
                       lambda: tf.io.decode_png(raw, channels=3))

    def tf_decode(path):
        raw = tf.io.read_file(path)
        return tf.cond(tf.io.is_jpeg(raw),
                       lambda: tf.cast(tf.io.decode_jpeg(raw, dct_method="INTEGER_ACCURATE"), tf.uint16) * 257,
                       lambda: tf.io.decode_png(raw, dtype=tf.uint16))

    def to_rgb(img16):
        def grey():
            g = tf.clip_by_value(tf.cast(img16, tf.float64) / 65535.0, 0.0, 1.0) * 255.0 + 0.5
            return tf.repeat(tf.cast(g, tf.uint8), 3, axis=-1)

        def high_byte():
            return tf.cast(tf.bitwise.right_shift(img16, 8), tf.uint8)

        def over_white(img):
            alpha = tf.cast(img[..., -1:], tf.float32) / 255.0
            color = tf.cast(img[..., :-1], tf.float32)
            return tf.cast(color * alpha + 255.0 * (1 - alpha) + 0.5, tf.uint8)

        c = tf.shape(img16)[-1]
        return tf.switch_case(c - 1, [grey,
                                      lambda: tf.repeat(over_white(high_byte()), 3, axis=-1),
                                      high_byte,
                                      lambda: over_white(high_byte())])

    def pil_decode(path):
        img = tf.numpy_function(_pil_read, [path], tf.uint8, stateful=False)
        return tf.ensure_shape(img, [None, None, 3])

    def decode(path, index, label, kind):
        img = tf.switch_case(kind, [lambda: pil_decode(path), lambda: tf_rgb(path), lambda: to_rgb(tf_decode(path))])
        img = tf.ensure_shape(img, [None, None, 3])
        hw = tf.shape(img)[:2]

        def resize():
            r = tf.image.resize(img, (h, w), method="bicubic", antialias=True)
            return tf.cast(tf.clip_by_value(tf.round(r), 0.0, 255.0), tf.uint8)

        same = tf.logical_and(tf.equal(hw[0], h), tf.equal(hw[1], w))
        out = tf.cond(same, lambda: img, resize)
        return tf.ensure_shape(out, [h, w, 3]), index, label, hw

    return decode


# ----------------------------------------------------------------------------- sources
def from_arrays(images, labels=None, class_names=None, name: str = "arrays") -> ImageSet:
    """An in-memory set: ``images [N, H, W(, C)]`` (any numeric type; grayscale, float 0..1
    and 16-bit are converted like :func:`tfviz.images.load_image`) and optional labels."""
    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise DataError(f"images must be an array [N, H, W(, C)], got shape {arr.shape}")
    if len(arr) == 0:
        raise DataError("the image array is empty")
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        if len(labels) != len(arr):
            raise DataError(f"{len(arr)} images but {len(labels)} labels")
        if labels.dtype.kind not in "iu":
            names, labels = np.unique(labels.astype(str), return_inverse=True)
            class_names = class_names or [str(n) for n in names]

    def load(idx, size):
        return _as_uint8_rgb(arr[idx], size), np.ones(len(idx), bool)

    return ImageSet(name, len(arr), loader=load, labels=labels, class_names=class_names)


def from_folder(folder: str, *, strict: bool = False, recursive: bool = True, pipeline: bool = True) -> ImageSet:
    """Every image file under ``folder`` (recursively). First-level sub-folder names are
    the class names (files directly in ``folder`` get the class ``"."`` when there are
    sub-folders too; no labels when there are none). Files whose header Pillow cannot
    read are skipped now, files that fail to decode are skipped while streaming; either
    way one warning lists them -- or, with ``strict=True``, :class:`ImageError` is raised
    before anything is computed (header) or at the first failing file (decode).
    ``pipeline=False``: scans read the files with Pillow one batch at a time instead of
    through ``tf.data`` (see the module docstring)."""
    folder = os.fspath(folder)
    files = _images.list_image_files(folder, recursive=recursive)  # raises on missing / empty
    good, skipped, tf_ok = [], [], []
    for f in files:
        try:
            with Image.open(f) as im:
                if im.width < 1 or im.height < 1:
                    raise OSError("empty image")
                ok = _tf_decodable(im)
            good.append(f)
            tf_ok.append(ok)
        except Exception as exc:  # noqa: BLE001 -- any reason a file cannot be opened
            skipped.append((f, _why(exc)))
    if skipped and strict:
        raise ImageError(_skipped_message(skipped).replace(" (use strict=True / --strict to fail instead)", "")
                         .replace("skipped", "cannot read", 1))
    if not good:
        raise ImageError(f"{folder}: none of the {len(files)} image files can be read "
                         f"({'; '.join(f'{f}: {w}' for f, w in skipped[:5])})")
    rel = [os.path.relpath(f, folder) for f in good]
    tops = [r.split(os.sep)[0] if os.sep in r else None for r in rel]
    labels = class_names = None
    if any(t is not None for t in tops):
        tops = [t if t is not None else "." for t in tops]
        class_names = sorted(set(tops))
        lookup = {c: i for i, c in enumerate(class_names)}
        labels = np.array([lookup[t] for t in tops], np.int64)

    s = _file_set(good, os.path.basename(os.path.normpath(folder)) or folder, labels, class_names, strict)
    s.pipeline, s._tf_ok = bool(pipeline), np.asarray(tf_ok, np.int32)
    s.skipped = list(skipped)
    s._warn_skipped()
    return s


def _tf_decodable(im) -> int:
    """Which decoder gives exactly Pillow's pixels for this opened file: 0 Pillow, 1
    TensorFlow straight to RGB (8-bit JPEG / PNG without alpha), 2 TensorFlow with the
    conversions (alpha, 16-bit)."""
    if im.width * im.height > _images.MAX_PIXELS:
        return 0  # Pillow refuses it (decompression bomb) and says why
    if im.format == "JPEG":
        return 1 if im.mode in ("L", "RGB") else 0
    if im.format == "PNG":
        if "transparency" in im.info:
            return 2 if im.mode == "P" else 0  # grey / RGB with a transparent colour: Pillow ignores it
        return 1 if im.mode in ("1", "L", "P", "RGB") else 2 if im.mode in ("LA", "RGBA", "I;16") else 0
    return 0


def _why(exc) -> str:
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not an image file Pillow can read"
    return str(exc).split("\n")[0] or type(exc).__name__


def digits(size: int = 32) -> ImageSet:
    """scikit-learn's bundled digits (1,797 images, labels 0-9) as ``size``-pixel RGB."""
    x, y = digits_images(size)
    s = from_arrays(x, y, class_names=[str(i) for i in range(10)], name="digits")
    return s


def keras_dataset(name: str, split: str = "test", limit: int | None = None) -> ImageSet:
    """A ``keras.datasets`` image set (``mnist``, ``fashion_mnist``, ``cifar10``,
    ``cifar100``), ``split`` ``"test"`` or ``"train"``. Keras downloads it once into
    ``~/.keras/datasets``; without a network (and no cached copy) this raises
    :class:`OfflineError`."""
    key = name.lower()
    if key not in KERAS_DATASETS:
        raise DataError(did_you_mean("keras dataset", name, KERAS_DATASETS))
    if split not in ("train", "test"):
        raise DataError(f"split must be 'train' or 'test', not {split!r}")
    mod = importlib.import_module(f"keras.datasets.{key}")
    try:
        (xtr, ytr), (xte, yte) = mod.load_data()
    except Exception as exc:  # noqa: BLE001 -- Keras raises bare Exceptions for URL errors
        if looks_offline(exc):
            raise OfflineError(
                f"cannot download the keras dataset {key!r}: no network. Go online once (Keras caches it "
                f"in ~/.keras/datasets), or use offline data: 'digits' (scikit-learn's bundled digits) "
                f"or a folder of images.") from None
        raise DataLoadError(f"cannot load keras dataset {key!r}: {exc}") from None
    x, y = (xte, yte) if split == "test" else (xtr, ytr)
    if limit is not None:
        x, y = x[:limit], y[:limit]
    class_names = None
    if key in ("cifar10",):
        class_names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    elif key == "fashion_mnist":
        class_names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                       "Bag", "Ankle boot"]
    elif key == "mnist":
        class_names = [str(i) for i in range(10)]
    return from_arrays(x, np.asarray(y).reshape(-1), class_names=class_names, name=key)


def from_batches(batches: Iterable, name: str = "stream", length: int | None = None) -> ImageSet:
    """A one-pass stream of batches (arrays ``[B, H, W, C]`` or ``(images, labels)``)."""
    return ImageSet(name, length, iterable=batches)


def image_set(source, labels=None, *, strict: bool = False, class_names=None, split: str = "test") -> ImageSet:
    """Any supported source as an :class:`ImageSet` (see the module docstring)."""
    if isinstance(source, ImageSet):
        return source
    if isinstance(source, (str, os.PathLike)):
        s = os.fspath(source)
        if s.lower() == "digits":
            return digits()
        if s.lower() in KERAS_DATASETS and not os.path.isdir(s):
            return keras_dataset(s, split=split)
        if os.path.isdir(s):
            return from_folder(s, strict=strict)
        if os.path.isfile(s):
            return from_arrays(_images.load_image(s)[None], name=os.path.basename(s))
        raise DataError(f"{s}: no such folder; give a folder of images, 'digits', or one of "
                        + ", ".join(KERAS_DATASETS))
    if isinstance(source, tuple) and len(source) == 2 and labels is None and not _looks_like_image(source):
        return from_arrays(source[0], source[1], class_names=class_names)
    if isinstance(source, np.ndarray):
        return from_arrays(source, labels, class_names=class_names)
    if isinstance(source, (list, tuple)) and source and all(isinstance(p, (str, os.PathLike)) for p in source):
        return _file_set([os.fspath(p) for p in source], "files", labels, class_names, strict)
    if isinstance(source, Iterable):
        return from_batches(source)
    raise DataError(f"cannot make an image set from {type(source).__name__}")


def _file_set(files, name, labels, class_names, strict) -> ImageSet:
    """A set over image files; files that fail to decode are skipped (recorded in
    ``skipped``) or, with ``strict``, raise."""
    s = ImageSet(name, len(files), labels=labels, class_names=class_names, names=files)
    s.pipeline, s._files = True, files
    s._tf_ok = np.array([1 if f.lower().endswith((".jpg", ".jpeg")) else 2 if f.lower().endswith(".png") else 0
                         for f in files], np.int32)

    def load(idx, size):
        out, ok = [], np.ones(len(idx), bool)
        for k, i in enumerate(idx):
            try:
                out.append(_images.load_image(files[i], size))
            except ImageError as exc:
                if strict:
                    raise
                ok[k] = False
                s.skipped.append((files[i], str(exc).split(": ", 1)[-1]))
        if not out:
            return np.zeros((0, 1, 1, 3), np.uint8), ok
        shapes = {o.shape for o in out}
        if len(shapes) > 1:
            raise ImageError(f"{name}: images have different sizes {sorted(shapes)[:3]}; pass a size")
        return np.stack(out), ok

    s._loader = load
    return s


__all__ = ["ImageSet", "Batch", "image_set", "from_folder", "from_arrays", "from_batches", "digits",
           "keras_dataset", "UnreadableImagesWarning", "DataError", "DataLoadError", "UnknownLengthError",
           "KERAS_DATASETS", "TFPass"]
