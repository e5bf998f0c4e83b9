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




# -- the tfviz tab's own state, for the browser tests and bench/bench_board.py ----------

def view_state(browser):
    """#tfviz-view's dataset in the tfviz iframe: {view, state, images, broken} as strings
    (None before the tab is up)."""
    return browser.eval(f"(() => {{ const d = {DOC}; const m = d && d.querySelector('#tfviz-view');"
                        " return m ? Object.assign({}, m.dataset) : null; })()")


def wait_view(browser, view=None, timeout=40, state=None):
    """Waits until the tab shows VIEW (any view when None) settled -- data-state no longer
    'loading' (or equal to STATE when given) -- and returns its dataset."""
    def settled():
        s = view_state(browser)
        if not s or (view is not None and s.get("view") != view):
            return None
        if state is not None:
            return s if s.get("state") == state else None
        return s if s.get("state") != "loading" else None
    return wait_for(settled, timeout, f"the {view or 'tfviz'} view to settle")


def open_tfviz(browser, url, view=None, timeout=40):
    """Opens URL (TensorBoard's page with a #tfviz... hash) afresh -- through about:blank,
    so that a URL differing only in its hash still loads a new page -- and waits until the
    tab has settled on a view (VIEW when given): its dataset."""
    browser.call("Page.navigate", url="about:blank")
    wait_for(lambda: browser.eval("location.href") == "about:blank", 10, "a blank page")
    browser.call("Page.navigate", url=url)
    wait_for(lambda: browser.eval(f"(() => {{ const d = {DOC}; return !!(d && d.querySelector('#tfviz-view')); }})()"),
             timeout, "the tfviz tab")
    return wait_view(browser, view, timeout)


def tfviz_link(base_url, **state):
    """TensorBoard's URL that opens the tfviz tab at STATE (view, filter, run, tag, step):
    the hash keys p.tfviz.<key>, as TensorBoard keeps plugin URL data."""
    from urllib.parse import quote
    parts = ["tfviz"] + [f"{quote('p.tfviz.' + k, safe='')}={quote(str(v), safe='')}"
                         for k, v in state.items() if v is not None]
    return f"{base_url}/#" + "&".join(parts)


def hash_state(url):
    """The hash of a TensorBoard URL as a dict (the bare first entry under '__tab__')."""
    from urllib.parse import unquote
    out = {}
    for part in url.split("#", 1)[1].split("&") if "#" in url else []:
        kv = part.split("=")
        if len(kv) == 1:
            out["__tab__"] = unquote(kv[0])
        elif len(kv) == 2:
            out[unquote(kv[0])] = unquote(kv[1])
    return out


def requests_sent(browser, part="/data/plugin/tfviz/", since=0):
    """URLs of the requests the page sent (DevTools Network domain; call
    browser.call('Network.enable') first) whose URL contains PART, from event SINCE on."""
    return [e["params"]["request"]["url"] for e in browser.events[since:]
            if e.get("method") == "Network.requestWillBeSent" and part in e["params"]["request"]["url"]]


def fulfill_paused(browser, status, body, seen):
    """Answers every request paused by the DevTools Fetch domain (Fetch.enable with
    patterns) and not in SEEN with STATUS and BODY; returns how many it answered."""
    answered = 0
    for e in list(browser.events):
        if e.get("method") != "Fetch.requestPaused" or e["params"]["requestId"] in seen:
            continue
        seen.add(e["params"]["requestId"])
        browser.call("Fetch.fulfillRequest", requestId=e["params"]["requestId"], responseCode=status,
                     responseHeaders=[{"name": "Content-Type", "value": "text/plain"}],
                     body=base64.b64encode(body.encode()).decode())
        answered += 1
    return answered
