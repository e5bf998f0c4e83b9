"""Shared fixtures. Every model is built here or in the test, never downloaded.

TFVIZ_CACHE points at one temporary folder for the whole session, so the converted
efficientnet_lite0 weights and the trained digits_cnn are made once per test run."""
import os
import shutil
import tempfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_CACHE = tempfile.mkdtemp(prefix="tfviz-test-cache-")
os.environ["TFVIZ_CACHE"] = _CACHE


def pytest_sessionfinish(session, exitstatus):
    """The session's cache (converted weights, trained digits_cnn: ~20 MB) goes with it."""
    shutil.rmtree(_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def lite0():
    """The built-in efficientnet_lite0 bundle (weights converted once per session); the
    same bundle the in-process CLI gets, so the two share traced programs."""
    from tfviz.cli.common import load_bundle
    return load_bundle("efficientnet_lite0")


@pytest.fixture(scope="session")
def digits():
    """The digits_cnn bundle (trained once per session, ~30 s on 2 cores), shared with the
    in-process CLI."""
    from tfviz.cli.common import load_bundle
    return load_bundle("digits_cnn")


@pytest.fixture(scope="session")
def photos():
    """scikit-image's sample photos as uint8 RGB arrays."""
    import skimage.data as sd
    return {n: getattr(sd, n)() for n in ("chelsea", "coffee", "rocket", "astronaut")}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
