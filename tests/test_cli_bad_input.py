"""Every command, one bad input of each kind that applies to it (README, "The command line"):
each is a usage error -- exit 2, exactly one line on stderr starting with ``error:``, no
traceback -- and leaves no file behind. CASES must name every command of the ``tfviz``
group: a new command without bad-input cases fails ``test_every_command_has_bad_input_cases``.

Kinds: ``missing_file`` (an image, data set or logdir that does not exist),
``garbage_image`` (a file of junk bytes named x.jpg), ``truncated_jpeg`` (the first half of
a real JPEG), ``unknown_class``, ``unknown_layer``, ``bad_channel`` (a channel the layer does
not have), ``bad_option`` (an option value the command line refuses), ``bad_value`` (one the
library refuses once the model is loaded), ``missing_model`` (a --model file that does not
exist). Inputs that need
the model use efficientnet_lite0 (the session's ``lite0`` bundle, shared with the
in-process CLI); every one fails before any optimization or data-set scan starts.
"""
import os

import click
import pytest

from cli_helpers import run_cli

MISSING, GARBAGE, TRUNCATED = "nope.jpg", "x.jpg", "t.jpg"
NET = "NET"  # stands for a saved stylization network (tfviz stylize's MODEL)
NO_MODEL = ["--model", "nope.keras"]

# command -> {kind: argv}; IMG stands for the bad image of the image kinds
IMG = "IMG"
CASES = {
    "predict": {
        "image": ["predict", IMG],
        "bad_option": ["predict", "-k", "0"],
        "missing_model": ["predict", "chelsea", *NO_MODEL],
    },
    "layers": {
        "bad_option": ["layers", "--preprocess", "sideways"],
        "missing_model": ["layers", "nope.keras"],
    },
    "classes": {
        "bad_option": ["classes", "--preprocess", "sideways"],
        "missing_model": ["classes", "nope.keras"],
    },
    "attribute": {
        "image": ["attribute", "saliency", IMG],
        "unknown_class": ["attribute", "saliency", "chelsea", "--target", "tabby kat"],
        "unknown_layer": ["attribute", "grad_cam", "chelsea", "--layer", "nosuch"],
        "bad_channel": ["attribute", "saliency", "chelsea", "--target", "top_conv:5000"],
        "bad_option": ["attribute", "occlusion", "chelsea", "--patch", "0"],
        "bad_value": ["attribute", "occlusion", "chelsea", "--fill", "purple"],
        "missing_model": ["attribute", "saliency", "chelsea", *NO_MODEL],
    },
    "trust": {
        "image": ["trust", IMG, "--methods", "saliency"],
        "unknown_class": ["trust", "chelsea", "--methods", "saliency", "--target", "tabby kat"],
        "unknown_layer": ["trust", "chelsea", "--methods", "grad_cam", "--layer", "nosuch"],
        "bad_option": ["trust", "chelsea", "--curve-steps", "0"],
        "missing_model": ["trust", "chelsea", "--methods", "saliency", *NO_MODEL],
    },
    "filters": {
        "unknown_layer": ["filters", "--layer", "nosuch"],
        "bad_option": ["filters", "--upsample", "0"],
        "missing_model": ["filters", *NO_MODEL],
    },
    "activations": {
        "image": ["activations", IMG],
        "unknown_layer": ["activations", "chelsea", "--layer", "nosuch"],
        "bad_option": ["activations", "chelsea", "--limit", "0"],
        "missing_model": ["activations", "chelsea", *NO_MODEL],
    },
    "patches": {   # the data set is the input: --images names a file, a folder or 'digits'
        "image": ["patches", "--images", IMG],
        "unknown_layer": ["patches", "--layer", "nosuch"],
        "bad_channel": ["patches", "--layer", "top_conv", "-c", "5000"],
        "bad_option": ["patches", "-c", "7-3"],
        "missing_model": ["patches", *NO_MODEL],
    },
    "neighbors": {
        "image": ["neighbors", IMG],
        "unknown_layer": ["neighbors", "--layer", "nosuch"],
        "bad_option": ["neighbors", "-k", "0"],
        "missing_model": ["neighbors", *NO_MODEL],
    },
    "embed": {
        "image": ["embed", "--images", IMG],
        "unknown_layer": ["embed", "--layer", "nosuch"],
        "bad_option": ["embed", "--method", "nope"],
        "missing_model": ["embed", *NO_MODEL],
    },
    "classviz": {
        "unknown_class": ["classviz", "tabby kat"],
        "bad_option": ["classviz", "flamingo", "--steps", "0"],
        "missing_model": ["classviz", "flamingo", *NO_MODEL],
    },
    "neurons": {
        "unknown_layer": ["neurons", "nosuch"],
        "bad_channel": ["neurons", "top_conv", "--channels", "5000"],
        "bad_option": ["neurons", "top_conv", "--channels", "x"],
        "missing_model": ["neurons", "top_conv", *NO_MODEL],
    },
    "fool": {
        "image": ["fool", IMG, "goldfish"],
        "unknown_class": ["fool", "chelsea", "tabby kat"],
        "bad_option": ["fool", "chelsea", "goldfish", "--lr", "0"],
        "missing_model": ["fool", "chelsea", "goldfish", *NO_MODEL],
    },
    "dream": {
        "image": ["dream", IMG],
        "unknown_layer": ["dream", "chelsea", "--layer", "nosuch"],
        "bad_option": ["dream", "chelsea", "--octaves", "0"],
        "bad_value": ["dream", "chelsea", "--octaves", "12"],
        "missing_model": ["dream", "chelsea", *NO_MODEL],
    },
    "invert": {
        "image": ["invert", IMG],
        "unknown_layer": ["invert", "chelsea", "--layers", "nosuch"],
        "bad_option": ["invert", "chelsea", "--tv", "-1"],
        "missing_model": ["invert", "chelsea", *NO_MODEL],
    },
    "texture": {
        "image": ["texture", IMG],
        "unknown_layer": ["texture", "mosaic", "--layer", "nosuch"],
        "bad_option": ["texture", "mosaic", "--size", "0x5"],
        "missing_model": ["texture", "mosaic", *NO_MODEL],
    },
    "style": {
        "image": ["style", IMG, "strokes"],
        "unknown_layer": ["style", "chelsea", "strokes", "--content-layer", "nosuch"],
        "bad_option": ["style", "chelsea", "strokes", "--style-weights", "1,x"],
        "missing_model": ["style", "chelsea", "strokes", *NO_MODEL],
    },
    "train-stylizer": {
        "image": ["train-stylizer", "--style", IMG],
        "bad_option": ["train-stylizer", "--style", "strokes", "--steps", "0"],
        "missing_model": ["train-stylizer", "--style", "strokes", *NO_MODEL],
    },
    "stylize": {
        "image": ["stylize", NET, IMG],
        "bad_option": ["stylize", NET, "chelsea", "--mix", "0=1,1=-1"],
        "missing_model": ["stylize", "nope.keras", "chelsea"],
    },
    "train-texture": {
        "image": ["train-texture", IMG],
        "bad_option": ["train-texture", "mosaic", "--scales", "0"],
        "missing_model": ["train-texture", "mosaic", *NO_MODEL],
    },
    "concepts": {
        "image": ["concepts", IMG],
        "unknown_class": ["concepts", "--target", "tabby kat"],
        "unknown_layer": ["concepts", "--layer", "nosuch"],
        "bad_option": ["concepts", "--random-sets", "1"],
        "missing_model": ["concepts", *NO_MODEL],
    },
    "demo": {    # refused before any method runs
        "missing_file": ["demo", "--stylizer", "nope.keras"],
        "bad_option": ["demo", "--only", "attribution,nosuch"],
    },
    "board": {   # only inputs that fail before TensorBoard serves
        "missing_file": ["board", "nope"],
        "bad_option": ["board", ".", "--port", "99999"],
        "bad_flag": ["board", ".", "--", "--no_such_tensorboard_flag"],
    },
}
IMAGE_KINDS = {"missing_file": MISSING, "garbage_image": GARBAGE, "truncated_jpeg": TRUNCATED}
NEEDS_MODEL = {"garbage_image", "truncated_jpeg", "unknown_class", "unknown_layer", "bad_channel", "bad_value"}
EXPECT = {   # a piece of each kind's message
    "missing_file": "nope", "garbage_image": "x.jpg", "truncated_jpeg": "t.jpg", "unknown_class": "tabby kat",
    "unknown_layer": "nosuch", "missing_model": "nope.keras", "bad_channel": "5000",
}


def _expand():
    for cmd, kinds in CASES.items():
        for kind, argv in kinds.items():
            if kind == "image":
                for k, img in IMAGE_KINDS.items():
                    yield pytest.param(cmd, k, [img if a == IMG else a for a in argv], id=f"{cmd}-{k}")
            else:
                yield pytest.param(cmd, kind, argv, id=f"{cmd}-{kind}")


def test_every_command_has_bad_input_cases():
    from tfviz.cli import cli
    commands = cli.list_commands(click.Context(cli))
    assert sorted(CASES) == sorted(commands)
    for cmd, kinds in CASES.items():
        assert {"bad_option"} <= set(kinds) and kinds.keys() & {"image", "missing_file", "missing_model"}, cmd


@pytest.fixture(scope="module")
def stylizer(tmp_path_factory):
    """A small saved stylization network (untrained: only its inputs are tested)."""
    from tfviz.stylize.networks import transformer_network
    path = tmp_path_factory.mktemp("stylizer") / "net.keras"
    transformer_network(num_styles=2, width=0.125).save(str(path))
    return str(path)


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from tfviz.images import sample_photos
    (tmp_path / GARBAGE).write_bytes(b"\x00 not an image at all \xff" * 64)
    jpeg = open(sample_photos()["chelsea"], "rb").read()
    (tmp_path / TRUNCATED).write_bytes(jpeg[:len(jpeg) // 2])
    return tmp_path


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


@pytest.mark.parametrize("cmd, kind, argv", list(_expand()))
def test_bad_input_exits_2_with_one_line_and_leaves_nothing(cmd, kind, argv, here, request, capsys):
    if kind in NEEDS_MODEL and cmd != "stylize":
        request.getfixturevalue("lite0")   # loaded (and its weights converted) outside the command
        capsys.readouterr()                # ... and what that printed is not the command's
        if "--model" not in argv:
            argv = [*argv, "--model", "efficientnet_lite0"]
    if NET in argv:
        argv = [request.getfixturevalue("stylizer") if a == NET else a for a in argv]
    before = _files(here)
    code, out, err = run_cli(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "Usage:" not in err
    if kind in EXPECT:
        assert EXPECT[kind] in lines[0], lines[0]
    assert _files(here) == before == sorted([GARBAGE, TRUNCATED])
    assert not os.path.exists("tfviz-out") or not os.listdir("tfviz-out")


# ------------------------------------------------------------------ the exit code of every error class
EXIT_CODES = {   # README, "The command line": 2 for usage errors, 1 for failures while running
    "TfvizError": 1, "OfflineError": 1, "NonFiniteGradientError": 1, "DataLoadError": 1, "BoardError": 1,
    "WorkerLostError": 1,
    "UnknownLayerError": 2, "LayerKindError": 2, "UnknownClassError": 2, "ChannelError": 2, "ImageError": 2,
    "ModelError": 2, "UnsupportedModelError": 2, "TorchFormatError": 2, "OptionError": 2, "BackendError": 2,
    "CallbackError": 2, "SummaryError": 2, "AttributionError": 2, "TargetError": 2, "PatchSizeError": 2,
    "StrideError": 2, "NoSpatialLayerError": 2, "NoReLUError": 2, "ParamError": 2, "TransformError": 2,
    "ObjectiveError": 2, "RegularizerError": 2, "SynthesisError": 2, "ReduceError": 2, "MissingExtraError": 2,
    "StylizeError": 2, "StrategyError": 2, "DataError": 2, "UnknownLengthError": 2,
}


def _all_error_classes():
    import importlib
    import pkgutil

    import tfviz
    from tfviz import TfvizError
    for mod in pkgutil.walk_packages(tfviz.__path__, "tfviz."):   # every module, so every error class
        if mod.name != "tfviz.__main__":
            importlib.import_module(mod.name)
    seen, todo = {TfvizError}, [TfvizError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                todo.append(sub)
    return seen


def test_every_error_class_has_its_exit_code():
    classes = _all_error_classes()
    names = sorted(c.__name__ for c in classes)
    assert len(names) == len(set(names)), names   # one class of each name
    assert names == sorted(EXIT_CODES)            # a new error class must choose its code here
    assert {c.__module__ for c in classes} == {"tfviz.errors"}, "every error class is defined in tfviz/errors.py"
    for c in classes:
        assert c.exit_code == EXIT_CODES[c.__name__], c


def test_one_class_per_error():
    import tfviz.attribution as A
    import tfviz.graph
    import tfviz.inspect
    import tfviz.utils as U
    assert A.UnsupportedModelError is tfviz.graph.UnsupportedModelError is U.UnsupportedModelError
    assert A.UnitChannelError is tfviz.inspect.ChannelError is U.ChannelError
    assert issubclass(U.ChannelError, IndexError) and issubclass(U.ChannelError, ValueError)
    assert issubclass(U.UnsupportedModelError, U.ModelError)
