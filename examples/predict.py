"""Top-5 ImageNet classes for the bundled photos with the offline efficientnet_lite0.

    python examples/predict.py [IMAGE ...]
"""
import sys

import tfviz

bundle = tfviz.load_model("efficientnet_lite0")
paths = sys.argv[1:] or list(tfviz.images.sample_photos().values())
batch = bundle.load_images(paths)                    # uint8 RGB at 224x224
for path, top in zip(paths, bundle.top_k(batch, k=5)):
    print(path)
    for index, name, prob in top:
        print(f"  {prob:6.1%}  {name} ({index})")
