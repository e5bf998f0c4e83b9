"""Feature space: nearest neighbours, t-SNE / PCA maps of a data set, the "cnnembed"
thumbnail map, and export for the TensorBoard Embedding Projector.

Features come from the layer before the classifier by default (the input of the final
Dense layer; for ``digits_cnn`` its 64-unit ``features`` layer, for
``efficientnet_lite0`` the 1280-unit global pool); spatial layers are flattened. They are
computed in batches, so only the ``[N, D]`` feature matrix grows with the data set.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf
from google.protobuf import text_format
from scipy.optimize import linear_sum_assignment
from sklearn.neighbors import NearestNeighbors
from tensorboard.plugins import projector

from .. import images as _images
from ..data import DataError, image_set
from ..default_layers import feature_layer as default_feature_layer
from ..distribute import at_least_one, check_strategy, scan
from ..summary import Writer
from ..utils import OptionError, atomic_path
from .activations import forward_fn
from .reduce import reduce_features as _reduce

SPACES = ("features", "pixels")
SPRITE_MAX = 8192  # the Projector's largest sprite side


@dataclass
class FeatureSet:
    """``features [N, D]`` float32 of the readable images of a set, their ``indices`` in
    the set and ``labels`` (or None)."""
    features: np.ndarray
    indices: np.ndarray
    labels: np.ndarray | None


def extract_features(bundle, images, layer=None, space: str = "features", batch_size: int = 64,
                     progress=None, strict: bool = False, strategy=None) -> FeatureSet:
    """Features of every image of a set (see :func:`tfviz.data.image_set`), streamed in
    batches (folders through ``tf.data``: parallel decode, prefetch). ``space="pixels"``:
    the raw pixels at the model's input size, scaled to 0..1. ``strategy``: a
    ``tf.distribute.Strategy``; each batch is split over its replicas and the features
    gathered back in the set's order (:mod:`tfviz.distribute`)."""
    if space not in SPACES:
        raise OptionError(f"space must be one of {SPACES}, not {space!r}")
    strategy = check_strategy(strategy)
    data = image_set(images, strict=strict)
    fn = None
    if space == "features":
        layer = layer or default_feature_layer(bundle)
        fn = forward_fn(bundle, [layer])
    if strategy is not None:
        return _features_distributed(strategy, bundle, data, fn, batch_size, progress)
    feats, idx, labels = [], [], []
    for batch in data.batches(batch_size, size=bundle.input_size, pipeline=True):
        if fn is None:
            f = batch.images.reshape(len(batch.images), -1).astype(np.float32) / 255.0
        else:
            f = fn(batch.images)[0].numpy().reshape(len(batch.images), -1)
        feats.append(f.astype(np.float32))
        idx.append(batch.indices)
        labels.append(batch.labels)
        if progress is not None:
            progress(len(batch.images))
    if not feats:
        raise DataError(f"image set {data.name!r} has no readable images")
    lab = None if any(lb is None for lb in labels) else np.concatenate(labels)
    return FeatureSet(np.concatenate(feats), np.concatenate(idx), lab)


def _features_distributed(strategy, bundle, data, fn, batch_size, progress) -> FeatureSet:
    """:func:`extract_features` under ``strategy``: every replica computes the features of
    its part of a batch, ``strategy.gather`` collects them; rows are put back in the
    set's order (as without a strategy) by their indices."""

    def replica(images, indices, labels, sizes):
        if fn is None:
            f = tf.cast(images, tf.float32) / 255.0
        else:
            padded, _, n = at_least_one(images, indices)   # a replica may get an empty part
            f = fn(padded)[0][:n]
        dim = int(np.prod(f.shape[1:]))
        return {"f": tf.reshape(tf.cast(f, tf.float32), (-1, dim)), "indices": indices, "labels": labels}

    key = ("inspect.features", None if fn is None else id(fn))
    run = scan(strategy, data, batch_size, bundle.input_size, replica, progress, bundle.programs, key)
    feats, idx, labels = [], [], []
    for out in run:
        feats.append(out["f"])
        idx.append(out["indices"])
        labels.append(out["labels"])
    idx = np.concatenate(idx) if idx else np.zeros(0, np.int64)
    if len(idx) == 0:
        raise DataError(f"image set {data.name!r} has no readable images")
    order = np.argsort(idx, kind="stable")
    lab = np.concatenate(labels)[order] if run.has_labels else None
    return FeatureSet(np.concatenate(feats)[order], idx[order], lab)


def _is_index_query(queries) -> bool:
    if isinstance(queries, (list, tuple)) and queries and all(
            isinstance(q, (int, np.integer)) and not isinstance(q, bool) for q in queries):
        return True
    return isinstance(queries, np.ndarray) and queries.ndim == 1 and queries.dtype.kind in "iu"


def nearest_neighbors(bundle, queries, dataset, k: int = 5, space: str = "features", layer=None,
                      batch_size: int = 64, progress=None, dataset_features: FeatureSet | None = None,
                      strategy=None):
    """The ``k`` nearest images of ``dataset`` to each query by L2 distance, in feature
    space (the layer before the classifier, or ``layer``) or in raw pixel space.

    queries: images (one, a batch ``[Q, H, W, 3]``, paths) or a 1-D array / list of
    integer indices into ``dataset`` (their features are reused, so an image's nearest
    neighbour is itself at distance exactly 0). dataset: anything
    :func:`tfviz.data.image_set` takes. ``dataset_features``: a :class:`FeatureSet`
    computed before (skips the scan). ``strategy``: a ``tf.distribute.Strategy`` for the
    feature scans (:func:`extract_features`). Returns ``(indices [Q, k], distances [Q, k])``;
    indices are positions in the data set. Search by scikit-learn."""
    if space not in SPACES:
        raise OptionError(f"space must be one of {SPACES}, not {space!r}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise OptionError(f"k must be a positive integer, not {k!r}")
    strategy = check_strategy(strategy)
    data = image_set(dataset)
    if data.length is not None and k > data.length:
        raise DataError(f"k={k} is larger than the data set ({data.length} images)")
    fs = dataset_features or extract_features(bundle, data, layer, space, batch_size, progress, strategy=strategy)
    if k > len(fs.features):
        raise DataError(f"k={k} is larger than the data set ({len(fs.features)} readable images)")
    if _is_index_query(queries):
        q = np.asarray(queries, np.int64)
        pos = {int(i): r for r, i in enumerate(fs.indices)}
        missing = [int(i) for i in q if int(i) not in pos]
        if missing:
            raise DataError(f"query indices {missing[:5]} are not in the data set (0..{len(fs.indices) - 1})")
        qf = fs.features[[pos[int(i)] for i in q]]
    else:
        qimgs = queries if isinstance(queries, np.ndarray) and queries.ndim == 4 else None
        if qimgs is None:
            qimgs = bundle.load_images(queries if isinstance(queries, (list, tuple)) else [queries])
        qf = extract_features(bundle, qimgs, layer, space, batch_size, strategy=strategy).features
    data_f = fs.features.astype(np.float64)
    qf = qf.astype(np.float64)
    # scikit-learn's brute search expands |a - b|^2 (round-off ~1e-7); refine a few spare
    # candidates with exact distances so that an image is its own neighbour at exactly 0.
    kk = min(int(k) + 5, len(data_f))
    cand = NearestNeighbors(n_neighbors=kk, algorithm="brute").fit(data_f).kneighbors(qf, return_distance=False)
    dist = np.linalg.norm(data_f[cand] - qf[:, None, :], axis=-1)
    order = np.argsort(dist, axis=1, kind="stable")[:, :int(k)]
    idx = np.take_along_axis(cand, order, 1)
    return fs.indices[idx], np.take_along_axis(dist, order, 1)


def label_agreement(neighbor_indices, query_labels, labels) -> float:
    """Fraction of neighbours that share their query's label."""
    nb = np.asarray(labels)[np.asarray(neighbor_indices)]
    return float(np.mean(nb == np.asarray(query_labels)[:, None]))


def reduce_features(features, method: str = "tsne", seed: int = 0, perplexity: float = 30.0,
                    n_jobs: int | None = None) -> np.ndarray:
    """``[N, D]`` -> ``[N, 2]`` float32 by ``method``: ``"tsne"`` (openTSNE, FFT-accelerated),
    ``"pca"``, ``"umap"`` (``pip install 'tfviz[umap]'``) or ``"tsne_sklearn"`` (scikit-learn's
    Barnes-Hut t-SNE); see :mod:`tfviz.inspect.reduce`. Deterministic for a seed."""
    return _reduce(features, method, seed, perplexity, n_jobs)


def embed(bundle, images, method: str = "tsne", seed: int = 0, layer=None, batch_size: int = 64,
          perplexity: float = 30.0, progress=None, strategy=None) -> np.ndarray:
    """2-D map ``[N, 2]`` of a data set's features (layer before the classifier, or
    ``layer``) by t-SNE or PCA; rows follow the set's readable images in order.
    ``strategy``: a ``tf.distribute.Strategy`` for the feature scan (:func:`extract_features`)."""
    fs = extract_features(bundle, images, layer, "features", batch_size, progress, strategy=strategy)
    return reduce_features(fs.features, method, seed, perplexity)


def _thumbs(images, idx, px):
    """uint8 thumbnails ``[len(idx), px, px, 3]`` of images (array, paths, or anything
    with ``take(indices, size)`` such as an :class:`tfviz.data.ImageSet`)."""
    if hasattr(images, "take") and not isinstance(images, np.ndarray):
        return images.take(idx, size=(px, px))
    if isinstance(images, np.ndarray):
        return _images.resize(np.stack([_images._to_rgb_uint8(images[i], "image") for i in idx]), (px, px))
    return _images.load_images([images[i] for i in idx], (px, px))


def _thumbs_native(images):
    """The first image at its own size (to choose a thumbnail size)."""
    if hasattr(images, "take") and not isinstance(images, np.ndarray):
        return images.take([0])
    if isinstance(images, np.ndarray):
        return images[:1]
    return _images.load_images([images[0]])


def grid_cells(coords, grid: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Snap 2-D points to a ``grid = (rows, cols)`` with at most one point per cell:
    ``[N, 2]`` (row, col) per point, ``-1`` for points that did not fit (more points than
    cells). Coordinates are scaled to fill the grid. Up to ~17 million (point, cell)
    pairs the assignment is optimal (least total squared displacement; scipy's
    ``linear_sum_assignment``); beyond, points are taken in a seeded random order and
    each takes the free cell nearest to it."""
    c = np.asarray(coords, np.float64)
    if c.ndim != 2 or c.shape[1] != 2 or not np.all(np.isfinite(c)):
        raise DataError(f"coords must be finite [N, 2], got {c.shape}")
    rows, cols = grid
    lo, hi = c.min(0), c.max(0)
    unit = (c - lo) / np.where(hi - lo > 0, hi - lo, 1.0)
    pos = unit * [rows - 1, cols - 1]
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    centers = np.stack([rr.ravel(), cc.ravel()], 1).astype(np.float64)
    out = np.full((len(c), 2), -1, np.int64)
    if len(c) * len(centers) <= 8_000_000:
        cost = (pos[:, 0, None] - centers[None, :, 0]) ** 2 + (pos[:, 1, None] - centers[None, :, 1]) ** 2
        pts, cells = linear_sum_assignment(cost)
        out[pts] = centers[cells]
        return out
    free = np.ones(len(centers), bool)
    for i in np.random.default_rng(seed).permutation(len(c)):
        if not free.any():
            break
        d = np.sum((centers - pos[i]) ** 2, axis=1)
        d[~free] = np.inf
        j = int(np.argmin(d))
        free[j] = False
        out[i] = centers[j]
    return out


def thumbnail_map(coords, images, size: int | None = None, cell: int = 32, seed: int = 0,
                  return_cells: bool = False):
    """The "cnnembed" picture: each image as a ``cell``-pixel thumbnail at its 2-D
    position, snapped to a grid so that no two share a cell (:func:`grid_cells`).

    size: the picture's side in pixels (default: enough cells for every image, at most
    64 x 64 cells); with more images than cells, the ones that do not fit are left out.
    images: an array ``[N, H, W, C]``, an :class:`tfviz.data.ImageSet` (only the placed
    images are loaded) or a list of paths. ``return_cells``: also return the ``[N, 2]``
    cell of each image (-1 where left out)."""
    c = np.asarray(coords)
    n = len(c)
    if n == 0:
        raise DataError("no coordinates")
    if cell < 4:
        raise OptionError("cell must be >= 4 pixels")
    try:
        n_img = len(images)
    except TypeError:
        n_img = None
    if n_img is not None and n_img != n:
        raise DataError(f"{n} coordinates but {n_img} images")
    g = max(2, int(np.ceil(np.sqrt(n * 1.1)))) if size is None else max(1, int(size) // cell)
    if size is None:
        g = min(g, 64)
    cells = grid_cells(c, (g, g), seed)
    placed = np.flatnonzero(cells[:, 0] >= 0)
    pad = 1 if cell >= 8 else 0
    canvas = np.full((g * cell, g * cell, 3), 255, np.uint8)
    for start in range(0, len(placed), 256):
        ids = placed[start:start + 256]
        th = _thumbs(images, ids, cell - 2 * pad)
        for t, i in zip(th, ids):
            r, q = cells[i]
            canvas[r * cell + pad:(r + 1) * cell - pad, q * cell + pad:(q + 1) * cell - pad] = t
    canvas = _images.as_picture(canvas)
    return (canvas, cells) if return_cells else canvas


def neighbor_strips(query_images, neighbor_images, captions=None, gap: int = 4, size: int = 64) -> _images.Picture:
    """One row per query: the query, a gap, then its neighbours (uint8 RGB), each
    resized to ``size`` pixels; ``captions``: one text per row, drawn above it."""
    rows = []
    for r, (q, nbs) in enumerate(zip(query_images, neighbor_images)):
        q = _images.resize(np.asarray(q), (size, size))
        nb = _images.resize(np.asarray(nbs), (size, size))
        row = _images.hstack([q, np.full((size, gap * 3, 3), 255, np.uint8),
                              _images.tile(nb, cols=len(nb), gap=2)], gap=gap)
        if captions is not None:
            row = _images.caption(row, captions[r], size=12)
        rows.append(row)
    return _images.vstack(rows, gap=gap * 2)


# ------------------------------------------------------------------ Projector export
def sprite_layout(n: int, thumb: int) -> tuple[int, int]:
    """``(thumbnail side, columns)`` of a square sprite of ``n`` images: thumbnails of at
    most ``thumb`` pixels, shrunk so that the sheet stays within 8192 pixels a side."""
    cols = int(np.ceil(np.sqrt(n)))
    t = min(int(thumb), SPRITE_MAX // cols)
    if t < 1:
        raise DataError(f"{n} images do not fit a {SPRITE_MAX}-pixel sprite; pass images=None")
    return t, cols


def _sprite(images, n, thumb):
    thumb, cols = sprite_layout(n, thumb)
    rows = int(np.ceil(n / cols))
    sheet = np.full((rows * thumb, cols * thumb, 3), 255, np.uint8)
    for start in range(0, n, 256):
        ids = np.arange(start, min(start + 256, n))
        for i, t in zip(ids, _thumbs(images, ids, thumb)):
            r, q = divmod(int(i), cols)
            sheet[r * thumb:(r + 1) * thumb, q * thumb:(q + 1) * thumb] = t
    return sheet


def _tsv_cell(v) -> str:
    return str(v).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def export_projector(features, images, labels, run_dir: str, *, metadata: dict | None = None,
                     class_names=None, name: str = "embedding", thumb_size: int | None = None) -> dict:
    """Write an Embedding Projector run into ``run_dir``:

    * ``features.tsv`` -- one row per image (the config's ``tensor_path``; no checkpoint),
    * ``metadata.tsv`` -- the labels (names when ``class_names`` is given) and any extra
      ``metadata`` columns ``{name: values}``; a header row only when there are two or
      more columns (the Projector's rule),
    * ``sprite.png`` -- the thumbnails in a square sheet no larger than 8192 pixels a side,
    * ``projector_config.pbtxt`` -- relative paths (TensorBoard refuses paths outside the
      config's folder),
    * an event file, so TensorBoard lists ``run_dir`` as a run.

    ``images`` (array, :class:`tfviz.data.ImageSet` or paths) and ``labels`` may be None.
    Everything is checked before anything is written; each file is written atomically.
    Returns ``{"config", "features", "metadata", "sprite"}`` paths (None where skipped).
    Open with ``tensorboard --logdir PARENT_OF_RUN_DIR``."""
    x = np.asarray(features, np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise DataError(f"features must be a non-empty [N, D] array, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DataError("features contain NaN or infinite values")
    n = len(x)
    columns = {}
    if labels is not None:
        lab = np.asarray(labels).reshape(-1)
        if len(lab) != n:
            raise DataError(f"{n} feature rows but {len(lab)} labels")
        if class_names is not None and lab.dtype.kind in "iu":
            lab = [class_names[int(v)] if 0 <= int(v) < len(class_names) else str(v) for v in lab]
        columns["label"] = [_tsv_cell(v) for v in lab]
    for key, vals in (metadata or {}).items():
        vals = list(vals)
        if len(vals) != n:
            raise DataError(f"metadata column {key!r} has {len(vals)} values for {n} rows")
        columns[_tsv_cell(key)] = [_tsv_cell(v) for v in vals]
    sheet = thumb = None
    if images is not None:
        if len(images) != n:
            raise DataError(f"{n} feature rows but {len(images)} images")
        if thumb_size is None:  # the images' own size, at most 64 pixels
            thumb_size = min(64, max(_thumbs_native(images).shape[1:3]))
        thumb, _ = sprite_layout(n, thumb_size)
        sheet = _sprite(images, n, thumb)

    os.makedirs(run_dir, exist_ok=True)
    paths = {"features": os.path.join(run_dir, "features.tsv"), "metadata": None, "sprite": None,
             "config": os.path.join(run_dir, "projector_config.pbtxt")}
    config = projector.ProjectorConfig()
    emb = config.embeddings.add()
    emb.tensor_name = name
    emb.tensor_path = "features.tsv"
    emb.tensor_shape.extend([n, x.shape[1]])
    with atomic_path(paths["features"]) as tmp:
        np.savetxt(tmp, x, fmt="%.6g", delimiter="\t")
    if columns:
        paths["metadata"] = os.path.join(run_dir, "metadata.tsv")
        emb.metadata_path = "metadata.tsv"
        keys = list(columns)
        lines = (["\t".join(keys)] if len(keys) >= 2 else []) + [
            "\t".join(columns[c][i] for c in keys) for i in range(n)]
        with atomic_path(paths["metadata"]) as tmp:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
    if sheet is not None:
        paths["sprite"] = _images.save_png(os.path.join(run_dir, "sprite.png"), sheet)
        emb.sprite.image_path = "sprite.png"
        emb.sprite.single_image_dim.extend([thumb, thumb])
    with Writer(run_dir) as w:  # an event file: TensorBoard only reads folders that are runs
        w.params("embeddings", {"projector": name, "points": n, "dims": int(x.shape[1])})
    with atomic_path(paths["config"]) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text_format.MessageToString(config))
    return paths


__all__ = ["nearest_neighbors", "embed", "reduce_features", "thumbnail_map", "export_projector", "extract_features",
           "default_feature_layer", "grid_cells", "sprite_layout", "neighbor_strips", "label_agreement", "FeatureSet"]
