"""Training feed-forward stylization networks with the perceptual losses of
:mod:`tfviz.synthesis.style` (Johnson et al. 2016; Dumoulin et al. 2017).

WORK IN PROGRESS (issue 11): the loop, the data pipeline and checkpoints run; the
distribution strategies, TensorBoard previews and the CLI are not finished.
"""
from __future__ import annotations

import os
import time
import warnings

import numpy as np

from ..images import list_image_files, load_image, resize, sample_photos
from ..synthesis import objectives as obj
from ..synthesis.lossnet import _grams, loss_network
from .layers import StylizeError
from .networks import transformer_network


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


def content_dataset(files, image_size: int, batch_size: int, seed: int = 0, num_styles: int = 1, start: int = 0):
    """``tf.data``: shuffled files, decoded in parallel, randomly scaled (shorter side
    1-1.5x ``image_size``), cropped to ``image_size`` squares and flipped, batched and
    prefetched; floats in 0..1."""
    import tensorflow as tf
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
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def train_stylizer(loss_bundle, styles, content=None, *, image_size: int = 256, batch_size: int = 4,
                   steps: int = 2000, lr: float = 1e-3, content_weight: float | None = None,
                   style_weight: float | None = None, tv_weight: float | None = None, width: float = 1.0,
                   checkpoint_dir: str | None = None, checkpoint_every: int = 100, resume: bool = True,
                   strategy=None, callbacks=None, seed: int = 0, strict: bool = False):
    """Train a transformer network for ``styles`` (one network; conditional instance
    norm when several) on ``content`` (a folder, files, or None: the bundled photos).
    Returns the Keras model. ``callbacks``: ``fn(step, losses)`` after every step.
    Checkpoints (model, optimizer, step) go to ``checkpoint_dir`` every
    ``checkpoint_every`` steps and the run resumes from the last one."""
    import keras
    import tensorflow as tf
    net = loss_network(loss_bundle)
    style_list = [styles] if isinstance(styles, (str, os.PathLike, np.ndarray)) else list(styles)
    if not style_list:
        raise StylizeError("give at least one style image")
    for name, v in (("image_size", image_size), ("batch_size", batch_size), ("steps", steps),
                    ("checkpoint_every", checkpoint_every)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise StylizeError(f"{name} must be a positive integer, got {v!r}")
    cw = net.content_weight if content_weight is None else float(content_weight)
    sw = net.style_weight if style_weight is None else float(style_weight)
    tv = net.tv_weight if tv_weight is None else float(tv_weight)
    files = content_files(content, strict=strict)
    layers = list(net.style_layers)
    c_layer = net.content_layer
    n = len(style_list)
    grams = [_grams(loss_bundle, layers, loss_bundle.preprocess(resize(load_image(s), (image_size, image_size))[None]),
                    net.transform) for s in style_list]
    targets = {l: tf.constant(np.stack([g[l] for g in grams])) for l in layers}          # [S, C, C]
    denoms = {l: tf.constant(np.mean(np.square(np.stack([g[l] for g in grams])), axis=(1, 2)) + 1e-12)
              for l in layers}                                                            # [S]
    weights = {l: float(w) / sum(net.style_layers.values()) for l, w in net.style_layers.items()}
    from ..synthesis.optimize import forward_fn
    run = forward_fn(loss_bundle, layers + [c_layer], False, True)
    fn_t = obj.feature_transform(net.transform)

    keras.utils.set_random_seed(int(seed))
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = transformer_network(num_styles=n, width=width)
        opt = keras.optimizers.Adam(lr)
        opt.build(model.trainable_variables)
        step_var = tf.Variable(0, dtype=tf.int64, name="step")
    ckpt = manager = None
    if checkpoint_dir:
        ckpt = tf.train.Checkpoint(model=model, optimizer=opt, step=step_var)
        manager = tf.train.CheckpointManager(ckpt, checkpoint_dir, max_to_keep=2)
        if resume and manager.latest_checkpoint:
            try:
                ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as exc:
                raise StylizeError(f"the checkpoint in {checkpoint_dir} does not fit this network ({exc}); "
                                   "use another --checkpoint-dir or the same styles and width") from None
    start = int(step_var.numpy())
    ds = content_dataset(files, image_size, batch_size, seed, n, start)
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise StylizeError(f"batch_size {batch_size} does not split over {replicas} replicas")
    dist = iter(strategy.experimental_distribute_dataset(ds))

    def pre(img01):
        return loss_bundle.preprocess(img01 * 255.0)

    def replica_step(x, idx):
        onehot = tf.one_hot(idx, n)
        with tf.GradientTape() as tape:
            y = model([x, onehot] if n > 1 else x, training=True)
            _, fy = run(pre(y))
            _, fx = run(pre(x))
            a, b = fn_t(fy[c_layer]), fn_t(fx[c_layer])
            axes = list(range(1, len(a.shape)))
            content = tf.reduce_mean(tf.square(a - b), axes) / (tf.reduce_mean(tf.square(b), axes) + 1e-12)
            style = 0.0
            for l in layers:
                g = obj.gram_matrix(fn_t(fy[l]))
                per = tf.reduce_mean(tf.square(g - tf.gather(targets[l], idx)), axis=[1, 2]) / tf.gather(denoms[l], idx)
                style = style + weights[l] * per
            tv_term = (tf.reduce_sum(tf.square(y[:, 1:] - y[:, :-1]), [1, 2, 3])
                       + tf.reduce_sum(tf.square(y[:, :, 1:] - y[:, :, :-1]), [1, 2, 3])) \
                / tf.cast(tf.shape(y)[1] * tf.shape(y)[2], tf.float32)
            per_image = cw * content + sw * style + tv * tv_term
            total = tf.reduce_sum(per_image) / float(batch_size)   # the global batch's mean
        grads = tape.gradient(total, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return {"total": tf.reduce_sum(per_image), "content": tf.reduce_sum(content), "style": tf.reduce_sum(style),
                "tv": tf.reduce_sum(tv_term)}

    @tf.function
    def train_step(batch):
        x, idx = batch
        per = strategy.run(replica_step, args=(x, idx))
        out = {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) / float(batch_size)
               for k, v in per.items()}
        step_var.assign_add(1)
        return out

    t0 = time.perf_counter()
    while int(step_var.numpy()) < steps:
        losses = {k: float(v) for k, v in train_step(next(dist)).items()}
        s = int(step_var.numpy())
        for cb in callbacks or ():
            cb(s - 1, losses)
        if manager is not None and s % int(checkpoint_every) == 0:
            manager.save(checkpoint_number=s)
    model.training_info = {"seconds": time.perf_counter() - t0, "files": len(files), "start_step": start,
                           "steps": steps, "replicas": replicas}
    return model
