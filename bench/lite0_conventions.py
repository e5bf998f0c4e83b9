"""Which padding and input normalization fit the efficientnet_lite0 weights?

Runs every (padding, normalization) pair on scikit-image's sample photos and prints the
top-1 class and probability for each; the pair with the most confident correct
predictions is the one tfviz/zoo/efficientnet_lite0.py uses.
"""
import skimage.data as sd
import tensorflow as tf

from tfviz.models import imagenet_class_names
from tfviz.zoo import efficientnet_lite0 as lite
from tfviz.zoo.torch_legacy import load_state_dict

NAMES = imagenet_class_names()
PHOTOS = {"chelsea": range(281, 286), "coffee": [967], "rocket": [657, 744, 812]}  # cats; espresso; missile/projectile/space shuttle
NORMS = {
    "torch": lambda x: (x / 255.0 - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225],
    "lite": lambda x: (x - 127.0) / 128.0,
}


def prepare(img):
    t = tf.image.resize(img[None].astype("float32"), (224, 224), antialias=True)
    return t.numpy()


state = load_state_dict(lite.weights_file())
for padding in ["symmetric", "same"]:
    model = lite.build(padding)
    lite._torch_to_keras(model, state)
    for norm, f in NORMS.items():
        row, mass = [], 0.0
        for name, correct in PHOTOS.items():
            p = model.predict(f(prepare(getattr(sd, name)())).astype("float32"), verbose=0)[0]
            i = int(p.argmax())
            mass += float(p[list(correct)].sum())
            row.append(f"{name}: {NAMES[i]} {p[i]:.2f}")
        print(f"{padding:9s} {norm:5s} | " + " | ".join(row) + f" | correct mass {mass:.2f}")
