"""examples/{a,b,c,d}_*.py -- one script per section of docs/methods.md -- run as a reader runs
them (``python examples/X.py --smallest``), in-process, on the offline defaults: each
writes its pictures, every picture decodes to a non-constant image, and one result per
script is checked for what the method promises. ``--model`` takes a saved model file.
B, C and D on efficientnet_lite0 run in the slow tier (19-55 s each, tracing); the default
tier runs them on a small saved model instead.

The scripts' ``tfviz.load_model()`` calls get the session's built-in bundles (the same
weights, and the programs other tests traced on them), as the README tests do."""
import os
import re
import runpy
import sys

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")

PICTURES = {
    "a_looking_inside.py": ["1_filters_first_layer", "1_filters_deeper", "2_activations",
                            "2_activations_shared_scale", "3_patches", "4_neighbors_features", "4_neighbors_pixels",
                            "5_embedding_pca", "5_embedding_tsne"],
    "b_attribution.py": ["6_occlusion", "7_saliency", "8_guided_backprop", "8_deconvnet", "8_guided_backprop_unit",
                         "9_smoothgrad", "9_smoothgrad_sq", "9_vargrad", "9_integrated_gradients", "9_grad_cam",
                         "9_guided_grad_cam", "9_grad_cam_plus_plus", "9_layer_cam", "9_score_cam",
                         "9_input_x_gradient", "9_gradient_shap", "9_deeplift", "all_methods"],
    "c_synthesis.py": ["11_class_pixel", "11_neurons", "12_multifaceted", "13_class_fourier", "13_class_latent",
                       "14_fooling_image", "14_fooling_pair", "14_fgsm", "14_pgd", "15_deepdream", "16_inversion",
                       "16_inversion_strip", "17_texture", "18_style_blend", "18_style_colors", "18_style_scale",
                       "18_style_coarse_to_fine", "18_style_adam"],
    "d_fast_style.py": ["19_stylized", "19_pair", "20_styles", "21_texture"],
}


def _share_built_in_models(monkeypatch):
    """``tfviz.load_model("efficientnet_lite0" | "digits_cnn")`` (no other option set)
    returns the session's bundle; anything else loads as written."""
    import tfviz
    from tfviz.cli.common import load_bundle
    real = tfviz.load_model

    def load_model(spec="efficientnet_lite0", **options):
        if spec in ("efficientnet_lite0", "digits_cnn") and not any(v is not None for v in options.values()):
            return load_bundle(spec)
        return real(spec, **options)
    monkeypatch.setattr(tfviz, "load_model", load_model)


def run_example(name, out, monkeypatch, capsys, *extra):
    """Run ``examples/NAME --smallest --out OUT EXTRA...`` as ``__main__``; its stdout."""
    path = os.path.join(EXAMPLES, name)
    monkeypatch.setattr(sys, "argv", [path, "--smallest", "--out", str(out), *extra])
    _share_built_in_models(monkeypatch)
    runpy.run_path(path, run_name="__main__")
    return capsys.readouterr().out


def check_pictures(name, out, stdout):
    """Every expected PNG was written, reported on its own line, and is a real picture."""
    written = sorted(f[:-4] for f in os.listdir(out) if f.endswith(".png"))
    assert written == sorted(PICTURES[name])
    for stem in PICTURES[name]:
        path = os.path.join(str(out), stem + ".png")
        assert re.search(rf"^wrote {re.escape(path)}  \(\d+\.\d s\)$", stdout, re.M), stem
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"))
        assert arr.shape[0] > 8 and arr.shape[1] > 8, stem
        assert arr.min() < arr.max(), f"{stem}.png is constant"


def test_a_looking_inside(tmp_path, monkeypatch, capsys, lite0, digits):
    out = run_example("a_looking_inside.py", tmp_path, monkeypatch, capsys)
    check_pictures("a_looking_inside.py", tmp_path, out)
    # digits_cnn's features know what a digit is: their nearest neighbours share its label
    agree = {m[0]: float(m[1]) for m in re.findall(r"^(\w+): label agreement of the 5 nearest neighbours ([\d.]+)%",
                                                   out, re.M)}
    assert agree["features"] >= 95 and agree["features"] >= agree["pixels"], agree
    assert "receptive field of relu4: size (20, 20), stride (4, 4)" in out
    assert {"features.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt"} <= \
        set(os.listdir(tmp_path / "projector"))


def _completeness(out, method):
    m = re.search(rf"^{method}: attributions sum to (\S+), f\(x\) - f\(black\) = (\S+), completeness error (\S+)$",
                  out, re.M)
    assert m, out
    return [float(v) for v in m.groups()]


# B, C and D on efficientnet_lite0 trace each method's program (D: its training steps
# through lite0's backward pass) once: 19-55 s a script on 2 cores even at --smallest, so
# they run in the slow tier; the default tier runs the same scripts on a small model file
# (test_model_file; D in 11 s instead of 19 s).
@pytest.mark.slow
def test_b_attribution(tmp_path, monkeypatch, capsys, lite0):
    out = run_example("b_attribution.py", tmp_path, monkeypatch, capsys)
    check_pictures("b_attribution.py", tmp_path, out)
    assert "chelsea: top-1 Egyptian Mau (class 285)" in out
    # the top class's saliency map is not zero, and integrated gradients add up to
    # f(x) - f(black) within the 5 % its --smallest setting asks for
    assert float(re.search(r"^saliency: max \|d logit / d input\| (\S+)$", out, re.M).group(1)) > 0
    total, diff, err = _completeness(out, "integrated gradients")
    assert abs(diff) > 1 and abs(total - diff) <= 0.05 * abs(diff) + 1e-3, (total, diff)
    assert err == pytest.approx(total - diff, abs=1e-3)
    total, diff, err = _completeness(out, "deeplift")    # exact: every nonlinearity of lite0 is element-wise
    assert abs(total - diff) <= 1e-3 * abs(diff) and abs(err) <= 1e-3 * abs(diff)
    rows = re.findall(r"^(saliency|grad_cam) +([\d.]+) +([\d.]+) +([-\d.]+)$", out, re.M)
    assert [r[0] for r in rows] == ["saliency", "grad_cam"] and all(0 <= float(r[1]) <= 1 for r in rows)


@pytest.mark.slow
def test_c_synthesis(tmp_path, monkeypatch, capsys, lite0):
    out = run_example("c_synthesis.py", tmp_path, monkeypatch, capsys)
    check_pictures("c_synthesis.py", tmp_path, out)
    check_fooled(lite0, lite0.class_index("goldfish"), tmp_path)


def check_fooled(bundle, target, out):
    """The saved fooling image (uint8, as written) moved the model towards ``target``."""
    fooled = np.asarray(Image.open(out / "14_fooling_image.png").convert("RGB"))
    probs = bundle.predict(np.stack([bundle.load_images(["chelsea"])[0], fooled]))
    assert probs[1, target] > probs[0, target] or np.argmax(probs[0]) == target, probs[:, target]


@pytest.mark.slow
def test_d_fast_style(tmp_path, monkeypatch, capsys, lite0):
    out = run_example("d_fast_style.py", tmp_path, monkeypatch, capsys)
    check_pictures("d_fast_style.py", tmp_path, out)
    check_stylized(out, tmp_path)


def check_stylized(stdout, out):
    """One forward pass keeps the photo's shape; training reported its first step."""
    import tfviz
    stylized = np.asarray(Image.open(out / "19_stylized.png"))
    assert stylized.shape == tfviz.images.sample_photo("coffee").shape
    assert re.search(r"^  step 0: loss [\d.]+$", stdout, re.M)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """A small CNN saved as .keras: three resolutions, so the style methods find content
    and style layers; inputs 0..1 (``--preprocess 0-1``), ten unnamed classes."""
    import keras
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input((32, 32, 3)), layers.Conv2D(8, 3, padding="same", name="conv1"), layers.ReLU(name="relu1"),
        layers.MaxPooling2D(name="pool1"), layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
        layers.MaxPooling2D(name="pool2"), layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3"),
        layers.GlobalAveragePooling2D(), layers.Dense(10, activation="softmax", name="classes")])
    path = str(tmp_path_factory.mktemp("model") / "tiny.keras")
    model.save(path)
    return path


@pytest.mark.parametrize("name", sorted(PICTURES))
def test_model_file(name, model_file, tmp_path, monkeypatch, capsys):
    """--model takes a saved .keras file (with --preprocess for its input range) and every
    method of the script runs on it; A's data-set methods then use the digits."""
    import tfviz
    out = run_example(name, tmp_path, monkeypatch, capsys, "--model", model_file, "--preprocess", "0-1")
    check_pictures(name, tmp_path, out)
    if name.startswith("a_"):
        assert "features: label agreement" in out and (tmp_path / "projector" / "sprite.png").exists()
    elif name.startswith("b_"):
        assert re.search(r"^chelsea: top-1 (\d) \(class \1\)", out, re.M), out   # no class names: the index
        total, diff, _ = _completeness(out, "integrated gradients")
        assert abs(total - diff) <= 0.05 * abs(diff) + 1e-4, (total, diff)
    elif name.startswith("c_"):
        check_fooled(tfviz.load_model(model_file, preprocess="0-1"), 1, tmp_path)  # no "goldfish": class 1
    else:
        check_stylized(out, tmp_path)


@pytest.mark.parametrize("name", ["a_looking_inside.py", "b_attribution.py", "c_synthesis.py", "d_fast_style.py"])
def test_a_model_that_does_not_load_is_one_error_line(name, tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        run_example(name, str(tmp_path / "out"), monkeypatch, capsys, "--model", str(tmp_path / "nope.keras"))
    assert str(exc.value.code).startswith("error: ") and "nope.keras" in str(exc.value.code)
    assert not (tmp_path / "out").exists()
