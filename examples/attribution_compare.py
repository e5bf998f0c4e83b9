"""Every attribution method on one photo, side by side, and the checks that say which
map to believe -- the README's comparison figure.

    python examples/attribution_compare.py [coffee|chelsea|rocket|astronaut] [--out docs/img]

Runs offline on efficientnet_lite0 (about a minute on 2 CPU cores).
"""
import argparse
import os

import numpy as np
from PIL import Image

import tfviz
from tfviz import attribution as A

ap = argparse.ArgumentParser()
ap.add_argument("photo", nargs="?", default="coffee", choices=sorted(tfviz.images.sample_photos()))
ap.add_argument("--out", default=".")
ap.add_argument("--trust", action="store_true", help="also print deletion / insertion AUC and randomization")
args = ap.parse_args()

# 1. The model and the photo (uint8 RGB, resized to the model's 224 x 224).
bundle = tfviz.load_model("efficientnet_lite0")
img = bundle.load_images([tfviz.images.sample_photo(args.photo)])
idx, name, prob = bundle.top_k(img, k=1)[0][0]
logit = bundle.logits(bundle.preprocess(img)).numpy()[0, idx]
print(f"{args.photo}: {name} ({prob:.1%})")

# 2. Every method, same call shape; the target is the top-1 class.
maps = {method: fn(bundle, img, idx)[0] for method, fn in A.METHODS.items()}

# 3. One figure; quantized to 256 colours so the PNG stays small for the README.
fig = A.comparison_figure(img[0], maps, title=f"{name} (class {idx}): logit {logit:.2f}, p {prob:.1%} | {bundle.name}")
path = os.path.join(args.out, f"attribution_{args.photo}.png")
Image.fromarray(fig).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path, optimize=True)
print("wrote", path)

# 4. Which map to trust: low deletion AUC, high insertion AUC, low randomization correlation.
if args.trust:
    for row in A.trust_report(bundle, img, idx, steps=50, layers=3):
        print(f"{row['method']:<22s} deletion {row['deletion']:.3f}  insertion {row['insertion']:.3f}  "
              f"randomization {row['randomization']:+.3f}")
    # Without max pooling, the deconvnet map hardly depends on the image at all:
    other = A.deconvnet(bundle, bundle.load_images([tfviz.images.sample_photo("rocket")]), idx)[0]
    print(f"deconvnet map of {args.photo} vs of the rocket: correlation "
          f"{np.corrcoef(maps['deconvnet'].ravel(), other.ravel())[0, 1]:.3f}")
