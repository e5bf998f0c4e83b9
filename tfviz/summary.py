"""The only module that writes TensorBoard data for the tfviz plugin.

Layout: ``LOGDIR/RUN/`` holds an event file. Pictures are written as *blob sequences*
under the ``tfviz`` plugin: each summary's tensor is a 1-D string tensor of PNG bytes,
and its plugin metadata carries ``data_class=BLOB_SEQUENCE`` plus a JSON content with the
view (``kind``), captions and any extra fields. Loss curves are ordinary scalars (the
scalars plugin), written at every step so downsampling can keep them. Recipe parameters
are a JSON blob of kind ``params``.

Kinds (one dashboard view each): ``filters``, ``activations``, ``attribution``,
``embeddings``, ``optimization``; plus ``params`` (recipe + parameters of a run).

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

PLUGIN_NAME = "tfviz"
KINDS = ("filters", "activations", "attribution", "embeddings", "optimization", "params")
_SAFE = re.compile(r"[^A-Za-z0-9_.\-/ ]+")


def encode_png(img) -> bytes:
    from PIL import Image
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        from .images import to_uint8
        arr = to_uint8(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def metadata(kind: str, **content):
    """A SummaryMetadata for the tfviz plugin with ``data_class`` BLOB_SEQUENCE."""
    from tensorboard.compat.proto import summary_pb2
    if kind not in KINDS:
        raise ValueError(f"unknown summary kind {kind!r}; one of {KINDS}")
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = PLUGIN_NAME
    md.plugin_data.content = json.dumps({"kind": kind, "version": 1, **content}, default=_jsonable).encode()
    md.data_class = summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    return md


def parse_metadata(content: bytes) -> dict:
    try:
        out = json.loads(content.decode("utf-8")) if content else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return out if isinstance(out, dict) else {}


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def clean_tag(tag: str) -> str:
    return _SAFE.sub("_", str(tag)).strip("/") or "untitled"


class Writer:
    """Writes tfviz summaries for one run. A context manager; also usable as a plain
    object with :meth:`close`. ``run`` is a sub-folder of ``logdir`` (``None``: logdir
    itself is the run)."""

    def __init__(self, logdir: str, run: str | None = None):
        import tensorflow as tf
        self.dir = os.path.join(logdir, clean_tag(run).replace("/", "_")) if run else logdir
        os.makedirs(self.dir, exist_ok=True)
        self._tf = tf
        self._writer = tf.summary.create_file_writer(self.dir)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def image(self, kind: str, tag: str, images, step: int = 0, caption: str | list | None = None, **extra):
        """One or several uint8 images (``[H,W,C]``, ``[N,H,W,C]`` or a list) as one
        blob-sequence summary at ``step``. ``caption`` is one string or one per image;
        ``extra`` fields land in the JSON metadata (e.g. ``target=``, ``score=``)."""
        tf = self._tf
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        blobs = [encode_png(i) for i in images]
        caps = caption if isinstance(caption, (list, tuple)) else [caption or ""] * len(blobs)
        md = metadata(kind, captions=list(caps), **extra)
        with self._writer.as_default():
            tf.summary.write(f"{kind}/{clean_tag(tag)}", tf.constant(blobs, dtype=tf.string), step=step,
                             metadata=md)

    def scalar(self, tag: str, value: float, step: int):
        """An ordinary TensorBoard scalar (``tfviz/<tag>``) -- the loss curves."""
        with self._writer.as_default():
            self._tf.summary.scalar(f"tfviz/{clean_tag(tag)}", float(value), step=step)

    def scalars(self, values: dict, step: int):
        for k, v in values.items():
            self.scalar(k, v, step)

    def params(self, kind: str, params: dict, step: int = 0):
        """The recipe and its parameters for this run, shown beside its pictures."""
        tf = self._tf
        blob = json.dumps(params, default=_jsonable, sort_keys=True).encode()
        with self._writer.as_default():
            tf.summary.write(f"params/{clean_tag(kind)}", tf.constant([blob], dtype=tf.string), step=step,
                             metadata=metadata("params", view=kind))

    def flush(self):
        self._writer.flush()

    def close(self):
        self._writer.flush()
        self._writer.close()
