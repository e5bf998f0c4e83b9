"""Training feed-forward stylization networks with the perceptual losses of
:mod:`tfviz.synthesis.style` (Johnson et al. 2016; Dumoulin et al. 2017).

:func:`train_stylizer` (Johnson's transformer, one or many styles) and
:func:`train_texture_network` (Ulyanov's generator) share one loop, :func:`_fit`:
tf.data input, any ``tf.distribute`` strategy, checkpoints with resume, callbacks and
TensorBoard logging.

On several workers (``MultiWorkerMirroredStrategy`` over a cluster) every worker decodes
only its part of each global batch, and only the chief writes: checkpoints into
``checkpoint_dir``, TensorBoard logs and previews (the others save their checkpoints --
a collective step every worker takes -- into temporary folders removed at the end). Every
worker resumes from the chief's ``checkpoint_dir``, so it must be on a filesystem all
workers see; a worker that finds another step there than the others is refused.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from ..distribute import LOST, lost_worker
from ..distribute import task as _task
from ..errors import StrategyError
from ..images import list_image_files, load_image, resize, sample_photos
from ..keras_internals import adam_apply
from ..summary import Writer
from ..synthesis import objectives as obj
from ..synthesis.lossnet import loss_network
from ..synthesis.optimize import forward_fn
from ..synthesis.color import color_target
from ..synthesis.recipe import layer_features, layer_grams
from .inference import generate_texture, stylize
from .layers import StylizeError
from .networks import texture_network, transformer_network


def content_files(content=None, strict: bool = False) -> list[str]:
    """The content images: a folder's image files (recursively), a list of files, or
    ``None`` for the photos bundled with tfviz. Unreadable files are listed in one
    warning and skipped, or refused with ``strict=True``; no readable image at all is an
    error."""
    if content is None:
        files = list(sample_photos().values())
    elif isinstance(content, (str, os.PathLike)) and os.path.isdir(content):
        files = list_image_files(os.fspath(content))
    elif isinstance(content, (list, tuple)):
        files = [os.fspath(f) for f in content]
    else:
        raise StylizeError(f"content must be a folder of images, a list of image files or None; got {content!r}")
    bad = []
    for f in files:
        try:
            load_image(f)
        except Exception as exc:  # noqa: BLE001 - every unreadable file is reported, not raised one by one
            bad.append(f"{f} ({exc})")
    if bad and strict:
        raise StylizeError(f"{len(bad)} content image(s) cannot be read: " + "; ".join(bad[:5])
                           + (" ..." if len(bad) > 5 else ""))
    if bad:
        warnings.warn(f"skipping {len(bad)} unreadable content image(s): " + "; ".join(bad[:5]), stacklevel=2)
    good = [f for f in files if not any(b.startswith(f + " (") for b in bad)]
    if not good:
        where = "the folder" if content is not None else "tfviz's bundled photos"
        raise StylizeError(f"no readable content images in {where} {content if content is not None else ''}".strip())
    return good


def content_dataset(files, image_size: int, batch_size: int, seed: int = 0, num_styles: int = 1, start: int = 0,
                    shard=None):
    """``tf.data``: shuffled files, decoded in parallel, randomly scaled (shorter side
    1-1.5x ``image_size``), cropped to ``image_size`` squares and flipped, batched and
    prefetched; floats in 0..1. ``shard``: one worker's part of each global batch of
    ``batch_size`` (:func:`_worker_part`), batched per replica; it decodes no other
    image."""
    size = int(image_size)

    def load(k, path):
        # stateless random ops seeded by (seed, image number): the same images for any
        # strategy, thread count or resumed run
        k32 = tf.cast(k, tf.int32)
        img = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        img = tf.image.convert_image_dtype(img, tf.float32)
        hw = tf.cast(tf.shape(img)[:2], tf.float32)
        scale = tf.random.stateless_uniform([], [seed, k32], 1.0, 1.5) * size / tf.reduce_min(hw)
        new = tf.cast(tf.math.ceil(hw * scale), tf.int32)
        img = tf.image.resize(img, tf.maximum(new, size), antialias=True)
        img = tf.image.stateless_random_crop(img, [size, size, 3], [seed + 1, k32])
        img = tf.image.stateless_random_flip_left_right(img, [seed + 2, k32])
        # the style of each image: image k gets style k mod num_styles (split with the
        # images when a strategy shards a batch)
        return tf.clip_by_value(img, 0.0, 1.0), tf.cast(k % int(num_styles), tf.int32)

    ds = tf.data.Dataset.from_tensor_slices(list(files))
    ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat().enumerate()
    ds = ds.skip(int(start) * int(batch_size))   # a resumed run goes on with the next images, decoding none
    if shard is not None:
        ds = ds.filter(_worker_part(batch_size, shard))
        batch_size = shard[0]
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def _shard_of(ctx, batch_size):
    """``(per-replica batch, replicas per worker, worker)`` of a ``tf.distribute.InputContext``."""
    per_worker = ctx.num_replicas_in_sync // ctx.num_input_pipelines
    return int(batch_size) // ctx.num_replicas_in_sync, per_worker, ctx.input_pipeline_id


def _worker_part(batch_size, shard):
    """A ``Dataset.filter`` predicate on ``(k, ...)`` -- ``k`` the example's number --
    keeping one worker's part of each global batch: the worker's replicas take
    consecutive per-replica slices, so the workers together see each global batch
    exactly as one process would."""
    per_replica, per_worker, worker = shard
    size, part = int(batch_size), int(per_replica) * int(per_worker)

    def keep(k, *rest):
        return tf.equal((k % size) // part, worker)
    return keep


def _positive_ints(**values):
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise StylizeError(f"{name} must be a positive integer, got {v!r}")


def _style_targets(loss_bundle, net, images, size, layers):
    """Per-layer stacked target Gram matrices ``[S, C, C]`` and their normalizers ``[S]``
    of ``images`` resized to ``size`` x ``size``."""
    grams = [layer_grams(loss_bundle, layers, loss_bundle.preprocess(resize(load_image(s), (size, size))[None]),
                         net.transform) for s in images]
    return _stacked(grams, layers)


def _stacked(grams, layers):
    """``{layer: [S, C, C]}`` targets and ``{layer: [S]}`` normalizers (mean square) from
    one ``{layer: [C, C]}`` per style."""
    targets = {l: tf.constant(np.stack([g[l] for g in grams])) for l in layers}
    denoms = {l: tf.constant(np.mean(np.square(np.stack([g[l] for g in grams])), axis=(1, 2)) + 1e-12)
              for l in layers}
    return targets, denoms


def _style_loss(fn_t, feats, layers, weights, targets, denoms, idx):
    """Per image: sum_l w_l ||G_l(y) - G_l(style[idx])||^2 / mean(G_l(style)^2)."""
    style = 0.0
    for l in layers:
        g = obj.gram_matrix(fn_t(feats[l]))
        style = style + weights[l] * tf.reduce_mean(tf.square(g - tf.gather(targets[l], idx)), axis=[1, 2]) \
            / tf.gather(denoms[l], idx)
    return style


def _tv_per_image(y):
    return (tf.reduce_sum(tf.square(y[:, 1:] - y[:, :-1]), [1, 2, 3])
            + tf.reduce_sum(tf.square(y[:, :, 1:] - y[:, :, :-1]), [1, 2, 3])) \
        / tf.cast(tf.shape(y)[1] * tf.shape(y)[2], tf.float32)


@dataclass(frozen=True)
class _Job:
    """What :func:`_fit` trains: ``make_model()`` builds the network (in the strategy's
    scope); ``dataset(start, shard=None)`` gives the input batches from batch ``start`` on
    (``shard``: one worker's part, see :func:`content_dataset`);
    ``losses(model, batch) -> {name: [n] per example}`` with a ``"total"`` entry;
    ``preview(model) -> (images, caption)`` for the logs (None: no preview)."""
    make_model: Callable
    dataset: Callable
    losses: Callable
    preview: Callable | None


@dataclass(frozen=True)
class _Settings:
    """How :func:`_fit` trains: ``steps`` in all (a resumed run goes on up to them),
    the global ``batch_size`` (split over the strategy's replicas), Adam's ``lr``,
    ``seed``, ``strategy`` (None: the default one), checkpoints in ``checkpoint_dir``
    every ``checkpoint_every`` steps resumed from with ``resume``, ``callbacks``
    ``fn(step, losses)``, ``logdir`` for TensorBoard with a preview every
    ``preview_every`` steps; ``what`` fixes a network's shape (named when a checkpoint
    does not fit, and the run's name in the logs)."""
    steps: int
    batch_size: int
    lr: float
    seed: int
    what: str
    strategy: object = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 100
    resume: bool = True
    callbacks: Sequence[Callable] | None = None
    logdir: str | None = None
    preview_every: int = 100


def _fit(job: _Job, st: _Settings):
    """THE training loop of tfviz.stylize (both networks): a model and Adam made in the
    strategy's scope, a checkpoint of (model, optimizer, step) every ``checkpoint_every``
    steps and resume from the last one, one traced step run by the strategy on the
    distributed dataset, callbacks ``fn(step, losses)`` after every step, and with
    ``logdir`` the losses and a preview every ``preview_every`` steps for TensorBoard's
    Optimization view. On several workers only the chief writes (see the module's
    docstring)."""
    keras.utils.set_random_seed(int(st.seed))
    strategy = st.strategy or tf.distribute.get_strategy()
    who = _task(strategy)
    model, opt, step_var = _build(job.make_model, st, strategy)
    scratch = None if who.chief or not st.checkpoint_dir else tempfile.mkdtemp(prefix=f"tfviz-worker{who.worker}-")
    writer = None
    try:
        manager = _checkpoints(st, model, opt, step_var, scratch)
        if who.workers > 1:
            _same_step_everywhere(strategy, step_var, st)
        start = int(step_var.numpy())
        if who.workers > 1:   # each worker decodes only its part of every global batch
            dist = strategy.distribute_datasets_from_function(
                lambda ctx: job.dataset(start, _shard_of(ctx, st.batch_size)))
        else:
            dist = strategy.experimental_distribute_dataset(job.dataset(start))
        batches = iter(dist)
        train_step = _train_step(job.losses, st.batch_size, strategy, model, opt, step_var)
        writer = Writer(st.logdir, run=st.what.replace(" ", "-")) if st.logdir and who.chief else None
        t0 = time.perf_counter()
        while int(step_var.numpy()) < st.steps:
            try:
                losses = {k: float(v) for k, v in train_step(next(batches)).items()}
            except LOST as exc:
                if who.workers == 1:
                    raise
                raise _lost(who, st, exc) from None
            s = int(step_var.numpy())
            for cb in st.callbacks or ():
                cb(s - 1, losses)
            if writer is not None:
                _log(writer, s, losses, job.preview, model, st)
            if manager is not None and (s % int(st.checkpoint_every) == 0 or s == st.steps):
                manager.save(checkpoint_number=s)   # every worker saves: a collective step
    finally:
        if writer is not None:
            writer.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    model.training_info = {"seconds": time.perf_counter() - t0, "start_step": start, "steps": st.steps,
                           "replicas": strategy.num_replicas_in_sync, "worker": who.worker, "workers": who.workers,
                           "chief": who.chief}
    return model


def _lost(who, st, exc):
    """The :class:`~tfviz.errors.WorkerLostError` of a step that failed because another
    worker went away: where the run resumes."""
    last = tf.train.latest_checkpoint(st.checkpoint_dir) if st.checkpoint_dir else None
    return lost_worker(who, exc, f"start every worker again with the same command: the run resumes from {last}" if last
                       else "start every worker again (no checkpoint yet: from the beginning)")


def _same_step_everywhere(strategy, step_var, st: _Settings):
    """Several workers: every worker must have resumed at the same step (the chief's
    checkpoint folder on a shared filesystem); otherwise they would run different
    steps and wait on each other for ever."""
    def mine():
        return tf.reshape(tf.identity(step_var), [1])

    steps = strategy.gather(strategy.run(tf.function(mine, autograph=False)), axis=0).numpy()
    if len(set(steps.tolist())) > 1:
        raise StrategyError(f"the workers resumed at different steps {sorted(set(steps.tolist()))}: every worker "
                            f"must restore from the chief's checkpoint folder, so {st.checkpoint_dir} must be the "
                            f"same folder for all of them, on a filesystem they all see")


def _build(make_model, st: _Settings, strategy):
    """The model, its Adam and the step counter, made in the strategy's scope."""
    replicas = strategy.num_replicas_in_sync
    if st.batch_size % replicas:
        raise StylizeError(f"batch_size {st.batch_size} does not split over {replicas} replicas")
    with strategy.scope():
        model = make_model()
        opt = keras.optimizers.Adam(st.lr)
        opt.build(model.trainable_variables)
        step_var = tf.Variable(0, dtype=tf.int64, name="step")
    return model, opt, step_var


def _checkpoints(st: _Settings, model, opt, step_var, scratch=None):
    """The checkpoint manager (None without ``checkpoint_dir``), after restoring the
    latest checkpoint of ``checkpoint_dir`` when ``resume``; a checkpoint of another
    network is refused. ``scratch``: a worker other than the chief saves there (a
    temporary folder) and still restores from ``checkpoint_dir``, the chief's."""
    if not st.checkpoint_dir:
        return None
    ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step_var)
    manager = tf.train.CheckpointManager(ckpt, scratch or st.checkpoint_dir, max_to_keep=1 if scratch else 2)
    latest = tf.train.latest_checkpoint(st.checkpoint_dir) if os.path.isdir(st.checkpoint_dir) else None
    if st.resume and latest:
        try:
            ckpt.restore(latest).assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            raise StylizeError(f"the checkpoint in {st.checkpoint_dir} does not fit this network ({exc}); "
                               f"use another checkpoint folder or the same {st.what}") from None
    return manager


def _train_step(replica_losses, batch_size, strategy, model, opt, step_var):
    """One training step, traced: each replica's gradients of the global batch's mean
    loss, Adam, the step counter; returns the losses' means over the global batch."""
    replicas = strategy.num_replicas_in_sync

    def replica_step(batch):
        with tf.GradientTape() as tape:
            losses = replica_losses(model, batch)
            total = tf.reduce_sum(losses["total"]) / float(batch_size)   # the global batch's mean
        grads = tape.gradient(total, model.trainable_variables)
        if replicas == 1:   # Adam as one fused kernel per variable: the step traces in half the time
            adam_apply(opt, zip(grads, model.trainable_variables))
        else:               # Keras all-reduces the gradients across replicas first
            opt.apply_gradients(zip(grads, model.trainable_variables))
        return {k: tf.reduce_sum(v) for k, v in losses.items()}

    @tf.function(autograph=False)
    def train_step(batch):
        per = strategy.run(replica_step, args=(batch,))
        out = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) / float(batch_size)
               for k, v in per.items()}
        step_var.assign_add(1)
        return out
    return train_step


def _log(writer, s, losses, preview, model, st: _Settings) -> None:
    """Step ``s`` is done: its losses for TensorBoard's Optimization view, and a preview
    every ``preview_every`` steps and at the end."""
    for k, v in losses.items():
        writer.scalar(f"optimization/{k}", v, s - 1)
    if preview is not None and (s % int(st.preview_every) == 0 or s == st.steps):
        imgs, caption = preview(model)
        writer.image("optimization", "preview", imgs, step=s, caption=caption)


def train_stylizer(loss_bundle, styles, content=None, *, image_size: int = 256, batch_size: int = 4,
                   steps: int = 2000, lr: float = 1e-3, content_weight: float | None = None,
                   style_weight: float | None = None, tv_weight: float | None = None, width: float = 1.0,
                   checkpoint_dir: str | None = None, checkpoint_every: int = 100, resume: bool = True,
                   strategy=None, callbacks=None, seed: int = 0, strict: bool = False, logdir: str | None = None,
                   preview="chelsea", preview_every: int = 100):
    """Train a transformer network for ``styles`` (one network; conditional instance
    norm when several) on ``content`` (a folder, files, or None: the bundled photos)
    with the perceptual loss of :func:`tfviz.synthesis.style_transfer` (the loss
    network's layers, transform and weights). Returns the Keras model.

    ``callbacks``: ``fn(step, losses)`` after every step (losses: total, content,
    style, tv). Checkpoints (model, optimizer, step) go to ``checkpoint_dir`` every
    ``checkpoint_every`` steps; the run resumes from the last one (``resume``).
    ``strategy``: any ``tf.distribute`` strategy (the global batch is split over its
    replicas). ``logdir``: losses and ``preview`` stylized in every style every
    ``preview_every`` steps."""
    net = loss_network(loss_bundle)
    style_list = [styles] if isinstance(styles, (str, os.PathLike, np.ndarray)) else list(styles)
    if not style_list:
        raise StylizeError("give at least one style image")
    _positive_ints(image_size=image_size, batch_size=batch_size, steps=steps, checkpoint_every=checkpoint_every,
                   preview_every=preview_every)
    cw = net.content_weight if content_weight is None else float(content_weight)
    sw = net.style_weight if style_weight is None else float(style_weight)
    tv = net.tv_weight if tv_weight is None else float(tv_weight)
    files = content_files(content, strict=strict)
    n = len(style_list)
    losses = _stylizer_losses(loss_bundle, net, style_list, image_size, (cw, sw, tv))
    preview_img = load_image(preview) if preview is not None else None
    job = _Job(lambda: transformer_network(num_styles=n, width=width),
               lambda start, shard=None: content_dataset(files, image_size, batch_size, seed, n, start, shard),
               losses,
               None if preview_img is None else lambda model: _preview_styles(model, preview_img, n))
    model = _fit(job, _Settings(steps=steps, batch_size=batch_size, lr=lr, seed=seed, what="styles and width",
                                strategy=strategy, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                                resume=resume, callbacks=callbacks, logdir=logdir, preview_every=preview_every))
    model.training_info["files"] = len(files)
    return model


def _stylizer_losses(loss_bundle, net, style_list, image_size, loss_weights):
    """Johnson et al.'s perceptual loss per image: ``content_weight * content +
    style_weight * style + tv_weight * TV`` (``loss_weights``), style ``k`` for the
    images whose index is ``k``."""
    cw, sw, tv = loss_weights
    layers, c_layer, n = list(net.style_layers), net.content_layer, len(style_list)
    targets, denoms = _style_targets(loss_bundle, net, style_list, image_size, layers)
    weights = {l: float(w) / sum(net.style_layers.values()) for l, w in net.style_layers.items()}
    run = forward_fn(loss_bundle, layers + [c_layer], False, True)
    fn_t = obj.feature_transform(net.transform)

    def losses(model, batch):
        x, idx = batch
        y = model([x, tf.one_hot(idx, n)] if n > 1 else x, training=True)
        _, fy = run(loss_bundle.preprocess(y * 255.0))
        _, fx = run(loss_bundle.preprocess(x * 255.0))
        a, b = fn_t(fy[c_layer]), fn_t(fx[c_layer])
        axes = list(range(1, len(a.shape)))
        content_t = tf.reduce_mean(tf.square(a - b), axes) / (tf.reduce_mean(tf.square(b), axes) + 1e-12)
        style_t = _style_loss(fn_t, fy, layers, weights, targets, denoms, idx)
        tv_t = _tv_per_image(y)
        return {"total": cw * content_t + sw * style_t + tv * tv_t, "content": content_t, "style": style_t,
                "tv": tv_t}
    return losses


def _preview_styles(model, image, n):
    """``image`` stylized in each of the ``n`` styles, and their captions."""
    imgs = [stylize(model, image, k) for k in range(n)]
    return np.stack([resize(i, imgs[0].shape[:2]) for i in imgs]), [f"style {k}" for k in range(n)]


def noise_dataset(channels: int, image_size: int, batch_size: int, seed: int = 0, start: int = 0, shard=None):
    """``tf.data`` of standard-normal noise batches ``[B, S, S, channels]``, stateless
    (batch ``k`` is the same for any strategy or resumed run). ``shard``: one worker's
    part, as in :func:`content_dataset`."""
    size = int(image_size)

    def make(k):
        return tf.random.stateless_normal([size, size, int(channels)], [seed, tf.cast(k, tf.int32)])
    ds = tf.data.Dataset.range(int(start) * int(batch_size), 2 ** 62)
    if shard is not None:
        ds = ds.filter(_worker_part(batch_size, shard))
        batch_size = shard[0]
    ds = ds.map(make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def train_texture_network(loss_bundle, texture, *, image_size: int = 128, batch_size: int = 4, steps: int = 1000,
                          lr: float = 1e-3, scales: int = 5, width: float = 1.0, tv_weight: float | None = None,
                          histogram_weight: float | None = None, color_weight: float | None = None,
                          checkpoint_dir: str | None = None, checkpoint_every: int = 100, resume: bool = True,
                          strategy=None, callbacks=None, seed: int = 0, logdir: str | None = None,
                          preview_every: int = 100):
    """Train Ulyanov et al.'s texture generator (:func:`texture_network`) to produce
    ``texture``'s statistics from noise with :func:`~tfviz.synthesis.synthesize_texture`'s
    losses: the Gram matrices and histograms (``histogram_weight``) at the loss network's
    texture layers and the colour histogram (``color_weight``; both default to the loss
    network's, 0 turns them off); the same loop, checkpoints, strategies and logging as
    :func:`train_stylizer`."""
    net = loss_network(loss_bundle)
    _positive_ints(image_size=image_size, batch_size=batch_size, steps=steps, checkpoint_every=checkpoint_every,
                   preview_every=preview_every, scales=scales)
    if image_size % 2 ** (scales - 1):
        raise StylizeError(f"image_size {image_size} must be a multiple of {2 ** (scales - 1)} for {scales} scales")
    tv = net.texture_tv_weight if tv_weight is None else float(tv_weight)
    hist_w = net.histogram_weight if histogram_weight is None else float(histogram_weight)
    color_w = net.color_weight if color_weight is None else float(color_weight)
    if not (hist_w >= 0 and color_w >= 0):
        raise StylizeError(f"histogram_weight and color_weight must be zero or positive, got {hist_w}, {color_w}")
    losses = _texture_losses(loss_bundle, net, load_image(texture), image_size, tv, hist_w, color_w)
    job = _Job(lambda: texture_network(scales=scales, width=width),
               lambda start, shard=None: noise_dataset(3 * scales, image_size, batch_size, seed, start, shard),
               losses,
               lambda model: (generate_texture(model, image_size * 2, seed=seed),
                              "noise seed %d, 2x the training size" % seed))
    return _fit(job, _Settings(steps=steps, batch_size=batch_size, lr=lr, seed=seed, what="texture network shape",
                               strategy=strategy, checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                               resume=resume, callbacks=callbacks, logdir=logdir, preview_every=preview_every))


def _texture_losses(loss_bundle, net, texture, image_size, tv, hist_w=0.0, color_w=0.0):
    """The texture loss per image: the Gram matrices' distance to ``texture``'s at the
    loss network's texture layers (Ulyanov et al.), ``hist_w`` times the histogram loss
    there (Risser et al.), ``color_w`` times the colour histogram loss, plus ``tv``
    times TV -- :func:`~tfviz.synthesis.synthesize_texture`'s terms."""
    layers = list(net.texture)
    fn_t = obj.feature_transform(net.transform)
    # the texture's statistics at its own scale, as synthesize_texture reads them (per
    # position, so the training crops' size does not matter): a 384 px mosaic shrunk to
    # 128 px crops made cells a third of their size. One forward pass for both targets.
    feats = {l: fn_t(tf.convert_to_tensor(f))
             for l, f in layer_features(loss_bundle, layers, loss_bundle.preprocess(texture[None])).items()}
    targets, denoms = _stacked([{l: obj.gram_matrix(f).numpy()[0] for l, f in feats.items()}], layers)
    weights = {l: float(w) / sum(net.texture.values()) for l, w in net.texture.items()}
    run = forward_fn(loss_bundle, layers, False, True)
    extra = []
    if hist_w:
        extra += [("histogram", sum((hist_w * weights[l]) * obj.histogram_match(
            l, obj.histogram_target(feats[l].numpy()), transform=net.transform)
            for l in layers if weights[l]).bind(loss_bundle, 1))]
    if color_w:
        c = color_target(texture)
        extra += [("color", (color_w * obj.pixel_histogram_match(c["target"], c["basis"], c["mean"]))
                   .bind(loss_bundle, 1))]
    zero, one = tf.zeros(3), tf.ones(3)

    def losses(model, z):
        y = model(z, training=True)
        _, fy = run(loss_bundle.preprocess(y * 255.0))
        idx = tf.zeros([tf.shape(y)[0]], tf.int32)
        style_t = _style_loss(fn_t, fy, layers, weights, targets, denoms, idx)
        tv_t = _tv_per_image(y)
        out = {"style": style_t, "tv": tv_t}
        total = style_t + tv * tv_t
        ctx = obj.Context(image=y, raw_image=y, features=fy, lo=zero, hi=one)
        for name, evaluate in extra:
            v, _ = evaluate(ctx)      # objectives are maximized: the loss is minus them
            out[name] = -v
            total = total + out[name]
        return dict(out, total=total)
    return losses
