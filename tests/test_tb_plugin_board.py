"""`tfviz board`: TensorBoard with the flags tfviz data needs, on 127.0.0.1, printing the URL."""
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest

from tfviz.cli.board import tensorboard_argv


def test_flags_keep_snapshots_and_loss_points():
    argv = tensorboard_argv("logs", port=7000)
    assert argv[:4] == ["--logdir", os.path.abspath("logs"), "--host", "127.0.0.1"]
    assert "--samples_per_plugin=tfviz=1000,scalars=10000" in argv
    assert argv[-2:] == ["--port", "7000"]
    from tensorboard.plugins.core.core_plugin import _parse_samples_per_plugin
    flag = next(a for a in argv if a.startswith("--samples_per_plugin="))
    assert _parse_samples_per_plugin(flag.split("=", 1)[1]) == {"tfviz": 1000, "scalars": 10000}


def test_missing_logdir_is_one_line_error(tmp_path, capsys):
    from tfviz.cli import main
    with pytest.raises(SystemExit) as exc:
        main(["board", str(tmp_path / "nope")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_board_serves_the_tfviz_tab(tmp_path):
    from tfviz.summary import Writer
    with Writer(str(tmp_path), run="classviz") as w:
        w.params("optimization", {"recipe": "class_visualization"})
        for step in range(30):  # more snapshots than TensorBoard's default 10 per tag
            w.scalar("loss", 1.0 / (step + 1), step)
            w.snapshot(np.full((4, 4, 3), step, np.uint8), step)
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tfviz", "board", str(tmp_path), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("#tfviz" in line for line in lines):
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line.strip())
        url = next(line.split(": ", 1)[1] for line in lines if "#tfviz" in line)
        assert url == f"http://127.0.0.1:{port}/#tfviz"
        base = url.split("#")[0] + "data/plugin/tfviz"

        def steps():
            with urllib.request.urlopen(base + "/series?run=classviz&tag=optimization/snapshot", timeout=5) as r:
                return [s["step"] for s in json.load(r)["steps"]]
        got = []
        while time.monotonic() < deadline:
            try:
                got = steps()
                if len(got) == 30:
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert got == list(range(30))  # not cut to a handful
        with urllib.request.urlopen(base + "/overview", timeout=5) as r:
            assert json.load(r)["samples_per_plugin"] == 1000
    finally:
        proc.terminate()
        proc.wait(15)
