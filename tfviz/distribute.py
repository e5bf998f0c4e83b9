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

**Several workers** (``MultiWorkerMirroredStrategy`` over a cluster of two or more
processes, :func:`task`): each worker reads only its share of the set -- image ``i`` goes
to worker ``i mod workers`` (``Dataset.shard`` on the file list, before anything is
decoded), through ``strategy.distribute_datasets_from_function`` -- and TensorFlow keeps
the workers in step when one runs out of images before the others (it hands that worker
empty batches). :func:`scan` with ``gather_workers=False`` keeps each worker's outputs on
that worker (no per-step traffic between workers; the caller merges once at the end with
:func:`all_workers`). :func:`last_scan` says which images this worker decoded.
:func:`strategy_from_name` makes the strategies of the command line's ``--strategy``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from .data import TFPass
from .errors import StrategyError, WorkerLostError  # noqa: F401  (the classes live in tfviz.errors)
from .utils import TfvizError, did_you_mean

STRATEGIES = ("none", "mirrored", "multiworker")


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


@dataclass(frozen=True)
class Task:
    """Which process of a cluster this is: ``kind`` and ``index`` as in ``TF_CONFIG``
    (``"chief"`` / ``"worker"``; ``"local"`` outside a cluster), ``worker`` its number
    among the ``workers`` (0 .. workers - 1, the chief first: the input pipeline id
    TensorFlow gives it). The chief -- task ``chief``, or ``worker`` 0 when the cluster
    has no chief -- is worker 0, the one that writes outputs."""
    kind: str
    index: int
    worker: int
    workers: int

    @property
    def chief(self) -> bool:
        return self.worker == 0

    def __str__(self):
        if self.workers == 1:
            return "one worker"
        chief = ", the chief" if self.chief else ""
        return f"worker {self.worker} of {self.workers} (task {self.kind}:{self.index}{chief})"


def task(strategy) -> Task:
    """This process's :class:`Task` under ``strategy``: a ``MultiWorkerMirroredStrategy``
    over a cluster of several workers, or one worker (any other strategy, or None)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return Task("local", 0, 0, 1)
    spec = resolver.cluster_spec().as_dict()
    chiefs, workers = len(spec.get("chief", [])), len(spec.get("worker", []))
    kind = resolver.task_type
    if chiefs + workers <= 1 or kind is None:
        return Task("local", 0, 0, 1)
    if kind not in ("chief", "worker"):
        raise StrategyError(f"this process is task {kind!r} of the cluster; tfviz runs on tasks 'chief' and 'worker'")
    index = int(resolver.task_id or 0)
    return Task(kind, index, 0 if kind == "chief" else index + chiefs, chiefs + workers)


def is_chief(strategy) -> bool:
    """Whether this process writes the outputs: always outside a cluster; on a cluster,
    only the chief (see :class:`Task`)."""
    return task(strategy).chief


def read_tf_config(environ=None) -> dict:
    """The cluster of the ``TF_CONFIG`` environment variable, checked: a JSON object with
    ``cluster`` (``{"worker": ["host:port", ...]}``, optionally ``"chief": [one]``) and
    ``task`` (``{"type": "worker" or "chief", "index": i}``) naming one of them. Raises
    :class:`StrategyError` (one sentence saying what is wrong) otherwise."""
    raw = (os.environ if environ is None else environ).get("TF_CONFIG")
    example = ('e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
               '"task": {"type": "worker", "index": 0}}\'')
    if not raw or not raw.strip():
        raise StrategyError(f"--strategy multiworker reads the cluster from the TF_CONFIG environment variable, "
                            f"which is not set; set it on every worker, {example}")
    try:
        cfg = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StrategyError(f"TF_CONFIG is not valid JSON ({exc.msg} at character {exc.pos}); {example}") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("cluster"), dict) or not isinstance(cfg.get("task"), dict):
        raise StrategyError(f"TF_CONFIG must be a JSON object with a 'cluster' and a 'task'; {example}")
    cluster, tsk = cfg["cluster"], cfg["task"]
    for kind, hosts in cluster.items():
        if not isinstance(hosts, list) or not all(isinstance(h, str) and ":" in h for h in hosts):
            raise StrategyError(f"TF_CONFIG's cluster {kind!r} must be a list of 'host:port' strings, "
                                f"not {hosts!r:.80}")
    if not cluster.get("worker") and not cluster.get("chief"):
        raise StrategyError(f"TF_CONFIG's cluster has no 'worker' list; {example}")
    if len(cluster.get("chief", [])) > 1:
        raise StrategyError("TF_CONFIG's cluster may have one 'chief' at most")
    kind, index = tsk.get("type"), tsk.get("index", 0)
    if kind not in ("worker", "chief"):
        raise StrategyError(f"TF_CONFIG's task type must be 'worker' or 'chief', not {kind!r}")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(cluster.get(kind, [])):
        raise StrategyError(f"TF_CONFIG's task {kind}:{index!r} is not in its cluster "
                            f"({len(cluster.get(kind, []))} {kind} task(s))")
    return cfg


def strategy_from_name(name):
    """The strategy of the command line's ``--strategy``: ``"none"`` (None), ``"mirrored"``
    (``MirroredStrategy`` over every local device: the GPUs, else the CPU) or
    ``"multiworker"`` (``MultiWorkerMirroredStrategy`` over the cluster of ``TF_CONFIG``,
    checked by :func:`read_tf_config`; it waits until every worker has started). Make it
    before TensorFlow runs anything else in the process."""
    key = "none" if name is None else str(name).lower()
    if key == "none":
        return None
    if key == "mirrored":
        return tf.distribute.MirroredStrategy()
    if key != "multiworker":
        raise StrategyError(did_you_mean("strategy", name, STRATEGIES))
    read_tf_config()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise StrategyError(f"cannot start MultiWorkerMirroredStrategy from TF_CONFIG: {str(exc).splitlines()[0]} "
                            f"(it must be made before TensorFlow runs anything in the process)") from None


def describe(strategy) -> str:
    """One line saying what ``strategy`` runs on, and for several workers which this is."""
    if strategy is None:
        return "no strategy"
    t = task(strategy)
    n = strategy.num_replicas_in_sync
    if t.workers > 1:
        hosts = strategy.cluster_resolver.cluster_spec().as_dict()
        where = ", ".join(h for k in ("chief", "worker") for h in hosts.get(k, []))
        return (f"multiworker: this is {t}; {n} replicas on {t.workers} workers ({where})"
                f"{'' if t.chief else '; the chief writes the outputs'}")
    return f"{type(strategy).__name__}: {n} replica{'s' if n > 1 else ''}"


#: What a collective raises when another worker went away (killed, crashed, its machine gone).
LOST = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
        tf.errors.AbortedError)


def lost_worker(who: Task, exc, again: str) -> WorkerLostError:
    """The one-line :class:`WorkerLostError` of this worker when a collective failed
    because another worker went away; ``again`` says how to go on."""
    why = re.sub(r"\{\{.*?\}\}\s*", "", str(exc)).strip().splitlines()
    why = why[0][:160] if why else type(exc).__name__
    return WorkerLostError(f"{who}: another worker of the cluster stopped answering ({why}); {again}")


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


def pack_uint8_host(arrays: np.ndarray) -> np.ndarray:
    """Host: uint8 ``[B, ...]`` -> int32 ``[B, n]``, as :func:`pack_uint8` does in-graph."""
    arrays = np.ascontiguousarray(arrays, np.uint8)
    flat = arrays.reshape(len(arrays), int(np.prod(arrays.shape[1:])))
    flat = np.pad(flat, [(0, 0), (0, (-flat.shape[1]) % 4)])
    return np.ascontiguousarray(flat).view(np.int32)


def at_least_one(images, indices):
    """In-graph: a replica's batch padded with one black image (index -1) when it is
    empty -- the last global batch may leave a replica nothing, and some kernels
    (oneDNN convolutions) fail on empty batches. Returns ``(images, indices, n_real)``."""
    n = tf.shape(images)[0]
    pad = tf.maximum(1 - n, 0)
    images = tf.concat([images, tf.zeros(tf.concat([[pad], tf.shape(images)[1:]], 0), images.dtype)], 0)
    indices = tf.concat([indices, tf.fill([pad], tf.constant(-1, indices.dtype))], 0)
    return images, indices, n


def run_steps(strategy, dataset, replica_fn, programs=None, key=None, gather=True, local=None):
    """Yield, per global batch of ``dataset``, ``replica_fn(*batch)`` of every replica,
    concatenated along axis 0 by ``strategy.gather`` (numpy, a dict like the one the
    function returns). Outputs must be tensors whose first axis may differ between
    replicas (a replica may get a smaller or an empty part of the last batch).

    ``dataset``: a ``tf.data.Dataset`` of global batches (split over the replicas by
    ``strategy.experimental_distribute_dataset``), or a function ``InputContext ->
    dataset`` of this worker's per-replica batches (``distribute_datasets_from_function``:
    each worker reads only what its function returns). ``gather=False``: yield only this
    worker's replicas' outputs, concatenated -- no traffic between workers. ``local``:
    called with this worker's input indices (numpy, the batch's second part) every step.
    ``programs`` / ``key``: keep the traced step in a bundle's
    :class:`~tfviz.models.Programs`, under ``key`` naming what ``replica_fn`` computes, so
    that repeated scans do not trace again."""
    if isinstance(dataset, tf.data.Dataset):
        dist = strategy.experimental_distribute_dataset(dataset)
    else:
        dist = strategy.distribute_datasets_from_function(dataset)
    slot = ("distribute.step", (), (id(strategy), key) if gather else (id(strategy), key, "local"))
    hit = programs.get(*slot) if programs is not None and key is not None and programs.has(*slot) else None
    if hit is not None and hit[0] is strategy and hit[1] == dist.element_spec:
        step = hit[2]
    else:
        def step(batch):
            out = strategy.run(replica_fn, args=tuple(batch))
            if gather:
                return {name: strategy.gather(v, axis=0) for name, v in out.items()}
            return {name: tf.concat(strategy.experimental_local_results(v), 0) for name, v in out.items()}

        # one trace: batch sizes vary
        step = tf.function(step, input_signature=[dist.element_spec], autograph=False)
        if programs is not None and key is not None:
            programs.put(*slot, value=(strategy, dist.element_spec, step))
    workers = task(strategy).workers
    it = iter(dist)
    while True:
        try:
            batch = next(it, None)
            if batch is None:
                return
            if local is not None:
                local(np.concatenate([t.numpy() for t in strategy.experimental_local_results(batch[1])]))
            out = {name: v.numpy() for name, v in step(batch).items()}
        except LOST as exc:
            if workers == 1:
                raise
            raise lost_worker(task(strategy), exc, "start every worker again: the scan starts over") from None
        yield out


def all_workers(strategy, arrays: dict) -> dict:
    """Every worker's ``arrays`` (a dict of numpy arrays; the first axis may differ
    between workers, the other axes and the dtypes must agree) concatenated along axis 0
    in worker order, on every worker: one ``strategy.gather`` each. Collectives do not
    move uint8 or bool: pack images with :func:`pack_uint8_host`. Every worker must call
    it, with the same keys."""
    n_local = strategy.num_replicas_in_sync // task(strategy).workers

    def value(ctx):   # the first replica of each worker carries the worker's arrays
        first = ctx.replica_id_in_sync_group % n_local == 0
        return {k: tf.constant(v if first else v[:0]) for k, v in arrays.items()}

    per = strategy.experimental_distribute_values_from_function(value)
    try:
        return {k: strategy.gather(v, axis=0).numpy() for k, v in per.items()}
    except LOST as exc:
        raise lost_worker(task(strategy), exc, "start every worker again: the scan starts over") from None


def scan(strategy, data, batch_size: int, size, replica_fn, progress=None, programs=None, key=None,
         gather_workers: bool = True):
    """All of ``data`` at ``size`` through ``replica_fn(images, indices, labels, sizes)``
    under ``strategy`` (see :func:`run_steps`); the function's output must hold
    ``"indices"`` (the set positions of its images). Files the ``tf.data`` pass drops
    (TensorFlow cannot decode them) are read by Pillow afterwards and scanned in extra
    steps. Returns an iterable of the gathered outputs; after the pass its ``has_labels``
    says whether every batch came with labels and its ``info`` (also :func:`last_scan`)
    which images this worker decoded. ``progress``: called with the number of images
    after each step. ``programs`` / ``key``: see :func:`run_steps`.

    Several workers (:func:`task`): each worker reads the images ``i`` with ``i mod
    workers`` equal to its number (and rescues its own dropped files), ``batch_size``
    is split over all replicas of all workers; ``gather_workers=False``: each step
    yields only this worker's outputs."""
    return _Scan(strategy, data, batch_size, size, replica_fn, progress, programs, key, gather_workers)


@dataclass(frozen=True)
class ScanInfo:
    """What one worker did in a scan: its :class:`Task` numbers and the set indices of
    the images it decoded (read through ``tf.data`` or rescued by Pillow), sorted."""
    worker: int
    workers: int
    decoded: np.ndarray


def last_scan(strategy) -> ScanInfo | None:
    """The :class:`ScanInfo` of the last scan run under ``strategy`` in this process (None
    before any): on several workers, each worker's share -- together they cover the set
    once. Kept on the strategy object, not in a module: two strategies, two answers."""
    return getattr(strategy, "_tfviz_last_scan", None)


class _Scan:
    def __init__(self, strategy, data, batch_size, size, replica_fn, progress, programs, key, gather_workers=True):
        self.strategy, self.replica_fn, self.progress = strategy, replica_fn, progress
        self.programs, self.key = programs, key
        self.batch_size = int(batch_size)
        self.data, self.size = data, size
        self.length = data.length
        self.task = task(strategy)
        self.gather = bool(gather_workers)
        self.info = None
        self.tfpass = None if self.task.workers > 1 else TFPass(data, batch_size, size)

    @property
    def has_labels(self) -> bool:
        return self.tfpass.has_labels

    def __iter__(self):
        if self.task.workers > 1:
            yield from self._iter_sharded()
            return
        seen = np.zeros(self.length, bool) if self.length is not None else None
        decoded = []
        for out in run_steps(self.strategy, self.tfpass.dataset, self.replica_fn, self.programs, self.key):
            if seen is not None:
                seen[out["indices"]] = True
            decoded.append(out["indices"])
            yield self._report(out)
        for batch in self.tfpass.leftovers(seen):
            n = len(batch.indices)
            labels = batch.labels if batch.labels is not None else np.full(n, -1, np.int64)
            hw = np.tile(np.asarray(batch.images.shape[1:3], np.int32), (n, 1))
            ds = tf.data.Dataset.from_tensor_slices((batch.images, batch.indices.astype(np.int64),
                                                     labels.astype(np.int64), hw)).batch(self.batch_size)
            for out in run_steps(self.strategy, ds, self.replica_fn, self.programs, self.key):
                decoded.append(out["indices"])
                yield self._report(out)
        self._done(decoded)

    def _iter_sharded(self):
        """Several workers: this worker's share through ``distribute_datasets_from_function``;
        then, for file sets, one more pass (every worker takes part, with or without files)
        over its files that TensorFlow dropped, read by Pillow."""
        per_replica = -(-self.batch_size // self.strategy.num_replicas_in_sync)
        seen = np.zeros(self.length, bool) if self.length is not None else None
        decoded = []

        def mine(ctx):   # called once, on this worker, by distribute_datasets_from_function
            self.tfpass = TFPass(self.data, per_replica, self.size,
                                 shard=(ctx.num_input_pipelines, ctx.input_pipeline_id))
            return self.tfpass.dataset

        def mark(indices):
            decoded.append(indices)
            if seen is not None:
                seen[indices] = True

        for out in run_steps(self.strategy, mine, self.replica_fn, self.programs, self.key, self.gather, mark):
            yield self._report(out)
        if not self.data.uses_pipeline(self.size):
            list(self.tfpass.leftovers(seen))   # raises what the wrapped batches raised
            self._done(decoded)
            return
        workers, me = self.tfpass.shard
        others = np.arange(self.length) % workers != me
        rescued = list(self.tfpass.leftovers(seen | others))
        h, w = self.size
        if rescued:
            images = np.concatenate([b.images for b in rescued])
            indices = np.concatenate([b.indices for b in rescued]).astype(np.int64)
            labels = np.concatenate([b.labels if b.labels is not None else np.full(len(b.indices), -1)
                                     for b in rescued]).astype(np.int64)
        else:
            images, indices, labels = np.zeros((0, h, w, 3), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
        hw = np.tile(np.asarray([h, w], np.int32), (len(indices), 1))

        def rescue(ctx):
            return tf.data.Dataset.from_tensor_slices((images, indices, labels, hw)).batch(per_replica)

        for out in run_steps(self.strategy, rescue, self.replica_fn, self.programs, self.key, self.gather, mark):
            yield self._report(out)
        self._done(decoded)

    def _done(self, decoded):
        idx = np.sort(np.concatenate(decoded)) if decoded else np.zeros(0, np.int64)
        self.info = ScanInfo(self.task.worker, self.task.workers, idx.astype(np.int64))
        self.strategy._tfviz_last_scan = self.info

    def _report(self, out):
        if self.progress is not None and len(out["indices"]):
            self.progress(len(out["indices"]))
        return out


__all__ = ["StrategyError", "check_strategy", "scan", "run_steps", "pack_uint8", "unpack_uint8", "pack_uint8_host",
           "at_least_one", "all_workers", "Task", "task", "is_chief", "read_tf_config", "strategy_from_name",
           "describe", "ScanInfo", "last_scan", "STRATEGIES", "LOST", "lost_worker", "WorkerLostError"]
