"""Section A of docs/methods.md, looking at weights and activations: (1) filter grids, (2)
activation maps, (3) maximally activating patches, (4) nearest neighbours in feature and
pixel space, (5) t-SNE and PCA embeddings as thumbnail maps plus TensorBoard Projector
files.

    python examples/a_looking_inside.py [--out DIR] [--model NAME_OR_PATH] [--smallest]

Offline defaults: the per-image methods (1, 2) use efficientnet_lite0 on the bundled cat
photo; the data-set methods (3-5) use digits_cnn on scikit-learn's 1,797 digits (digits_cnn
trains on first use, ~40 s, then is cached). With ``--model`` every method uses that model:
the data-set methods then run it on the same digits, enlarged to its input size, so the
labels still tell whether neighbours and clusters make sense (a model that never saw digits
groups them less well than digits_cnn). About 35 s on 2 CPU cores once the models are
cached; ``--smallest`` (the first 120 digits, fewer channels, neighbours and filters,
smaller tiles) about 15 s. Writes PNGs into ``--out`` (default ``tfviz-out/examples/a``) and
the Projector files into its ``projector`` folder (``tensorboard --logdir OUT``).
"""
import argparse
import os
import sys

import numpy as np

import tfviz
from tfviz import inspect
from tfviz.default_layers import conv_layer_at
from tfviz.images import PictureSaver


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join("tfviz-out", "examples", "a"))
    ap.add_argument("--model", help="keras.applications name (vgg16, ...) or a .keras/.h5 file "
                                    "(default: efficientnet_lite0 for images, digits_cnn for the data set)")
    ap.add_argument("--preprocess", choices=["0-1", "-1-1", "caffe", "torch", "raw"],
                    help="Input range of a --model file when tfviz cannot infer it.")
    ap.add_argument("--photo", default="chelsea", help="Image for the per-image methods (a path or a bundled name).")
    ap.add_argument("--smallest", action="store_true", help="Smallest settings: a quick run-through.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    small = args.smallest
    save = PictureSaver(args.out)                   # save(name, picture): a line per picture, with its seconds

    if args.model:
        image_model = data_model = tfviz.load_model(args.model, preprocess=args.preprocess)
    else:
        image_model = tfviz.load_model()                  # efficientnet_lite0, offline
        data_model = tfviz.load_model("digits_cnn")       # trained on first use, then cached
    photo = tfviz.images.load_image(args.photo)            # uint8 RGB, any size

    # 1. Filter grid: the first convolution's kernels as small RGB images (each scaled on its
    #    own, enlarged so a 3x3 kernel is visible), then the next layer with spatial kernels
    #    as grey tiles, one per output filter averaged over its inputs (mode="channels": one
    #    tile per (output, input) slice; for depthwise layers like lite0's the two agree).
    save("1_filters_first_layer.png", inspect.filter_grid(image_model, upsample=6 if small else 12))
    convs = image_model.layer_names(conv=True)
    deeper = next((n for n in convs[1:] if max(getattr(image_model.layer(n), "kernel_size", (1,))) > 1), None)
    if deeper:
        save("1_filters_deeper.png", inspect.filter_grid(image_model, deeper, mode="mean", limit=16 if small else 32,
                                                         upsample=6 if small else 12))

    # 2. Activation maps: every channel of a layer a quarter deep for one photo, strongest
    #    first; "shared" keeps one scale so that weak channels look weak.
    layer = conv_layer_at(image_model, 0.25)
    save("2_activations.png", inspect.activation_grid(image_model, photo, layer, limit=16 if small else 64))
    save("2_activations_shared_scale.png",
         inspect.activation_grid(image_model, photo, layer, limit=16 if small else 64, scale="shared",
                                 cmap="inferno"))

    # The data set of 3-5: the digits (labels 0-9), at the data-set model's input size.
    data = tfviz.data.digits(size=data_model.input_size[0])
    if small:
        data = tfviz.data.from_arrays(data.take(np.arange(120)), data.labels[:120], data.class_names, "digits")

    # 3. Maximally activating patches: the top-k units of some channels over the whole data
    #    set, each cropped to its exact receptive field (computed from the conv/pool chain).
    layer = "relu4" if data_model.name == "digits_cnn" else conv_layer_at(data_model, 0.5)
    rf = inspect.receptive_field(data_model, layer)
    print(f"receptive field of {layer}: size {rf.size}, stride {rf.stride}, offset {rf.offset}")
    patches = inspect.max_activating_patches(data_model, data, layer, channels=range(4 if small else 8),
                                             k=4 if small else 8)
    save("3_patches.png", inspect.patch_grid(patches))

    # 4. Nearest neighbours: for a few query digits, the 5 nearest by the pre-classifier
    #    features and by raw pixels. Label agreement over all queries says which space knows
    #    what a digit is; the shifted queries show why (pixels do not survive a small move).
    rng = np.random.default_rng(args.seed)
    feats = {space: inspect.extract_features(data_model, data, space=space) for space in ("features", "pixels")}
    queries = rng.choice(len(data), 4 if small else 8, replace=False)
    shift = max(1, data_model.input_size[0] // 10)
    moved = np.stack([np.roll(img, (shift, shift), axis=(0, 1)) for img in data.take(queries)])
    for space, fs in feats.items():
        idx, _ = inspect.nearest_neighbors(data_model, np.arange(len(data)), data, k=6, space=space,
                                           dataset_features=fs)
        agree = inspect.label_agreement(idx[:, 1:], data.labels, data.labels)   # column 0 is the query itself
        print(f"{space}: label agreement of the 5 nearest neighbours {agree:.1%}")
        q_idx, _ = inspect.nearest_neighbors(data_model, moved, data, k=5, space=space, dataset_features=fs)
        captions = [f"{data.labels[q]}, moved {shift}px: 5 nearest ({space})" for q in queries]
        save(f"4_neighbors_{space}.png",
             inspect.neighbor_strips(moved, [data.take(row) for row in q_idx], captions, size=32 if small else 64))

    # 5. Embeddings: the features in 2-D by t-SNE and by PCA, each image drawn in the grid
    #    cell nearest its position (the "cnnembed" picture), and the same features exported
    #    for TensorBoard's Embedding Projector (features.tsv, metadata.tsv, sprite.png).
    #    inspect.embed(model, data, method="tsne") scans and reduces in one call; here the
    #    features of 4 are reused.
    for method in ("pca", "tsne"):
        xy = inspect.reduce_features(feats["features"].features, method=method, seed=args.seed,
                                     perplexity=10 if small else 30)
        save(f"5_embedding_{method}.png", inspect.thumbnail_map(xy, data, cell=12 if small else 16))
    files = inspect.export_projector(feats["features"].features, data, data.labels,
                                     os.path.join(args.out, "projector"), class_names=data.class_names)
    print("wrote", os.path.dirname(files["config"]), "(Projector files: tensorboard --logdir", args.out + ")")


if __name__ == "__main__":
    try:
        main()
    except tfviz.TfvizError as exc:       # offline, an unknown layer or class, a bad image: one line
        sys.exit(f"error: {exc}")
