"""Make the "looking inside" pictures of the README (docs/img/inspect_*.png): the first
layer's filters of efficientnet_lite0, the max-activating patches of digits_cnn's relu4,
and the t-SNE thumbnail map of all 1,797 digits. About a minute on 2 cores (plus ~40 s the
first time, to train digits_cnn), and it prints the neighbour label agreement the README
quotes.

    python examples/inspect_gallery.py [OUTDIR]
"""
import os
import sys

import numpy as np

import tfviz
from tfviz import inspect
from tfviz.images import save_png

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("docs", "img")
lite = tfviz.load_model()
digits = tfviz.load_model("digits_cnn")
data = tfviz.data.digits()

# 1. first-layer filters, each 3x3 kernel enlarged 12 times
save_png(os.path.join(out, "inspect_filters.png"), inspect.filter_grid(lite, upsample=12))

# 2. the 8 most activating digits of 8 channels of relu4 (exact receptive fields)
res = inspect.max_activating_patches(digits, data, "relu4", channels=range(8), k=8)
save_png(os.path.join(out, "inspect_patches.png"), inspect.patch_grid(res))

# 3. t-SNE of the 64 pre-classifier features, one thumbnail per grid cell
xy = inspect.embed(digits, data, method="tsne", seed=0)
picture = inspect.thumbnail_map(xy, data, cell=16)
save_png(os.path.join(out, "inspect_digits_map.png"), picture[..., 0])   # grey digits: one channel, half the bytes

# 4. what the README says about neighbours: label agreement of the 5 nearest, features vs pixels
for space in ("features", "pixels"):
    rng = np.random.default_rng(0)
    fs = inspect.extract_features(digits, data, space=space)
    idx, _ = inspect.nearest_neighbors(digits, np.arange(len(data)), data, k=6, space=space, dataset_features=fs)
    plain = inspect.label_agreement(idx[:, 1:], data.labels, data.labels)
    q = np.arange(0, len(data), 2)       # every other digit, moved by up to 4 px (black border: roll)
    shifted = np.stack([np.roll(img, tuple(rng.integers(-4, 5, 2)), axis=(0, 1)) for img in data.take(q)])
    sidx, _ = inspect.nearest_neighbors(digits, shifted, data, k=5, space=space, dataset_features=fs)
    moved = inspect.label_agreement(sidx, data.labels[q], data.labels)
    print(f"{space:8s}: label agreement of the 5 nearest neighbours {plain:.1%}; queries shifted by up to "
          f"4 px {moved:.1%}")
print("wrote", out)
