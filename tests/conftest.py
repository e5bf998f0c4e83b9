"""Shared fixtures. Every model is built here or in the test, never downloaded.

TFVIZ_CACHE points at one temporary folder for the whole session, so the converted
efficientnet_lite0 weights are made once per test run (digits_cnn's ship with tfviz). Under
pytest-xdist the workers share that folder (the controller makes it, the workers inherit
it), and a lock file lets one worker make each built-in model while the others wait."""
import contextlib
import os
import shutil
import tempfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_OWNER = "TFVIZ_TEST_CACHE" not in os.environ   # the controller (or a plain run) makes and removes it
_CACHE = os.environ.get("TFVIZ_TEST_CACHE") or tempfile.mkdtemp(prefix="tfviz-test-cache-")
os.environ["TFVIZ_TEST_CACHE"] = os.environ["TFVIZ_CACHE"] = _CACHE


def _share_the_cores():
    """Under pytest-xdist each worker gets its share of the cores for TensorFlow's thread
    pools (2 cores, 2 workers: one thread each) instead of every worker sizing its pools to
    the whole machine and the workers' threads contending for it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0"))
    if workers > 1:
        import tensorflow as tf
        threads = max(1, (os.cpu_count() or 1) // workers)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


_share_the_cores()


def pytest_sessionfinish(session, exitstatus):
    """The session's cache (converted weights, trained digits_cnn: ~20 MB) goes with it."""
    if _OWNER:
        shutil.rmtree(_CACHE, ignore_errors=True)


# The longest tests, with their measured seconds on one of 2 cores (setup included). Under
# ``pytest -n 2 --dist worksteal`` (setup.cfg) each worker starts with one half of the list
# and an idle worker takes the back half of the other's queue. So the long tests are split
# between the two halves (greedily, longest first) and go at the front of their half: both
# workers start on them at once and short tests fill in at the end, instead of one worker
# running every long test in a row while the other finishes early and waits.
LONG = {
    "tests/test_demo.py::test_demo_quick_end_to_end": 50,
    "tests/test_browser.py::test_tfviz_tab_in_headless_chromium": 19,
    "tests/test_shapes_segmenter.py::test_held_out_accuracy": 25,     # trains the session's shapes_segmenter
    "tests/test_examples.py::test_model_file[d_fast_style.py]": 17,
    "tests/test_attribution_cli.py::test_lite0_defaults_from_the_cli": 13,
    "tests/test_models.py::test_digits_cnn_training_is_deterministic": 10,
    "tests/test_examples.py::test_model_file[c_synthesis.py]": 10,
    "tests/test_attribution_deeplift.py::test_efficientnet_lite0_is_exactly_complete": 9,
    "tests/test_cli_conventions.py::test_tfviz_quiet_keeps_tensorflow_start_up_lines_off": 8,
    "tests/test_attribution.py::test_sequential_functional_and_nested_models_agree": 7,
    "tests/test_stylize_cli.py::test_train_then_stylize_with_a_mix": 5,
}


def _long(item):
    return next((sec for prefix, sec in LONG.items() if item.nodeid.startswith(prefix)), 0)


@pytest.hookimpl(trylast=True)  # after `-m "not slow"` has deselected: the halves are of what runs
def pytest_collection_modifyitems(config, items):
    long = sorted((it for it in items if _long(it)), key=_long, reverse=True)
    short = [it for it in items if not _long(it)]
    halves, load = ([], []), [0, 0]
    for it in long:
        side = int(load[1] < load[0])
        halves[side].append(it)
        load[side] += _long(it)
    cut = len(items) // 2 - len(halves[0])  # xdist hands the first len // 2 to one worker
    items[:] = halves[0] + short[:cut] + halves[1] + short[cut:]


@contextlib.contextmanager
def _one_at_a_time(name):
    """Only one test process makes a built-in model at a time; the others then read it
    from the shared cache."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; each worker may make the model itself (atomic writes)
        yield
        return
    with open(os.path.join(_CACHE, f".{name}.lock"), "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _built_in(name):
    from tfviz.cli.common import load_bundle
    with _one_at_a_time(name):
        return load_bundle(name)


@pytest.fixture(scope="session")
def lite0():
    """The built-in efficientnet_lite0 bundle (weights converted once per session); the
    same bundle the in-process CLI gets, so the two share traced programs."""
    return _built_in("efficientnet_lite0")


@pytest.fixture(scope="session")
def digits():
    """The digits_cnn bundle (the shipped weights, loaded once per session), shared with the
    in-process CLI."""
    return _built_in("digits_cnn")


@pytest.fixture(scope="session")
def shapes():
    """The shapes_segmenter bundle (trained once per session, about 20 s on 2 cores), shared
    with the in-process CLI."""
    return _built_in("shapes_segmenter")


@pytest.fixture(scope="session")
def photos():
    """scikit-image's sample photos as uint8 RGB arrays."""
    import skimage.data as sd
    return {n: getattr(sd, n)() for n in ("chelsea", "coffee", "rocket", "astronaut")}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def here(tmp_path, monkeypatch):
    """The test's own temporary folder, made the current folder (commands write into it)."""
    monkeypatch.chdir(tmp_path)
    return tmp_path
