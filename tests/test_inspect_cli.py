"""tfviz filters | activations | patches | neighbors | embed: outputs, logdir summaries,
and one-line errors that leave nothing half-written."""
import os

import numpy as np
import pytest
from PIL import Image

from cli_helpers import run_cli as _run


@pytest.fixture
def here(tmp_path, monkeypatch, digits):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _events(folder):
    return [f for _, _, fs in os.walk(folder) for f in fs if f.startswith("events.out.tfevents")]


def test_filters_default_model_is_lite0_first_layer(here, lite0, capsys):
    from tfviz.inspect import filter_grid
    code, out, err = _run(["filters", "-o", "f.png", "--logdir", "logs"], capsys)
    assert code == 0, err
    assert "wrote f.png" in out
    np.testing.assert_array_equal(np.asarray(Image.open(here / "f.png")), filter_grid(lite0))
    assert _events(here / "logs" / "filters-efficientnet_lite0")


def test_activations_of_a_given_image(here, digits, capsys):
    from tfviz.inspect import activation_grid
    img = np.zeros((32, 32, 3), np.uint8)
    img[8:24, 14:18] = 255                                   # a "1"
    Image.fromarray(img).save(here / "one.png")
    code, out, err = _run(["activations", "one.png", "--model", "digits_cnn", "--layer", "conv2", "--limit", "8",
                           "-o", "a.png"], capsys)
    assert code == 0, err
    np.testing.assert_array_equal(np.asarray(Image.open(here / "a.png")),
                                  activation_grid(digits, img, "conv2", limit=8))


def test_patches_on_digits_with_logdir(here, digits, capsys):
    from tfviz.inspect import max_activating_patches, patch_grid
    code, out, err = _run(["patches", "-c", "0,2", "-k", "3", "--layer", "conv2", "-o", "p.png", "--logdir", "logs"],
                          capsys)
    assert code == 0, err
    assert "receptive field 5x5 px" in err and "channel    2" in out
    expect = patch_grid(max_activating_patches(digits, "digits", "conv2", [0, 2], k=3))
    np.testing.assert_array_equal(np.asarray(Image.open(here / "p.png")), expect)
    assert _events(here / "logs")


@pytest.mark.parametrize("argv, message", [
    (["patches", "--layer", "features"], "layer 'features' has no spatial output"),
    (["patches", "--layer", "conv2", "-c", "0,99"], "channel 99 out of range: layer 'conv2' has 32 channels (0..31)"),
    (["patches", "-k", "1800"], "k=1800 is larger than the data set: only 1797 images"),
    (["patches", "-c", "x"], "'x' is not a channel number"),
    (["neighbors", "-k", "1798"], "k=1798 is larger than the data set (1797 images)"),
    (["activations", "--model", "digits_cnn", "--layer", "gap"], "spatial layers: "),
    (["filters", "--model", "digits_cnn", "--layer", "gap"], "is not a 2-D convolution; convolution layers: conv1"),
    (["embed", "--images", "/no/such/folder"], "no such folder"),
])
def test_bad_input_one_line_nothing_written(here, argv, message, capsys):
    code, out, err = _run(argv + ["-o", "x.png"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert "Traceback" not in err
    assert not (here / "x.png").exists()


def test_folder_with_unreadable_files_warns_or_fails_strict(here, capsys):
    from tfviz.zoo.digits_cnn import digits_images
    x, y = digits_images()
    for i in range(12):
        d = here / "imgs" / str(y[i])
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(x[i]).save(d / f"{i}.png")
    (here / "imgs" / "0" / "junk.png").write_bytes(b"junk")
    code, out, err = _run(["patches", "--images", "imgs", "-k", "2", "-c", "1", "-o", "p.png"], capsys)
    assert code == 0, err
    assert "warning: skipped 1 unreadable file(s):" in err and "junk.png" in err
    assert (here / "p.png").exists()
    code, out, err = _run(["patches", "--images", "imgs", "-k", "2", "-c", "1", "--strict", "-o", "q.png"], capsys)
    assert code == 2 and "error: cannot read 1 unreadable file(s): " in err and "junk.png" in err
    assert not (here / "q.png").exists()
    (here / "empty").mkdir()
    code, out, err = _run(["embed", "--images", "empty", "-o", "e.png"], capsys)
    assert code == 2 and "no images found" in err and not (here / "e.png").exists()


def test_neighbors_reports_both_rates(here, capsys):
    code, out, err = _run(["neighbors", "--index", "0,500", "-k", "3", "-o", "n.png", "--logdir", "logs"], capsys)
    assert code == 0, err
    assert "label agreement of the 3 nearest neighbours in features space:" in out
    assert "label agreement of the 3 nearest neighbours in pixels space:" in out
    assert "[features] #0 -> #0 " in out                    # a data-set image is its own nearest neighbour
    assert (here / "n.png").exists() and _events(here / "logs")


def test_embed_writes_map_and_projector(here, capsys):
    code, out, err = _run(["embed", "--method", "pca", "--limit", "200", "--cell", "16", "-o", "m.png",
                           "--logdir", "logs"], capsys)
    assert code == 0, err
    run = here / "logs" / "embed-digits_cnn"
    assert {"features.tsv", "metadata.tsv", "sprite.png", "projector_config.pbtxt"} <= set(os.listdir(run))
    assert _events(run)
    feats = np.loadtxt(run / "features.tsv", delimiter="\t")
    assert feats.shape == (200, 64)
    labels = open(run / "metadata.tsv").read().split()
    from tfviz.zoo.digits_cnn import digits_images
    assert labels == [str(v) for v in digits_images()[1][:200]]
    m = np.asarray(Image.open(here / "m.png"))
    assert m.shape == (15 * 16, 15 * 16, 3)                 # ceil(sqrt(200 * 1.1)) = 15 cells a side


@pytest.mark.parametrize("cmd", ["filters", "activations", "patches", "neighbors", "embed"])
def test_help_teaches(cmd):
    from click.testing import CliRunner

    from tfviz.cli import cli
    r = CliRunner().invoke(cli, [cmd, "--help"])
    assert r.exit_code == 0 and "Example" in r.output and "--model" in r.output
