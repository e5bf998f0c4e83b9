"""Section C of docs/methods.md, images made by gradient ascent through a frozen network: (11)
class and neuron visualization, (12) multifaceted visualization, (13) better priors (a
decorrelated Fourier image with transformation robustness, a generator's latent code),
(14) fooling images, FGSM and PGD, (15) DeepDream, (16) feature inversion, (17) texture
synthesis and (18) neural style transfer.

    python examples/c_synthesis.py [--out DIR] [--model NAME_OR_PATH] [--smallest]

Offline on efficientnet_lite0 (or ``--model``), the bundled cat photo and the bundled
``strokes`` and ``mosaic`` textures as styles. The default settings are those of the in-depth pages (docs/) (256
steps per class visualization, 200 L-BFGS steps per inversion and for the texture, 300 per
style transfer): about 25 minutes on 2 busy CPU cores, a third of it the inversion strip
(7 layers) and 40 % the five style transfers. ``--smallest`` runs every method for
2-8 steps on small images: about 55 s, nearly all of it tracing each method's program
once. Writes PNGs into ``--out`` (default ``tfviz-out/examples/c``).
"""
import argparse
import os
import sys


import tfviz
from tfviz import synthesis as S
from tfviz.default_layers import dream_layers
from tfviz.images import PictureSaver, caption, hstack, load_image, resize


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join("tfviz-out", "examples", "c"))
    ap.add_argument("--model", default="efficientnet_lite0",
                    help="keras.applications name (vgg16, ...) or a .keras/.h5 file")
    ap.add_argument("--preprocess", choices=["0-1", "-1-1", "caffe", "torch", "raw"],
                    help="Input range of a --model file when tfviz cannot infer it.")
    ap.add_argument("--photo", default="chelsea", help="Content image (a path or a bundled photo's name).")
    ap.add_argument("--smallest", action="store_true", help="Smallest settings: a quick run-through.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    small, seed = args.smallest, args.seed
    save = PictureSaver(args.out)                   # save(name, picture): a line per picture, with its seconds

    bundle = tfviz.load_model(args.model, preprocess=args.preprocess)
    photo = load_image(args.photo)                         # uint8 RGB at its own size

    def cls(name, fallback):                               # ImageNet class names where the model has them
        return name if name in (bundle.class_names or []) else fallback % bundle.num_classes

    # 11. Class visualization: maximize a class logit from noise. On pixels, with Yosinski's
    #     regularizers (L2 decay, blur every few steps, clipping to the valid range; the
    #     percentile clips are available too) and jitter; then one image per channel of a
    #     mid-level layer ("what each filter wants").
    flamingo = cls("flamingo", 0)
    steps = 4 if small else 256
    r = S.class_visualization(bundle, flamingo, param="pixel", steps=steps, seed=seed,
                              regularizers=S.regularizers.yosinski(decay_rate=0.001, blur_sigma=1.0, blur_every=2))
    save("11_class_pixel.png", caption(r.image, f"{r.extra['class_name']} (pixels) p={r.extra['probability']:.2f}"))
    layer = next(iter(dream_layers(bundle)))               # a mid-level layer (lite0: block4c_add)
    r = S.neuron_visualization(bundle, layer, range(2 if small else 8), steps=4 if small else 128, seed=seed,
                               size=64 if small else None)
    save("11_neurons.png", r.extra["grid"])

    # 12. Multifaceted visualization: cluster a class's images by their features (k-means)
    #     and start one visualization from each cluster's mean image. Here four views of the
    #     cat; with many photos of a class, each facet is one way the class looks.
    crops = [photo, photo[:, ::-1], photo[photo.shape[0] // 5:], photo[:, photo.shape[1] // 5:]]
    r = S.multifaceted(bundle, cls("tabby cat", 1), crops, k=2, steps=4 if small else 128, seed=seed)
    save("12_multifaceted.png", hstack([caption(im, f"facet {i}: {n} views, p={p:.2f}") for i, (im, n, p) in
                                        enumerate(zip(r.images, r.extra["counts"], r.extra["probability"]))]))

    # 13. Better priors. (a) The decorrelated Fourier image with transformation robustness
    #     (random pad, roll, scale, rotate before each step), composed by hand from the
    #     parts: an objective, a parameterization, transforms, the loop. (b) A generator's
    #     latent code instead of pixels: pass your own trained decoder (GAN, VAE); offline
    #     there is none, so an untrained one stands in (its convolutions are the prior).
    obj = S.class_logit(flamingo) - 1e-3 * S.l2()
    for param, label in ((S.fourier(decay_power=1.5), "Fourier"), (S.latent(untrained_generator(seed)), "latent")):
        r = S.optimize(bundle, obj, param=param, transforms=S.transforms.standard(8), steps=steps, optimizer=0.05,
                       seed=seed)
        p = bundle.predict(r.images)[0, bundle.class_index(flamingo)]
        save(f"13_class_{label.lower()}.png", caption(r.image, f"{label}: p={p:.2f}"))

    # 14. Fooling image: ascend another class's logit from the photo until the model
    #     predicts it; the change is a few grey levels. FGSM: one signed step of eps grey
    #     levels; PGD: signed steps projected into the eps ball.
    goldfish = cls("goldfish", 1)
    f = S.fooling_image(bundle, photo, goldfish, max_steps=8 if small else 200, seed=seed)
    print(f"fooling image: success {f.success} after {f.steps} steps, p({bundle.class_name(f.target)}) "
          f"{f.probability:.2f}, L2 {f.l2:.1f}, L-inf {f.linf:.0f} grey levels")
    save("14_fooling_image.png", f.image)
    save("14_fooling_pair.png", hstack([caption(f.original, bundle.class_name(f.original_class)),
                                        caption(f.image, f"{bundle.class_name(f.target)} {f.probability:.0%}"),
                                        caption(f.difference, f"difference x{f.magnification:.0f}")]))
    images = bundle.load_images([photo])
    adv = S.fgsm(bundle, images, eps=2)                    # untargeted: away from the model's own class
    save("14_fgsm.png", caption(adv.images[0], f"FGSM eps 2: {bundle.class_name(adv.classes[0])}"))
    adv = S.pgd(bundle, images, eps=8, alpha=2, steps=2 if small else 10, target=goldfish, seed=seed)
    save("14_pgd.png", caption(adv.images[0], f"PGD eps 8: {bundle.class_name(adv.classes[0])}"))

    # 15. DeepDream: maximize 0.5 ||a||^2 of mid-level layers with jitter, L1-normalized steps
    #     and octaves (coarse to fine, detail re-injected), on the photo at its own size.
    dream_photo = resize(photo, (96, 144)) if small else photo
    d = S.deepdream(bundle, dream_photo, octaves=2 if small else 4, steps_per_octave=2 if small else 10, seed=seed)
    save("15_deepdream.png", d.image)

    # 16. Feature inversion: the image whose activations at a layer match the photo's, from
    #     noise, with total variation (L-BFGS). The strip inverts one layer per block: early
    #     layers give the photo back, deep ones keep only what the class needs.
    net = S.loss_network(bundle)                           # the model's content / style / inversion layers
    r = S.invert_features(bundle, photo, net.content_layer, steps=4 if small else 200, seed=seed)
    save("16_inversion.png", caption(r.image, f"{net.content_layer}: PSNR {r.extra['psnr']:.1f} dB"))
    strip_layers = list(net.inversion_layers)[:2] if small else None
    r = S.inversion_strip(bundle, photo, strip_layers, steps=2 if small else 200, size=64 if small else 150, seed=seed)
    save("16_inversion_strip.png", r.extra["strip"])

    # 17. Texture synthesis: match the Gram matrices of a texture at several layers, from
    #     noise; the output can be any size, here larger than the source and not square.
    source = resize(load_image("mosaic"), (48, 48) if small else (128, 128))
    t = S.synthesize_texture(bundle, source, size=(48, 64) if small else (256, 384), steps=4 if small else 200,
                             seed=seed)
    save("17_texture.png", hstack([caption(source, "source"), caption(t.image, "synthesized")]))

    # 18. Style transfer: content loss at one deep layer + Gram (style) loss at several + TV.
    #     Two styles blended by weight; the content's colours kept; a larger style scale;
    #     coarse to fine for high resolution; and Adam instead of L-BFGS.
    content = resize(photo, (64, 96)) if small else photo
    few = 2 if small else 300
    runs = {
        "blend": dict(styles=["strokes", "mosaic"], style_weights=(0.6, 0.4)),
        "colors": dict(styles="strokes", preserve_colors=True),
        "scale": dict(styles="strokes", style_scale=2.0),
        "coarse_to_fine": dict(styles="mosaic", sizes=(48, 96) if small else (256, 512), steps=(2, 2) if small else
                               (200, 100)),
        "adam": dict(styles="strokes", optimizer="adam", steps=4 if small else 600),
    }
    for name, options in runs.items():
        options.setdefault("steps", few)
        p = S.style_transfer(bundle, content, seed=seed, **options)
        save(f"18_style_{name}.png", caption(p.image, f"{name}: {p.steps} steps"))



def untrained_generator(seed, code=(28, 28, 16), width=32):
    """A decoder from a ``code`` tensor to a 224x224 image in -1..1 (tanh), untrained: a
    stand-in for your trained generator (latent() resizes its images to the model's input
    size). Even untrained, its upsampling convolutions limit which images it can draw."""
    import keras  # imported after tfviz, which keeps TensorFlow's start-up messages quiet
    keras.utils.set_random_seed(seed)
    layers, init = keras.layers, "he_normal"              # keeps the output's spread: not a flat grey
    return keras.Sequential([keras.Input(code)]
                            + [layers.Conv2DTranspose(width, 4, 2, "same", activation="relu", kernel_initializer=init)
                               for _ in range(3)]
                            + [layers.Conv2D(3, 3, padding="same", activation="tanh", kernel_initializer=init)])

if __name__ == "__main__":
    try:
        main()
    except tfviz.TfvizError as exc:       # offline, an unknown layer or class, a bad image: one line
        sys.exit(f"error: {exc}")
