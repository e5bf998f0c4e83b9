"""Declaring an attribution method once.

A method is one function that works on model inputs::

    @attribution_method
    def saliency(bundle, x, targets, *, batch_size: int = 32) -> np.ndarray:
        \"\"\"What it computes (the public docstring).\"\"\"
        ...

``x`` is float32 ``[N, H, W, 3]`` in the model's input space and ``targets`` one
:class:`~tfviz.attribution.targets.Target` per image. The decorator returns the public
function ``saliency(bundle, images, target=None, **options)`` -- it loads and
preprocesses ``images``, resolves ``target`` (each image's top-1 class when None) and
calls the declared function -- registers it in :data:`METHODS`, and keeps the declared
function as ``saliency.on_inputs`` for methods that call other methods on inputs they
already prepared (SmoothGrad, trust checks, the CLI).
"""
from __future__ import annotations

import functools
import inspect

import numpy as np

from ..errors import AttributionError, OptionError
from ..utils import did_you_mean
from .core import as_bundle, prepare
from .targets import resolve_targets

#: Every attribution method by name, in the order they were declared.
METHODS: dict = {}


def _public_signature(on_inputs) -> inspect.Signature:
    """``(bundle, x, targets, *, options)`` -> ``(bundle, images, target=None, *, options)``."""
    sig = inspect.signature(on_inputs)
    params = list(sig.parameters.values())
    if [p.name for p in params[:3]] != ["bundle", "x", "targets"]:
        raise AttributionError(f"an attribution method is declared as {on_inputs.__name__}(bundle, x, targets, *, "
                               f"...); got {on_inputs.__name__}{sig}")
    P = inspect.Parameter
    options = [p if p.kind in (P.KEYWORD_ONLY, P.VAR_KEYWORD) else p.replace(kind=P.KEYWORD_ONLY)
               for p in params[3:]]
    head = [params[0], P("images", P.POSITIONAL_OR_KEYWORD), P("target", P.POSITIONAL_OR_KEYWORD, default=None)]
    held = P("inputs", P.KEYWORD_ONLY, default=None)  # a model's other inputs (see run)
    named = [p for p in options if p.kind is not P.VAR_KEYWORD]
    return sig.replace(parameters=head + named + [held] + [p for p in options if p.kind is P.VAR_KEYWORD])


def _check_options(name, sig, options):
    """Unknown keywords become one clear error listing the method's options."""
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    valid = [p for p in list(sig.parameters)[3:]]
    unknown = [k for k in options if k not in valid]
    if unknown:
        raise OptionError(did_you_mean(f"option of {name}", unknown[0], valid))


def _applies_to_all(bundle):
    return None


def attribution_method(on_inputs=None, *, name: str | None = None, applies=None):
    """Declare ``on_inputs(bundle, x, targets, *, options)`` as an attribution method:
    returns its public form and registers it in :data:`METHODS` under ``name`` (default:
    the function's name). ``applies(bundle)``: None when the method can explain the
    bundle's model, else why not in one line (:func:`methods_for` leaves it out)."""
    if on_inputs is None:
        return functools.partial(attribution_method, name=name, applies=applies)
    key = name or on_inputs.__name__
    sig = _public_signature(on_inputs)
    on_sig = inspect.signature(on_inputs)

    @functools.wraps(on_inputs)
    def method(bundle, images, target=None, *, inputs=None, **options):
        _check_options(key, on_sig, options)
        return run(on_inputs, bundle, images, target, inputs=inputs, **options)

    method.__signature__ = sig
    del method.__wrapped__  # help() and inspect show the public signature
    method.on_inputs = on_inputs
    method.applies = applies or _applies_to_all
    method._on_inputs = on_inputs  # the name before methods were declared once
    if key in METHODS:
        raise AttributionError(f"attribution method {key!r} is declared twice")
    METHODS[key] = method
    return method


def methods_for(bundle) -> list:
    """The names of the methods that can explain ``bundle``'s model, in :data:`METHODS`
    order: every method but those whose ``applies`` gives a reason (attention rollout on a
    CNN) -- what ``tfviz attribute all`` and :func:`trust_report` run by default."""
    return [key for key, method in METHODS.items() if method.applies(bundle) is None]


def method_on_inputs(method):
    """``method`` (a tfviz.attribution method or its name) -> its on-inputs form."""
    if isinstance(method, str):
        key = method.strip().lower().replace("-", "_")
        if key not in METHODS:
            raise AttributionError(did_you_mean("attribution method", method, list(METHODS)))
        method = METHODS[key]
    on = getattr(method, "on_inputs", None)
    if on is None:
        raise AttributionError(f"{method!r} is not a tfviz.attribution method")
    return on


def run(on_inputs, bundle, images, target, inputs=None, **options):
    """Load and preprocess ``images``, resolve ``target`` (top-1 class when None), then
    ``on_inputs(bundle, x, targets, **options)`` -- what every public method does.
    ``inputs``: a model's other inputs ``{name: value}``, held while the image is explained
    (one row for every image, or one row per image: then image by image)."""
    bundle = as_bundle(bundle)
    x = prepare(bundle, images)
    rows = bundle.input_rows(inputs, len(x)) if inputs else {}
    if isinstance(rows, dict):
        bundle.hold(rows)
        return on_inputs(bundle, x, resolve_targets(bundle, target, len(x), x), **options)
    per_target = target if isinstance(target, list) and len(target) == len(x) else [target] * len(x)
    parts = []
    for i, row in enumerate(rows):
        bundle.hold(row)
        xi = x[i:i + 1]
        parts.append(on_inputs(bundle, xi, resolve_targets(bundle, per_target[i], 1, xi), **options))
    return _concatenate(parts)


def _concatenate(parts):
    """Per-image results (arrays, or tuples of arrays) -> one result."""
    if isinstance(parts[0], tuple):
        return tuple(_concatenate([p[k] for p in parts]) for k in range(len(parts[0])))
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    raise OptionError("inputs= with one row per image gives arrays per image; this option returns "
                      f"{type(parts[0]).__name__} (give one row of inputs for all images)")
