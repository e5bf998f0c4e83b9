"""``tfviz attribute`` and ``tfviz trust``, plus efficientnet_lite0 end to end."""
import glob
import json
import os

import numpy as np
import pytest
from PIL import Image

import tfviz
from cli_helpers import run_cli
from test_attribution import linear_model, small_cnn
from tfviz import attribution as A

CLASSES = ["tabby cat", "tiger cat", "espresso", "rocket"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A saved small CNN, its class-name file and two images."""
    d = tmp_path_factory.mktemp("tiny")
    model = small_cnn(seed=7)
    path = str(d / "tiny.keras")
    model.save(path)
    classes = d / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    lin = str(d / "linear.keras")
    linear_model(16, 16, classes=4).save(lin)
    imgs = []
    rng = np.random.default_rng(0)
    for name in ("one", "two"):
        p = d / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (20, 24, 3)).astype(np.uint8)).save(p)
        imgs.append(str(p))
    return {"model": path, "classes": str(classes), "images": imgs, "linear": lin}


def model_args(t, model=None):
    return ["--model", model or t["model"], "--preprocess", "0-1", "--classes", t["classes"]]


def test_attribute_writes_panels_maps_and_summaries(tiny, tmp_path, capsys):
    out, logs = tmp_path / "out", tmp_path / "logs"
    code, stdout, err = run_cli(["attribute", "saliency", *tiny["images"], *model_args(tiny), "--target", "espresso",
                                 "--out", str(out), "--logdir", str(logs)], capsys)
    assert code == 0, err
    for stem in ("one", "two"):
        png, npy = out / f"{stem}_saliency.png", out / f"{stem}_saliency.npy"
        assert png.exists() and npy.exists()
        m = np.load(npy)
        assert m.shape == (16, 16) and m.dtype == np.float32
        pic = np.asarray(Image.open(png))
        assert pic.shape[1] >= 3 * 16 and pic.shape[0] > 16      # three tiles and a caption strip
    np.testing.assert_allclose(np.load(out / "one_saliency.npy"),
                               A.saliency(A.core.as_bundle(_bundle(tiny)), tiny["images"][:1], "espresso")[0],
                               rtol=1e-5)
    # TensorBoard: the inputs once and the maps of the method, with targets and scores
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2
    files = glob.glob(str(logs / "tiny" / "events.out.tfevents.*"))
    assert len(files) == 1
    found = {}
    for rec in tf.data.TFRecordDataset(files[0]):
        ev = event_pb2.Event.FromString(rec.numpy())
        for v in ev.summary.value:
            found[v.tag] = (json.loads(v.metadata.plugin_data.content), v.metadata.plugin_data.plugin_name,
                            v.tensor.string_val)
    assert set(found) == {"attribution/inputs", "attribution/saliency"}
    meta, plugin, blobs = found["attribution/saliency"]
    assert plugin == "tfviz" and meta["kind"] == "attribution" and meta["role"] == "map"
    assert meta["method"] == "saliency" and meta["names"] == ["one", "two"] and len(blobs) == 2
    assert meta["targets"] == ["espresso", "espresso"] and meta["target_indices"] == [2, 2]
    assert all(isinstance(s, float) for s in meta["scores"]) and 0 < meta["probabilities"][0] < 1
    assert found["attribution/inputs"][0]["role"] == "input"


def _bundle(t):
    import tfviz
    return tfviz.load_model(t["model"], preprocess="0-1", class_names=t["classes"])


@pytest.mark.parametrize("method", ["guided-backprop", "deconvnet", "occlusion", "smoothgrad",
                                    "integrated_gradients", "grad_cam", "guided_grad_cam", "grad-cam-plus-plus",
                                    "layer_cam", "score_cam", "input_x_gradient", "gradient_shap", "deeplift"])
def test_attribute_every_method(tiny, tmp_path, capsys, method):
    """The saved map is the library's map for the same options: every option reaches the method."""
    extra = {"occlusion": ["--patch", "4", "--stride", "2", "--fill", "gray"],
             "smoothgrad": ["--samples", "3", "--variant", "vargrad"],
             "integrated_gradients": ["--steps", "8", "--baseline", "blur"], "grad_cam": ["--layer", "conv1"],
             "layer_cam": ["--layer", "conv1,relu2"], "score_cam": ["--max-channels", "4"],
             "gradient_shap": ["--samples", "3", "--baselines", "black,white"], "deeplift": ["--baseline", "blur"]}
    options = {"occlusion": dict(patch=4, stride=2, fill="gray"), "smoothgrad": dict(samples=3, variant="vargrad"),
               "integrated_gradients": dict(steps=8, baseline="blur"), "grad_cam": dict(layer="conv1"),
               "layer_cam": dict(layer="conv1,relu2"), "score_cam": dict(max_channels=4),
               "gradient_shap": dict(samples=3, baselines="black,white"), "deeplift": dict(baseline="blur")}
    code, stdout, err = run_cli(["attribute", method, tiny["images"][0], *model_args(tiny), "--out", str(tmp_path),
                                 *extra.get(method.replace("-", "_"), [])], capsys)
    assert code == 0, err
    name = method.replace("-", "_")
    m = np.load(tmp_path / f"one_{name}.npy")
    want = A.METHODS[name](_bundle(tiny), tiny["images"][:1], None, **options.get(name, {}))[0]
    assert m.shape == want.shape and m.shape[:2] == (16, 16) and np.abs(want).max() > 0
    np.testing.assert_allclose(m, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())


def test_attribute_all_makes_one_comparison_figure(tiny, tmp_path, capsys):
    logs = tmp_path / "logs"
    code, stdout, err = run_cli(["attribute", "all", tiny["images"][1], *model_args(tiny), "--out", str(tmp_path),
                                 "--samples", "2", "--steps", "4", "--patch", "4", "--target", "conv2:3",
                                 "--logdir", str(logs), "--run", "every method"], capsys)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["logs", "two_all.npz", "two_all.png"]
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2
    tags = set()
    for f in glob.glob(str(logs / "every method" / "events.out.tfevents.*")):
        for rec in tf.data.TFRecordDataset(f):
            tags.update(v.tag for v in event_pb2.Event.FromString(rec.numpy()).summary.value)
    every = A.methods_for(_bundle(tiny))   # every method but attention_rollout, which needs a transformer
    assert sorted(every) == sorted(set(A.METHODS) - {"attention_rollout"})
    assert tags == {"attribution/inputs"} | {f"attribution/{m}" for m in every}
    maps = np.load(tmp_path / "two_all.npz")
    assert sorted(maps.files) == sorted(every)
    fig = np.asarray(Image.open(tmp_path / "two_all.png"))
    assert fig.shape[0] > 3 * 224 and fig.shape[1] >= 3 * 224


def test_trust_prints_a_table(tiny, capsys):
    code, stdout, err = run_cli(["trust", *tiny["images"], *model_args(tiny), "--curve-steps", "5", "--layers", "2",
                                 "--samples", "2", "--steps", "4", "--patch", "4"], capsys)
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert "deletion AUC" in lines[1] and "insertion AUC" in lines[1] and "randomization" in lines[1]
    assert "ROAD MoRF" in lines[1] and "ROAD LeRF" in lines[1] and "ROAD gap" in lines[1]
    rows = {ln.split()[0]: ln.split()[1:] for ln in lines[3:]}
    assert sorted(rows) == sorted(A.methods_for(_bundle(tiny)))
    assert all(np.isfinite([float(v) for v in vals]).all() and len(vals) == 6 for vals in rows.values())
    for vals in rows.values():   # the gap is LeRF - MoRF
        assert float(vals[4]) == pytest.approx(float(vals[3]) - float(vals[2]), abs=2e-3)
    assert "randomized: predictions, conv2" in lines[0]
    code, stdout, err = run_cli(["trust", tiny["images"][0], *model_args(tiny), "--methods", "saliency,grad-cam",
                                 "--curve-steps", "4", "--layers", "1"], capsys)
    assert code == 0, err
    assert [ln.split()[0] for ln in stdout.strip().splitlines()[3:]] == ["saliency", "grad_cam"]
    # the printed figures are the report's, to 3 decimals (on the linear model, whose confident
    # prediction makes the curves -- and so --curve-steps -- matter)
    code, stdout, err = run_cli(["trust", tiny["images"][0], *model_args(tiny, tiny["linear"]), "--methods",
                                 "saliency,input-x-gradient", "--curve-steps", "4", "--layers", "1"], capsys)
    assert code == 0, err
    lines = stdout.strip().splitlines()[3:]
    lin = tfviz.load_model(tiny["linear"], preprocess="0-1", class_names=tiny["classes"])
    rows = A.trust_report(lin, tiny["images"][:1], None, ["saliency", "input_x_gradient"], steps=4, layers=1)
    assert [ln.split()[0] for ln in lines] == [r["method"] for r in rows]
    for ln, r in zip(lines, rows):
        assert [float(v) for v in ln.split()[1:]] == pytest.approx(
            [r["deletion"], r["insertion"], r["road_morf"], r["road_lerf"], r["road"], r["randomization"]], abs=5.1e-4)


def test_trust_logdir_logs_the_maps_with_their_figures(tiny, tmp_path, capsys):
    logs = tmp_path / "logs"
    code, stdout, err = run_cli(["trust", tiny["images"][0], *model_args(tiny), "--methods", "saliency,grad_cam",
                                 "--curve-steps", "4", "--layers", "1", "--logdir", str(logs), "--run", "t"], capsys)
    assert code == 0, err
    printed = {ln.split()[0]: [float(v) for v in ln.split()[1:]] for ln in stdout.strip().splitlines()[3:]}
    import tensorflow as tf
    from tensorboard.compat.proto import event_pb2
    logged = {}
    for f in glob.glob(str(logs / "t" / "events.out.tfevents.*")):
        for rec in tf.data.TFRecordDataset(f):
            for v in event_pb2.Event.FromString(rec.numpy()).summary.value:
                if v.metadata.plugin_data.content:
                    meta = json.loads(v.metadata.plugin_data.content)
                    if meta.get("role") == "map":
                        logged[meta["method"]] = meta["trust"]
    assert sorted(logged) == ["grad_cam", "saliency"]
    for name, figures in logged.items():   # the table's figures, in its order
        want = [figures[k] for k in ("deletion", "insertion", "road_morf", "road_lerf", "road", "randomization")]
        assert printed[name] == pytest.approx(want, abs=5.1e-4)
    assert "TensorBoard summaries" in err


@pytest.mark.parametrize("args, message", [
    (["saliency", "--target", "99"], "class index 99 out of range"),
    (["saliency", "--target", "tabby kat"], "did you mean 'tabby cat'"),
    (["saliency", "--target", "conv9:1"], "unknown layer 'conv9'; did you mean"),
    (["saliency", "--target", "conv1:99"], "channel 99 out of range for layer 'conv1'"),
    (["occlusion", "--patch", "99"], "patch 99x99 is larger than the image 16x16"),
    (["grad_cam", "--layer", "gap"], "Grad-CAM needs a spatial"),
    (["integrated_gradients", "--baseline", "nope"], "unknown baseline"),
    (["gradient_shap", "--baselines", "nope"], "unknown baseline"),
    (["layer_cam", "--layer", "conv1,conv9"], "unknown layer 'conv9'"),
    (["score_cam", "--layer", "gap"], "needs a spatial"),
])
def test_bad_input_is_one_line_and_writes_nothing(tiny, tmp_path, capsys, args, message):
    out, logs = tmp_path / "out", tmp_path / "logs"
    code, stdout, err = run_cli(["attribute", args[0], *tiny["images"], *model_args(tiny), "--out", str(out),
                                 "--logdir", str(logs), *args[1:]], capsys)
    assert code == 2  # a usage error
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists() and not logs.exists()


def test_cli_errors_for_model_kinds(tiny, tmp_path, capsys):
    code, _, err = run_cli(["attribute", "grad_cam", tiny["images"][0], *model_args(tiny, tiny["linear"]), "--out",
                            str(tmp_path / "o")], capsys)
    assert code == 2 and "Grad-CAM needs a convolutional layer" in err and not (tmp_path / "o").exists()
    code, _, err = run_cli(["attribute", "guided_backprop", tiny["images"][0], *model_args(tiny, tiny["linear"]),
                            "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "has no ReLU" in err and len(err.strip().splitlines()) == 1
    # non-finite gradients: sqrt at a black pixel
    import keras
    inp = keras.Input((16, 16, 3))
    sq = keras.Model(inp, keras.layers.Dense(4)(keras.layers.Flatten()(keras.ops.sqrt(inp))))
    sq.save(str(tmp_path / "sqrt.keras"))
    black = tmp_path / "black.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(black)
    code, _, err = run_cli(["attribute", "saliency", str(black), *model_args(tiny, str(tmp_path / "sqrt.keras")),
                            "--out", str(tmp_path / "o")], capsys)
    assert code == 1 and "NaN or infinite" in err  # a failure while running and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()
    code, _, err = run_cli(["attribute", "salency", tiny["images"][0]], capsys)
    assert code == 2 and "did you mean 'saliency'" in err
    code, _, err = run_cli(["attribute", "saliency", str(tmp_path / "missing.jpg"), *model_args(tiny)], capsys)
    assert code == 2 and "missing.jpg: no such file" in err
    code, _, err = run_cli(["attribute", "occlusion", tiny["images"][0], *model_args(tiny), "--stride", "0"], capsys)
    assert code == 2 and "Invalid value for '--stride'" in err


# --------------------------------------------------------------------------- efficientnet_lite0
def test_lite0_defaults_from_the_cli(lite0, tmp_path, capsys):
    """Bundled photos, top-1 class, the last spatial conv layer -- no arguments needed."""
    code, stdout, err = run_cli(["attribute", "grad_cam", "--out", str(tmp_path)], capsys)
    assert code == 0, err
    assert sorted(os.listdir(tmp_path)) == ["chelsea_grad_cam.npy", "chelsea_grad_cam.png", "coffee_grad_cam.npy",
                                            "coffee_grad_cam.png"]
    assert np.load(tmp_path / "chelsea_grad_cam.npy").shape == (224, 224)


def test_lite0_relu6_guided_backprop_and_grad_cam(lite0):
    import tfviz
    from tfviz.attribution.cam import default_layer
    from tfviz.attribution.guided import count_relus
    img = lite0.load_images([tfviz.images.sample_photo("chelsea")])
    x = lite0.preprocess(img)
    before = lite0.model.predict(x, verbose=0)
    assert count_relus(lite0.model) == 33                       # every ReLU6 layer of Lite0
    gb = A.guided_backprop(lite0, img)
    assert gb.shape == (1, 224, 224, 3) and np.abs(gb).max() > 0
    assert np.array_equal(before, lite0.model.predict(x, verbose=0))
    assert default_layer(lite0) == "top_relu"
    cam = A.grad_cam(lite0, img, "tabby cat")
    assert cam.shape == (1, 224, 224) and cam.max() > 0
    # the cat's Grad-CAM mass is on the cat (the middle of the photo), not the border
    assert cam[0, 56:168, 56:168].mean() > cam[0].mean()


@pytest.mark.parametrize("steps, rule", [("auto", "trapezoid"), ("3", "gausslegendre"), ("auto", "midpoint")])
def test_integrated_gradients_rules_from_the_cli(tiny, tmp_path, capsys, steps, rule):
    """On a linear model with a black baseline (0 in 0-1 preprocessing) integrated
    gradients are exactly input x gradient, whatever the rule and however many steps."""
    args = [tiny["images"][0], *model_args(tiny, tiny["linear"]), "--target", "2", "--out", str(tmp_path)]
    code, _, err = run_cli(["attribute", "integrated_gradients", *args, "--steps", steps, "--rule", rule,
                            "--tol", "0.001"], capsys)
    assert code == 0, err
    code, _, err = run_cli(["attribute", "input_x_gradient", *args], capsys)
    assert code == 0, err
    ig, ixg = np.load(tmp_path / "one_integrated_gradients.npy"), np.load(tmp_path / "one_input_x_gradient.npy")
    assert np.abs(ixg).max() > 0
    np.testing.assert_allclose(ig, ixg, rtol=1e-4, atol=1e-6 * np.abs(ixg).max())


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "0 is not in the range x>=1 (or 'auto')"),
    (["--steps", "many"], "'many' is not a whole number of steps or 'auto'"),
    (["--rule", "simpson"], "'simpson' is not one of"),
    (["--tol", "0"], "--tol"),
])
def test_integrated_gradients_bad_options_are_usage_errors(tiny, tmp_path, capsys, args, message):
    code, _, err = run_cli(["attribute", "integrated_gradients", tiny["images"][0], *model_args(tiny),
                            "--out", str(tmp_path / "out"), *args], capsys)
    assert code == 2 and message in err, err
    assert not (tmp_path / "out").exists()


def test_help_names_every_method(capsys):
    # the METHOD list of `tfviz attribute --help` is written by hand: it must name every method
    code, out, _ = run_cli(["attribute", "--help"], capsys)
    text = " ".join(out.split())
    assert code == 0
    missing = [name for name in A.METHODS if name not in text]
    assert not missing, f"tfviz attribute --help does not name {missing}"
