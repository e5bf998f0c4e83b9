"""What every command has in common (README, "The command line"): bundled photo names,
one output folder, output locations checked before any work, exit codes, Ctrl-C, one-line
messages, progress lines, and quiet imports."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cli_helpers import ctrl_c_on_third_step, run_cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a command loads a model: for errors that must come first."""
    import tfviz.cli.common as common

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the command line was checked")
    monkeypatch.setattr(common, "load_bundle", boom)


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


# ------------------------------------------------------------------ bundled photo names
def test_bundled_photo_names_work_as_images(here, lite0, capsys):
    code, out, err = run_cli(["predict", "coffee", "rocket.jpg", "-k", "1"], capsys)
    assert code == 0, err
    assert out.splitlines()[0].startswith("coffee.jpg") and "espresso" in out.splitlines()[1]
    assert out.splitlines()[2].startswith("rocket.jpg")


def test_a_missing_image_names_the_bundled_photos_before_loading(here, no_model, capsys):
    code, out, err = run_cli(["attribute", "saliency", "cat.jpg"], capsys)
    assert code == 2 and "cat.jpg: no such file" in err and "chelsea" in err and "coffee" in err, err
    assert not os.path.exists("tfviz-out")


def test_help_says_photo_names_are_accepted(capsys):
    for cmd in (["predict"], ["attribute"], ["trust"], ["fool"], ["dream"], ["activations"], ["neighbors"]):
        code, out, _ = run_cli(cmd + ["--help"], capsys)
        out = " ".join(out.split())
        assert code == 0 and "bundled photo" in out and "chelsea" in out, cmd


# ------------------------------------------------------------------ one output convention
@pytest.mark.parametrize("argv, expect", [
    (["filters"], "tfviz-out/filters-efficientnet_lite0-stem_conv.png"),
    (["attribute", "grad_cam", "coffee"], "tfviz-out/coffee_grad_cam.png"),
    (["classviz", "flamingo", "--steps", "2"], "tfviz-out/classviz-flamingo.png"),
])
def test_every_command_writes_into_tfviz_out_by_default(argv, expect, here, lite0, capsys):
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    assert os.path.exists(expect), (_files(here), out)


def test_out_may_name_the_png_or_a_folder(here, lite0, capsys):
    assert run_cli(["filters", "-o", "mine.png"], capsys)[0] == 0
    assert run_cli(["filters", "-o", "pics"], capsys)[0] == 0
    assert _files(here) == ["mine.png", "pics/filters-efficientnet_lite0-stem_conv.png"]


# ------------------------------------------------------------------ output locations first
def test_unwritable_logdir_fails_before_anything_is_written(here, no_model, capsys):
    # /proc refuses new folders even to root
    code, out, err = run_cli(["filters", "-o", "ok.png", "--logdir", "/proc/tfviz-logs"], capsys)
    assert code == 2 and "cannot write /proc/tfviz-logs" in err, err
    assert "Errno" not in err and "Traceback" not in err
    assert _files(here) == []


def test_output_under_an_existing_file_is_one_plain_sentence(here, no_model, capsys):
    (here / "notes.txt").write_text("x")
    for argv in (["filters", "-o", "notes.txt/f.png"], ["attribute", "saliency", "--out", "notes.txt/maps"],
                 ["classviz", "flamingo", "--logdir", "notes.txt/logs"], ["filters", "-o", "notes.txt"]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and "notes.txt" in err and "is a file, not a folder" in err, (argv, err)
        assert "Errno" not in err
    assert _files(here) == ["notes.txt"]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to act as another user")
def test_permission_denied_as_a_plain_user(no_model, capsys, monkeypatch):
    # root may write anywhere: act as 'nobody' (effective uid only, restored below) against a
    # folder only root may write, in a folder nobody can reach (pytest's tmp_path is not)
    import pathlib
    import shutil
    import tempfile
    here = pathlib.Path(tempfile.mkdtemp(prefix="tfviz-perm-"))
    os.chmod(here, 0o777)
    locked = here / "locked"
    locked.mkdir(mode=0o755)
    monkeypatch.chdir(here)
    run_cli(["filters", "--help"], capsys)   # every module imported while still root
    os.seteuid(65534)
    try:
        code, out, err = run_cli(["filters", "-o", "ok.png", "--logdir", str(locked / "logs")], capsys)
        code2, _, err2 = run_cli(["filters", "-o", str(locked / "f.png")], capsys)
    finally:
        os.seteuid(0)
    assert code == 2 and f"cannot write {locked / 'logs'}: permission denied" in err, err
    assert code2 == 2 and "permission denied" in err2, err2
    try:
        assert "Errno" not in err + err2 and _files(here) == []
    finally:
        shutil.rmtree(here)


def test_an_os_error_while_running_is_one_sentence(here, lite0, capsys, monkeypatch):
    import tfviz.images

    def denied(path, img):
        raise PermissionError(13, "Permission denied", path)
    monkeypatch.setattr(tfviz.images, "save_png", denied)
    code, out, err = run_cli(["filters", "-o", "f.png"], capsys)
    assert code == 1 and err.strip() == "error: permission denied: f.png", err


# ------------------------------------------------------------------ options before models
def test_bad_option_values_fail_before_the_model_loads(here, no_model, capsys):
    for argv in (["attribute", "integrated_gradients", "--steps", "0"], ["attribute", "occlusion", "--patch", "0"],
                 ["classviz", "flamingo", "--lr", "0"], ["dream", "chelsea", "--octaves", "0"],
                 ["neurons", "block4c_add", "--channels", "7-3"], ["patches", "-c", "x"]):
        code, out, err = run_cli(argv, capsys)
        assert code == 2 and "Traceback" not in err, (argv, err)
    code, out, err = run_cli(["neurons", "block4c_add", "--channels", "7-3"], capsys)
    assert "backwards" in err


@pytest.mark.parametrize("argv", [["--debug", "predict", "/no/such.png"], ["predict", "/no/such.png", "--debug"]])
def test_debug_before_or_after_the_command(argv, capsys):
    code, out, err = run_cli(argv, capsys)
    assert code == 2 and "no such file" in err and "No such option" not in err


def test_activation_options_have_help(capsys):
    code, out, _ = run_cli(["activations", "--help"], capsys)
    text = " ".join(out.split())
    assert "--scale [tile|shared] Normalize" in text and "--cmap [gray|viridis|inferno] Colour map" in text


# ------------------------------------------------------------------ Ctrl-C
@pytest.mark.parametrize("argv, made", [
    (["classviz", "flamingo", "--steps", "50"], "tfviz-out/classviz-flamingo.png"),
    (["neurons", "block4c_add", "--channels", "0-1", "--steps", "50"], "tfviz-out/neurons-block4c_add.png"),
    (["dream", "chelsea", "--steps", "20", "--octaves", "2", "--max-side", "128"], "tfviz-out/dream-chelsea.png"),
])
def test_interrupted_synthesis_keeps_the_image_and_exits_130(argv, made, here, lite0, capsys, monkeypatch):
    ctrl_c_on_third_step(monkeypatch)
    code, out, err = run_cli(argv, capsys)
    assert code == 130, (code, err)
    assert os.path.exists(made) and "interrupted" in err and "kept the latest image" in err, err
    assert np.asarray(Image.open(made)).std() > 0


# ------------------------------------------------------------------ messages
def test_unknown_layer_messages_have_one_format(lite0, digits, capsys):
    code, _, err = run_cli(["neurons", "block4c_ad"], capsys)
    assert code == 2 and "unknown layer 'block4c_ad'; did you mean 'block4c_add'" in err
    assert "tfviz layers efficientnet_lite0" in err and err.count("'") <= 2 * 8 + 2 + 2
    code, _, err = run_cli(["activations", "--layer", "logits"], capsys)
    line = err.strip()
    assert code == 2 and "\n" not in line and len(line) < 400, line
    assert "has no spatial output" in line and "tfviz layers efficientnet_lite0 --spatial" in line
    code, _, err = run_cli(["activations", "--model", "digits_cnn", "--layer", "nosuch"], capsys)
    assert "unknown layer 'nosuch'" in err and "tfviz layers digits_cnn" in err


def test_layers_and_classes_commands_list_the_names(lite0, digits, capsys):
    code, out, _ = run_cli(["layers", "digits_cnn", "--spatial"], capsys)
    names = [l.split()[0] for l in out.splitlines()[1:]]
    assert code == 0 and names[:4] == ["image", "conv1", "bn1", "relu1"] and "features" not in names
    code, out, _ = run_cli(["classes", "--grep", "tabby"], capsys)
    assert code == 0 and out.splitlines()[1].split() == ["281", "tabby", "cat"]


def test_a_keras_file_that_is_not_a_model(here, capsys):
    (here / "notes.keras").write_text("not a model")
    code, _, err = run_cli(["predict", "--model", "notes.keras"], capsys)
    assert code == 2 and "notes.keras: not a Keras model file" in err and "not found" not in err.lower()


def test_unknown_model_lists_the_models(capsys):
    code, _, err = run_cli(["predict", "--model", "xceptoin"], capsys)
    assert "did you mean 'xception'" in err and "efficientnet_lite0" in err and "Or give" not in err


# ------------------------------------------------------------------ small images
def test_tiny_images_are_refused_and_small_ones_warned(here, lite0, capsys):
    Image.fromarray(np.full((1, 1, 3), 128, np.uint8)).save("dot.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)).save("small.png")
    code, _, err = run_cli(["predict", "dot.png"], capsys)
    assert code == 2 and "dot.png: image is 1x1 pixels, smaller than the 3x3" in err, err
    code, out, err = run_cli(["predict", "small.png", "-k", "1"], capsys)
    assert code == 0 and err.count("warning:") == 1 and "enlarged 11x to 224x224" in err, err


# ------------------------------------------------------------------ progress and quiet
def test_trust_says_what_it_is_doing_without_a_terminal(digits, capsys):
    code, out, err = run_cli(["trust", "coffee", "--model", "digits_cnn", "--methods", "saliency,grad_cam",
                              "--curve-steps", "3", "--layers", "1"], capsys)
    assert code == 0, err
    assert "[1/2] saliency" in err and "[2/2] grad_cam" in err


def test_training_digits_cnn_says_so(tmp_path, monkeypatch, capsys):
    from tfviz.zoo import digits_cnn
    monkeypatch.setenv("TFVIZ_CACHE", str(tmp_path))
    monkeypatch.setattr(digits_cnn, "train", lambda seed, progress=None: (digits_cnn.build(), 0.5))
    digits_cnn.load(seed=7)
    err = capsys.readouterr().err
    assert "tfviz: training digits_cnn" in err and "held-out accuracy 50.0%" in err
    assert os.path.exists(tmp_path / f"digits_cnn-v{digits_cnn.VERSION}-seed7.keras")


def test_offline_keras_applications_print_nothing_on_stdout(monkeypatch, capsys):
    import urllib.error

    import keras

    def offline(*a, **k):
        print("Downloading data from https://storage.googleapis.com/...")
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    code, out, err = run_cli(["predict", "--model", "resnet50"], capsys)
    assert code == 1 and out == "" and "no network" in err


def test_tfviz_quiet_keeps_tensorflow_start_up_lines_off():
    # tfviz.quiet() (what the tfviz command calls first) silences TensorFlow's import-time lines
    # the weights converted first (once per session cache): that one-time notice is tfviz's own,
    # and would otherwise depend on which test ran first
    import tfviz
    tfviz.load_model("efficientnet_lite0")
    code = "import tfviz; tfviz.quiet(); import tensorflow, keras; tfviz.load_model('efficientnet_lite0'); print('ok')"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert r.returncode == 0 and r.stdout == "ok\n", r.stderr
    assert r.stderr == "", r.stderr


def test_demo_logdir_prints_sentences(tmp_path, monkeypatch, capsys):
    # `python -m tb_plugin.demo LOGDIR`, in this process (a subprocess spends 5 s importing TensorFlow)
    import runpy
    monkeypatch.setattr(sys, "argv", ["tb_plugin.demo", str(tmp_path / "d")])
    runpy.run_module("tb_plugin.demo", run_name="__main__", alter_sys=True)
    out = capsys.readouterr().out
    assert "{" not in out and f"tfviz board {tmp_path / 'd'}" in out, out
    assert any(f.startswith("events.out.tfevents") for _, _, fs in os.walk(tmp_path / "d") for f in fs)


def test_a_refused_synthesis_prints_only_the_error(here, lite0, capsys):
    # the progress label and the logdir start with the first step, not before validation
    code, out, err = run_cli(["dream", "chelsea", "--octaves", "12", "--logdir", "logs"], capsys)
    assert code == 2 and err.startswith("error: image 451x300 is too small for 12 octaves")
    assert len(err.strip().splitlines()) == 1 and _files(here) == [] and not os.path.exists("logs")


def test_bundled_textures_are_named_like_the_photos(no_model, capsys):
    from tfviz.images import load_image, sample_photos, sample_textures
    assert set(sample_textures()) == {"brick", "grass", "gravel"}
    assert not set(sample_textures()) & set(sample_photos())   # the photos' users see no new photos
    g = load_image("gravel")
    assert g.shape == (512, 512, 3) and np.array_equal(g[..., 0], g[..., 2])   # grey, repeated to RGB
    code, out, err = run_cli(["attribute", "saliency", "cat.jpg"], capsys)
    assert code == 2 and "gravel" in err, err
