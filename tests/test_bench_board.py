"""bench/bench_board.py's logdir generator, at a tiny size: what it writes (tags, steps,
params, scalars), that it reuses its own logdir and refuses a different one. No timing."""
import json
import os

import pytest
from bench_helpers import load_bench


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_board")


def _read(run_dir):
    """{tag: sorted steps} and {tag: plugin name} of a run's event files."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    acc = EventAccumulator(run_dir, size_guidance={"tensors": 0})
    acc.Reload()
    steps = {tag: sorted(e.step for e in acc.Tensors(tag)) for tag in acc.Tags()["tensors"]}
    plugins = {tag: acc.SummaryMetadata(tag).plugin_data.plugin_name for tag in steps}
    return steps, plugins, acc


def test_logdir_holds_what_the_issue_asks_for(bench, tmp_path):
    logdir = str(tmp_path / "logs")
    assert bench.write_logdir(logdir, runs=2) > 0
    assert sorted(os.listdir(logdir)) == sorted(["run-000", "run-001", bench.MARKER])
    steps, plugins, acc = _read(os.path.join(logdir, "run-001"))
    for layer in ("conv1", "conv2", "conv3"):
        assert steps[f"filters/{layer}"] == [0, 1]
    assert steps["optimization/snapshot"] == [0, 10, 20]
    assert steps["params/optimization"] == [0]
    params = json.loads(acc.Tensors("params/optimization")[0].tensor_proto.string_val[0])
    assert params["recipe"] == "class_visualization"
    scalars = [t for t in steps if plugins[t] == "scalars"]
    assert len(scalars) == 20 and all(t.startswith("tfviz/") for t in scalars)
    assert all(len(steps[t]) == 5 for t in scalars)
    picture = acc.Tensors("filters/conv1")[0].tensor_proto.string_val
    assert len(picture) == 1 and picture[0].startswith(b"\x89PNG")

    assert bench.write_logdir(logdir, runs=2) is None          # reused as it is
    with pytest.raises(SystemExit, match="different bench logdir"):
        bench.write_logdir(logdir, runs=3)


@pytest.mark.parametrize("mode", ["one-step", "steps"])
def test_long_tag(bench, tmp_path, mode):
    logdir = str(tmp_path / "long")
    bench.write_long_logdir(logdir, 7, mode)
    steps, _, acc = _read(os.path.join(logdir, "long"))
    if mode == "one-step":
        assert steps["activations/long"] == [0]
        assert len(acc.Tensors("activations/long")[0].tensor_proto.string_val) == 7
    else:
        assert steps["activations/long"] == list(range(7))
    assert [p for p in bench.spread(7, mode, calls=3)] == ([(0, 0), (0, 2), (0, 4)] if mode == "one-step"
                                                           else [(0, 0), (2, 0), (4, 0)])


def test_median_range(bench):
    assert bench.median_range([1.0, 3.0, 2.0]) == "2.00 (1.00-3.00)"
    assert bench.median_range(["timeout", 2.0]) == "2.00 +1 timeout"
    assert bench.median_range(["timeout"]) == "timeout"
