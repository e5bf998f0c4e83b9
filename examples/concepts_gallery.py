"""Make the pictures of docs/concepts.md (docs/img/concepts_*): the texture concepts and
random counterexamples tfviz draws, and TCAV's bar chart of the default run -- the drawn
textures against the cat photo's top-1 class on efficientnet_lite0, at four layers, with 10
random sets -- and print that run's table and time. About 2 to 3 minutes on 2 cores.

    python examples/concepts_gallery.py [OUTDIR]
"""
import os
import sys
import time

import numpy as np
from PIL import Image

import tfviz
from tfviz import images
from tfviz.concepts import TEXTURES, draw_concept, random_images, tcav
from tfviz.utils import atomic_path

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("docs", "img")
bundle = tfviz.load_model()
save = images.PictureSaver(out)

# 1. what is drawn: six images of each texture concept, and of two random sets
rows = [draw_concept(name, 6, bundle.input_size, seed=0) for name in TEXTURES]
rows += [random_images(6, bundle.input_size, seed=0, index=k) for k in (1, 2)]
labels = list(TEXTURES) + ["random set 1", "random set 2"]
strips = [images.caption(images.tile(images.resize(np.asarray(r), (96, 96)), cols=6), label)
          for r, label in zip(rows, labels)]
drawn = images.vstack(strips, gap=6)
with atomic_path(os.path.join(out, "concepts_drawn.jpg")) as tmp:  # pixel noise: a JPEG is a tenth of the PNG
    Image.fromarray(np.asarray(drawn)).save(tmp, format="JPEG", quality=88)

# 2. the default run: what `tfviz concepts` does
start = time.perf_counter()
result = tcav(bundle)
print(f"tcav(bundle): {time.perf_counter() - start:.0f} s")
print(result.table())
save("concepts_tcav.png", result.picture())
