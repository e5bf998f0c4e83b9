"""Section D of docs/methods.md, fast feed-forward stylization: (19) a style-transfer network
with instance normalization trained with the perceptual loss, then one forward pass per
photo; (20) one network for several styles (conditional instance norm), styles chosen or
mixed at inference; (21) a texture network that turns noise into a texture of any size.

    python examples/d_fast_style.py [--out DIR] [--model NAME_OR_PATH] [--smallest]

The loss network is efficientnet_lite0 (or ``--model``); the styles are the bundled
``strokes`` and ``mosaic`` textures; offline, the content images are tfviz's six bundled
pictures (for a real network pass ``--content`` a photo folder, e.g. COCO's train2017, and
train on a GPU). The default settings are those of the in-depth pages in docs/ (128-pixel crops,
batch 4, half-width networks, 800 steps per stylizer, 400 for the texture network): about 20 minutes on 2 CPU cores (a
stylizer trains at about 2 steps/s there, the texture network at 1.5), minutes on a GPU.
``--smallest`` trains each network for 2 steps on 32-pixel crops at quarter width: about
35 s, nearly all of it tracing the three training steps; its pictures are still noise.
Writes PNGs into ``--out`` (default ``tfviz-out/examples/d``).
"""
import argparse
import os
import sys

import tfviz
from tfviz.images import PictureSaver, caption, hstack, load_image, resize
from tfviz.stylize import generate_texture, stylize, train_stylizer, train_texture_network


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join("tfviz-out", "examples", "d"))
    ap.add_argument("--model", default="efficientnet_lite0",
                    help="Loss network: keras.applications name (vgg16, ...) or a .keras/.h5 file")
    ap.add_argument("--preprocess", choices=["0-1", "-1-1", "caffe", "torch", "raw"],
                    help="Input range of a --model file when tfviz cannot infer it.")
    ap.add_argument("--content", help="Folder of content photos to train on (default: tfviz's bundled pictures).")
    ap.add_argument("--photo", default="coffee", help="Photo to stylize (a path or a bundled photo's name).")
    ap.add_argument("--smallest", action="store_true", help="Smallest settings: a quick run-through.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    small, seed = args.smallest, args.seed
    save = PictureSaver(args.out)                   # save(name, picture): a line per picture, with its seconds

    def report(step, losses):                              # training progress, every 100 steps
        if step % 100 == 0:
            print(f"  step {step}: loss {float(losses['total']):.3f}", flush=True)

    loss_bundle = tfviz.load_model(args.model, preprocess=args.preprocess)
    photo = load_image(args.photo)                         # stylized at its own size
    training = dict(image_size=32, batch_size=1, steps=2, width=0.25) if small else \
        dict(image_size=128, batch_size=4, steps=800, width=0.5)
    training["content"] = args.content                    # None: the bundled pictures

    # 19. Fast style transfer: an image-transformation network (strided convolutions down,
    #     residual blocks, upsampling convolutions up, instance normalization) trained with
    #     style transfer's loss (content + Gram + TV through the loss network) on content
    #     images; afterwards one forward pass stylizes any photo at its own size.
    net = train_stylizer(loss_bundle, "strokes", seed=seed, callbacks=[report], **training)
    out = stylize(net, photo)                              # uint8, the photo's shape
    save("19_stylized.png", out)
    save("19_pair.png", hstack([caption(photo, "photo"), caption(out, "strokes, one forward pass")]))

    # 20. One network, many styles: conditional instance norm keeps a scale and shift per
    #     style in every normalization layer; pick a style by index, or mix them by weight.
    net = train_stylizer(loss_bundle, ["strokes", "mosaic"], seed=seed, callbacks=[report], **training)
    tiles = [caption(photo, "photo")]
    for style, label in ((0, "style 0: strokes"), (1, "style 1: mosaic"), ({0: 0.5, 1: 0.5}, "50/50 mix")):
        tiles.append(caption(stylize(net, photo, style), label))
    save("20_styles.png", hstack([resize(t, (t.shape[0] // 2, t.shape[1] // 2)) for t in tiles]))

    # 21. Texture network: a feed-forward generator from multi-scale noise, trained with
    #     texture synthesis's Gram loss; sample new textures of any size (multiples of 8).
    texture = dict(image_size=32, batch_size=1, steps=2, width=0.25, scales=3) if small else \
        dict(image_size=128, batch_size=4, steps=400, scales=5)
    tex = train_texture_network(loss_bundle, "mosaic", seed=seed, callbacks=[report], **texture)
    size = (32, 48) if small else (256, 384)
    save("21_texture.png", hstack([caption(resize(load_image("mosaic"), size[0]), "source"),
                                   caption(generate_texture(tex, size, seed=seed + 1)[0], "generated"),
                                   caption(generate_texture(tex, size, seed=seed + 2)[0], "new noise")]))


if __name__ == "__main__":
    try:
        main()
    except tfviz.TfvizError as exc:       # offline, an unknown layer or class, a bad image: one line
        sys.exit(f"error: {exc}")
