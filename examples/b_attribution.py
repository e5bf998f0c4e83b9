"""Section B of docs/methods.md, which pixels matter: (6) occlusion, (7) saliency, (8) guided
backprop and deconvnet, (9) SmoothGrad, integrated gradients, the CAM family and the other
gradient methods, and (10) the trust checks that say which map to believe (deletion and
insertion AUC, the model-randomization check).

    python examples/b_attribution.py [--photo chelsea] [--out DIR] [--model NAME_OR_PATH] [--smallest]

Every method explains the model's top-1 class for one photo (efficientnet_lite0 on the
bundled cat unless ``--model`` names another model) and is written as input | map |
overlay, plus one figure of all of them. About 2.5 minutes on 2 CPU cores with the default
settings (Score-CAM over every channel and the trust checks are the long parts); about 50 s
with ``--smallest`` (2 noise samples, integrated gradients to 5 % completeness, a 4 x 4
occlusion grid, 4 Score-CAM channels, 4-step trust curves for two methods), nearly all of
it tracing each method's program once. Writes PNGs into ``--out`` (default
``tfviz-out/examples/b``).
"""
import argparse
import os
import sys

import numpy as np

import tfviz
from tfviz import attribution as A
from tfviz.default_layers import cam_layer
from tfviz.images import PictureSaver
from tfviz.inspect import activation_maps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--photo", default="chelsea", help="A path or a bundled photo's name.")
    ap.add_argument("--out", default=os.path.join("tfviz-out", "examples", "b"))
    ap.add_argument("--model", default="efficientnet_lite0",
                    help="keras.applications name (vgg16, ...) or a .keras/.h5 file")
    ap.add_argument("--preprocess", choices=["0-1", "-1-1", "caffe", "torch", "raw"],
                    help="Input range of a --model file when tfviz cannot infer it.")
    ap.add_argument("--smallest", action="store_true", help="Smallest settings: a quick run-through.")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    small = args.smallest
    save = PictureSaver(args.out)                   # save(name, picture): a line per picture, with its seconds

    bundle = tfviz.load_model(args.model, preprocess=args.preprocess)
    img = bundle.load_images([args.photo])                 # uint8 [1, H, W, 3] at the model's input size
    (target, name, prob), = bundle.top_k(img, k=1)[0]      # every map below explains this class
    print(f"{args.photo}: top-1 {name} (class {target}), probability {prob:.1%}")
    maps = {}

    def show(number, method, m):                           # input | map | overlay, captioned
        maps[method] = m[0]
        save(f"{number}_{method}.png", A.panel(img[0], m[0], f"{method}: {name}"))

    # 6. Occlusion: slide a patch filled with the image's mean colour over the image; the
    #    map is the drop of the class logit, many occluded copies per forward batch. The
    #    default "incremental" inference recomputes only what each patch can change; for the
    #    16 copies of --smallest, forwarding them whole ("full") is cheaper to set up.
    patch = bundle.input_size[0] // (4 if small else 7)
    occ = dict(patch=patch, stride=patch if small else patch // 2, fill="mean",
               inference="full" if small else "incremental")
    show(6, "occlusion", A.occlusion(bundle, img, target, **occ))

    # 7. Saliency: max over colour channels of |d logit / d pixel| (a final softmax is
    #    bypassed; the scores are logits).
    sal = A.saliency(bundle, img, target)
    show(7, "saliency", sal)
    print(f"saliency: max |d logit / d input| {sal.max():.4g}")

    # 8. Guided backprop and deconvnet: backward through ReLUs that pass only positive
    #    gradients (guided: only where the forward input was positive), on a copy of the
    #    model; your model is never changed. They work for an intermediate unit too: here
    #    the strongest channel of the last convolutional layer.
    show(8, "guided_backprop", A.guided_backprop(bundle, img, target))
    show(8, "deconvnet", A.deconvnet(bundle, img, target))
    layer = cam_layer(bundle)
    channel = int(np.argmax(activation_maps(bundle, img[0], layer).mean(axis=(0, 1))))
    unit = A.guided_backprop(bundle, img, (layer, channel))
    save("8_guided_backprop_unit.png", A.panel(img[0], unit[0], f"guided backprop: {layer}:{channel}"))

    # 9. SmoothGrad (maps averaged over noisy copies; its squared and VarGrad variants),
    #    integrated gradients (whose attributions add up to f(x) - f(black), completeness),
    #    Grad-CAM and guided Grad-CAM, and the methods today's libraries add: Grad-CAM++,
    #    Layer-CAM, Score-CAM, input x gradient, GradientSHAP and DeepLIFT. Same call shape.
    samples = 2 if small else 25
    show(9, "smoothgrad", A.smoothgrad(bundle, img, target, samples=samples, noise=0.15, seed=args.seed))
    show(9, "smoothgrad_sq", A.smoothgrad(bundle, img, target, samples=samples, variant="smoothgrad_sq",
                                          seed=args.seed))
    show(9, "vargrad", A.smoothgrad(bundle, img, target, samples=samples, variant="vargrad", seed=args.seed))
    ig, delta = A.integrated_gradients(bundle, img, target, baseline="black", steps="auto",
                                       tol=0.05 if small else 0.01, max_steps=32 if small else 256,
                                       return_delta=True)
    show(9, "integrated_gradients", ig)
    logits = bundle.logits(bundle.preprocess(np.concatenate([img, np.zeros_like(img)]))).numpy()[:, target]
    diff = logits[0] - logits[1]                           # f(x) - f(black), what the attributions must add up to
    print(f"integrated gradients: attributions sum to {ig[0].sum():.4f}, f(x) - f(black) = {diff:.4f}, "
          f"completeness error {delta[0]:+.4f}")
    show(9, "grad_cam", A.grad_cam(bundle, img, target))                  # layer=None: the last conv layer
    show(9, "guided_grad_cam", A.guided_grad_cam(bundle, img, target))
    show(9, "grad_cam_plus_plus", A.grad_cam_plus_plus(bundle, img, target))
    show(9, "layer_cam", A.layer_cam(bundle, img, target))
    show(9, "score_cam", A.score_cam(bundle, img, target, max_channels=4 if small else None))
    show(9, "input_x_gradient", A.input_x_gradient(bundle, img, target))
    show(9, "gradient_shap", A.gradient_shap(bundle, img, target, samples=samples, seed=args.seed))
    dl, dl_delta = A.deeplift(bundle, img, target, baseline="black", return_delta=True)
    show(9, "deeplift", dl)
    print(f"deeplift: attributions sum to {dl[0].sum():.4f}, f(x) - f(black) = {diff:.4f}, "
          f"completeness error {dl_delta[0]:+.4f}")
    save("all_methods.png", A.comparison_figure(img[0], maps, title=f"{name} ({prob:.0%}) | {bundle.name}",
                                                size=112 if small else 224))

    # 10. Trust checks. Deletion: remove the pixels a map ranks highest first; a faithful
    #     map makes the probability fall fast (low area). Insertion: add them to a blurred
    #     copy (high area is good). Randomization: re-initialize the top layers of a clone;
    #     a map that explains the model must change (low rank correlation).
    steps = 4 if small else 50
    print(f"{'method':<22s} deletion AUC (lower better)  insertion AUC (higher better)  randomization (lower better)")
    checked = ("saliency", "grad_cam") if small else ("saliency", "guided_backprop", "integrated_gradients",
                                                     "grad_cam", "occlusion")
    for method in checked:
        options = occ if method == "occlusion" else {}
        dele = A.deletion_auc(bundle, img, target, maps[method][None], steps=steps)[0]
        ins = A.insertion_auc(bundle, img, target, maps[method][None], steps=steps)[0]
        rnd = A.randomization_check(bundle, img, target, A.METHODS[method], layers=1 if small else 3,
                                    seed=args.seed, **options)
        print(f"{method:<22s} {dele:27.3f}  {ins:29.3f}  {rnd.final:28.3f}")


if __name__ == "__main__":
    try:
        main()
    except tfviz.TfvizError as exc:       # offline, an unknown layer or class, a bad image: one line
        sys.exit(f"error: {exc}")
