"""Shared fixtures. Every model is built here or in the test, never downloaded.

TFVIZ_CACHE points at one temporary folder for the whole session, so the converted
efficientnet_lite0 weights and the trained digits_cnn are made once per test run. Under
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


# the longest tests (the README's command blocks and snippets on efficientnet_lite0, the
# browser) go first, so that under ``pytest -n`` the short ones fill in around them
# instead of one worker finishing a long test alone at the end
_FIRST = ("tests/test_demo.py::test_demo_quick_end_to_end", "tests/test_readme.py", "tests/test_browser.py")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: 0 if item.nodeid.startswith(_FIRST) else 1)  # stable: order kept within


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
    """The digits_cnn bundle (trained once per session, ~30 s on 2 cores), shared with the
    in-process CLI."""
    return _built_in("digits_cnn")


@pytest.fixture(scope="session")
def photos():
    """scikit-image's sample photos as uint8 RGB arrays."""
    import skimage.data as sd
    return {n: getattr(sd, n)() for n in ("chelsea", "coffee", "rocket", "astronaut")}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
