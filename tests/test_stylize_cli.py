"""tfviz train-stylizer / stylize / train-texture on a tiny saved loss network."""
import os

import pytest

from cli_helpers import run_cli as _run


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    import keras
    d = tmp_path_factory.mktemp("stylize")
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    path = str(d / "loss.keras")
    keras.Model(inp, keras.layers.Dense(2)(x)).save(path)
    return ["--model", path, "--preprocess", "0-1"], d


def test_train_then_stylize_with_a_mix(saved, tmp_path, capsys):
    opts, _ = saved
    net = str(tmp_path / "net.keras")
    code, o, err = _run(["train-stylizer", "--style", "strokes", "--style", "mosaic", "--steps", "3",
                         "--image-size", "32", "--batch-size", "2", "--width", "0.25", "--out", net, *opts], capsys)
    assert code == 0, err
    assert "(2 styles); 3 steps" in o and os.path.exists(net)
    code, o, err = _run(["stylize", net, "chelsea", "--mix", "0=0.5,1=0.5", "--out", str(tmp_path / "o")], capsys)
    assert code == 0, err
    from tfviz.images import load_image
    assert load_image(str(tmp_path / "o" / "stylized-chelsea-mix-0x0.5-1x0.5.png")).shape == (300, 451, 3)
    code, o, err = _run(["stylize", net, "chelsea", "--style", "2", "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "style 2 out of range: this network has 2 styles (0..1)" in err
    code, o, err = _run(["stylize", net, "chelsea", "--mix", "0=1,1=-1"], capsys)
    assert code == 2 and "must sum to a positive number" in err


def test_train_texture_writes_samples(saved, tmp_path, capsys):
    opts, _ = saved
    out = str(tmp_path / "tex.keras")
    code, o, err = _run(["train-texture", "mosaic", "--steps", "2", "--image-size", "16", "--scales", "2",
                         "--width", "0.5", "--sample-size", "32,48x16", "--out", out, *opts], capsys)
    assert code == 0, err
    from tfviz.images import load_image
    assert load_image(str(tmp_path / "tex_32x32.png")).shape == (32, 32, 3)
    assert load_image(str(tmp_path / "tex_48x16.png")).shape == (16, 48, 3)


def test_bad_inputs_refused_before_training(saved, tmp_path, capsys):
    opts, d = saved
    empty = tmp_path / "empty"
    empty.mkdir()
    code, o, err = _run(["train-stylizer", "--style", "strokes", "--content", str(empty), "--steps", "1", *opts],
                        capsys)
    assert code == 2 and "no images found" in err and "Traceback" not in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, o, err = _run(["train-stylizer", "--style", "strokes", "--checkpoint-dir", str(blocker / "ckpt"),
                         "--steps", "1", *opts], capsys)
    assert code == 2 and "--checkpoint-dir" in err
    ckpt = str(tmp_path / "ckpt")
    common = ["--image-size", "32", "--batch-size", "2", "--width", "0.25", "--checkpoint-dir", ckpt,
              "--checkpoint-every", "1", "--out", str(tmp_path / "n.keras"), *opts]
    assert _run(["train-stylizer", "--style", "strokes", "--steps", "1", *common], capsys)[0] == 0
    before = {f: os.stat(os.path.join(ckpt, f)).st_mtime_ns for f in os.listdir(ckpt)}
    code, o, err = _run(["train-stylizer", "--style", "strokes", "--style", "mosaic", "--steps", "2", *common],
                        capsys)
    assert code == 2 and "does not fit this network" in err    # a two-style network: refused, the checkpoint kept
    assert {f: os.stat(os.path.join(ckpt, f)).st_mtime_ns for f in os.listdir(ckpt)} == before

