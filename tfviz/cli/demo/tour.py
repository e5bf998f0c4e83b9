"""What ``tfviz demo`` runs: every method of the lecture on the built-in offline defaults, in one run.

The demo is a list of :class:`Step` s, one per method. Each step is one or two ``tfviz``
command lines, run in this process (so the models load once and their traced programs
are shared), each into its own folder under the demo's output folder and with
``--logdir`` for the tfviz TensorBoard tab. After every step the gallery ``index.html``
is rewritten (atomically): one section per method with its pictures, a caption saying
what it shows and which paper it comes from, and the exact command line and Python call
that remake it. A step that fails is reported in its section and in the summary; the
others still run.

``quick=True`` runs every method at reduced steps and sizes (under 2 minutes on 2 CPU
cores, the first run converting efficientnet_lite0's weights and training shapes_segmenter
included: 93 s measured); the full run uses settings near each
command's own, trimmed where a default would not fit in 15 minutes (about 12 minutes).
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import io
import json
import os
import shlex
import shutil
import sys
import time
import traceback

import click
from PIL import Image

from ...utils import OptionError, atomic_path, cache_dir
from ..common import Interrupted, error_line, load_bundle

#: The sections, in the lecture's order (docs/methods.md A-D; C split into optimization and style).
SECTIONS = {
    "inside": "A. Looking inside: weights, activations, data sets",
    "attribution": "B. Which pixels matter: attribution",
    "synthesis": "C. Images made by gradient ascent",
    "style": "C. Matching a network's statistics: inversion, texture, style",
    "fast-style": "D. Fast feed-forward stylization",
    "concepts": "E. Concepts: what a class depends on, in people's terms",
}

#: Shown once at the top of the gallery; every step's Python call runs after it.
PREAMBLE = """\
import tfviz
from tfviz import attribution, inspect, stylize, synthesis
from tfviz.images import load_image, save_png
bundle = tfviz.load_model()              # efficientnet_lite0, offline
digits = tfviz.load_model("digits_cnn")  # shipped with tfviz, trained by its recipe
data = tfviz.data.digits()               # scikit-learn's 1,797 digits
"""


@dataclasses.dataclass
class Step:
    """One method of the demo: ``commands`` are ``tfviz`` argument lists (without the
    word ``tfviz``); ``python`` is the equivalent call after :data:`PREAMBLE`; ``setup``,
    when given, runs first and writes the commands' input (the segmentation step's scene)."""
    name: str
    section: str
    title: str
    what: str
    paper: str
    commands: list
    python: str
    status: str = "pending"          # pending | ok | failed | interrupted
    error: str = ""
    seconds: float = 0.0
    pictures: list = dataclasses.field(default_factory=list)
    show_output: bool = False        # the gallery shows what the commands printed (a table)
    output: str = ""
    setup: object = dataclasses.field(default=None, repr=False)  # a callable; not in summary.json


def _fmt(quick, small, full):
    return small if quick else full


def steps(out: str, logdir: str, quick: bool = False, stylizer: str | None = None) -> list[Step]:
    """The demo's steps, with their output folders under ``out`` and TensorBoard data in
    ``logdir``. ``stylizer``: a network from ``tfviz train-stylizer`` to show instead of
    training one (the full run also reuses the one it trained last time, kept in the
    tfviz cache)."""
    q = quick

    def d(name):
        return os.path.join(out, name)

    def lg(*args):
        return [*args, "--logdir", logdir]

    s = []

    def add(name, section, title, what, paper, commands, python, show_output=False, setup=None):
        s.append(Step(name, section, title, what, paper, [[str(a) for a in c] for c in commands], python,
                      show_output=show_output, setup=setup))

    # ----------------------------------------------------------------------- A
    add("filters", "inside", "Filter grid",
        "The 32 first-layer kernels of efficientnet_lite0, each 3x3x3 kernel drawn as a small RGB "
        "image: oriented edges and colour blobs.",
        "Krizhevsky et al. 2012",
        [lg("filters", "--upsample", 12, "-o", d("filters"))],
        "save_png('filters.png', inspect.filter_grid(bundle, upsample=12))")
    lim = _fmt(q, 32, 64)
    add("activations", "inside", "Activation maps",
        f"The {lim} strongest channels of an early convolution for the cat photo, each map normalized on its own.",
        "Yosinski et al. 2015",
        [lg("activations", "chelsea", "--limit", lim, "-o", d("activations"))],
        f"layer = tfviz.default_layers.conv_layer_at(bundle, 0.25)\n"
        f"save_png('activations.png', inspect.activation_grid(bundle, load_image('chelsea'), layer, limit={lim}))")
    add("patches", "inside", "Maximally activating patches",
        "For 8 channels of digits_cnn's relu4, the 8 digits that excite each channel most, cropped to "
        "the exact receptive field of the position that fired.",
        "Zeiler & Fergus 2014; Springenberg et al. 2015",
        [lg("patches", "--layer", "relu4", "-c", "0-7", "-k", 8, "-o", d("patches"))],
        "res = inspect.max_activating_patches(digits, data, 'relu4', channels=range(8), k=8)\n"
        "save_png('patches.png', inspect.patch_grid(res))")
    add("neighbors", "inside", "Nearest neighbours",
        "Query digits and their 5 nearest neighbours by the last layer's features (left) and by raw pixels "
        "(right): features match what the digit is, pixels match where the ink is.",
        "Krizhevsky et al. 2012",
        [lg("neighbors", "-o", d("neighbors"))],
        "idx, dist = inspect.nearest_neighbors(digits, data.take(range(8)), data, k=5)")
    n = _fmt(q, 600, None)
    add("embed", "inside", "t-SNE map",
        f"{'600' if q else 'All 1,797'} digits placed by t-SNE of their pre-classifier features, one "
        "thumbnail per grid cell: the ten digits fall into ten islands. The Projector files are in the logs.",
        "van der Maaten & Hinton 2008",
        [lg("embed", "--cell", 16, *(["--limit", n] if n else []), "-o", d("embed"))],
        "xy = inspect.embed(digits, data, method='tsne')\n"
        "save_png('embed.png', inspect.thumbnail_map(xy, data, cell=16))")

    # ----------------------------------------------------------------------- B
    def attr(name, title, what, paper, opts=(), py_opts=""):
        add(name, "attribution", title, what, paper,
            [lg("attribute", name, "coffee", *opts, "-o", d(name))],
            f"img = bundle.load_images([load_image('coffee')])\n"
            f"m = attribution.{name}(bundle, img{py_opts})[0]   # top-1 class\n"
            f"save_png('{name}.png', attribution.panel(img[0], m))")
    attr("occlusion", "Occlusion",
         "How much the espresso score drops when a grey patch hides each part of the photo.",
         "Zeiler & Fergus 2014")
    attr("saliency", "Saliency map",
         "The gradient of the espresso logit with respect to each pixel (largest over colour channels).",
         "Simonyan et al. 2014")
    attr("guided_backprop", "Guided backpropagation",
         "The gradient with only positive signals passed back through every ReLU: sharp edges of the "
         "evidence.", "Springenberg et al. 2015")
    if not q:
        attr("deconvnet", "Deconvnet",
             "Positive gradients passed back regardless of the forward pass; without max pooling it "
             "hardly depends on the image.", "Zeiler & Fergus 2014")
    smp = _fmt(q, 8, 25)
    attr("smoothgrad", "SmoothGrad", f"Saliency averaged over {smp} noisy copies of the photo.",
         "Smilkov et al. 2017", ["--samples", smp], f", samples={smp}")
    ig = _fmt(q, 16, 50)
    attr("integrated_gradients", "Integrated Gradients",
         f"Gradients averaged along the path from a black image to the photo ({ig} steps); the map "
         "sums to the change of the logit.", "Sundararajan et al. 2017", ["--steps", ig], f", steps={ig}")
    attr("grad_cam", "Grad-CAM",
         "The last convolutional layer's channels weighted by their gradients: where the class is.",
         "Selvaraju et al. 2017")
    if not q:
        attr("ablation_cam", "Ablation-CAM",
             "Each channel of the last convolutional layer weighted by how much the espresso score drops "
             "when that channel is zeroed: no gradients, only the layers above it re-run.",
             "Desai & Ramaswamy 2020")
        attr("lrp", "Layer-wise relevance propagation",
             "The espresso score handed back layer by layer, each layer sharing its relevance among its "
             "inputs by a rule (here zennit's EpsilonGammaBox composite): red pixels raise the score, blue "
             "ones lower it, and together they add up to the score, less what the biases absorb.",
             "Bach et al. 2015; Montavon et al. 2019", ["--composite", "epsilon_gamma_box"],
             ", composite='epsilon_gamma_box'")
    if not q:
        attr("kernel_shap", "KernelSHAP over superpixels",
             "The photo cut into about 50 SLIC superpixels; each superpixel's Shapley value for the espresso "
             "logit, from 1024 coalitions of superpixels kept or replaced by their mean colour, all scored in "
             "one traced program: the values add up to the logit's change from the all-replaced image.",
             "Lundberg & Lee 2017", ["--samples", 1024], ", samples=1024")
        add("lime", "attribution", "LIME",
            "A weighted linear model fitted to the espresso logit of 1000 copies with random superpixels "
            "replaced by their mean colour: the 5 superpixels that speak most for the class, and the 5 "
            "that speak most against it, the rest grey, as in the paper.",
            "Ribeiro et al. 2016",
            [lg("attribute", "lime", "coffee", "--samples", 1000, "-o", d("lime"))],
            "img = bundle.load_images([load_image('coffee')])\n"
            "m, info = attribution.lime(bundle, img, samples=1000, return_info=True)\n"
            "top = attribution.superpixel_picture(img[0], info['segments'][0], info['values'][0], 5, 'positive')\n"
            "save_png('lime.png', top)")
    scene = os.path.join(out, "shapes-scene.png")
    add("segmentation", "attribution", "Grad-CAM of a segmentation network",
        "Not a classifier: shapes_segmenter, a small U-Net that tfviz trains in seconds on generated "
        "scenes, paints every pixel as background, circle, square or triangle. Grad-CAM of 'circle' "
        "explains the circle's logits summed over the pixels the network paints as circle "
        "(pytorch-grad-cam's semantic segmentation target): the circle lights up, the square and the "
        "triangle stay dark. The demo draws the scene with shapes_segmenter.scene and writes it to "
        "shapes-scene.png in its output folder; --region x0,y0,x1,y1 would explain a box instead.",
        "Selvaraju et al. 2017; pytorch-grad-cam, Gildenblat et al. 2021",
        [lg("attribute", "grad_cam", scene, "--model", "shapes_segmenter", "--target", "circle",
            "-o", d("segmentation"))],
        "from tfviz.zoo import shapes_segmenter\n"
        "shapes = tfviz.load_model('shapes_segmenter')   # trained on first use (about 20 s), then cached\n"
        f"img, labels = shapes_segmenter.scene({SCENE[0]}, {list(SCENE[1])})\n"
        "m = attribution.grad_cam(shapes, img[None], 'circle')[0]   # over the pixels painted as circle\n"
        "save_png('segmentation.png', attribution.panel(img, m, size=224))",
        setup=functools.partial(write_scene, scene))
    if not q:
        add("all", "attribution", "Every method",
            "Every attribution method of tfviz on the coffee photo, side by side.",
            "see each method", [lg("attribute", "all", "coffee", "-o", d("all"))],
            "img = bundle.load_images([load_image('coffee')])\n"
            "maps = {k: attribution.METHODS[k](bundle, img)[0] for k in attribution.methods_for(bundle)}\n"
            "save_png('all.png', attribution.comparison_figure(img[0], maps))")
    methods = _fmt(q, "saliency,grad_cam", "saliency,guided_backprop,integrated_gradients,grad_cam")
    cs, ly = _fmt(q, 10, 20), _fmt(q, 1, 3)
    add("trust", "attribution", "Which map to trust",
        "Deletion / insertion AUC (remove or add pixels in the map's order), ROAD (the removed pixels "
        "filled from their neighbours, so the removal draws no shape the model could react to) and the "
        "model-randomization check (does the map change when the top layers are re-initialized?), per method.",
        "Petsiuk et al. 2018; Rong et al. 2022; Adebayo et al. 2018",
        [["trust", "coffee", "--methods", methods, "--curve-steps", cs, "--layers", ly]],
        f"img = bundle.load_images([load_image('coffee')])\n"
        f"rows = attribution.trust_report(bundle, img, None, methods={methods.split(',')}, steps={cs}, layers={ly})",
        show_output=True)

    # ----------------------------------------------------------------------- C
    st = _fmt(q, 32, 256)
    add("classviz", "synthesis", "Class visualization",
        f"An image the model calls 'flamingo': {st} steps of gradient ascent on the class logit in a "
        "decorrelated Fourier parameterization with jitter, scale and rotation.",
        "Simonyan et al. 2014; Yosinski et al. 2015; Olah et al. 2017",
        [lg("classviz", "flamingo", "--steps", st, "-o", d("classviz"))],
        f"r = synthesis.class_visualization(bundle, 'flamingo', steps={st})\nsave_png('classviz.png', r.image)")
    ch, st = _fmt(q, "0-3", "0-7"), _fmt(q, 24, 128)
    add("neurons", "synthesis", "Neuron visualization",
        f"What channels {ch} of block4c_add want: one image per channel.", "Olah et al. 2017",
        [lg("neurons", "block4c_add", "--channels", ch, "--steps", st, "-o", d("neurons"))],
        f"r = synthesis.neuron_visualization(bundle, 'block4c_add', range({ch.split('-')[1]} + 1), steps={st})\n"
        f"save_png('neurons.png', r.extra['grid'])")
    add("fool", "synthesis", "Fooling image",
        "The cat photo changed by a few grey levels until the model calls it a goldfish; the difference "
        "is magnified.", "Szegedy et al. 2014; Goodfellow et al. 2015",
        [lg("fool", "chelsea", "goldfish", "-o", d("fool"))],
        "f = synthesis.fooling_image(bundle, load_image('chelsea'), 'goldfish')\n"
        "print(f.steps, f.linf)")
    oc, st = _fmt(q, 2, 4), _fmt(q, 5, 10)
    add("dream", "synthesis", "DeepDream",
        f"The cat photo with block5c_add's activations amplified over {oc} octaves.", "Mordvintsev et al. 2015",
        [lg("dream", "chelsea", "--layer", "block5c_add", "--octaves", oc, "--steps", st,
            *(["--max-side", 256] if q else []), "-o", d("dream"))],
        f"r = synthesis.deepdream(bundle, load_image('chelsea'), {{'block5c_add': 1.0}}, octaves={oc}, "
        f"steps_per_octave={st})\nsave_png('dream.png', r.image)")

    # ----------------------------------------------------------------------- C, style
    st = _fmt(q, 20, 80)
    layers = _fmt(q, "stem_relu,block2b_add,block4c_add", "stem_relu,block2b_add,block4c_add,top_relu")
    add("invert", "style", "Feature inversion",
        "The cat rebuilt from one layer's activations at a time: early layers keep the picture, deep "
        "ones only what matters for the class.", "Mahendran & Vedaldi 2015",
        [lg("invert", "chelsea", "--layers", layers, "--steps", st, "-o", d("invert"))],
        f"r = synthesis.inversion_strip(bundle, load_image('chelsea'), {layers.split(',')}, steps={st})\n"
        f"save_png('invert.png', r.extra['strip'])")
    size = _fmt(q, "160x128", "384x256")
    w, h = size.split("x")
    steps = ["--steps", 10] if q else []          # per coarse-to-fine stage; the full run: the defaults (100,100)
    add("texture", "style", "Texture synthesis",
        f"A new {size} mosaic grown from noise, coarse to fine, by matching the source's Gram matrices "
        "and histograms, its colours matched after.", "Gatys et al. 2015; Risser et al. 2017",
        [lg("texture", "mosaic", "--size", size, *steps, "-o", d("texture"))],
        f"r = synthesis.synthesize_texture(bundle, load_image('mosaic'), size=({h}, {w})"
        f"{', steps=10' if q else ''})\n"
        f"save_png('texture.png', r.image)")
    st = _fmt(q, 20, 200)
    sz = ["--size", 160] if q else []
    add("style", "style", "Style transfer",
        "The cat painted in two blended styles (0.6 strokes + 0.4 mosaic): content loss at one deep "
        "layer, Gram-matrix style loss at several, L-BFGS.", "Gatys et al. 2016",
        [lg("style", "chelsea", "strokes", "mosaic", "--style-weights", "0.6,0.4", *sz, "--steps", st,
            "-o", d("style"))],
        f"r = synthesis.style_transfer(bundle, load_image('chelsea'), [load_image('strokes'), "
        f"load_image('mosaic')],\n                             style_weights=(0.6, 0.4), steps={st})\n"
        f"save_png('style.png', r.image)")

    # ----------------------------------------------------------------------- D
    net = stylizer or os.path.join(out, "stylizer-strokes-mosaic.keras")
    st, size, batch, width = _fmt(q, 40, 200), _fmt(q, 64, 96), _fmt(q, 4, 2), _fmt(q, 0.25, 0.5)
    train = [lg("train-stylizer", "--style", "strokes", "--style", "mosaic", "--steps", st, "--image-size", size,
                "--batch-size", batch, "--width", width, "-o", net)]
    add("stylizer", "fast-style", "Fast style transfer, two styles in one network",
        "A transformer network (instance norm; conditional instance norm for the two styles) trained "
        f"{'for ' + str(st) + ' steps ' if not stylizer else ''}on the bundled photos, then the coffee "
        "photo stylized in one forward pass with the two styles mixed 50/50.",
        "Johnson et al. 2016; Ulyanov et al. 2016; Dumoulin et al. 2017",
        ([] if stylizer else train) + [["stylize", net, "coffee", "--mix", "0=0.5,1=0.5", "-o", d("stylizer")]],
        f"net = stylize.train_stylizer(bundle, ['strokes', 'mosaic'], steps={st}, image_size={size}, "
        f"batch_size={batch}, width={width})\n"
        f"save_png('stylized.png', stylize.stylize(net, load_image('coffee'), {{0: 0.5, 1: 0.5}}))")
    st, size = _fmt(q, 40, 200), _fmt(q, 64, 96)
    add("texture_net", "fast-style", "Texture network",
        "A feed-forward generator trained to turn noise into the mosaic texture, sampled at two sizes.",
        "Ulyanov et al. 2016",
        [lg("train-texture", "mosaic", "--steps", st, "--image-size", size,
            "-o", os.path.join(d("texture_net"), "texture-net-mosaic.keras"))],
        f"net = stylize.train_texture_network(bundle, load_image('mosaic'), steps={st}, image_size={size})\n"
        f"save_png('texture_net.png', stylize.generate_texture(net, 256)[0])")

    # ----------------------------------------------------------------------- E
    rs, ex = _fmt(q, 3, 10), _fmt(q, 10, 50)
    add("tcav", "concepts", "TCAV",
        "Does the class the cat photo gets depend on stripes, dots, zigzags or checkerboards, and at which "
        "layer? At each layer a logistic regression tells each concept's examples from random images; its "
        "normal is the concept activation vector, and the TCAV score is the fraction of the class's images "
        f"whose logit rises along it. Repeated against {rs} random sets and t-tested against random directions "
        "(Bonferroni over the tests); hollow bars with * are not significant. Concepts and random sets are "
        "drawn by tfviz, the class images are crops of the cat photo.",
        "Kim et al. 2018",
        [lg("concepts", "--random-sets", rs, "--examples", ex, "-o", os.path.join(d("tcav"), "tcav.png"))],
        f"from tfviz.concepts import tcav\n"
        f"r = tcav(bundle, random_sets={rs}, examples={ex})   # drawn textures, views of the cat, its top-1 class\n"
        f"print(r.table())\n"
        f"save_png('tcav.png', r.picture())",
        show_output=True)
    return s


#: the segmentation step's scene: shapes_segmenter.scene(seed, shapes)
SCENE = (0, ("circle", "square", "triangle"))


def write_scene(path):
    """Write the segmentation step's generated scene (:data:`SCENE`) to ``path``."""
    from ...images import save_png
    from ...zoo.shapes_segmenter import scene
    save_png(path, scene(*SCENE)[0])


# ---------------------------------------------------------------------------- README tour
TOUR_START, TOUR_END = "<!-- tour:start (made by docs/make_tour.py from tfviz/cli/demo/tour.py) -->", "<!-- tour:end -->"
TOUR_PICTURES = "docs/img/tour"


def tour_commands(step: Step) -> list[str]:
    """A step's command lines as a reader types them: outputs in ``tfviz-out`` (the
    default, so no ``-o``) and no ``--logdir``."""
    lines = []
    for c in step.commands:
        words, i = [], 0
        while i < len(c):
            if c[i] == "--logdir" or (c[i] == "-o" and c[i + 1].startswith("tfviz-out")):
                i += 2
                continue
            words.append(c[i])
            i += 1
        lines.append("tfviz " + shlex.join(words))
    return lines


def tour_picture(pictures: list[str]) -> str | None:
    """The picture of a step the README shows: a before/after pair when there is one (else
    LIME's top superpixels), else the first that is not a strip of snapshots."""
    for mark in ("_pair", "_top"):   # a before/after pair; LIME's picture of its top superpixels
        for p in pictures:
            if mark in os.path.basename(p):
                return p
    plain = [p for p in pictures if "snapshots" not in os.path.basename(p)]
    return (plain or pictures or [None])[0]


def tour_markdown() -> str:
    """The README's tour: for each method of the full demo, its picture, what it shows,
    the paper, the command line and the Python call (after :data:`PREAMBLE`)."""
    parts = [TOUR_START, "",
             "Every method, as `tfviz demo` runs it (the pictures are from its full run). The Python "
             "calls start from:", "", "```python", PREAMBLE.rstrip(), "```", ""]
    for key, heading in SECTIONS.items():
        parts += [f"### {heading}", ""]
        for s in steps("tfviz-out", "logs"):
            if s.section != key:
                continue
            parts += [f"**{s.title}** ({s.paper}). {s.what}", ""]
            if not s.show_output:  # a method that prints a table has no picture
                parts += [f"![{s.title}]({TOUR_PICTURES}/{s.name}.png)", ""]
            parts += ["```bash", *tour_commands(s), "```", "", "```python", s.python, "```", ""]
    return "\n".join(parts + [TOUR_END])


def cached_stylizer() -> str:
    """Where the full demo keeps the stylizer it trained, to reuse it next time."""
    return os.path.join(cache_dir(), "demo", "stylizer-strokes-mosaic.keras")


def stylizer_to_reuse() -> str | None:
    """A strokes + mosaic stylizer the full demo can show instead of training one: the
    one ``tfviz train-stylizer --style strokes --style mosaic`` saved at its default path
    (``tfviz-out/``), else the one an earlier full demo trained."""
    for path in (os.path.join("tfviz-out", "stylizer-strokes-mosaic.keras"), cached_stylizer()):
        if os.path.isfile(path):
            return path
    return None


def select(all_steps: list[Step], only: str | None) -> list[Step]:
    """The steps named by ``only`` (sections or method names, comma-separated)."""
    if not only:
        return all_steps
    names = [w.strip() for w in only.split(",") if w.strip()]
    methods = [s.name for s in steps("out", "logs")]  # the full run's: every method there is
    bad = [w for w in names if w not in list(SECTIONS) + methods]
    if bad:
        raise OptionError(f"--only: unknown section or method {', '.join(map(repr, bad))}; sections: "
                          f"{', '.join(SECTIONS)}; methods: {', '.join(methods)}")
    chosen = [s for s in all_steps if s.section in names or s.name in names]
    if not chosen:
        raise OptionError(f"--only {only}: none of these runs in the quick demo (run them without --quick)")
    return chosen


# ---------------------------------------------------------------------------- running
def run_step(step: Step, folder: str, invoke) -> None:
    """Run ``step``'s commands with ``invoke(args)`` (returns an exit code or raises),
    its output captured into ``folder/log.txt``; record status, time and pictures.
    KeyboardInterrupt is recorded and raised again."""
    os.makedirs(folder, exist_ok=True)
    log = io.StringIO()
    t0 = time.time()
    try:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            if step.setup is not None:
                step.setup()
            for args in step.commands:
                print("$ tfviz " + shlex.join(args))
                code = invoke(args)
                if code not in (None, 0):
                    raise RuntimeError(f"tfviz {args[0]} exited with {code}")
        step.status = "ok"
    except KeyboardInterrupt:
        step.status, step.error = "interrupted", "interrupted (Ctrl-C)"
        raise
    except BaseException as exc:  # noqa: BLE001  (one method failing must not stop the others)
        if isinstance(exc, (Interrupted, click.exceptions.Abort)):
            step.status, step.error = "interrupted", "interrupted (Ctrl-C)"
            raise KeyboardInterrupt from exc
        step.status = "failed"
        step.error = error_line(exc)[0].removeprefix("error: ")
        log.write(traceback.format_exc())
    finally:
        step.seconds = time.time() - t0
        step.pictures = _pictures(folder, since=t0)
        if step.show_output:
            step.output = "\n".join(line for line in log.getvalue().splitlines()
                                    if not line.startswith("$ tfviz"))[:6000]
        _write_atomic(os.path.join(folder, "log.txt"), log.getvalue())


def _pictures(folder, since):
    """The PNGs a step wrote (not older ones from an earlier run), by name."""
    out = []
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            if f.lower().endswith(".png") and os.path.getmtime(p) >= since - 1:
                out.append(p)
    return sorted(out)


def _write_atomic(path, text):
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)


# ---------------------------------------------------------------------------- gallery
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1100px;
padding:0 24px 60px;color:#1d1d1f;background:#fafafa;line-height:1.45}
h1{margin:28px 0 4px}h2{margin:40px 0 8px;border-bottom:2px solid #ddd;padding-bottom:4px}
section{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:14px 18px;margin:16px 0}
section h3{margin:0 0 6px}.paper{color:#666;font-size:0.9em}.pics{display:flex;flex-wrap:wrap;gap:10px;
margin:10px 0}.pics img{max-width:100%;max-height:420px;border:1px solid #eee;image-rendering:auto}
pre{background:#f4f4f6;padding:8px 10px;border-radius:6px;overflow-x:auto;font-size:0.85em;margin:6px 0}
.failed{border-color:#d33}.err{color:#b00;font-weight:600}.pending{opacity:0.6}.meta{color:#888;
font-size:0.85em}nav a{margin-right:12px}table{border-collapse:collapse}td{padding:2px 10px 2px 0}
"""


def _enlarge(path, least=240):
    """A style attribute that shows a small picture (a filter grid) enlarged with sharp pixels."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except OSError:
        return ""
    f = least // max(w, h)
    return f" style='width:{w * f}px;image-rendering:pixelated'" if f >= 2 else ""


def gallery_html(all_steps: list[Step], out: str, title: str, logdir: str, note: str = "") -> str:
    """The gallery page: self-contained (inline style, no script, no external URL);
    pictures are referenced by paths relative to ``out``."""
    e = html.escape

    def rel(p):
        return os.path.relpath(p, out).replace(os.sep, "/")

    failed = [s for s in all_steps if s.status == "failed"]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head>"
             f"<body><h1>{e(title)}</h1>"]
    done = sum(s.status == "ok" for s in all_steps)
    parts.append(f"<p class='meta'>{done} of {len(all_steps)} methods done{'; ' + e(note) if note else ''}. "
                 f"TensorBoard: <code>tfviz board {e(logdir)}</code></p>")
    if failed:
        parts.append("<p class='err'>Failed: " + ", ".join(f"<a href='#{s.name}'>{e(s.title)}</a>"
                                                          for s in failed) + "</p>")
    parts.append("<nav>" + "".join(f"<a href='#sec-{k}'>{e(v.split(':')[0])}</a>" for k, v in SECTIONS.items()
                                   if any(s.section == k for s in all_steps)) + "</nav>")
    parts.append("<h2>Set-up shared by the Python calls</h2><pre>" + e(PREAMBLE) + "</pre>")
    for key, heading in SECTIONS.items():
        sec = [s for s in all_steps if s.section == key]
        if not sec:
            continue
        parts.append(f"<h2 id='sec-{key}'>{e(heading)}</h2>")
        for s in sec:
            cls = {"failed": " class='failed'", "pending": " class='pending'"}.get(s.status, "")
            parts.append(f"<section id='{s.name}'{cls}><h3>{e(s.title)}</h3>"
                         f"<div>{e(s.what)} <span class='paper'>({e(s.paper)})</span></div>")
            if s.status == "failed":
                parts.append(f"<p class='err'>failed: {e(s.error)} (log: <a href='{e(s.name)}/log.txt'>"
                             f"{e(s.name)}/log.txt</a>)</p>")
            elif s.status in ("pending", "interrupted"):
                parts.append(f"<p class='meta'>{'not run yet' if s.status == 'pending' else e(s.error)}</p>")
            if s.pictures:
                parts.append("<div class='pics'>" + "".join(
                    f"<a href='{e(rel(p))}'><img src='{e(rel(p))}'{_enlarge(p)} "
                    f"alt='{e(s.title)}: {e(os.path.basename(p))}'></a>" for p in s.pictures) + "</div>")
            if s.output:
                parts.append(f"<pre>{e(s.output)}</pre>")
            cmd = "\n".join("tfviz " + shlex.join(c) for c in s.commands)
            parts.append(f"<pre>{e(cmd)}</pre><pre>{e(s.python)}</pre>")
            if s.status == "ok":
                parts.append(f"<div class='meta'>{s.seconds:.1f} s</div>")
            parts.append("</section>")
    parts.append("</body></html>\n")
    return "".join(parts)


def write_gallery(all_steps, out, title, logdir, note=""):
    path = os.path.join(out, "index.html")
    _write_atomic(path, gallery_html(all_steps, out, title, logdir, note))
    rows = [{k: v for k, v in dataclasses.asdict(s).items() if k != "setup"} for s in all_steps]
    _write_atomic(os.path.join(out, "summary.json"), json.dumps(rows, indent=1))
    return path


def run_demo(out: str, logdir: str, quick: bool = False, only: str | None = None, stylizer: str | None = None,
             invoke=None, on_step=None) -> list[Step]:
    """Run the demo's steps into ``out`` (see the module docstring). ``invoke(args)``
    runs one ``tfviz`` command (default: the click group, in this process);
    ``on_step(i, n, step, phase)`` is called for step ``i`` of ``n`` with phase ``"start"``
    and ``"end"``. Returns
    the steps with their status; the gallery is ``out/index.html``."""
    from .. import cli  # the command group (its package imports this module's command lazily)
    reuse = stylizer_to_reuse() if stylizer is None and not quick else None
    todo = select(steps(out, logdir, quick, stylizer or reuse), only)  # a bad --only: nothing written
    os.makedirs(out, exist_ok=True)
    own_cli = invoke is None
    if invoke is None:
        def invoke(args):
            return cli.main(args=args, prog_name="tfviz", standalone_mode=False)
    title = f"tfviz demo{' --quick' if quick else ''}: what a CNN has learned and why it decides"
    write_gallery(todo, out, title, logdir, "running")
    if own_cli:
        _load_models(todo)
    try:
        for i, st in enumerate(todo):
            if on_step:
                on_step(i, len(todo), st, "start")
            run_step(st, os.path.join(out, st.name), invoke)
            if st.name == "stylizer" and st.status == "ok" and not quick and not stylizer and not reuse:
                _keep_stylizer(st)
            write_gallery(todo, out, title, logdir, "running")
            if on_step:
                on_step(i, len(todo), st, "end")
    except KeyboardInterrupt:
        write_gallery(todo, out, title, logdir, "interrupted: the pictures made so far are kept")
        raise
    total = sum(s.seconds for s in todo)
    write_gallery(todo, out, title, logdir, f"{total / 60:.1f} min in all")
    return todo


#: the steps that run on digits_cnn (the data-set methods) and on shapes_segmenter; every other
#: one runs on efficientnet_lite0
DIGITS_STEPS = ("patches", "neighbors", "embed")
SHAPES_STEPS = ("segmentation",)


def _load_models(todo):
    """Load the built-in models the steps use before the first one starts, where their
    one-time work (converting efficientnet_lite0's weights, training shapes_segmenter)
    prints what it is doing instead of inside a step's log; the commands then reuse them.
    A model that does not load is left to fail in each step that uses it."""
    other = DIGITS_STEPS + SHAPES_STEPS
    names = (["efficientnet_lite0"] if any(s.name not in other for s in todo) else []) + \
        (["digits_cnn"] if any(s.name in DIGITS_STEPS for s in todo) else []) + \
        (["shapes_segmenter"] if any(s.name in SHAPES_STEPS for s in todo) else [])
    for name in names:
        try:
            load_bundle(name)
        except Exception:  # noqa: BLE001  (reported by each step that needs the model)
            pass


def _keep_stylizer(step):
    """Keep the stylizer the full run trained in the tfviz cache, for the next full run."""
    src = step.commands[0][step.commands[0].index("-o") + 1]
    with contextlib.suppress(OSError), atomic_path(cached_stylizer()) as tmp:
        shutil.copyfile(src, tmp)


def main_summary(todo, out, logdir, file=None) -> int:
    """Print the summary (one line per failed method, where to look); return the exit code."""
    file = file or sys.stdout
    failed = [s for s in todo if s.status == "failed"]
    ok = sum(s.status == "ok" for s in todo)
    total = sum(s.seconds for s in todo)
    print(f"{ok} of {len(todo)} methods done in {total / 60:.1f} min", file=file)
    for s in failed:
        print(f"  FAILED {s.name}: {s.error} (log: {os.path.join(out, s.name, 'log.txt')})", file=file)
    print(f"gallery:     {os.path.abspath(os.path.join(out, 'index.html'))}", file=file)
    print(f"TensorBoard: tfviz board {shlex.quote(logdir)}", file=file)
    return 1 if failed else 0
