"""tfviz classviz / neurons / fool / dream on a tiny saved model: files, logs, errors."""
import glob
import json
import os

import numpy as np
import pytest

from cli_helpers import run_cli as _run
from test_synthesis import tiny_model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("model")
    path = str(d / "tiny.keras")
    tiny_model().save(path)
    classes = d / "classes.txt"
    classes.write_text("red\ngreen\nblue\n")
    img = d / "photo.png"
    from tfviz.images import save_png
    save_png(str(img), np.random.default_rng(0).integers(0, 256, (48, 64, 3)).astype(np.uint8))
    return ["--model", path, "--preprocess", "0-1", "--classes", str(classes)], str(img)


def _events(logdir):
    import tensorflow as tf
    scalars, images, params = {}, [], []
    for f in glob.glob(os.path.join(logdir, "**", "events.*"), recursive=True):
        for e in tf.compat.v1.train.summary_iterator(f):
            for v in e.summary.value:
                if v.tag.startswith("tfviz/"):
                    scalars.setdefault(v.tag, []).append(e.step)
                elif v.tag.startswith("optimization/"):
                    images.append(e.step)
                elif v.tag.startswith("params/"):
                    params.append(json.loads(tf.make_ndarray(v.tensor)[0]))
    return scalars, images, params


def test_classviz_writes_image_strip_and_logs(saved, tmp_path, capsys):
    opts, _ = saved
    out = tmp_path / "cv.png"
    code, o, err = _run(["classviz", "green", *opts, "--steps", "6", "--seed", "1", "--out", str(out),
                         "--logdir", str(tmp_path / "logs")], capsys)
    assert code in (0, None), err
    assert out.exists() and (tmp_path / "cv_snapshots.png").exists()
    assert "green (class 1): probability" in o
    scalars, images, params = _events(str(tmp_path / "logs"))
    assert scalars["tfviz/optimization/objective"] == list(range(6))
    assert scalars["tfviz/optimization/logit_1"] == list(range(6))
    assert images == [0, 1, 2, 3, 4, 5, 6]   # snapshots every 6 // 8 -> 1 step, then the final image
    assert params[0]["recipe"] == "class_visualization" and params[0]["target"] == 1


def test_neurons_fool_dream(saved, tmp_path, capsys):
    opts, img = saved
    code, o, err = _run(["neurons", "conv1", "--channels", "0-2", *opts, "--steps", "3", "--out",
                         str(tmp_path / "n.png")], capsys)
    assert code in (0, None), err
    from tfviz.images import load_image
    assert load_image(str(tmp_path / "n.png")).shape == (34, 34, 3)   # 3 tiles of 16 in a 2x2 grid
    code, o, err = _run(["fool", img, "green", *opts, "--steps", "50", "--out", str(tmp_path / "f.png")], capsys)
    assert code in (0, None), err
    assert (tmp_path / "f_pair.png").exists() and (tmp_path / "f_snapshots.png").exists()
    assert "fooled: green" in o and "L-inf" in o
    code, o, err = _run(["dream", img, "--layer", "conv2", *opts, "--octaves", "2", "--steps", "2",
                         "--jitter", "2", "--out", str(tmp_path / "d.png")], capsys)
    assert code in (0, None), err
    assert load_image(str(tmp_path / "d.png")).shape == (48, 64, 3)


@pytest.mark.parametrize("argv, message", [
    (["classviz", "purple"], "unknown class 'purple'"),
    (["neurons", "conv"], "unknown layer 'conv'; did you mean"),
    (["neurons", "conv1", "--channels", "7"], "channels [7] out of range"),
    (["classviz", "red", "--steps", "0"], "Invalid value for '--steps'"),
    (["classviz", "red", "--lr", "-1"], "Invalid value for '--lr'"),
    (["dream", "IMG", "--octaves", "5"], "too small for 5 octaves"),
    (["dream", "IMG", "--layer", "hidden", "--octaves", "1"], "no spatial output"),
    (["dream", "IMG", "--step-size", "0"], "Invalid value for '--step-size'"),
])
def test_bad_input_is_one_line_and_writes_nothing(saved, tmp_path, capsys, argv, message):
    opts, img = saved
    out = tmp_path / "x.png"
    argv = [img if a == "IMG" else a for a in argv]
    code, o, err = _run([*argv, *opts, "--out", str(out)], capsys)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err and not out.exists()
