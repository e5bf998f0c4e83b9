"""The only module that writes TensorBoard data for the tfviz plugin.

Layout: ``LOGDIR/RUN/`` holds an event file. Pictures are written as *blob sequences*
under the ``tfviz`` plugin: each summary's tensor is a 1-D string tensor of PNG bytes,
and its plugin metadata carries ``data_class=BLOB_SEQUENCE`` plus a JSON content with the
view (``kind``), captions and any extra fields. Loss curves are ordinary scalars (the
scalars plugin), written at every step so downsampling can keep them. Recipe parameters
are a JSON blob of kind ``params``.

Kinds (one dashboard view each): ``filters``, ``activations``, ``patches``,
``attribution``, ``embeddings``, ``optimization``; plus ``params`` (recipe + parameters of a run) and
``info`` (per-step captions/extras, see below).

TensorBoard keeps a tag's plugin metadata from its *first* event only, so captions and
extra fields that change from step to step (a score during training, "step 40") would be
lost there. When a later write of a tag carries different captions/extras, the Writer
also writes them as a JSON blob under ``info/<kind>/<tag>`` at that step; the plugin
merges it over the tag's metadata for that step.

Conventions the dashboard understands (all optional; helpers below write them):

- any kind: ``captions`` (one per image), ``layer``, ``names`` (one name per image).
- ``patches``: one tag per layer; the blobs are the receptive-field crops, row-major
  ``[channel][rank]`` with ``row=k``; per channel (lists of lists, best first):
  ``scores``, ``indices`` (of the source images in the data set), ``names`` (theirs),
  ``positions`` ``(y, x)`` in the layer's output grid and ``boxes``
  ``(top, left, bottom, right)`` in model-input pixels; ``channels`` lists the channels.
- ``attribution``: ``role`` ``"input"`` (the images) or ``"map"`` (heatmaps, the default),
  ``method``, ``targets``/``target`` and ``scores``/``score`` (one per image or one for all).
- ``embeddings``: ``role`` ``"map"`` (a thumbnail map) or ``"neighbors"`` (strips: the
  blobs are row-major ``[query, n1..nk]`` with ``row=k+1``, ``distances``, ``labels``).
- ``optimization``: snapshots at their steps; the loss curves are the scalars
  ``tfviz/<name>`` of the same run and the recipe is ``params/optimization``.

    with tfviz.summary.Writer("logs", run="classviz-tabby") as w:
        w.params("optimization", {"recipe": "class_visualization", "target": "tabby cat"})
        w.scalar("loss", 1.5, step=0)
        w.image("optimization", "snapshot", img, step=0, caption="step 0")
"""
from __future__ import annotations

import io
import json
import os
import re

import numpy as np
import tensorflow as tf
from PIL import Image
from tensorboard.compat.proto import summary_pb2

from .errors import SummaryError  # noqa: F401  (the classes live in tfviz.errors)
from .images import render_map, to_uint8
from .summary_spec import DEFAULT_SAMPLES, DEFAULT_SCALAR_SAMPLES, KINDS, PLUGIN_NAME, VIEWS  # noqa: F401
from .utils import OptionError

_SAFE = re.compile(r"[^A-Za-z0-9_.\-/ ]+")


def encode_png(img) -> bytes:
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        arr = to_uint8(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def metadata(kind: str, **content):
    """A SummaryMetadata for the tfviz plugin with ``data_class`` BLOB_SEQUENCE."""
    if kind not in KINDS:
        raise SummaryError(f"unknown summary kind {kind!r}; one of {KINDS}")
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = PLUGIN_NAME
    md.plugin_data.content = json.dumps({"kind": kind, "version": 1, **content}, default=_jsonable).encode()
    md.data_class = summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    return md


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def clean_tag(tag: str) -> str:
    """A tag with only safe characters: others become "_" (runs collapsed, none left
    dangling at either end of a path part), e.g. ``logit[130]`` -> ``logit_130``."""
    parts = [re.sub("_+", "_", _SAFE.sub("_", p)).strip("_") for p in str(tag).split("/")]
    return "/".join(p for p in parts if p) or "untitled"


class Writer:
    """Writes tfviz summaries for one run. A context manager; also usable as a plain
    object with :meth:`close`. ``run`` is a sub-folder of ``logdir`` (``None``: logdir
    itself is the run)."""

    def __init__(self, logdir: str, run: str | None = None):
        self.dir = os.path.join(logdir, clean_tag(run).replace("/", "_")) if run else logdir
        os.makedirs(self.dir, exist_ok=True)
        self._writer = tf.summary.create_file_writer(self.dir, flush_millis=10_000)  # live runs show up
        self._first = {}  # tag -> the JSON content its first event carried
        self._inputs_written = set()  # (tag, step) of attribution inputs already written

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def image(self, kind: str, tag: str, images, step: int = 0, caption: str | list | None = None, **extra):
        """One or several uint8 images (``[H,W,C]``, ``[N,H,W,C]`` or a list) as one
        blob-sequence summary at ``step``. ``caption`` is one string or one per image;
        ``extra`` fields land in the JSON metadata (e.g. ``target=``, ``score=``)."""
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        blobs = [encode_png(i) for i in images]
        caps = caption if isinstance(caption, (list, tuple)) else [caption or ""] * len(blobs)
        md = metadata(kind, captions=list(caps), **extra)
        full_tag = f"{kind}/{clean_tag(tag)}"
        with self._writer.as_default():
            tf.summary.write(full_tag, tf.constant(blobs, dtype=tf.string), step=step,
                             metadata=md)
        content = md.plugin_data.content
        first = self._first.setdefault(full_tag, content)
        if content != first:  # TensorBoard keeps only the first metadata: store this step's own
            self._write_info(full_tag, content, step)

    def _write_info(self, full_tag: str, content: bytes, step: int):
        with self._writer.as_default():
            tf.summary.write(f"info/{full_tag}", tf.constant([content], dtype=tf.string), step=step,
                             metadata=metadata("info", of=full_tag))

    # -- helpers that write the dashboard's conventions ------------------------------
    def filters(self, layer: str, grid, step: int = 0, caption: str | None = None, **extra):
        """A filter grid (uint8 image) of ``layer`` -- the Filters view."""
        self.image("filters", layer, grid, step=step, caption=caption or layer, layer=layer, **extra)

    def activations(self, layer: str, grids, names=None, step: int = 0, **extra):
        """Activation grids of ``layer``, one per input image (named by ``names``)."""
        grids = _as_list(grids)
        names = _names(names, len(grids))
        self.image("activations", layer, grids, step=step, caption=names, layer=layer, names=names, **extra)

    def patches(self, layer: str, results, step: int = 0, names=None, **extra):
        """Max-activating patches of ``layer`` -- the Patches view. ``results``: the
        :class:`tfviz.inspect.ChannelPatches` of :func:`tfviz.inspect.max_activating_patches`
        (a list, one per channel, or its ``{layer: [...]}`` dict). Every patch is written
        as its own image (row-major, channel by channel, best first) with its score, source
        image, position and box. ``names``: the data set's image names, indexed by the
        image index of ``locations`` (a sequence or a function); default ``"#<index>"``."""
        if isinstance(results, dict):
            if layer not in results:
                raise SummaryError(f"no patches of layer {layer!r}; layers: {sorted(results)}")
            results = results[layer]
        results = list(results)
        if not results:
            raise SummaryError(f"no channels' patches for layer {layer!r}")
        k = len(results[0].patches)
        for r in results:
            if getattr(r, "layer", layer) != layer:
                raise SummaryError(f"patches of layer {r.layer!r} written as layer {layer!r}")
            if not len(r.patches) == len(r.scores) == len(r.locations) == len(r.boxes) == k:
                raise SummaryError(f"channel {r.channel}: every channel needs the same number of patches, "
                                   f"scores, locations and boxes ({k})")
        fields = {"channels": [], "scores": [], "indices": [], "names": [], "positions": [], "boxes": []}
        blobs, captions = [], []
        for r in results:
            fields["channels"].append(int(r.channel))
            scores = [float(s) if np.isfinite(s) else None for s in np.asarray(r.scores, np.float64)]
            images = [int(i) for i, _, _ in np.asarray(r.locations)]
            fields["scores"].append(scores)
            fields["indices"].append(images)
            fields["names"].append([_image_name(names, i) for i in images])
            fields["positions"].append([[int(y), int(x)] for _, y, x in np.asarray(r.locations)])
            fields["boxes"].append(np.asarray(r.boxes, np.int64).reshape(k, 4).tolist())
            blobs.extend(np.asarray(r.patches))
            captions.extend(f"ch {r.channel} #{j + 1}" for j in range(k))
        self.image("patches", layer, blobs, step=step, caption=captions, layer=layer, row=k, **fields, **extra)

    def attribution(self, method: str, images, maps, step: int = 0, targets=None, scores=None,
                    names=None, cmap: str | None = None, tag: str | None = None, **extra):
        """Attribution maps (``[N,H,W]`` or ``[N,H,W,3]`` floats, or uint8 colour images) of
        ``method`` for ``images`` (uint8 ``[N,H,W,3]``), with each map's target and score.
        Float maps are drawn by the one attribution renderer, :func:`tfviz.images.render_map`
        (also ``tfviz.attribution.render_map``: signed maps blue-white-red, others
        ``inferno``, or ``cmap``), so the CLI and the Keras callback log the same pictures.
        The images are written once per step as ``attribution/inputs``, so the dashboard
        can lay each map over its image with an opacity slider."""
        imgs = _as_list(images)
        maps = _as_maps(maps)
        if len(imgs) != len(maps):
            raise SummaryError(f"{len(imgs)} images but {len(maps)} maps")
        names = _names(names, len(imgs))
        colored = []
        for img, m in zip(imgs, maps):
            m = np.asarray(m)
            if m.dtype != np.uint8:  # a map, not a picture
                if m.ndim == 3 and m.shape[-1] == 1:
                    m = m[..., 0]
                m = m.astype(np.float32)
                h, w = np.asarray(img).shape[:2]
                if m.ndim == 2 and m.shape != (h, w):
                    m = np.asarray(Image.fromarray(m).resize((w, h), Image.BILINEAR))
                m = render_map(m, cmap)
            colored.append(m)
        key = ("attribution/inputs", int(step))
        if key not in self._inputs_written:
            self._inputs_written.add(key)
            self.image("attribution", "inputs", imgs, step=step, caption=names, role="input", names=names)
        fields = dict(role="map", method=method, names=names, **extra)
        if targets is not None:
            fields["targets"] = _per_image(targets, len(imgs))
        if scores is not None:
            fields["scores"] = [None if s is None else float(s) for s in _per_image(scores, len(imgs))]
        self.image("attribution", tag or method, colored, step=step, caption=names, **fields)

    def embedding_map(self, tag: str, image, step: int = 0, caption: str | None = None, **extra):
        """A thumbnail map (one uint8 image) -- the Embeddings view."""
        self.image("embeddings", tag, image, step=step, caption=caption or tag, role="map", **extra)

    def neighbors(self, tag: str, queries, neighbors, distances=None, labels=None, step: int = 0, **extra):
        """Nearest-neighbour strips: ``queries`` ``[N,h,w,3]`` and ``neighbors``
        ``[N,k,h,w,3]`` (uint8), optional ``distances`` ``[N,k]`` and ``labels`` (one per
        thumbnail, ``[N,k+1]``, or one per query)."""
        queries = _as_list(queries)
        rows = [_as_list(n) for n in neighbors]
        if len(rows) != len(queries):
            raise SummaryError(f"{len(queries)} queries but {len(rows)} neighbour rows")
        k = len(rows[0]) if rows else 0
        if any(len(r) != k for r in rows):
            raise SummaryError("every query needs the same number of neighbours")
        blobs = [t for q, r in zip(queries, rows) for t in [q, *r]]
        fields = dict(role="neighbors", row=k + 1, **extra)
        if distances is not None:
            fields["distances"] = np.asarray(distances, np.float64).reshape(len(rows), k).tolist()
        if labels is not None:
            fields["labels"] = [list(map(str, lab)) if isinstance(lab, (list, tuple, np.ndarray)) else str(lab)
                                for lab in labels]
        self.image("embeddings", tag, blobs, step=step, **fields)

    def snapshot(self, image, step: int, tag: str = "snapshot", caption: str | None = None, **extra):
        """An optimization snapshot at ``step`` -- the Optimization view."""
        self.image("optimization", tag, image, step=step, caption=caption or f"step {step}", **extra)

    def scalar(self, tag: str, value: float, step: int):
        """An ordinary TensorBoard scalar (``tfviz/<tag>``) -- the loss curves."""
        with self._writer.as_default():
            tf.summary.scalar(f"tfviz/{clean_tag(tag)}", float(value), step=step)

    def params(self, kind: str, params: dict, step: int = 0):
        """The recipe and its parameters for this run, shown beside its pictures."""
        blob = json.dumps(params, default=_jsonable, sort_keys=True).encode()
        with self._writer.as_default():
            tf.summary.write(f"params/{clean_tag(kind)}", tf.constant([blob], dtype=tf.string), step=step,
                             metadata=metadata("params", view=kind))

    def losses(self, history: dict | list, start: int = 0, name: str = "loss"):
        """A whole loss history at once: ``{name: [v0, v1, ...]}`` or a list for ``name``."""
        hist = history if isinstance(history, dict) else {name: history}
        for key, values in hist.items():
            for i, v in enumerate(values):
                self.scalar(key, v, start + i)

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.flush()
        self._writer.close()


def _as_list(images) -> list:
    if isinstance(images, np.ndarray) and images.ndim in (2, 3):
        return [images]
    return list(images)


def _as_maps(maps) -> list:
    """``[H,W]`` or one colour map ``[H,W,3]`` (uint8) -> one map; ``[N,H,W]`` floats,
    ``[N,H,W,C]`` or a list -> N maps."""
    if isinstance(maps, np.ndarray):
        if maps.ndim == 2 or (maps.ndim == 3 and maps.dtype == np.uint8 and maps.shape[-1] in (3, 4)):
            return [maps]
    return list(maps)


def _names(names, n: int) -> list[str]:
    if names is None:
        return [f"image {i}" for i in range(n)]
    names = [names] if isinstance(names, str) else [str(x) for x in names]
    if len(names) != n:
        raise SummaryError(f"{len(names)} names for {n} images")
    return names


def _image_name(names, i: int) -> str | None:
    """The name of data-set image ``i`` (None: no image, an empty slot)."""
    if i < 0:
        return None
    if names is None:
        return f"#{i}"
    return str(names(i) if callable(names) else names[i])


def _per_image(values, n: int) -> list:
    if isinstance(values, (list, tuple, np.ndarray)):
        values = list(values)
        if len(values) != n:
            raise SummaryError(f"{len(values)} values for {n} images")
        return [v.item() if isinstance(v, np.generic) else v for v in values]
    v = values.item() if isinstance(values, np.generic) else values
    return [v] * n
