"""train_stylizer on a tiny loss network: the loss falls, a killed run resumes at its
checkpoint with the optimizer state, strategies give the same losses, bad content is
refused clearly (a checkpoint of another network: tests/test_stylize_cli.py)."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import tfviz
from tfviz.stylize import StylizeError
from tfviz.stylize.training import content_files, train_stylizer
from worker_models import TINY_STYLIZE

TINY = "import keras, tfviz\n" + TINY_STYLIZE



@pytest.fixture(scope="module")
def tiny():
    scope = {}
    exec(TINY, scope)
    return scope["bundle"]


def _run(code, *args):
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_training_lowers_the_loss(tiny):
    hist = []
    model = train_stylizer(tiny, ["strokes", "mosaic"], image_size=32, batch_size=4, steps=16, width=0.25, lr=5e-3,
                           callbacks=[lambda s, l: hist.append(l["total"])])
    assert len(hist) == 16 and np.mean(hist[-3:]) < 0.8 * np.mean(hist[:3]), hist
    assert len(model.inputs) == 2 and model.training_info["start_step"] == 0


@pytest.mark.slow
def test_a_killed_run_resumes_at_its_checkpoint(tiny, tmp_path):
    ckpt = str(tmp_path / "ckpt")
    code = TINY + textwrap.dedent("""
        import sys
        from tfviz.stylize.training import train_stylizer
        train_stylizer(bundle, ["strokes"], image_size=32, batch_size=2, steps=100000, width=0.25,
                       checkpoint_dir=sys.argv[1], checkpoint_every=3)
    """)
    proc = _run(code, ckpt)
    deadline = time.time() + 240
    while not os.path.exists(os.path.join(ckpt, "ckpt-6.index")):
        assert proc.poll() is None and time.time() < deadline, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.2)
    os.kill(proc.pid, signal.SIGKILL)   # no clean shutdown: a real kill -9
    proc.wait()
    import tensorflow as tf
    last = int(tf.train.latest_checkpoint(ckpt).rsplit("-", 1)[1])
    assert last >= 6
    seen = []
    model = train_stylizer(tiny, ["strokes"], image_size=32, batch_size=2, steps=last + 2, width=0.25,
                           checkpoint_dir=ckpt, checkpoint_every=3, callbacks=[lambda s, l: seen.append(s)])
    assert seen == [last, last + 1] and model.training_info["start_step"] == last
    fresh = train_stylizer(tiny, ["strokes"], image_size=32, batch_size=2, steps=1, width=0.25)
    assert not all(np.array_equal(a, b) for a, b in zip(model.get_weights(), fresh.get_weights()))


@pytest.mark.slow
def test_strategies_give_the_same_losses():
    code = ("import tensorflow as tf\n"
            "cpu = tf.config.list_physical_devices('CPU')[0]\n"
            "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
            + TINY + textwrap.dedent("""
        import json
        from tfviz.stylize.training import train_stylizer
        out = {}
        for name, s in [("none", None), ("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
                        ("mirrored", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
            h = []
            train_stylizer(bundle, ["strokes", "mosaic"], image_size=32, batch_size=4, steps=3, width=0.125,
                           strategy=s, callbacks=[lambda step, l: h.append(l["total"])])
            out[name] = h
        print(json.dumps(out))
    """))
    proc = _run(code)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    res = json.loads(out.strip().splitlines()[-1])
    np.testing.assert_allclose(res["one"], res["none"], rtol=1e-5)
    np.testing.assert_allclose(res["mirrored"], res["none"], rtol=1e-4)


def test_content_folders(tmp_path):
    from tfviz.images import save_png
    empty = tmp_path / "empty"
    empty.mkdir()
    from tfviz.utils import ImageError
    with pytest.raises(ImageError, match="no images found"):
        content_files(str(empty))
    good = tmp_path / "photos"
    good.mkdir()
    save_png(str(good / "a.png"), np.full((20, 20, 3), 90, np.uint8))
    (good / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.warns(UserWarning, match="skipping 1 unreadable content image"):
        assert content_files(str(good)) == [str(good / "a.png")]
    with pytest.raises(StylizeError, match="1 content image.*cannot be read.*b.png"):
        content_files(str(good), strict=True)
    assert len(content_files(None)) == len(tfviz.images.sample_photos())


def test_texture_network_training_and_logs(tiny, tmp_path):
    from test_synthesis_cli import _events
    from tfviz.stylize import generate_texture
    from tfviz.stylize.training import train_texture_network
    hist = []
    model = train_texture_network(tiny, "mosaic", image_size=16, batch_size=2, steps=12, scales=3, width=0.5,
                                  lr=1e-2, callbacks=[lambda s, l: hist.append(l["total"])],
                                  logdir=str(tmp_path / "logs"), preview_every=6)
    assert np.mean(hist[-3:]) < np.mean(hist[:3]), hist
    assert generate_texture(model, (24, 40)).shape == (1, 24, 40, 3)
    scalars, images, _ = _events(str(tmp_path / "logs"))
    assert scalars["tfviz/optimization/style"] == list(range(12)) and images == [6, 12]
