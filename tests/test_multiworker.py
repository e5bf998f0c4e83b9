"""Past one machine: MultiWorkerMirroredStrategy with real worker processes -- two workers
on free localhost ports, each started with its TF_CONFIG (tests/multiworker_worker.py),
CPU-only, one thread each.

* a scan's patches, features, neighbours and map equal the single-process run exactly,
  and each image is decoded by one worker only;
* a short train_stylizer gives the losses of one process with the same global batch and
  seed, and only the chief writes (checkpoints, logs; no temporary folder is left);
* a worker killed with SIGKILL in the middle of training: the other stops, and both
  started again resume from the last checkpoint, recomputing only the steps after it;
  a scan killed the same way runs again cleanly;
* the command line: --strategy on the five commands, one line naming the task, a missing
  or malformed TF_CONFIG as one error line, only the chief writing its outputs;
* each worker's part of every training batch puts the global batch back together, and
  docs/multiworker.md's cluster recipes name real commands and build a valid TF_CONFIG.

The tests that start workers are in the slow tier (``-m slow``; 1-3 minutes each on 2 cores).
"""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from cli_helpers import run_cli

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
WORKER = os.path.join(HERE, "multiworker_worker.py")
START = 240   # seconds a worker may take to start and meet the other one (2 busy cores)


# --------------------------------------------------------------------------- the cluster
def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_configs(ports):
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(len(ports))]


def worker_env(tf_config, tmp):
    env = dict(os.environ, TF_CONFIG=tf_config, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
               PYTHONWARNINGS="ignore", OMP_NUM_THREADS="1", WORKER_THREADS="1", TMPDIR=str(tmp),
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("PYTEST_XDIST_WORKER_COUNT", None)
    return env


class Cluster:
    """Worker processes, one per TF_CONFIG; their output goes to files (no pipe can fill
    up); ``stop()`` kills whatever still runs."""

    def __init__(self, argv_of, folder, ports=None, tmp=None):
        self.folder = folder
        self.ports = ports or free_ports(2)
        self.tmp = tmp or folder / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.procs, self.logs = [], []
        for i, cfg in enumerate(tf_configs(self.ports)):
            log = folder / f"worker{i}-{time.monotonic_ns()}.log"
            self.logs.append(log)
            with open(log, "w") as fh:
                self.procs.append(subprocess.Popen(argv_of(i), stdout=fh, stderr=subprocess.STDOUT, cwd=str(folder),
                                                   env=worker_env(cfg, self.tmp)))

    def lines(self, i):
        text = self.logs[i].read_text(errors="replace")
        return [json.loads(ln) for ln in text.splitlines() if ln.startswith("{")]

    def text(self, i):
        return self.logs[i].read_text(errors="replace")[-4000:]

    def wait(self, timeout):
        deadline = time.time() + timeout
        for p in self.procs:
            p.wait(max(1.0, deadline - time.time()))
        return [p.returncode for p in self.procs]

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    p.wait(30)


@contextlib.contextmanager
def cluster(argv_of, folder, **kw):
    c = Cluster(argv_of, folder, **kw)
    try:
        yield c
    finally:
        c.stop()


def worker_argv(*args):
    return lambda i: [sys.executable, WORKER, *map(str, args)]


# --------------------------------------------------------------------------- data
def _save(path, arr, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, **kw)


@pytest.fixture
def image_folder(tmp_path):
    """40 images in two class folders (PNG and JPEG, 20 x 20 and 31 x 27), a truncated
    file no reader can decode, and a TIFF named .png: found as TIFF in the folder, but in
    a list of files TensorFlow tries it as PNG, drops it, and Pillow rescues it."""
    rng = np.random.default_rng(0)
    root = tmp_path / "set"
    for i in range(40):
        size = (31, 27) if i % 3 == 0 else (20, 20)
        ext = "jpg" if i % 4 == 0 else "png"
        _save(root / "ab"[i % 2] / f"{i:02d}.{ext}", rng.integers(0, 256, size + (3,), dtype=np.uint8), quality=92)
    Image.fromarray(rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)).save(root / "b" / "x_tiff.png", format="TIFF")
    _save(root / "a" / "cut.png", rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    raw = (root / "a" / "cut.png").read_bytes()
    (root / "a" / "cut.png").write_bytes(raw[:len(raw) // 2])
    return root


def _events(logdir):
    return sorted(os.path.relpath(os.path.join(d, f), logdir) for d, _, fs in os.walk(logdir) for f in fs)


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def _tfviz_temp(tmp):
    """What tfviz left in a worker's TMPDIR (TensorFlow's autograph files aside)."""
    return sorted(n for n in os.listdir(tmp) if n.startswith("tfviz"))


# --------------------------------------------------------------------------- scans
@pytest.mark.slow
def test_a_two_worker_scan_equals_one_process_and_reads_each_image_once(image_folder, tmp_path):
    with cluster(worker_argv("scan", image_folder), tmp_path) as c:
        codes = c.wait(3 * START)
        assert codes == [0, 0], (c.text(0), c.text(1))
        res = [c.lines(i)[-1] for i in range(2)]
    assert [r["task"]["worker"] for r in res] == [0, 1] and [r["task"]["chief"] for r in res] == [True, False]
    for r in res:   # patches, features, neighbours, the PCA map: those of one process, ties in the same order
        failed = [k for k, ok in r["checks"].items() if not ok]
        assert not failed and len(r["checks"]) >= 16, failed
    folder_files = sorted(os.path.relpath(os.path.join(d, f), image_folder)
                          for d, _, fs in os.walk(image_folder) for f in fs)
    readable = [i for i, f in enumerate(folder_files) if f != os.path.join("a", "cut.png")]
    expect = {"patches/folder/all": readable, "features/folder": readable,
              "features/files": list(range(len(res[0]["files"]))), "patches/array": list(range(23))}
    for scan, everything in expect.items():
        w0, w1 = (set(r["decoded"][scan]) for r in res)
        assert not w0 & w1, (scan, sorted(w0 & w1))                        # no image decoded twice
        assert sorted(w0 | w1) == everything, scan                           # every readable image once
        assert len(w0) + len(w1) == len(everything) and abs(len(w0) - len(w1)) <= 1, scan
    # the TIFF named .png: TensorFlow dropped it on its worker, which read it with Pillow
    tiff = res[0]["files"].index(os.path.join(str(image_folder), "b", "x_tiff.png"))
    assert tiff in res[tiff % 2]["decoded"]["features/files"]


# --------------------------------------------------------------------------- training
def _reference_losses(steps):
    """train_stylizer in one process with the workers' settings: the same global batch and seed."""
    from worker_models import TINY_STYLIZE as tiny
    code = ("import json, os, keras, tfviz\n"
            "import tensorflow as tf\n"
            "tf.config.threading.set_intra_op_parallelism_threads(1)\n"
            "tf.config.threading.set_inter_op_parallelism_threads(1)\n"
            + tiny +
            "from tfviz.stylize.training import train_stylizer\n"
            "h = []\n"
            f"train_stylizer(bundle, ['strokes', 'mosaic'], image_size=32, batch_size=4, steps={steps}, width=0.125,\n"
            "               callbacks=[lambda s, l: h.append(l['total'])])\n"
            "print(json.dumps(h))\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=START)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_b_two_worker_training_has_one_process_losses_and_only_the_chief_writes(tmp_path):
    shared = tmp_path / "shared"
    args = ["train", "--steps", 4, "--ckpt", shared / "ckpt", "--every", 2, "--logdir", shared / "logs",
            "--out", shared / "net.keras"]
    with cluster(worker_argv(*args), tmp_path) as c:
        codes = c.wait(3 * START)
        assert codes == [0, 0], (c.text(0), c.text(1))
        runs = [[ln for ln in c.lines(i) if "step" in ln] for i in range(2)]
        done = [c.lines(i)[-1]["done"] for i in range(2)]
    ref = _reference_losses(4)
    for steps in runs:   # each worker reports the global batch's mean losses
        assert [ln["step"] for ln in steps] == [0, 1, 2, 3]
        np.testing.assert_allclose([ln["losses"]["total"] for ln in steps], ref, rtol=1e-4)
    assert [d["chief"] for d in done] == [True, False] and {d["replicas"] for d in done} == {2}
    # only the chief wrote: its checkpoints (the other's went to a temporary folder, removed), one
    # TensorBoard run, the network
    assert _files(shared / "ckpt") == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index",
                                       "ckpt-4.data-00000-of-00001", "ckpt-4.index"]
    logs = _events(shared / "logs")
    assert len(logs) == 1 and logs[0].startswith(os.path.join("styles-and-width", "events.out.tfevents")), logs
    assert (shared / "net.keras").is_file()
    assert _tfviz_temp(c.tmp) == []   # TMPDIR of both workers: nothing of tfviz's left
    # a checkpoint folder the other worker does not see (here: another one) is refused on both
    own = [sys.executable, WORKER, *map(str, args[:5]), "--every", "2"]
    with cluster(lambda i: own + (["--ckpt", str(tmp_path / "elsewhere")] if i else []), tmp_path / "again") as c:
        assert c.wait(3 * START) == [3, 3], (c.text(0), c.text(1))
        said = [c.lines(i)[-1] for i in range(2)]
    for line, folder in zip(said, [shared / "ckpt", tmp_path / "elsewhere"]):
        assert line["type"] == "StrategyError" and line["error"] == (
            "the workers resumed at different steps [0, 4]: every worker must restore from the chief's checkpoint "
            f"folder, so {folder} must be the same folder for all of them, on a filesystem they all see"), line


def test_each_worker_decodes_its_part_of_every_global_batch():
    """content_dataset / noise_dataset with a worker's shard: per step, the workers' per-replica
    batches put together are the global batch one process reads (same images, same random
    crops) -- for 2 workers of 1 replica and 2 workers of 2 replicas."""
    from tfviz.images import sample_photos
    from tfviz.stylize.training import content_dataset, noise_dataset
    files = list(sample_photos().values())
    makers = [lambda shard: content_dataset(files, 16, 4, seed=3, num_styles=2, start=1, shard=shard),
              lambda shard: noise_dataset(2, 8, 4, seed=3, start=1, shard=shard)]
    for make in makers:
        whole = [b for b in make(None).take(3)]
        for per_worker in (1, 2):
            per_replica = 4 // (2 * per_worker)
            parts = [list(make((per_replica, per_worker, w)).take(3 * per_worker)) for w in range(2)]
            for step, ref in enumerate(whole):
                mine = [p for w in range(2) for p in parts[w][step * per_worker:(step + 1) * per_worker]]
                if isinstance(ref, tuple):
                    np.testing.assert_array_equal(np.concatenate([m[1] for m in mine]), ref[1].numpy())
                    mine, ref = [m[0] for m in mine], ref[0]
                np.testing.assert_allclose(np.concatenate(mine), ref.numpy(), atol=1e-6)


# --------------------------------------------------------------------------- faults
def _wait_for(cond, procs, timeout, what):
    deadline = time.time() + timeout
    while not cond():
        dead = [p.returncode for p in procs if p.poll() is not None]
        assert not dead and time.time() < deadline, f"waiting for {what}: exit codes {dead}"
        time.sleep(0.3)


def _kill_and_stop(c, victim, grace=120):
    """SIGKILL ``victim``; the other worker, waiting in a collective, must stop by itself
    once TensorFlow sees its peer gone -- else it is killed after ``grace`` seconds (and
    the test fails). Returns the other worker's last line."""
    os.kill(c.procs[victim].pid, signal.SIGKILL)
    c.procs[victim].wait(30)
    other = 1 - victim
    t = time.monotonic()
    try:
        c.procs[other].wait(grace)
    except subprocess.TimeoutExpired:
        c.procs[other].kill()
        c.procs[other].wait(30)
        raise AssertionError(f"worker {other} did not notice worker {victim} was gone in {grace} s") from None
    print(f"worker {other} stopped {time.monotonic() - t:.1f} s after worker {victim} was killed")
    assert c.procs[other].returncode == 3, c.text(other)   # the worker script's exit after a TfvizError
    return c.lines(other)[-1]


@pytest.mark.slow
def test_c_a_killed_worker_resumes_from_the_last_checkpoint_and_a_killed_scan_runs_again(tmp_path, image_folder):
    import tensorflow as tf
    shared = tmp_path / "shared"
    ports = free_ports(2)
    base = [sys.executable, WORKER, "train", "--steps", "100000", "--ckpt", str(shared / "ckpt"), "--every", "3"]
    # worker 1 stops answering after step 7 (between the checkpoints of steps 6 and 9), then is killed
    with cluster(lambda i: base + (["--hang-at", "7"] if i == 1 else []), tmp_path / "run1", ports=ports) as c:
        _wait_for(lambda: any(ln.get("step") == 7 for ln in c.lines(1)), c.procs, 3 * START, "step 7")
        first = {ln["step"]: ln["losses"] for ln in c.lines(0) if "step" in ln}
        said = _kill_and_stop(c, victim=1)
    # the chief noticed by itself: one line saying how to go on
    assert said["type"] == "WorkerLostError" and said["error"].endswith("the run resumes from "
                                                                        + str(shared / "ckpt" / "ckpt-6")), said
    last = int(tf.train.latest_checkpoint(str(shared / "ckpt")).rsplit("-", 1)[1])
    assert last == 6
    # both started again (the same ports): every worker resumes at step 6; steps 6 and 7 come out as before
    again = [sys.executable, WORKER, "train", "--steps", "10", "--ckpt", str(shared / "ckpt"), "--every", "3"]
    with cluster(lambda i: again, tmp_path / "run2", ports=ports) as c:
        assert c.wait(3 * START) == [0, 0], (c.text(0), c.text(1))
        for i in range(2):
            steps = {ln["step"]: ln["losses"] for ln in c.lines(i) if "step" in ln}
            assert sorted(steps) == [6, 7, 8, 9] and c.lines(i)[-1]["done"]["start_step"] == 6
            for s in (6, 7):
                np.testing.assert_allclose(steps[s]["total"], first[s]["total"], rtol=1e-5)
    assert tf.train.latest_checkpoint(str(shared / "ckpt")).endswith("ckpt-10")
    # a worker killed with SIGKILL cannot remove its temporary checkpoint folder; the others did
    assert [n.split("-")[1] for n in _tfviz_temp(tmp_path / "run1" / "tmp")] == ["worker1"]
    assert _tfviz_temp(tmp_path / "run2" / "tmp") == []

    # a scan: worker 0 stops answering at its second batch and is killed; the scan run again is whole
    scan_args = [sys.executable, WORKER, "scan", str(image_folder), "--only-patches"]
    with cluster(lambda i: scan_args + (["--hang-at", "2"] if i == 0 else []), tmp_path / "scan1", ports=ports) as c:
        _wait_for(lambda: "hanging" in c.text(0), c.procs, 3 * START, "the scan's second batch")
        said = _kill_and_stop(c, victim=0)
    assert said["type"] == "WorkerLostError" and said["error"].endswith("the scan starts over"), said
    with cluster(lambda i: scan_args, tmp_path / "scan2", ports=ports) as c:
        assert c.wait(3 * START) == [0, 0], (c.text(0), c.text(1))
        for i in range(2):
            r = c.lines(i)[-1]
            assert r["checks"] == {"patches/folder/all": True, "patches/folder/all/workers": True}, r


# --------------------------------------------------------------------------- the command line
GOOD = json.dumps({"cluster": {"worker": ["localhost:12345", "localhost:23456"]},
                   "task": {"type": "worker", "index": 1}})


@pytest.mark.parametrize("value, says", [
    (None, "reads the cluster from the TF_CONFIG environment variable, which is not set"),
    ("  ", "which is not set"),
    ('{"cluster": {"worker": ["a:1"]', "TF_CONFIG is not valid JSON"),
    ('["a:1"]', "must be a JSON object with a 'cluster' and a 'task'"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}', "must be a list of 'host:port'"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "cluster has no 'worker' list"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}', "must be 'worker' or 'chief', not 'ps'"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}', "task worker:2 is not in"),
])
def test_tf_config_is_checked_with_one_sentence(value, says):
    from tfviz.distribute import read_tf_config
    from tfviz.errors import StrategyError
    with pytest.raises(StrategyError, match=says.replace("(", r"\(").replace("[", r"\[")):
        read_tf_config({} if value is None else {"TF_CONFIG": value})
    assert read_tf_config({"TF_CONFIG": GOOD})["task"] == {"type": "worker", "index": 1}


COMMANDS = [["patches"], ["neighbors"], ["embed"], ["train-stylizer", "--style", "strokes"],
            ["train-texture", "mosaic"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_multiworker_without_a_valid_tf_config_is_one_error_line(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for value, says in [(None, "error: --strategy multiworker reads the cluster from the TF_CONFIG environment "
                               "variable, which is not set; set it on every worker, e.g. TF_CONFIG="),
                        ("{nope", "error: TF_CONFIG is not valid JSON")]:
        if value is None:
            monkeypatch.delenv("TF_CONFIG", raising=False)
        else:
            monkeypatch.setenv("TF_CONFIG", value)
        code, out, err = run_cli([*command, "--strategy", "multiworker"], capsys)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 2 and len(lines) == 1 and lines[0].startswith(says), err
        assert "Traceback" not in err and out == ""
    code, out, err = run_cli([*command, "--strategy", "several"], capsys)
    assert code == 2 and "'several' is not one of 'none', 'mirrored', 'multiworker'" in err
    assert _files(tmp_path) == []   # nothing written


def test_strategy_from_name_makes_each_strategy():
    import tensorflow as tf

    from tfviz.distribute import describe, is_chief, strategy_from_name, task
    from tfviz.errors import StrategyError
    assert strategy_from_name("none") is None and strategy_from_name(None) is None
    m = strategy_from_name("mirrored")
    assert isinstance(m, tf.distribute.MirroredStrategy) and describe(m).startswith("MirroredStrategy: ")
    assert task(m).workers == 1 and is_chief(m) and is_chief(None)
    with pytest.raises(StrategyError, match="unknown strategy 'mirorred'.*mirrored"):
        strategy_from_name("mirorred")


def test_mirrored_on_the_command_line_gives_the_same_outputs(digits, tmp_path, capsys):
    """--strategy mirrored (every local device; here the one CPU) against none: the same
    printed patches and neighbours and the same pictures."""
    rng = np.random.default_rng(1)
    from tfviz.data import digits as digit_set
    imgs = digit_set().take(rng.choice(1797, 30, replace=False), size=(32, 32))
    for i, img in enumerate(imgs):
        _save(tmp_path / "set" / f"{i:02d}.png", img)
    outs = {}
    for name in ("none", "mirrored"):
        code, out, err = run_cli(["patches", "--images", str(tmp_path / "set"), "-c", "0-2", "-k", "4", "--strategy",
                                  name, "-o", str(tmp_path / f"patches-{name}.png")], capsys)
        assert code == 0, err
        code2, out2, err2 = run_cli(["neighbors", "--images", str(tmp_path / "set"), "--index", "0,7", "-k", "3",
                                     "--strategy", name, "-o", str(tmp_path / f"nb-{name}.png")], capsys)
        assert code2 == 0, err2
        assert ("MirroredStrategy: 1 replica" in err) == (name == "mirrored")
        outs[name] = [ln for ln in (out + out2).splitlines() if not ln.startswith("wrote")]
    assert outs["none"] == outs["mirrored"] and len(outs["none"]) >= 7
    from tfviz.images import load_image
    for what in ("patches", "nb"):
        np.testing.assert_array_equal(load_image(str(tmp_path / f"{what}-none.png")),
                                      load_image(str(tmp_path / f"{what}-mirrored.png")))


@pytest.fixture
def tiny_keras(tmp_path):
    import keras
    keras.utils.set_random_seed(0)
    L = keras.layers
    inp = keras.Input((32, 32, 3))
    x = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(inp)
    x = L.Conv2D(8, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
    path = str(tmp_path / "tiny.keras")
    keras.Model(inp, L.Dense(2)(L.GlobalAveragePooling2D()(x))).save(path)
    return ["--model", path, "--preprocess", "0-1"]


def _cli_cluster(tmp_path, argv, **kw):
    """The same ``tfviz ARGV`` on two workers, each in its own folder (w0, w1), so that
    what each writes with relative paths can be told apart."""
    for i in range(2):
        (tmp_path / f"w{i}").mkdir(parents=True, exist_ok=True)

    def argv_of(i):
        return [sys.executable, "-c", "import os, sys; os.chdir(sys.argv[1]); from tfviz.cli import main; "
                "main(sys.argv[2:])", str(tmp_path / f"w{i}"), *map(str, argv)]
    return cluster(argv_of, tmp_path, **kw)


@pytest.mark.slow
def test_d_the_command_line_on_two_workers(image_folder, tiny_keras, tmp_path):
    # patches: each worker says which task it is; only the chief writes the picture and the logs
    argv = ["patches", "--strategy", "multiworker", "--images", image_folder, *tiny_keras, "--layer", "conv2",
            "-c", "0-2", "-k", "3", "--batch-size", "8", "-o", "out", "--logdir", "logs"]
    with _cli_cluster(tmp_path, argv) as c:
        assert c.wait(3 * START) == [0, 0], (c.text(0), c.text(1))
        said = [c.text(i) for i in range(2)]
    assert "multiworker: this is worker 0 of 2 (task worker:0, the chief); 2 replicas on 2 workers" in said[0]
    assert "multiworker: this is worker 1 of 2 (task worker:1); 2 replicas on 2 workers" in said[1]
    assert "the chief writes the outputs" in said[1] and "done; the chief (worker 0) writes the outputs" in said[1]
    assert "channel    0: top score" in said[0] and "channel" not in said[1]
    assert _files(tmp_path / "w0" / "out") == ["patches-tiny-conv2.png"] and len(_events(tmp_path / "w0" / "logs")) == 1
    assert _files(tmp_path / "w1") == []
    # train-stylizer: checkpoints in the shared folder from the chief only, its network and logs
    shared = tmp_path / "shared"
    argv = ["train-stylizer", "--strategy", "multiworker", "--style", "strokes", *tiny_keras, "--image-size", 32,
            "--batch-size", 4, "--steps", 3, "--width", 0.125, "--checkpoint-dir", shared / "ckpt",
            "--checkpoint-every", 2, "--logdir", "logs", "-o", "net.keras"]
    with _cli_cluster(tmp_path / "train", argv) as c:
        assert c.wait(3 * START) == [0, 0], (c.text(0), c.text(1))
        said = [c.text(i) for i in range(2)]
    assert "wrote net.keras (1 style); 3 steps" in said[0] and "wrote" not in said[1]
    assert os.path.isfile(tmp_path / "train" / "w0" / "net.keras") and _files(tmp_path / "train" / "w1") == []
    assert _files(shared / "ckpt") == ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index",
                                       "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    assert len(_events(tmp_path / "train" / "w0" / "logs")) == 1
    assert _tfviz_temp(c.tmp) == []


# --------------------------------------------------------------------------- the page
def _folded_args(text):
    """The Job's container argument: the YAML folded scalar (``- >-``) under ``args:``, its
    lines joined by spaces as YAML folds them (no PyYAML needed: it is no dependency)."""
    assert "kind: Job" in text
    lines = text.splitlines()
    start = next(k for k, ln in enumerate(lines) if ln.strip() == "- >-") + 1
    indent = len(lines[start]) - len(lines[start].lstrip())
    body = []
    for ln in lines[start:]:
        if not ln.strip() or len(ln) - len(ln.lstrip()) < indent:
            break
        body.append(ln.strip())
    script = " ".join(body)
    try:   # where PyYAML is installed, the same string as its reading
        import yaml
    except ImportError:
        return script
    job = [d for d in yaml.safe_load_all(text) if d["kind"] == "Job"][0]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][0] == script
    return script


def test_the_past_one_machine_page_names_what_exists(tmp_path):
    """docs/multiworker.md's cluster recipes cannot run here (sh, yaml and py blocks, which
    the README test leaves alone): their tfviz commands name real commands, options and
    choices, the Python names real functions and keywords, and the TF_CONFIG the Slurm
    script and the Kubernetes Job build in bash is one read_tf_config accepts."""
    import re
    import shlex

    from test_readme import _check_snippet, _check_tfviz_command

    from tfviz.distribute import read_tf_config
    page = open(os.path.join(ROOT, "docs", "multiworker.md"), encoding="utf-8").read()
    blocks = {lang: re.findall(r"```" + lang + r"\n(.*?)```", page, re.S) for lang in ("sh", "py", "yaml")}
    assert len(blocks["sh"]) == 2 and len(blocks["py"]) == 2 and len(blocks["yaml"]) == 1
    script = _folded_args(blocks["yaml"][0])
    commands = [m for text in blocks["sh"] + [script]
                for m in re.findall(r"\btfviz [^'\n]*", text.replace("\\\n", " "))]
    assert len(commands) == 4
    for cmd in commands:
        _check_tfviz_command(shlex.split(cmd))
    for i, code in enumerate(blocks["py"]):
        _check_snippet(code, f"docs/multiworker.md py block {i}")
    slurm = blocks["sh"][1].replace('scontrol show hostnames "$SLURM_JOB_NODELIST"', "printf 'node1\\nnode2\\n'")
    slurm = re.sub(r"\\\n\s*tfviz [^']*'", "printenv TF_CONFIG'", slurm.replace("srun bash", "bash"))
    k8s = re.sub(r"tfviz .*", "printenv TF_CONFIG", script)
    for text, env, hosts in [(slurm, {"SLURM_PROCID": "1"}, ["node1:12345", "node2:12345"]),
                             (k8s, {"JOB_COMPLETION_INDEX": "1"}, ["tfviz-0.tfviz:12345", "tfviz-1.tfviz:12345"])]:
        proc = subprocess.run(["bash", "-c", text], capture_output=True, text=True, env={**os.environ, **env},
                              timeout=60)
        assert proc.returncode == 0, proc.stderr
        cfg = read_tf_config({"TF_CONFIG": proc.stdout.strip()})
        assert cfg == {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": 1}}


def test_output_checks_of_workers_sharing_a_folder_do_not_race(tmp_path, monkeypatch):
    """Every worker checks the shared --checkpoint-dir before it starts: a folder another
    worker makes meanwhile (mkdir answers 'file exists'), or removes again after its own
    probe (the probe finds no folder), is no error. (Both happened: one worker refused the
    shared folder, 'cannot write .../shared/ckpt: file exists', and the other waited for it.)"""
    import tempfile as tf_
    from tfviz.cli import common
    real_mkdir, real_mkstemp = os.mkdir, tf_.mkstemp

    def first_made_by_another(path, *a, **k):
        real_mkdir(path, *a, **k)
        raise FileExistsError(17, "File exists", path)
    monkeypatch.setattr(common.os, "mkdir", first_made_by_another)
    target = tmp_path / "shared" / "ckpt"
    common.check_writable(str(target), "--checkpoint-dir", folder=True)
    assert target.is_dir()   # made by "the other worker": not ours to remove
    monkeypatch.setattr(common.os, "mkdir", real_mkdir)
    calls = []

    def removed_meanwhile(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            raise FileNotFoundError(2, "No such file or directory")
        return real_mkstemp(*a, **k)
    monkeypatch.setattr(common.tempfile, "mkstemp", removed_meanwhile)
    common.check_writable(str(tmp_path / "other" / "ckpt"), "--checkpoint-dir", folder=True)
    assert len(calls) == 2 and not (tmp_path / "other").exists()   # checked again; its probe folders removed
    monkeypatch.setattr(common.tempfile, "mkstemp", real_mkstemp)
    tries = []

    def parent_removed_meanwhile(path, *a, **k):
        tries.append(path)
        if len(tries) == 1:   # the other worker's check removed the parent it had made
            raise FileNotFoundError(2, "No such file or directory", path)
        return real_mkdir(path, *a, **k)
    monkeypatch.setattr(common.os, "mkdir", parent_removed_meanwhile)
    common.check_writable(str(tmp_path / "third" / "ckpt"), "--checkpoint-dir", folder=True)
    assert len(tries) == 3 and not (tmp_path / "third").exists()
