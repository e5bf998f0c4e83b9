"""One cache of traced programs per bundle (``bundle.programs``), one key scheme, and no
other cache: no module keeps state of its own between calls (a module-level dict, list or
set that functions fill, a global that functions rebind, an ``lru_cache``), nor hangs one on
the bundle. Found structurally (the syntax tree of every module of tfviz and tb_plugin,
and every module imported), not by grepping for names."""
import ast
import functools
import importlib
import pathlib
import pkgutil

import numpy as np
import pytest

import tb_plugin
import tfviz
from tfviz import attribution as A, inspect
from tfviz.models import Programs

# Module-level caches that exist today, as "path:NAME" (path relative to the repository).
# Remove them (a traced program belongs in bundle.programs, the one cache) or, if the
# design needs one, keep it here on purpose with a comment saying why; delete an entry when
# its cache goes. test_no_module_level_cache fails on any cache not listed here, and
# test_known_module_caches_are_still_there on an entry whose cache is gone. (Emptied so
# far: attribution/gradients.py _DRAW, attribution/guided.py _WRAPPER, models.py _BYPASS_CLS.)
# Process-wide state kept on purpose, not a cache of something built from a model: an open
# event file must have one writer per (logdir, run) however many callbacks write to it, and a
# process that runs several commands (tfviz demo, notebooks, the test suite) loads each model
# once. Anything else found here fails: traced programs and facts about a model belong in
# bundle.programs.
KNOWN_MODULE_CACHES = {
    "tfviz/callbacks.py:_WRITERS",      # one summary Writer per (logdir, run), shared by the callbacks
    "tfviz/cli/common.py:_BUNDLES",     # the CLI's last four bundles by options (tfviz demo, the tests)
    "tfviz/synthesis/texture_measure.py:_BUNDLES",  # the texture measure's default lite0, loaded once
}
# Module-level containers a decorator fills while the package is imported (one entry per
# declared method), never a call: not caches. test_registries_are_filled_only_at_import
# checks that calls leave them as the import made them.
REGISTRIES = {
    "tfviz/attribution/registry.py:METHODS",
}


def small_bundle():
    import keras
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inp)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, name="logits")(x)
    return tfviz.load_model(keras.Model(inp, out), preprocess="0-1", class_names=["a", "b", "c"])


def test_keys_are_normalized_and_built_once():
    p = Programs()
    calls = []

    def build():
        calls.append(1)
        return object()

    a = p.get("x.y", "conv", "guided", build)
    assert p.get("x.y", ("conv",), ("guided",), build) is a       # one name == a 1-tuple
    assert p.get("x.y", ["conv"], ("guided",)) is a               # a list too; no build needed
    assert len(calls) == 1 and len(p) == 1
    assert p.get("x.y", None, (), build) is not a                 # None == () == the logits
    assert p.get("x.y", (), (), build) is p.get("x.y", None, ())
    assert len(calls) == 2
    with pytest.raises(KeyError):
        p.get("x.z")
    assert p.put("x.z", value=3) == 3 and p.has("x.z") and not p.has("x.z", "conv")
    assert sorted(k[0] for k in p) == ["x.y", "x.y", "x.z"]
    p.clear()
    assert len(p) == 0


def test_every_method_uses_the_bundle_programs():
    b = small_bundle()
    imgs = np.random.default_rng(0).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    A.saliency(b, imgs, 0)
    A.grad_cam(b, imgs, 0)
    A.guided_backprop(b, imgs, 0)
    inspect.activation_maps(b, imgs[0], "conv")
    b.predict(imgs)
    whats = {k[0] for k in b.programs}
    assert {"attribution.gradient", "attribution.head", "attribution.cam", "inspect.forward", "models.logits",
            "models.predict", "models.features", "attribution.relu_count", "default_layers.cam_layer"} <= whats
    guided = [k for k in b.programs if k[0] == "attribution.gradient" and k[2] == ("guided",)]
    assert len(guided) == 1
    n = len(b.programs)
    A.saliency(b, imgs, 1)                # same programs, another target: nothing new built
    A.grad_cam(b, imgs[:1], 2)
    inspect.activation_maps(b, imgs[1], "conv")
    assert len(b.programs) == n


def test_a_second_call_reuses_the_traced_function():
    from tfviz.attribution import core
    b = small_bundle()
    imgs = np.random.default_rng(1).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    A.saliency(b, imgs, 0)
    f = core.gradient_function(b)
    assert f is core.gradient_function(b, None, None)
    n = f.experimental_get_tracing_count()
    A.saliency(b, imgs, [0, 1, 2])
    assert f.experimental_get_tracing_count() == n


ROOT = pathlib.Path(tfviz.__file__).parent.parent
SOURCES = sorted(p for pkg in ("tfviz", "tb_plugin") for p in (ROOT / pkg).rglob("*.py"))
MUTABLE_CALLS = {"dict", "list", "set", "bytearray", "OrderedDict", "defaultdict", "deque", "Counter",
                 "WeakKeyDictionary", "WeakValueDictionary", "WeakSet", "ChainMap"}
MUTATORS = {"append", "extend", "insert", "add", "update", "setdefault", "pop", "popitem", "popleft", "clear",
            "remove", "discard", "appendleft", "__setitem__", "__delitem__", "__ior__", "move_to_end"}
CACHE_DECORATORS = {"lru_cache", "cache"}


def _callee(node):
    """The last name of a call's function or a decorator: ``functools.lru_cache(8)`` -> lru_cache."""
    node = node.func if isinstance(node, ast.Call) else node
    return node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)


def _is_mutable(value) -> bool:
    return isinstance(value, (ast.Dict, ast.List, ast.Set, ast.DictComp, ast.ListComp, ast.SetComp)) or (
        isinstance(value, ast.Call) and _callee(value) in MUTABLE_CALLS)


def _module_mutables(tree) -> set:
    """Names bound at module level (or in a module-level if/try) to a mutable container."""
    names = set()
    body = list(tree.body)
    while body:
        node = body.pop(0)
        if isinstance(node, (ast.If, ast.Try)):
            body.extend(node.body + node.orelse + getattr(node, "finalbody", [])
                        + [n for h in getattr(node, "handlers", []) for n in h.body])
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None and _is_mutable(node.value):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {t.id for t in targets if isinstance(t, ast.Name)}
    return names


def _changed(node):
    """The container ``node`` changes in place, or None: ``X`` of ``X[k] = v``,
    ``del X[k]``, ``X[k] += v``, ``X += v``, ``X.append(v)`` (any :data:`MUTATORS`)."""
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
        targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
        for t in targets:
            if isinstance(t, ast.Subscript):
                while isinstance(t, ast.Subscript):
                    t = t.value
                return t
            if isinstance(node, ast.AugAssign):
                return t
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
        return node.func.value
    return None


def _local_names(func) -> set:
    """Names a function binds itself (its arguments and assignments), which shadow the module's."""
    if isinstance(func, ast.Lambda):
        return {a.arg for a in func.args.args}
    args = func.args
    names = {a.arg for a in args.args + args.posonlyargs + args.kwonlyargs + [args.vararg, args.kwarg] if a}
    names |= {n.id for n in ast.walk(func) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    return names - {n for g in ast.walk(func) if isinstance(g, ast.Global) for n in g.names}


_HANDING_OUT = (ast.Assign, ast.AnnAssign, ast.NamedExpr, ast.Return, ast.Yield)


def _function_state(tree) -> dict:
    """Module state functions keep: names declared ``global``, module-level containers
    changed in place (unless a local of the same name shadows them) or handed out whole
    (``seen = _SEEN``, ``return _SEEN``: then the alias fills it)."""
    mutables, found = _module_mutables(tree), {}
    for func in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))):
        name = getattr(func, "name", "<lambda>")
        own = _local_names(func)
        for node in ast.walk(func):
            if isinstance(node, ast.Global):
                found.update({g: f"global {g} in {name}()" for g in node.names})
            changed = _changed(node)
            if isinstance(changed, ast.Name) and changed.id in mutables and changed.id not in own:
                found[changed.id] = f"changed in {name}() (line {node.lineno})"
            handed = getattr(node, "value", None) if isinstance(node, _HANDING_OUT) else None
            if isinstance(handed, ast.Name) and handed.id in mutables and handed.id not in own:
                found[handed.id] = f"bound to another name or returned in {name}() (line {node.lineno})"
    return found


def _class_state(tree) -> dict:
    """Containers shared by every instance of a class (bound in the class body) that its
    code changes in place through ``self``, ``cls`` or the class's name, and that are
    never replaced per instance (``self.NAME = ...``)."""
    found = {}
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        shared = {t.id for n in cls.body if isinstance(n, (ast.Assign, ast.AnnAssign)) and n.value is not None
                  and _is_mutable(n.value) for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                  if isinstance(t, ast.Name)}
        shared -= {n.attr for n in ast.walk(cls) if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Store)
                   and getattr(n.value, "id", None) == "self"}
        for node in ast.walk(cls):
            changed = _changed(node)
            if (isinstance(changed, ast.Attribute) and changed.attr in shared
                    and getattr(changed.value, "id", None) in ("self", "cls", cls.name)):
                found[f"{cls.name}.{changed.attr}"] = f"shared by every {cls.name}, changed (line {node.lineno})"
    return found


def _cached_functions(tree) -> dict:
    """Functions and methods cached by ``functools.lru_cache`` / ``cache``, decorated or
    wrapped (``f = lru_cache(8)(g)``)."""
    found, decorators = {}, set()
    for func in (n for n in ast.walk(tree) if hasattr(n, "decorator_list")):
        for dec in func.decorator_list:
            decorators.add(id(dec))
            if _callee(dec) in CACHE_DECORATORS:
                found[func.name] = f"@{_callee(dec)}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and id(node) not in decorators and _callee(node) in CACHE_DECORATORS:
            found[f"<{_callee(node)} at line {node.lineno}>"] = f"{_callee(node)}() called"
    return found


def module_caches(path) -> dict:
    """``{name: why}`` for the state a module keeps between calls, from its syntax tree
    (module globals functions rebind or fill, class-level containers the class fills,
    lru_cache'd functions)."""
    tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
    return {**_function_state(tree), **_class_state(tree), **_cached_functions(tree)}


def _all_caches() -> dict:
    return {f"{p.relative_to(ROOT).as_posix()}:{name}": why
            for p in SOURCES for name, why in module_caches(p).items()}


def test_no_module_level_cache():
    """No module keeps state between calls except the known ones being removed
    (KNOWN_MODULE_CACHES); a traced program or anything built once per model belongs in
    ``bundle.programs``."""
    new = {k: v for k, v in _all_caches().items() if k not in KNOWN_MODULE_CACHES | REGISTRIES}
    assert new == {}, ("module-level caches (keep traced programs in bundle.programs; build a class at "
                       f"import): {new}")


def test_known_module_caches_are_still_there():
    """An entry of KNOWN_MODULE_CACHES whose cache has gone is deleted from the list, so
    the list says what is left to remove (and a cache cannot come back under its name)."""
    gone = sorted((KNOWN_MODULE_CACHES | REGISTRIES) - set(_all_caches()))
    assert gone == [], f"these caches are gone: delete them from KNOWN_MODULE_CACHES: {gone}"


def _registry(entry):
    path, name = entry.split(":")
    return getattr(importlib.import_module(path[:-3].replace("/", ".")), name)


def test_registries_are_filled_only_at_import():
    """A registry holds what the import declared; running methods adds and drops nothing."""
    for name in _modules():
        importlib.import_module(name)
    before = {e: dict(_registry(e)) for e in REGISTRIES}
    assert all(before.values()), before
    b = small_bundle()
    imgs = np.random.default_rng(2).integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    for method in ("saliency", "grad_cam", "smoothgrad", "occlusion"):
        A.METHODS[method](b, imgs, 0, **({"samples": 2} if method == "smoothgrad" else {}))
    assert {e: dict(_registry(e)) for e in REGISTRIES} == before


def test_the_cache_finder_finds_every_kind_of_cache(tmp_path):
    """What module_caches finds (and leaves alone), on a module written here."""
    src = tmp_path / "m.py"
    src.write_text('''
import functools
from functools import lru_cache
CONSTANT = {"a": 1}            # read only: not a cache
NAMES = ["x", "y"]
_SEEN = set()
_BY_KEY = {}
_LIST = []
_ONCE = None
_COUNT = 0
if True:
    _NESTED = dict()

def read(k):
    return CONSTANT[k], NAMES[0], len(_LIST)

def local_shadow():
    _BY_KEY = {}
    _BY_KEY["k"] = 1            # a local of the same name: not the module's
    return _BY_KEY

def fill(k, v):
    _BY_KEY[k] = v

def see(k):
    _SEEN.add(k)

def grow():
    _LIST.append(1)

def nested():
    _NESTED.setdefault("k", []).append(1)

_WARNED = set()

def warn_once(reason):
    seen = _WARNED                # filled through an alias
    if reason not in seen:
        seen.add(reason)

def passed_along():
    return sorted(CONSTANT), len(NAMES)   # read by a call: not a cache

def once():
    global _ONCE
    _ONCE = _ONCE or object()

def count():
    global _COUNT
    _COUNT += 1

@functools.lru_cache(maxsize=None)
def f(x):
    return x

@lru_cache
def g(x):
    return x

class C:
    @functools.cache
    def h(self):
        return 1

k = functools.lru_cache(8)(read)

class Shared:
    _memo = {}                  # one dict for every instance, filled by them
    per_instance = []           # replaced in __init__: not shared

    def __init__(self):
        self.per_instance = []

    def get(self, k):
        self.per_instance.append(k)
        return self._memo.setdefault(k, k)
''')
    found = module_caches(src)
    line = src.read_text().splitlines().index("k = functools.lru_cache(8)(read)") + 1
    assert set(found) == {"_BY_KEY", "_SEEN", "_LIST", "_NESTED", "_ONCE", "_COUNT", "f", "g", "h",
                          f"<lru_cache at line {line}>", "Shared._memo", "_WARNED"}, found


def _modules():
    """Every module of tfviz and tb_plugin but the ``__main__`` ones (they run the CLI)."""
    for pkg in (tfviz, tb_plugin):
        yield pkg.__name__
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            if not info.name.endswith("__main__"):
                yield info.name


def test_no_imported_module_holds_a_cached_function():
    """Every module imports, and none holds an ``lru_cache`` / ``cache`` wrapper at its top
    level or in its classes (however it was made: decorator, call, alias)."""
    found = []
    for name in _modules():
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if getattr(obj, "__module__", None) != name:
                continue
            members = vars(obj).items() if isinstance(obj, type) else [(attr, obj)]
            for inner, o in members:
                if isinstance(o, functools._lru_cache_wrapper):
                    found.append(f"{name}.{attr}" + ("" if inner == attr else f".{inner}"))
    known = {k.split(":")[1] for k in KNOWN_MODULE_CACHES}
    assert [f for f in found if f.rsplit(".", 1)[-1] not in known] == []


def test_no_module_hangs_state_on_the_bundle():
    """No module stores its own attributes on a bundle (``bundle.x = ...``,
    ``setattr(bundle, ...)``); a bundle has no ``_cache``."""
    offenders = []
    for p in SOURCES:
        if p.name == "models.py" or "models" in p.relative_to(ROOT).parts[1:2]:
            continue                                     # where the bundle is defined
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                    and getattr(node.value, "id", None) == "bundle":
                offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}")
            if isinstance(node, ast.Call) and _callee(node) == "setattr" and node.args \
                    and getattr(node.args[0], "id", None) == "bundle":
                offenders.append(f"{p.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []
    assert not hasattr(small_bundle(), "_cache")
