"""Data-set scans under a ``tf.distribute`` strategy.

``strategy=`` of :func:`tfviz.inspect.max_activating_patches`,
:func:`~tfviz.inspect.extract_features`, :func:`~tfviz.inspect.nearest_neighbors` and
:func:`~tfviz.inspect.embed` takes any ``tf.distribute.Strategy``: ``MirroredStrategy``
(several GPUs, or logical CPU devices), ``MultiWorkerMirroredStrategy`` (several machines,
each running the same script), ``OneDeviceStrategy``... Each global batch of the set's
``tf.data`` pass (:class:`tfviz.data.TFPass`) is split over the replicas by
``strategy.experimental_distribute_dataset``, every replica runs the same per-batch
function with ``strategy.run``, and the outputs of all replicas -- of all workers -- are
concatenated by ``strategy.gather``, so every worker gets the whole result. The caller
merges them on the host exactly as without a strategy: candidates carry their image's
index in the set, and ties are broken by (score, image index, position), never by which
replica saw them.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from .data import TFPass
from .errors import StrategyError  # noqa: F401  (the classes live in tfviz.errors)
from .utils import TfvizError


def check_strategy(strategy):
    """``strategy`` itself when it is ``None`` or a ``tf.distribute.Strategy``; else raise
    :class:`StrategyError`."""
    if strategy is None:
        return None
    if not isinstance(strategy, tf.distribute.Strategy):
        raise StrategyError(
            f"strategy must be a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy() or "
            f"tf.distribute.MultiWorkerMirroredStrategy()) or None, not {type(strategy).__name__} {strategy!r:.60}")
    return strategy


def pack_uint8(images):
    """In-graph: uint8 ``[B, ...]`` -> int32 ``[B, n]`` (4 bytes a value, zero-padded):
    collectives do not gather uint8, and casting would move 4x the bytes."""
    n = int(np.prod(images.shape[1:]))
    flat = tf.reshape(images, (-1, n))
    flat = tf.pad(flat, [[0, 0], [0, (-n) % 4]])
    return tf.bitcast(tf.reshape(flat, (-1, (n + 3) // 4, 4)), tf.int32)


def unpack_uint8(packed: np.ndarray, shape) -> np.ndarray:
    """Host: the inverse of :func:`pack_uint8` for item ``shape`` (e.g. ``(h, w, 3)``)."""
    n = int(np.prod(shape))
    flat = np.ascontiguousarray(packed).view(np.uint8).reshape(len(packed), -1)[:, :n]
    return flat.reshape((len(packed),) + tuple(shape))


def at_least_one(images, indices):
    """In-graph: a replica's batch padded with one black image (index -1) when it is
    empty -- the last global batch may leave a replica nothing, and some kernels
    (oneDNN convolutions) fail on empty batches. Returns ``(images, indices, n_real)``."""
    n = tf.shape(images)[0]
    pad = tf.maximum(1 - n, 0)
    images = tf.concat([images, tf.zeros(tf.concat([[pad], tf.shape(images)[1:]], 0), images.dtype)], 0)
    indices = tf.concat([indices, tf.fill([pad], tf.constant(-1, indices.dtype))], 0)
    return images, indices, n


def run_steps(strategy, dataset, replica_fn, programs=None, key=None):
    """Yield, per global batch of ``dataset``, ``replica_fn(*batch)`` of every replica,
    concatenated along axis 0 by ``strategy.gather`` (numpy, a dict like the one the
    function returns). Outputs must be tensors whose first axis may differ between
    replicas (a replica may get a smaller or an empty part of the last batch).
    ``programs`` / ``key``: keep the traced step in a bundle's
    :class:`~tfviz.models.Programs`, under ``key`` naming what ``replica_fn`` computes, so
    that repeated scans do not trace again."""
    dist = strategy.experimental_distribute_dataset(dataset)
    slot = ("distribute.step", (), (id(strategy), key))
    hit = programs.get(*slot) if programs is not None and key is not None and programs.has(*slot) else None
    if hit is not None and hit[0] is strategy and hit[1] == dist.element_spec:
        step = hit[2]
    else:
        def step(batch):
            out = strategy.run(replica_fn, args=tuple(batch))
            return {name: strategy.gather(v, axis=0) for name, v in out.items()}

        # one trace: batch sizes vary
        step = tf.function(step, input_signature=[dist.element_spec], autograph=False)
        if programs is not None and key is not None:
            programs.put(*slot, value=(strategy, dist.element_spec, step))
    for batch in dist:
        yield {name: v.numpy() for name, v in step(batch).items()}


def scan(strategy, data, batch_size: int, size, replica_fn, progress=None, programs=None, key=None):
    """All of ``data`` at ``size`` through ``replica_fn(images, indices, labels, sizes)``
    under ``strategy`` (see :func:`run_steps`); the function's output must hold
    ``"indices"`` (the set positions of its images). Files the ``tf.data`` pass drops
    (TensorFlow cannot decode them) are read by Pillow afterwards and scanned in extra
    steps. Returns an iterable of the gathered outputs; after the pass its ``has_labels``
    says whether every batch came with labels. ``progress``: called with the number of
    images after each step. ``programs`` / ``key``: see :func:`run_steps`."""
    return _Scan(strategy, data, batch_size, size, replica_fn, progress, programs, key)


class _Scan:
    def __init__(self, strategy, data, batch_size, size, replica_fn, progress, programs, key):
        self.strategy, self.replica_fn, self.progress = strategy, replica_fn, progress
        self.programs, self.key = programs, key
        self.batch_size = int(batch_size)
        self.tfpass = TFPass(data, batch_size, size)
        self.length = data.length

    @property
    def has_labels(self) -> bool:
        return self.tfpass.has_labels

    def __iter__(self):
        seen = np.zeros(self.length, bool) if self.length is not None else None
        for out in run_steps(self.strategy, self.tfpass.dataset, self.replica_fn, self.programs, self.key):
            if seen is not None:
                seen[out["indices"]] = True
            yield self._report(out)
        for batch in self.tfpass.leftovers(seen):
            n = len(batch.indices)
            labels = batch.labels if batch.labels is not None else np.full(n, -1, np.int64)
            hw = np.tile(np.asarray(batch.images.shape[1:3], np.int32), (n, 1))
            ds = tf.data.Dataset.from_tensor_slices((batch.images, batch.indices.astype(np.int64),
                                                     labels.astype(np.int64), hw)).batch(self.batch_size)
            for out in run_steps(self.strategy, ds, self.replica_fn, self.programs, self.key):
                yield self._report(out)

    def _report(self, out):
        if self.progress is not None and len(out["indices"]):
            self.progress(len(out["indices"]))
        return out


__all__ = ["StrategyError", "check_strategy", "scan", "run_steps", "pack_uint8", "unpack_uint8", "at_least_one"]
