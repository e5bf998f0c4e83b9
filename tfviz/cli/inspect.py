"""``tfviz filters | activations | patches | neighbors | embed``: looking inside a model.

Per-image views default to efficientnet_lite0 and the bundled photos; data-set views
default to digits_cnn and scikit-learn's digits, so every command runs offline as is.
Pictures are written only when everything is computed (atomically); ``--logdir`` also
writes them as tfviz summaries for TensorBoard.
"""
from __future__ import annotations

import contextlib
import os
import warnings

import click

from .common import IMAGE, LazyProgress, channels_callback, default_images, logdir_option, model_options, \
    not_the_chief, out_option, out_path, stage, strategy_option

IMAGES_HELP = ("Data set: a folder of images (searched recursively; sub-folder names are labels), "
               "'digits' (bundled, offline), or a keras.datasets name (mnist, cifar10, ...; needs a network "
               "once).")


@contextlib.contextmanager
def _warnings_as_lines():
    """Print skipped-file warnings as one ``warning:`` line each; other warnings pass."""
    from ..data import UnreadableImagesWarning
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnreadableImagesWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, UnreadableImagesWarning):
                    click.echo(f"warning: {w.message}", err=True)


def _default_layer(bundle, layer, depth=0.5):
    """``layer``, or the convolution layer at ``depth`` (0: first, 1: last) of the model."""
    from ..default_layers import conv_layer_at
    return layer or conv_layer_at(bundle, depth)


def _open_set(source, strict):
    from ..data import image_set
    return image_set(source, strict=strict)


def _write(path, img):
    from ..images import save_png
    save_png(path, img)
    click.echo(f"wrote {path}")


def _writer(logdir, run):
    from ..summary import Writer
    return Writer(logdir, run=run)


def _check_source(ctx, param, value):
    """The data set --images names exists: checked when the command line is parsed, before
    the model loads (what it holds is read later)."""
    from ..data import KERAS_DATASETS
    if value.lower() == "digits" or value.lower() in KERAS_DATASETS or os.path.exists(value):
        return value
    raise click.BadParameter(f"{value}: no such folder; give a folder of images, 'digits', or one of "
                             + ", ".join(KERAS_DATASETS))


run_option = click.option("--run", default=None, help="Run name under --logdir (default: COMMAND-MODEL).")
images_option = click.option("--images", "-i", "source", default="digits", show_default=True, help=IMAGES_HELP,
                             callback=_check_source)
batch_size_option = click.option("--batch-size", default=64, show_default=True, type=click.IntRange(1, None))
strict_option = click.option("--strict", is_flag=True, help="Fail on unreadable files instead of skipping them.")
feature_layer_option = click.option("--layer", "-l", default=None,
                                    help="Feature layer (default: the one before the classifier).")


# ------------------------------------------------------------------------- filters
@click.command("filters")
@click.option("--layer", "-l", default=None, help="Convolution layer (default: the first one).")
@click.option("--mode", type=click.Choice(["rgb", "channels", "mean"]), default=None,
              help="rgb: one colour tile per filter (first layer); channels: a tile per (filter, input); "
                   "mean: a tile per filter, averaged over inputs. Default: rgb for 3-channel inputs, else mean.")
@click.option("--scale", type=click.Choice(["tile", "shared"]), default="tile", show_default=True,
              help="Rescale each tile on its own, or all with one shared scale.")
@click.option("--upsample", type=click.IntRange(1, 64), default=None, help="Enlarge each kernel pixel N times.")
@click.option("--limit", type=click.IntRange(1, None), default=None, help="Show only the first N filters.")
@out_option(name="filters-MODEL-LAYER.png")
@logdir_option
@run_option
@model_options()
def filters_cmd(layer, mode, scale, upsample, limit, out, logdir, run, bundle):
    """Draw a convolution layer's kernels as a grid of tiles.

    \b
    Examples:
      tfviz filters                                  # efficientnet_lite0's first layer
      tfviz filters --model vgg16 --layer block1_conv2 --mode mean
    """
    from ..inspect import filter_grid
    from ..inspect.filters import conv_kernel
    lay, _ = conv_kernel(bundle, layer)
    grid = filter_grid(bundle, lay.name if layer is None else layer, mode=mode, scale=scale, upsample=upsample,
                       limit=limit)
    path = out_path(out, f"filters-{bundle.name}-{lay.name}.png")
    _write(path, grid)
    if logdir:
        with _writer(logdir, run or f"filters-{bundle.name}") as w:
            w.filters(lay.name, grid, caption=f"{bundle.name} {lay.name} ({mode or 'auto'}, {scale})",
                      model=bundle.name)


# ------------------------------------------------------------------------- activations
@click.command("activations")
@click.argument("image", required=False, type=IMAGE)
@click.option("--layer", "-l", default=None, help="Spatial layer (default: the convolution a quarter deep).")
@click.option("--limit", type=click.IntRange(1, None), default=64, show_default=True,
              help="Show the N strongest channels (all with --limit 100000).")
@click.option("--no-sort", is_flag=True, help="Keep channel order instead of strongest first.")
@click.option("--scale", type=click.Choice(["tile", "shared"]), default="tile", show_default=True,
              help="Normalize each channel's map on its own (tile), or all with one scale (shared: "
                   "weak channels stay dark).")
@click.option("--cmap", type=click.Choice(["gray", "viridis", "inferno"]), default="gray", show_default=True,
              help="Colour map for the activation values.")
@out_option(name="activations-MODEL-LAYER.png")
@logdir_option
@run_option
@model_options()
def activations_cmd(image, layer, limit, no_sort, scale, cmap, out, logdir, run, bundle):
    """Show every channel of a layer for IMAGE (default: the bundled cat photo), strongest
    channels first, each map normalized. IMAGE is a file or a bundled photo's name:
    chelsea (a cat), coffee, rocket, astronaut.

    \b
    Examples:
      tfviz activations                              # chelsea the cat, efficientnet_lite0
      tfviz activations coffee --layer block5a_expand_conv --limit 32
    """
    from ..inspect import activation_grid
    path_in = image or default_images([])[0]
    lay = _default_layer(bundle, layer, depth=0.25)
    grid = activation_grid(bundle, path_in, lay, sort=not no_sort, limit=limit, scale=scale,
                           cmap=None if cmap == "gray" else cmap)
    path = out_path(out, f"activations-{bundle.name}-{lay.replace('/', '_')}.png")
    _write(path, grid)
    if logdir:
        with _writer(logdir, run or f"activations-{bundle.name}") as w:
            w.activations(lay, [grid], names=[os.path.basename(str(path_in))], model=bundle.name)


# ------------------------------------------------------------------------- patches
@click.command("patches")
@images_option
@click.option("--layer", "-l", default=None, help="Spatial layer (default: the middle convolution).")
@click.option("--channels", "-c", default="0-7", show_default=True, callback=channels_callback,
              help="Channels: '0,3,5', a range '0-7', or 'all'.")
@click.option("-k", "k", default=9, show_default=True, type=click.IntRange(1, None), help="Patches per channel.")
@batch_size_option
@click.option("--all-positions", is_flag=True,
              help="Plain top-k over all positions (default: at most one patch per image).")
@strict_option
@out_option(name="patches-MODEL-LAYER.png")
@logdir_option
@run_option
@strategy_option
@model_options(default="digits_cnn")
def patches_cmd(source, layer, channels, k, batch_size, all_positions, strict, out, logdir, run, strategy, bundle):
    """Scan a data set and show, for each channel, the k image patches (exact receptive
    fields) that activate it most. Memory does not grow with the data set.

    \b
    Examples:
      tfviz patches                                   # digits_cnn on the bundled digits
      tfviz patches --images photos/ --model efficientnet_lite0 --layer block4a_expand_conv -c 0-5
      tfviz patches --images /shared/imagenet --strategy multiworker   # on every worker, TF_CONFIG set
    """
    from ..inspect import max_activating_patches, patch_grid
    from ..inspect.receptive import patch_field
    from ..models.tokens import is_token_layer
    lay = _default_layer(bundle, layer)
    chans = channels
    with _warnings_as_lines():
        data = _open_set(source, strict)
        from ..inspect.patches import check_channels
        chans = check_channels(bundle, lay, chans)
        rf = patch_field(bundle, lay)
        what = "token patches" if is_token_layer(bundle, lay) else "receptive field"
        intro = (f"{bundle.name} {lay}: {what} {rf.size[0]}x{rf.size[1]} px, stride {rf.stride[0]}; "
                 f"scanning {data.length if data.length is not None else '?'} images of {data.name}")
        with LazyProgress(length=data.length, label="scanning", intro=intro) as bar:
            res = max_activating_patches(bundle, data, lay, chans, k=k, batch_size=batch_size,
                                         per_image=None if all_positions else 1, progress=bar.update,
                                         strict=strict, strategy=strategy)
    if not_the_chief(strategy):
        return
    grid = patch_grid(res)
    path = out_path(out, f"patches-{bundle.name}-{lay.replace('/', '_')}.png")
    _write(path, grid)
    for r in res[:8]:
        where = ", ".join(f"{_name(data, i)}@({y},{x})" for i, y, x in r.locations[:3])
        click.echo(f"  channel {r.channel:4d}: top score {r.scores[0]:.3g}; {where}, ...")
    if logdir:
        with _writer(logdir, run or f"patches-{bundle.name}") as w:
            w.patches(lay, res, names=_source_name(data, source), model=bundle.name, data=data.name,
                      field=list(rf.size), stride=list(rf.stride))


def _source_name(data, source):
    """Data-set index -> the image's name in the Patches view: its path inside the folder
    --images names, else ``#index`` and its label."""
    root = source if os.path.isdir(source) else None

    def name(i):
        if data.names:
            path = str(data.names[int(i)])
            return os.path.relpath(path, root) if root else os.path.basename(path)
        label = f" ({data.label_name(data.labels[int(i)])})" if data.labels is not None else ""
        return f"#{int(i)}{label}"
    return name


def _name(data, i):
    if data.names:
        return os.path.basename(str(data.names[int(i)]))
    return f"#{int(i)}"


# ------------------------------------------------------------------------- neighbors
@click.command("neighbors")
@click.argument("queries", nargs=-1, type=IMAGE)
@images_option
@click.option("--index", "indices", default=None, callback=channels_callback,
              help="Query data-set images by index, e.g. '0,100,200' (default: 8 spread over the set).")
@click.option("-k", "k", default=5, show_default=True, type=click.IntRange(1, None), help="Neighbours per query.")
@click.option("--space", type=click.Choice(["features", "pixels", "both"]), default="both", show_default=True)
@feature_layer_option
@batch_size_option
@strict_option
@out_option(name="neighbors-MODEL.png")
@logdir_option
@run_option
@strategy_option
@model_options(default="digits_cnn")
def neighbors_cmd(queries, source, indices, k, space, layer, batch_size, strict, out, logdir, run, strategy, bundle):
    """Show the k nearest data-set images of each query in feature space, beside the k
    nearest in raw pixels; with labels, print how often neighbours share the query's label.
    QUERIES are image files or bundled photo names (chelsea, coffee, rocket, astronaut);
    without them, --index picks data-set images.

    \b
    Examples:
      tfviz neighbors                                 # digits: features vs pixels
      tfviz neighbors my_cat.jpg --images photos/ --model efficientnet_lite0
    """
    import numpy as np

    from ..distribute import is_chief
    from ..images import caption, hstack
    from ..inspect import extract_features, label_agreement, nearest_neighbors, neighbor_strips
    spaces = ["features", "pixels"] if space == "both" else [space]
    with _warnings_as_lines():
        data = _open_set(source, strict)
        if not data.random_access:
            raise click.UsageError("neighbors needs a data set with random access (a folder, digits, an array)")
        if k > len(data):
            from ..data import DataError
            raise DataError(f"k={k} is larger than the data set ({len(data)} images)")
        if queries:
            q = list(queries)
            qimgs = bundle.load_images(q)
        else:
            q = indices if indices else list(np.linspace(0, len(data) - 1, 8).astype(int))
            bad = [i for i in q if not 0 <= i < len(data)]
            if bad:
                raise click.BadParameter(f"indices {bad} out of range 0..{len(data) - 1}", param_hint="--index")
            qimgs = data.take(q, size=bundle.input_size)
        panels, rates, strips = [], {}, {}
        for sp in spaces:
            with LazyProgress(length=len(data), label=f"{sp:8s}") as bar:
                fs = extract_features(bundle, data, layer, sp, batch_size, bar.update, strategy=strategy)
            idx, dist = nearest_neighbors(bundle, q, data, k=k, space=sp, layer=layer, dataset_features=fs)
            caps = [f"{_qname(data, qq)} -> " + " ".join(_name(data, i) for i in row) for qq, row in zip(q, idx)]
            nb_imgs = [data.take(row, size=bundle.input_size) for row in idx]
            strips[sp] = (nb_imgs, idx, dist)
            panel = neighbor_strips(qimgs, nb_imgs, size=48)
            panels.append(caption(panel, f"nearest in {sp}", size=14))
            for line in (caps if strategy is None or is_chief(strategy) else ()):
                click.echo(f"  [{sp}] {line}")
            if fs.labels is not None:
                rates[sp] = _agreement(fs, k, label_agreement)
    if not_the_chief(strategy):
        return
    grid = hstack(panels, gap=16)
    for sp, (rate, n) in rates.items():
        click.echo(f"label agreement of the {k} nearest neighbours in {sp} space: {rate:.1%} "
                   f"(over {n} data-set images, self excluded)")
    path = out_path(out, f"neighbors-{bundle.name}.png")
    _write(path, grid)
    if logdir:
        with _writer(logdir, run or f"neighbors-{bundle.name}") as w:
            for sp, (nb_imgs, idx, dist) in strips.items():
                _log_neighbors(w, f"neighbors/{sp}", data, q, qimgs, nb_imgs, idx, dist, space=sp,
                               agreement=rates.get(sp, (None,))[0], model=bundle.name)


def _log_neighbors(w, tag, data, queries, qimgs, nb_imgs, idx, dist, **extra):
    """Nearest-neighbour strips in the Embeddings view, labelled when the set has labels."""
    labels = None
    if data.labels is not None:
        qlab = [data.label_name(data.labels[q]) if not isinstance(q, str) else "?" for q in queries]
        labels = [[ql] + [data.label_name(data.labels[i]) for i in row] for ql, row in zip(qlab, idx)]
    w.neighbors(tag, list(qimgs), [list(n) for n in nb_imgs], distances=dist, labels=labels, **extra)


def _qname(data, q):
    return os.path.basename(str(q)) if isinstance(q, str) else _name(data, q)


def _agreement(fs, k, label_agreement, limit=2000):
    """Label agreement over up to ``limit`` data-set images as queries, self excluded."""
    import numpy as np
    from sklearn.neighbors import NearestNeighbors
    n = len(fs.features)
    take = np.linspace(0, n - 1, min(n, limit)).astype(int)
    nn = NearestNeighbors(n_neighbors=min(k + 1, n)).fit(fs.features)
    _, idx = nn.kneighbors(fs.features[take])
    return label_agreement(idx[:, 1:], fs.labels[take], fs.labels), len(take)


# ------------------------------------------------------------------------- embed
@click.command("embed")
@images_option
@click.option("--method", type=click.Choice(["tsne", "pca", "umap", "tsne_sklearn"]), default="tsne",
              show_default=True,
              help="tsne: openTSNE (FFT-accelerated; 10,000 points in seconds); pca: instant, linear; "
                   "umap: needs pip install 'tfviz[umap]' (first run compiles numba code); "
                   "tsne_sklearn: scikit-learn's slower Barnes-Hut t-SNE, for comparison.")
@click.option("--seed", default=0, show_default=True, type=int)
@feature_layer_option
@click.option("--cell", default=32, show_default=True, type=click.IntRange(8, 256), help="Thumbnail size in pixels.")
@click.option("--size", default=None, type=click.IntRange(64, 16384), help="Map side in pixels (default: fit all).")
@click.option("--limit", default=None, type=click.IntRange(3, None), help="Use only the first N images.")
@batch_size_option
@strict_option
@out_option(name="embed-MODEL-METHOD.png")
@logdir_option
@run_option
@strategy_option
@model_options(default="digits_cnn")
def embed_cmd(source, method, seed, layer, cell, size, limit, batch_size, strict, out, logdir, run, strategy, bundle):
    """Map a data set's features to 2-D (t-SNE or PCA) and draw every image as a
    thumbnail at its place (snapped to a grid, no overlaps). With --logdir, also write the
    TensorBoard Embedding Projector files (features, labels, sprite) into LOGDIR/RUN.

    \b
    Examples:
      tfviz embed                                     # digits_cnn features of the digits
      tfviz embed --method pca --logdir logs && tensorboard --logdir logs
    """
    import numpy as np

    from ..data import from_arrays
    from ..inspect import export_projector, extract_features, nearest_neighbors, reduce_features, thumbnail_map
    with _warnings_as_lines():
        data = _open_set(source, strict)
        if limit is not None and data.random_access and limit < len(data):
            imgs = data.take(np.arange(limit), size=bundle.input_size)
            lab = None if data.labels is None else data.labels[:limit]
            data = from_arrays(imgs, lab, class_names=data.class_names, name=data.name)
        with LazyProgress(length=data.length, label="features") as bar:
            fs = extract_features(bundle, data, layer, "features", batch_size, bar.update, strategy=strategy)
        if not_the_chief(strategy):
            return
        stage(f"{method} of {len(fs.features)} x {fs.features.shape[1]} features ...")
        coords = reduce_features(fs.features, method, seed)
        thumbs = _Subset(data, fs.indices)
        grid = thumbnail_map(coords, thumbs, size=size, cell=cell, seed=seed)
    path = out_path(out, f"embed-{bundle.name}-{method}.png")
    _write(path, grid)
    if logdir:
        name = run or f"embed-{bundle.name}"
        with _writer(logdir, name) as w:
            w.embedding_map(f"{method}_map", grid, caption=f"{method} of {len(coords)} images ({bundle.name})",
                            method=method, model=bundle.name)
            k = min(5, len(thumbs) - 1)
            if k >= 1:   # and a few nearest-neighbour strips in the same feature space
                q = np.unique(np.linspace(0, len(thumbs) - 1, min(8, len(thumbs))).astype(int))
                idx, dist = nearest_neighbors(bundle, fs.indices[q], data, k=k + 1, dataset_features=fs)
                idx, dist = idx[:, 1:], dist[:, 1:]   # the query itself comes first
                nb = [data.take(row, size=bundle.input_size) for row in idx]
                _log_neighbors(w, "neighbors/features", data, fs.indices[q], data.take(fs.indices[q],
                               size=bundle.input_size), nb, idx, dist, space="features", model=bundle.name)
            run_dir = w.dir
        export_projector(fs.features, thumbs, fs.labels, run_dir, class_names=data.class_names,
                         name=f"{bundle.name}_features")
        click.echo(f"wrote Projector files to {run_dir} (tensorboard --logdir {logdir})")


class _Subset:
    """The readable images of a set, in scan order (for thumbnails and sprites)."""

    def __init__(self, data, indices):
        self.data, self.indices = data, indices

    def __len__(self):
        return len(self.indices)

    def take(self, idx, size=None):
        return self.data.take(self.indices[idx], size=size)


COMMANDS = [filters_cmd, activations_cmd, patches_cmd, neighbors_cmd, embed_cmd]
