"""README.md and the in-depth pages docs/*.md say only what works.

Every page, in the default tier (milliseconds): each ```bash command names a real tfviz
command, real options of it and valid choices for them (``python -m`` a real module,
``python examples/x.py`` a real script), and each ```python snippet compiles, its imports
resolve and every function it calls from tfviz exists and takes the keywords it is given.

Run as written, each block in an empty folder, on the offline defaults: the README's own
sections in the default tier; the in-depth pages in the slow tier (``-m slow``: about
three minutes of CPU, each page re-tracing a dozen methods on efficientnet_lite0, which the
default tier runs through each command's own tests and ``tfviz demo --quick --only`` one
method per section in tests/test_demo.py). The README's tour is made from tfviz/cli/demo/tour.py and
runs there (the whole quick demo in the slow tier).

A few commands are slow at their page's settings (a 256-step optimization, five minutes of
trust checks); ``SMALL`` appends options that shrink them, and in Python snippets
``steps=N`` / ``samples=N`` / ``epochs=N`` / ``sizes=(...)`` become small numbers. Nothing
else is changed: a line that does not run fails here. The install and test commands themselves (``pip install``,
``python -m venv``, ``python -m pytest``) are what CI runs, so they are skipped here.
The three longest snippets are tests of their own (``SLOW_SNIPPET_SECTIONS``).
"""
import os
import re
import shlex
import subprocess
import sys
import time
import urllib.request

import pytest

from cli_helpers import run_cli, stop_process

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
DOCS = [README] + sorted(os.path.join(ROOT, "docs", f) for f in os.listdir(os.path.join(ROOT, "docs"))
                         if f.endswith(".md"))
# the README's tour: generated from tfviz/cli/demo/tour.py (tests/test_demo.py checks it is current);
# its commands run in the demo's end-to-end test, its Python calls in the demo's slow test
GENERATED_SECTIONS = ("The tour",)

# options appended to slow commands (matched by the start of the command)
SMALL = {
    "tfviz trust": ["--methods", "saliency,grad_cam", "--curve-steps", "5", "--layers", "1"],
    "tfviz attribute all": ["--samples", "3", "--steps", "4", "--max-channels", "16"],
    "tfviz attribute score_cam": ["--max-channels", "16"],
    "tfviz attribute smoothgrad": ["--samples", "3"],
    "tfviz attribute integrated_gradients": ["--steps", "4"],
    "tfviz classviz": ["--steps", "4"],   # --steps given twice: the last one counts
    "tfviz neurons": ["--steps", "3"],
    "tfviz fool": ["--steps", "5"],
    "tfviz dream": ["--steps", "2", "--octaves", "2", "--max-side", "128"],
    "tfviz embed": ["--limit", "300"],
    "tfviz invert": ["--steps", "2", "--layers", "stem_relu,block3b_add"],
    "tfviz texture": ["--steps", "2", "--size", "64x48"],
    "tfviz style": ["--steps", "2", "--size", "96"],
    "tfviz train-stylizer": ["--steps", "2", "--image-size", "32", "--batch-size", "2", "--width", "0.25"],
    "tfviz train-texture": ["--steps", "2", "--image-size", "32", "--scales", "2", "--width", "0.5",
                            "--sample-size", "32"],
    "tfviz concepts": ["--random-sets", "2", "--examples", "10"],
}
# what CI itself runs (installing, the tests): never run or checked here
CI_COMMANDS = ("pip install", "python -m venv", ". .venv/bin/activate", "source .venv/bin/activate",
               "python -m pytest")
SKIP = CI_COMMANDS + ("tfviz demo",)  # the demo runs end to end in tests/test_demo.py
SMALL_PYTHON = [(r"\b(steps|max_steps|steps_per_octave|samples|max_channels)=\d+", r"\1=3"),
                (r"\bepochs=\d+", "epochs=2"),
                (r"\bsteps=\(\d+, \d+\)", "steps=(2, 2)"), (r"\bsizes=\([^)]*\)", "sizes=(64, 96)"),
                (r"\bsize=\(\d+, \d+\)", "size=(48, 64)"), (r"\brandom_sets=\d+", "random_sets=2"),
                (r"\bexamples=\d+", "examples=10")]


def _name(doc):
    return os.path.relpath(doc, ROOT)


def _blocks(lang, doc=README):
    text = open(doc, encoding="utf-8").read()
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"```" + lang + r"\n(.*?)```", text, re.S)]


def _commands(doc=README):
    """(line, command) for every command of every bash block of ``doc``, and every ``$ ``
    line of a text block (a command shown with its output); ``a && b`` is two."""
    out = []
    shown = [(l0, "\n".join(line[2:] if line.startswith("$ ") else "" for line in b.splitlines()))
             for l0, b in _blocks("text", doc)]
    for line0, block in sorted(_blocks("bash", doc) + shown):
        for i, line in enumerate(block.splitlines()):
            words = shlex.split(line, comments=True)
            if not words:
                continue
            cmd = []
            for w in words + ["&&"]:
                if w == "&&":
                    out.append((line0 + i, cmd))
                    cmd = []
                else:
                    cmd.append(w)
    return out


def test_readme_has_commands_and_snippets():
    assert len(DOCS) >= 7
    assert sum(len(_commands(d)) for d in DOCS) > 20 and sum(len(_blocks("python", d)) for d in DOCS) >= 5
    for doc in DOCS:                      # every picture a page shows is there
        for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", open(doc, encoding="utf-8").read()):
            assert os.path.isfile(os.path.join(os.path.dirname(doc), link)), f"{_name(doc)}: {link}"


# --------------------------------------------------------------------------- names that exist
def _option_table(command):
    """``{option word: click parameter}`` of a click command (``--help`` included)."""
    import click
    table = {"--help": None, "-h": None}
    for param in command.params:
        if isinstance(param, click.Option):
            for word in param.opts + param.secondary_opts:
                table[word] = param
    return table


def _check_tfviz_command(words):
    """The command exists, every option word is one of its options, and a value of a
    choice option is one of the choices."""
    import click

    from tfviz.cli import cli
    ctx = click.Context(cli)
    sub = cli.get_command(ctx, words[1]) if len(words) > 1 else None
    assert sub is not None, f"no command {words[1:2]}; commands: {', '.join(cli.list_commands(ctx))}"
    table = _option_table(sub)
    i = 2
    while i < len(words):
        w = words[i]
        if w == "--":                                     # the rest goes to another program
            break
        if w.startswith("-") and not re.match(r"-\d", w):
            name, _, value = w.partition("=")
            assert name in table, f"tfviz {words[1]}: no option {name}; options: {', '.join(sorted(table))}"
            param = table[name]
            takes_value = param is not None and not param.is_flag and not param.count
            if takes_value and not value:
                assert i + 1 < len(words), f"tfviz {words[1]} {name}: no value"
                value = words[i + 1]
                i += 1
            if takes_value and isinstance(param.type, click.Choice):
                choices = [str(c) for c in param.type.choices]
                ok = value in choices if param.type.case_sensitive else value.lower() in map(str.lower, choices)
                assert ok, f"tfviz {words[1]} {name} {value}: not one of {choices}"
        i += 1


def _check_command(words):
    import importlib.util
    if words[0] == "tfviz":
        return _check_tfviz_command(words)
    if words[:2] == ["python", "-m"]:
        assert importlib.util.find_spec(words[2]) is not None, f"no module {words[2]}"
        return None
    if words[0] == "python":
        assert os.path.isfile(os.path.join(ROOT, words[1])), f"no script {words[1]}"
        return None
    if words[0] == "tensorboard":
        return None
    raise AssertionError(f"README command {' '.join(words)!r}: the README test does not know it")


def _check_snippet(code, where):
    """The snippet compiles; its imports resolve; every ``module.name`` it uses exists and
    every call of a tfviz function names only keywords that function takes."""
    import ast
    import importlib
    import inspect
    tree = ast.parse(code, where)
    compile(tree, where, "exec")
    known = {}                                            # name in the snippet -> object
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                mod = importlib.import_module(a.name)
                known[a.asname or a.name.split(".")[0]] = mod if a.asname else importlib.import_module(
                    a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            mod = importlib.import_module(node.module)
            for a in node.names:
                if a.name == "*":
                    known.update({n: getattr(mod, n) for n in getattr(mod, "__all__", dir(mod))})
                    continue
                assert hasattr(mod, a.name) or importlib.util.find_spec(f"{node.module}.{a.name}"), \
                    f"{where}: from {node.module} import {a.name}: no such name"
                known[a.asname or a.name] = getattr(mod, a.name, None) or importlib.import_module(
                    f"{node.module}.{a.name}")

    def resolve(expr):
        if isinstance(expr, ast.Name):
            return known.get(expr.id)
        if isinstance(expr, ast.Attribute):
            base = resolve(expr.value)
            if base is None or not inspect.ismodule(base):
                return None                               # an attribute of a value: not checked here
            assert hasattr(base, expr.attr), f"{where}:{expr.lineno}: {base.__name__}.{expr.attr} does not exist"
            return getattr(base, expr.attr)
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            resolve(node)
        if isinstance(node, ast.Call):
            fn = resolve(node.func)
            if fn is None or not callable(fn) or not getattr(fn, "__module__", "").startswith("tfviz"):
                continue
            params = inspect.signature(fn).parameters
            if any(p.kind is p.VAR_KEYWORD for p in params.values()):
                continue
            for kw in node.keywords:
                assert kw.arg is None or kw.arg in params, \
                    f"{where}:{node.lineno}: {fn.__qualname__}() takes no keyword {kw.arg!r}; it takes " \
                    f"{', '.join(params)}"


def test_every_command_and_snippet_names_what_exists():
    """Every page: its commands name real commands, options and choices; its snippets
    name real functions and keywords (the pages' runs are in the slow tier)."""
    checked = 0
    for doc in DOCS:
        for lineno, words in _commands(doc):
            if " ".join(words).startswith(CI_COMMANDS):
                continue
            try:
                _check_command(words)
            except AssertionError as exc:
                raise AssertionError(f"{_name(doc)}:{lineno}: {exc}") from None
            checked += 1
        for lineno, code in _blocks("python", doc):
            _check_snippet(code, f"{_name(doc)}:{lineno}")
            checked += 1
    assert checked > 60


def _small(cmd):
    line = " ".join(cmd)
    extra = [v for k, v in SMALL.items() if line.startswith(k)]
    return cmd + (extra[0] if extra else [])


def _serve_and_check(cmd, cwd):
    """``tfviz board`` / ``tensorboard`` serve until stopped: start, wait for the tfviz
    tab to answer, stop."""
    exe = [sys.executable, "-m", "tfviz"] + cmd[1:] if cmd[0] == "tfviz" else \
        [sys.executable, "-m", "tensorboard.main"] + cmd[1:]
    if "--port" not in cmd:
        exe += ["--port", "0"] if cmd[0] == "tfviz" else ["--port", "0", "--host", "127.0.0.1"]
    log = open(os.path.join(cwd, "board.log"), "w+")
    proc = subprocess.Popen(exe, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        url = None
        while time.monotonic() < deadline and url is None:
            time.sleep(0.5)
            log.seek(0)
            m = re.search(r"(http://[\w.:\-]+/)", log.read())
            url = m.group(1) if m else None
            assert proc.poll() is None or url, f"{' '.join(cmd)} exited: {open(log.name).read()}"
        assert url, f"{' '.join(cmd)} printed no URL: {open(log.name).read()}"
        with urllib.request.urlopen(url + "data/plugin/tfviz/overview", timeout=30) as r:
            assert r.status == 200
    finally:
        stop_process(proc, log)


def _run(cmd, cwd, capsys):
    if cmd[:2] == ["tfviz", "board"] or cmd[0] == "tensorboard":
        return _serve_and_check(cmd, cwd)
    if cmd[0] == "tfviz":
        code, out, err = run_cli(_small(cmd)[1:], capsys)
        assert code == 0, f"{' '.join(cmd)} -> exit {code}\n{out}\n{err}"
        return
    if cmd[0] == "python":
        r = subprocess.run([sys.executable] + cmd[1:], cwd=cwd, capture_output=True, text=True, timeout=900,
                           env=dict(os.environ, PYTHONPATH=ROOT))
        assert r.returncode == 0, f"{' '.join(cmd)} -> exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        return
    raise AssertionError(f"README command {' '.join(cmd)!r}: the README test does not know how to run it")


def _block_start(lineno, doc=README):
    """The first line of the bash (or text) block holding line ``lineno`` of ``doc``."""
    return max(l for l, _ in _blocks("bash", doc) + _blocks("text", doc) if l <= lineno)


def _section(lineno, doc=README):
    """The section (its ``## `` heading) of ``doc`` holding line ``lineno``."""
    lines = open(doc, encoding="utf-8").read().splitlines()[:lineno]
    return next((l[3:].strip() for l in reversed(lines) if l.startswith("## ")), "top")


# The Python snippets of these sections run a dozen optimizations on efficientnet_lite0,
# each traced anew (about 30 s a snippet): they are in the slow tier (`-m slow`). The same
# recipes run in the default tier through these sections' commands and the unit tests.
SLOW_SNIPPET_SECTIONS = ("Synthesis", "Inversion, texture and style", "Fast style transfer")


def _command_blocks(doc=README):
    """``(first line, [(line, command), ...])`` per bash block (and per text block's
    ``$`` lines), in page order."""
    blocks = {}
    for lineno, cmd in _commands(doc):
        blocks.setdefault(_block_start(lineno, doc), []).append((lineno, cmd))
    return sorted(blocks.items())


def _section_items():
    """Per section of each page, in order: its bash blocks ``("bash", line, commands)``
    and its Python snippets ``("python", line, code)`` -- except the slow snippets, which
    are tests of their own (``test_readme_slow_python``), and the generated tour."""
    out = []
    for doc in DOCS:
        items = [("bash", n, cmds) for n, cmds in _command_blocks(doc)] + \
                [("python", n, code) for n, code in _blocks("python", doc)
                 if not _section(n, doc).startswith(SLOW_SNIPPET_SECTIONS)]
        sections = {}
        for kind, n, item in sorted(items, key=lambda t: t[1]):
            if doc == README and _section(n, doc).startswith(GENERATED_SECTIONS):
                continue
            sections.setdefault(_section(n, doc), []).append((kind, n, item))
        out += [(doc, items[0][1], items) for items in sections.values()]
    return out


_SECTION_ITEMS = _section_items()


@pytest.mark.parametrize("doc, lineno, items",
                         [pytest.param(d, n, it, marks=() if d == README else pytest.mark.slow)
                          for d, n, it in _SECTION_ITEMS],
                         ids=[f"{_name(d)}:{_section(n, d)[:40]}" for d, n, _ in _SECTION_ITEMS])
def test_readme_section(doc, lineno, items, tmp_path, request, capsys, monkeypatch):
    """One README section as a reader runs it: each bash block's commands in order in a
    folder of its own (a later command may read what an earlier one wrote), then on to the
    next block or Python snippet. One test per section, so that its commands and snippets
    share the programs traced on the session's built-in bundles."""
    ran = 0
    for kind, n, item in items:
        here = tmp_path / f"{kind}-{n}"
        here.mkdir()
        monkeypatch.chdir(here)
        if kind == "python":
            _built_ins(request, n, item, doc)
            _run_python(n, item, monkeypatch, doc)
            ran += 1
            continue
        runnable = [(m, cmd) for m, cmd in item if not " ".join(cmd).startswith(SKIP)]
        _built_ins(request, n, " ".join(" ".join(cmd) for _, cmd in runnable), doc)
        for m, cmd in runnable:
            try:
                _run(cmd, str(here), capsys)
            except AssertionError as exc:
                raise AssertionError(f"{_name(doc)}:{m}: {exc}") from None
            ran += 1
    if not ran:
        pytest.skip("install/test commands only: CI runs them")


# sections whose commands use digits_cnn without naming it (the data-set methods' default)
DIGITS_SECTIONS = ("Looking inside", "TensorBoard", "Models", "The command line")


def _built_ins(request, lineno, text, doc=README):
    """Load the session's built-in bundles an item uses: efficientnet_lite0 always,
    digits_cnn (trained on first use) only where the item needs it, so that a worker
    running, say, the attribution section does not wait for another to train it."""
    request.getfixturevalue("lite0")
    if "digits" in text or _section(lineno, doc).startswith(DIGITS_SECTIONS):
        request.getfixturevalue("digits")


def _share_built_in_models(monkeypatch):
    """``tfviz.load_model("efficientnet_lite0")`` in a snippet gets the session's bundle
    (the same weights), so the snippets share traced programs instead of tracing every
    method again; any other call loads as written."""
    import tfviz
    import tfviz.models
    from tfviz.cli.common import load_bundle
    real = tfviz.models.load_model

    def load_model(spec="efficientnet_lite0", **options):
        if isinstance(spec, str) and spec in ("efficientnet_lite0", "digits_cnn") and not options:
            return load_bundle(spec)
        return real(spec, **options)
    monkeypatch.setattr(tfviz, "load_model", load_model)
    monkeypatch.setattr(tfviz.models, "load_model", load_model)


def _run_python(lineno, code, monkeypatch, doc=README):
    _share_built_in_models(monkeypatch)
    for pattern, repl in SMALL_PYTHON:
        code = re.sub(pattern, repl, code)
    exec(compile(code, f"{_name(doc)}:{lineno}", "exec"), {"__name__": "__readme__"})


@pytest.mark.slow
@pytest.mark.parametrize("doc, lineno, code", _SLOW := [(d, n, c) for d in DOCS for n, c in _blocks("python", d)
                                                        if _section(n, d).startswith(SLOW_SNIPPET_SECTIONS)],
                         ids=[f"{_name(d)}:{n}" for d, n, _ in _SLOW])
def test_readme_slow_python(doc, lineno, code, tmp_path, request, monkeypatch):
    _built_ins(request, lineno, code, doc)
    monkeypatch.chdir(tmp_path)
    _run_python(lineno, code, monkeypatch, doc)
