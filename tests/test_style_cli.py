"""tfviz invert / texture / style on a tiny saved model: files, logs, progress, errors."""
import numpy as np
import pytest

from cli_helpers import ctrl_c_on_third_step
from cli_helpers import run_cli as _run
from test_style import conv_model, smooth_image, stripes
from test_synthesis_cli import _events


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    from tfviz.images import save_png
    d = tmp_path_factory.mktemp("style")
    path = str(d / "convs.keras")
    conv_model().save(path)
    content, style, style2 = d / "content.png", d / "style.png", d / "style2.png"
    save_png(str(content), smooth_image(24, 32))
    save_png(str(style), stripes(40, 40))
    save_png(str(style2), np.stack([smooth_image(20, 20, seed=9)[..., 0]] * 3, -1))  # gray, another size
    return ["--model", path, "--preprocess", "0-1"], str(content), str(style), str(style2)


def test_invert_writes_a_strip_and_logs(saved, tmp_path, capsys):
    opts, content, _, _ = saved
    out = tmp_path / "inv.png"
    code, o, err = _run(["invert", content, *opts, "--steps", "3", "--out", str(out), "--logdir",
                         str(tmp_path / "logs")], capsys)
    assert code in (0, None), err
    from tfviz.images import load_image
    strip = load_image(str(out))
    assert strip.shape[0] > 160 and "PSNR against the photo: conv1" in o and "conv3" in o
    scalars, images, params = _events(str(tmp_path / "logs"))
    assert scalars["tfviz/optimization/objective"] == list(range(9))     # 3 layers x 3 steps
    assert params[0]["recipe"] == "inversion_strip" and params[0]["layers"] == ["conv1", "conv2", "conv3"]


def test_texture_larger_than_its_source(saved, tmp_path, capsys):
    opts, _, style, _ = saved
    out = tmp_path / "tex.png"
    code, o, err = _run(["texture", style, *opts, "--size", "72x48", "--steps", "4", "--out", str(out)], capsys)
    assert code in (0, None), err
    from tfviz.images import load_image
    assert load_image(str(out)).shape == (48, 72, 3) and (tmp_path / "tex_snapshots.png").exists()
    assert "72x48 texture from a 40x40 source in 8 steps over 2 scales (0.5, 1)" in o   # 4 per scale


def test_style_two_blended_styles_and_preserved_colors(saved, tmp_path, capsys):
    opts, content, style, style2 = saved
    out = tmp_path / "st.png"
    code, o, err = _run(["style", content, style, style2, *opts, "--style-weights", "0.7,0.3", "--style-scale",
                         "0.5", "--steps", "3", "--out", str(out), "--logdir", str(tmp_path / "logs")], capsys)
    assert code in (0, None), err
    from tfviz.images import load_image
    assert load_image(str(out)).shape == (24, 32, 3) and "32x24 in 3 steps" in o
    scalars, _, params = _events(str(tmp_path / "logs"))
    assert params[0]["style_weights"] == [0.7, 0.3] and "tfviz/optimization/gram_match_conv1" in scalars
    code, o, err = _run(["style", content, style, *opts, "--preserve-colors", "--size", "16,32", "--steps", "2",
                         "--out", str(tmp_path / "pc.png")], capsys)
    assert code in (0, None), err
    assert "32x24 in 4 steps" in o


@pytest.mark.parametrize("argv, message", [
    (["style", "C", "S", "--style-weights", "1,1"], "2 weights for 1 style images"),
    (["style", "C", "S", "--style-weights", "-1"], "weights must be zero or positive"),
    (["style", "C", "S", "--size", "0"], "sizes must be positive"),
    (["style", "C", "S", "--size", "big"], "expected a number or a comma-separated list"),
    (["style", "C", "S", "--style-layer", "gap"], "no spatial output"),
    (["style", "C", "S", "--content-layer", "conv9"], "unknown layer 'conv9'"),
    (["style", "C", "S", "--size", "20000"], "the largest that fits is about"),
    (["style", "C", "/no/such.png"], "no such file"),
    (["texture", "S", "--size", "0x5"], "sizes must be positive"),
    (["texture", "S", "--size", "wide"], "expected WIDTHxHEIGHT"),
    (["texture", "S", "--scales", "1,0.5"], "scales must increase and end with 1"),
    (["texture", "S", "--scales", "0.5"], "end with 1"),
    (["texture", "S", "--scales", "0.5,1", "--steps", "1,2,3"], "3 step counts given for 2 scales"),
    (["texture", "S", "--steps", "0"], "steps must be positive"),
    (["texture", "S", "--match-colors", "lab"], "Invalid value for '--match-colors'"),
    (["texture", "S", "--histogram-weight", "-1"], "Invalid value for '--histogram-weight'"),
    (["style", "C", "S", "--preserve-colors", "--match-colors", "histogram"], "pick one"),
    (["invert", "C", "--layers", "conv1,nope"], "unknown layer 'nope'"),
    (["invert", "C", "--tv", "-1"], "Invalid value for '--tv'"),
])
def test_bad_input_is_one_line_and_writes_nothing(saved, tmp_path, capsys, argv, message):
    opts, content, style, _ = saved
    out = tmp_path / "x.png"
    argv = [{"C": content, "S": style}.get(a, a) for a in argv]
    steps = [] if "--steps" in argv else ["--steps", "1"]
    code, o, err = _run([*argv, *opts, *steps, "--out", str(out)], capsys)
    assert code not in (0, None) and message in err, err
    assert "Traceback" not in err and message in err.strip().splitlines()[-1] and not out.exists()


def test_ctrl_c_keeps_the_latest_image_and_exits_130(saved, tmp_path, capsys, monkeypatch):
    opts, content, style, _ = saved
    ctrl_c_on_third_step(monkeypatch)
    out = tmp_path / "st.png"
    code, o, err = _run(["style", content, style, *opts, "--steps", "20", "--out", str(out)], capsys)
    assert code == 130 and out.exists() and "kept the latest image" in err, err
