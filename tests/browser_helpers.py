"""Headless Chromium and TensorBoard for the browser tests and bench/bench_board.py: a
TensorBoard child process serving a logdir with tfviz's flags, and Chromium driven over the
Chrome DevTools protocol (websocket-client)."""
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

from cli_helpers import stop_process


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=2.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def tensorboard_cmd():
    here = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    exe = here if os.path.exists(here) else shutil.which("tensorboard")
    return [exe] if exe else [sys.executable, "-m", "tensorboard.main"]


_stop = stop_process


class TensorBoard:
    def __init__(self, logdir, tmp):
        from tfviz.cli.board import tensorboard_argv
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(os.path.join(tmp, f"tensorboard-{self.port}.log"), "wb")
        self.proc = subprocess.Popen(
            tensorboard_cmd() + tensorboard_argv(logdir, port=self.port, reload_interval=1),
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self):
        def up():
            assert self.proc.poll() is None, "tensorboard exited; see its log"
            return json.loads(get(self.url + "/data/plugins_listing")).get("tfviz", {}).get("enabled")
        wait_for(up, 60, "tensorboard to list the tfviz plugin")

    def stop(self):
        _stop(self.proc, self.log)


class Chromium:
    """Headless Chromium driven over the DevTools protocol (websocket-client)."""

    def __init__(self, exe, tmp):
        profile = os.path.join(tmp, "chromium-profile")
        os.makedirs(profile)
        self.log = open(os.path.join(tmp, "chromium.log"), "wb")
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0",
             "--remote-allow-origins=*", f"--user-data-dir={profile}", "--window-size=1400,1000",
             "about:blank"],
            stdout=self.log, stderr=subprocess.STDOUT)
        port_file = os.path.join(profile, "DevToolsActivePort")
        wait_for(lambda: os.path.exists(port_file) and open(port_file).read().strip(), 30, "chromium to start")
        port = int(open(port_file).read().split()[0])
        pages = wait_for(lambda: [t for t in json.loads(get(f"http://127.0.0.1:{port}/json/list"))
                               if t.get("type") == "page"], 20, "a chromium page")
        import websocket
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []
        self.call("Runtime.enable")
        self.call("Page.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(r["exceptionDetails"].get("exception", {}).get("description", r["exceptionDetails"]))
        return r["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as fh:
            fh.write(base64.b64decode(data))
        return path

    def errors(self):
        out = []
        for e in self.events:
            if e.get("method") == "Runtime.exceptionThrown":
                out.append(e["params"]["exceptionDetails"].get("exception", {}).get("description", "exception"))
            elif e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description", ""))) for a in e["params"]["args"]))
        return out

    def close(self):
        try:
            self.ws.close()
        finally:
            _stop(self.proc, self.log)


# The tfviz iframe inside TensorBoard's page (TensorBoard mounts dynamic plugins in one).
DOC = """(() => { for (const f of document.querySelectorAll('iframe')) {
  try { const d = f.contentDocument; if (d && d.querySelector('#tfviz')) return d; } catch (e) {} }
  return null; })()"""


