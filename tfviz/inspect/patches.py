"""Maximally activating patches (Zeiler & Fergus 2014; Springenberg 2015).

Run a data set through the model, find for each requested channel the ``k`` spatial
positions with the highest activation over all images, and crop from the input image the
exact receptive field of each position (:mod:`tfviz.inspect.receptive`), padded where it
leaves the image with the colour the first layer's zero padding stands for. A vision
transformer's token layer is scanned on its patch grid (:mod:`tfviz.models.tokens`) and
each crop is the token's own patch (:func:`tfviz.inspect.receptive.patch_field`).

The scan streams: one ``tf.function`` computes, per batch, the activations of all
requested layers in one forward pass and reduces them in-graph to the batch's top
candidates per channel; a running top-``k`` (scores, locations and the crops) is merged on
the host. Memory is that of one batch plus ``channels x k`` patches, whatever the data
set's size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .. import images as _images
from ..data import DataError, image_set
from ..distribute import all_workers, at_least_one, check_strategy, pack_uint8, pack_uint8_host, scan, task, \
    unpack_uint8
from ..utils import ChannelError, OptionError
from .activations import layer_names_arg
from ..models import output_shape
from ..models.tokens import as_grid, is_token_layer
from .receptive import crop_box, patch_field


@dataclass
class ChannelPatches:
    """The top-``k`` units of one channel: ``patches`` uint8 ``[k, h, w, 3]`` (the
    receptive field), ``scores`` ``[k]``, ``locations`` ``[k, 3]`` = (image index, y, x)
    in the layer's output grid, ``boxes`` ``[k, 4]`` = (top, left, bottom, right) in
    model-input pixels (may extend outside the image), best first."""
    layer: str
    channel: int
    patches: np.ndarray
    scores: np.ndarray
    locations: np.ndarray
    boxes: np.ndarray

    def __iter__(self):  # patches, scores, locations = result
        return iter((self.patches, self.scores, self.locations))

    def _repr_png_(self) -> bytes:
        """Jupyter shows the patches in a row, as :func:`patch_grid` draws one channel."""
        return _images.png_bytes(patch_grid([self]))


def check_channels(bundle, layer: str, channels) -> list[int]:
    """Validate ``channels`` (an int, a list, or None for all) for spatial ``layer`` (or a
    vision transformer's token layer)."""
    lay = bundle.layer(layer) if is_token_layer(bundle, layer) else bundle.spatial_layer(layer)
    n = int(output_shape(lay)[-1])
    if channels is None or (isinstance(channels, str) and channels == "all"):
        return list(range(n))
    chans = [channels] if isinstance(channels, (int, np.integer)) else list(channels)
    if not chans:
        raise ChannelError("no channels given")
    for c in chans:
        if not isinstance(c, (int, np.integer)) or isinstance(c, bool) or not 0 <= int(c) < n:
            raise ChannelError(f"channel {c!r} out of range: layer {layer!r} has {n} channels (0..{n - 1})")
    return [int(c) for c in chans]


def _scan_fn(bundle, layers, channels, k, per_image):
    """tf.function: uint8 batch -> per layer (scores [C, kk], image [C, kk], y, x); cached."""
    return bundle.programs.get("inspect.patches", tuple(layers), (tuple(tuple(c) for c in channels), k, per_image),
                               lambda: _build_scan_fn(bundle, layers, channels, k, per_image))


def _build_scan_fn(bundle, layers, channels, k, per_image):
    model = bundle.features(list(layers))
    pre = bundle.preprocessing
    hw = bundle.input_size
    chan_t = [(tf.constant(c, tf.int32), len(c)) for c in channels]

    @tf.function(autograph=False, reduce_retracing=True)
    def fn(images):
        outs = model(pre(images), training=False)
        outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
        result = []
        for a, (ch, nc) in zip(outs, chan_t):
            a = tf.gather(as_grid(a, hw), ch, axis=-1)          # [B, h, w, C] (tokens on their grid)
            shp = tf.shape(a)
            b, h, w = shp[0], shp[1], shp[2]
            a = tf.reshape(tf.transpose(a, (3, 0, 1, 2)), (nc, b, h * w))  # [C, B, hw]
            if per_image is None:
                flat = tf.reshape(a, (nc, b * h * w))
                vals, idx = tf.math.top_k(flat, tf.minimum(k, b * h * w))
                img, pos = idx // (h * w), idx % (h * w)
            else:
                m = tf.minimum(per_image, h * w)
                v1, p1 = tf.math.top_k(a, m)                     # [C, B, m]
                flat_v = tf.reshape(v1, (nc, b * m))
                vals, idx = tf.math.top_k(flat_v, tf.minimum(k, b * m))
                img = idx // m
                pos = tf.gather(tf.reshape(p1, (nc, b * m)), idx, batch_dims=1)
            result.append((vals, img, pos // w, pos % w))
        return result

    return fn


class _TopK:
    """Running top-k of one layer's channels: scores, locations and crops."""

    def __init__(self, layer, channels, k, rf, fill):
        self.layer, self.channels, self.k, self.rf, self.fill = layer, channels, k, rf, fill
        c = len(channels)
        self.scores = np.full((c, k), -np.inf, np.float32)
        self.locs = np.full((c, k, 3), -1, np.int64)
        self.patches = np.zeros((c, k, rf.size[0], rf.size[1], 3), np.uint8)

    def merge(self, images, rows, gidx, vals, ys, xs):
        """Merge candidates ``[C, n]`` (score, image index in the set ``gidx`` -- -1: no
        candidate --, y, x; ``rows``: the image's row in ``images``) into the running
        top-k. Order: score, then image index, then position, so the result does not
        depend on batching or on which replica found a candidate."""
        for c in range(len(self.channels)):
            keep = gidx[c] >= 0
            if not keep.any():
                continue
            n_old = int(np.sum(self.locs[c][:, 0] >= 0))  # filled slots come first
            old = self.locs[c][:n_old]
            s = np.concatenate([self.scores[c][:n_old], vals[c][keep]])
            i = np.concatenate([old[:, 0], gidx[c][keep]])
            y = np.concatenate([old[:, 1], ys[c][keep]])
            x = np.concatenate([old[:, 2], xs[c][keep]])
            order = np.lexsort((x, y, i, -s))[:self.k]
            if not np.any(order >= n_old):
                continue
            new_rows = rows[c][keep]
            patches = np.stack([self.patches[c][o] if o < n_old else
                                crop_box(images[new_rows[o - n_old]], self.rf.box(int(y[o]), int(x[o])), self.fill)
                                for o in order])
            m = len(order)
            self.scores[c][:m], self.patches[c][:m] = s[order], patches
            self.locs[c][:m] = np.stack([i[order], y[order], x[order]], 1)

    def results(self) -> list[ChannelPatches]:
        out = []
        for c, ch in enumerate(self.channels):
            locs = self.locs[c]
            boxes = np.array([self.rf.box(int(y), int(x)) for _, y, x in locs], np.int64).reshape(-1, 4)
            out.append(ChannelPatches(self.layer, ch, self.patches[c].copy(), self.scores[c].copy(), locs.copy(),
                                      boxes))
        return out


def max_activating_patches(bundle, images, layer, channels=None, k: int = 9, batch_size: int = 64,
                           per_image: int | None = 1, progress=None, pad_value=None, strict: bool = False,
                           strategy=None):
    """For each channel of ``layer``, the ``k`` units with the highest activation over the
    data set ``images`` and the exact receptive-field crop of each.

    images: an array ``[N, H, W, C]``, a folder, ``"digits"``, a keras dataset name, an
    :class:`tfviz.data.ImageSet`, or any iterable of batches; images are resized to the
    model's input size and streamed ``batch_size`` at a time.
    layer: a spatial layer name (or a vision transformer's token layer: its tokens on their
    patch grid, each crop the token's own patch), or a list of them (activations of all come from one
    forward pass per batch). channels: an int, a list, or None for every channel (with a
    list of layers: a dict ``{layer: channels}`` or one list for all).
    per_image: at most this many of a channel's top units come from one image (default
    1, so the ``k`` patches show ``k`` different images); ``None``: the plain top-``k``
    over all positions of all images.
    progress: called with the number of images after each batch (progress bars).
    pad_value: uint8 colour where a field leaves the image; default: the colour whose
    model input is 0, i.e. what the first layer's zero padding shows.
    strategy: a ``tf.distribute.Strategy`` (e.g. ``MirroredStrategy`` over several GPUs):
    each batch of ``batch_size`` (global) is split over its replicas, and their top-k
    candidates are merged exactly -- same patches, same order as without one
    (:mod:`tfviz.distribute`). Folders are read through ``tf.data`` either way.

    Returns a list of :class:`ChannelPatches` (one per channel, in the order given), or a
    dict ``{layer: [...]}`` for a list of layers."""
    single = isinstance(layer, str)
    layers = layer_names_arg(layer)
    if not layers:
        raise OptionError("no layers given")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise OptionError(f"k must be a positive integer, not {k!r}")
    if per_image is not None and per_image < 1:
        raise OptionError("per_image must be >= 1 or None")
    strategy = check_strategy(strategy)
    chans = [check_channels(bundle, lay, channels.get(lay) if isinstance(channels, dict) else channels)
             for lay in layers]
    rfs = [patch_field(bundle, lay) for lay in layers]
    data = image_set(images, strict=strict)
    if data.length is not None:
        _check_k(k, data.length, per_image, rfs)
    if pad_value is None:
        fill = bundle.deprocess(np.zeros((1, 1, 1, 3), np.float32))[0, 0, 0]
    else:
        fill = np.asarray(pad_value, np.uint8)
    fn = _scan_fn(bundle, layers, chans, int(k), per_image)
    tops = [_TopK(lay, ch, int(k), rf, fill) for lay, ch, rf in zip(layers, chans, rfs)]
    seen = 0
    if strategy is not None:
        seen = _scan_distributed(strategy, bundle, data, fn, tops, int(k), batch_size, progress)
    for batch in ([] if strategy is not None else data.batches(batch_size, size=bundle.input_size, pipeline=True)):
        outs = fn(batch.images)
        for top, (vals, img, ys, xs) in zip(tops, outs):
            img = img.numpy()
            top.merge(batch.images, img, batch.indices[img], vals.numpy(), ys.numpy(), xs.numpy())
        seen += len(batch.images)
        if progress is not None:
            progress(len(batch.images))
    if seen == 0:
        raise DataError(f"image set {data.name!r} has no readable images")
    _check_k(k, seen, per_image, rfs)
    res = {top.layer: top.results() for top in tops}
    return res[layers[0]] if single else res


def _scan_distributed(strategy, bundle, data, fn, tops, k, batch_size, progress) -> int:
    """The scan under ``strategy``: each replica reduces its part of a batch to its top-k
    candidates (padded to ``k``: score -inf, image -1), tagged with the images' indices
    in the set; ``strategy.gather`` brings every replica's candidates and images to the
    host, where :meth:`_TopK.merge` keeps the best ``k`` exactly as without a strategy."""

    def replica(images, indices, labels, sizes):
        out = {"indices": indices, "images": pack_uint8(images)}
        images, indices, n = at_least_one(images, indices)
        for j, (vals, img, ys, xs) in enumerate(fn(images)):
            pad = [[0, 0], [0, k - tf.shape(vals)[1]]]
            real = img < n                                   # not the stand-in of an empty part
            vals = tf.where(real, vals, tf.constant(-np.inf, vals.dtype))
            gidx = tf.where(real, tf.gather(indices, img), tf.constant(-1, indices.dtype))
            out[f"s{j}"] = tf.pad(vals, pad, constant_values=-np.inf)[None]
            out[f"i{j}"] = tf.pad(gidx, pad, constant_values=-1)[None]
            out[f"y{j}"] = tf.pad(ys, pad)[None]
            out[f"x{j}"] = tf.pad(xs, pad)[None]
        return out

    hw = tuple(bundle.input_size) + (3,)
    seen = 0
    key = ("inspect.patches", id(fn), k)
    workers = task(strategy).workers
    for out in scan(strategy, data, batch_size, bundle.input_size, replica, progress, bundle.programs, key,
                    gather_workers=workers == 1):
        indices = out["indices"]
        if len(indices) == 0:
            continue
        images = unpack_uint8(out["images"], hw)
        order = np.argsort(indices, kind="stable")
        for j, top in enumerate(tops):
            # [replicas, C, k] -> [C, replicas * k]
            cat = [np.concatenate(list(out[f"{a}{j}"]), axis=1) for a in "siyx"]
            vals, gidx, ys, xs = cat
            rows = order[np.searchsorted(indices, np.maximum(gidx, 0), sorter=order)]
            top.merge(images, rows, gidx, vals, ys, xs)
        seen += len(indices)
    if workers > 1:
        seen = _merge_workers(strategy, tops, seen)
    return seen


def _merge_workers(strategy, tops, seen) -> int:
    """Several workers: each kept the running top-k of its own images (no traffic per
    step). The global top-k of a channel is among the workers' top-k's (same order: score,
    image, position), so every worker gathers all scores and locations (``workers x
    channels x k`` small rows), merges them alike, and then only the winning crops cross:
    each worker sends the ones it holds, ``channels x k`` crops in all whatever the
    number of workers. Returns the number of images scanned by all workers."""
    meta = {"n": np.array([seen], np.int64)}
    for j, top in enumerate(tops):
        meta[f"s{j}"], meta[f"l{j}"] = top.scores[None], top.locs[None]
    meta = all_workers(strategy, meta)
    me = task(strategy).worker
    plans, send = [], {}
    for j, top in enumerate(tops):
        scores, locs = meta[f"s{j}"], meta[f"l{j}"]          # [W, C, k], [W, C, k, 3]
        n_workers, _, k = scores.shape
        owner, slot = np.repeat(np.arange(n_workers), k), np.tile(np.arange(k), n_workers)
        plan = []                                             # per channel: (owner, slot) of the winners, best first
        for c in range(len(top.channels)):
            s, loc = scores[:, c].reshape(-1), locs[:, c].reshape(-1, 3)
            real = np.flatnonzero(loc[:, 0] >= 0)
            order = real[np.lexsort((loc[real, 2], loc[real, 1], loc[real, 0], -s[real]))][:k]
            plan.append((order, s[order], loc[order]))
        plans.append(plan)
        held = [top.patches[c][slot[o]] for c, (order, _, _) in enumerate(plan) for o in order if owner[o] == me]
        crop = top.patches.shape[2:]
        send[f"p{j}"] = pack_uint8_host(np.stack(held) if held else np.zeros((0,) + crop, np.uint8))
    got = all_workers(strategy, send)
    for j, (top, plan) in enumerate(zip(tops, plans)):
        k = top.k
        crops = unpack_uint8(got[f"p{j}"], top.patches.shape[2:])
        owner = np.repeat(np.arange(meta[f"s{j}"].shape[0]), k)
        # the crops arrive in worker order, each worker's in (channel, rank) order
        wanted = [(owner[o], c, r) for c, (order, _, _) in enumerate(plan) for r, o in enumerate(order)]
        at = {key: i for i, key in enumerate(sorted(wanted))}
        top.scores[:] = -np.inf
        top.locs[:] = -1
        top.patches[:] = 0
        for c, (order, s, loc) in enumerate(plan):
            m = len(order)
            top.scores[c][:m], top.locs[c][:m] = s, loc
            for r, o in enumerate(order):
                top.patches[c][r] = crops[at[(owner[o], c, r)]]
    return int(meta["n"].sum())


def _check_k(k, n_images, per_image, rfs):
    positions = min(int(np.prod(rf.output_shape)) for rf in rfs)
    avail = n_images * (positions if per_image is None else min(per_image, positions))
    if k > avail:
        if per_image == 1:
            detail = f"only {avail} images, one patch each"
        else:
            detail = f"only {avail} positions in {n_images} images"
        raise DataError(f"k={k} is larger than the data set: {detail}; use k <= {avail}")


def patch_grid(results, min_size: int = 48, gap: int = 2, labels: bool = True) -> _images.Picture:
    """One row per channel, its ``k`` patches left to right (best first), each upsampled
    (nearest) to at least ``min_size`` pixels; ``labels`` writes the channel on the left."""
    results = list(results.values())[0] if isinstance(results, dict) else list(results)
    if not results:
        raise OptionError("no results to draw")
    h, w = results[0].patches.shape[1:3]
    f = max(1, -(-min_size // max(h, w)))
    rows = []
    for r in results:
        row = _images.tile(_images.upsample_nearest(r.patches, f), cols=len(r.patches), gap=gap)
        if labels:
            tag = np.full((row.shape[0], 44, 3), 255, np.uint8)
            tag = _images.caption(tag, f"ch {r.channel}", size=11)[:row.shape[0]]
            row = _images.hstack([tag, row], gap=gap)
        rows.append(row)
    return _images.vstack(rows, gap=gap)


__all__ = ["max_activating_patches", "ChannelPatches", "ChannelError", "patch_grid", "check_channels"]
