"""Which tfviz methods run on which keras.applications model, and how long each first call takes.

    python bench/coverage.py                          # resnet50, mobilenet_v3_small, efficientnetv2b0
    python bench/coverage.py vgg16 convnext_tiny      # any names load_model knows
    python bench/coverage.py --all                    # every keras.applications classifier
    python bench/coverage.py --size 96 nasnetlarge    # built for 96 px instead of the default size

Every model is built with random weights (``weights=None``: nothing is downloaded, so it runs
offline; attribution's code path does not depend on the weights) and given one bundled photo
at its input size. For each model it runs every attribution method in
``tfviz.attribution.METHODS`` (cheap settings: smoothgrad and gradient_shap 4 samples,
integrated_gradients 8 steps, occlusion patch 32 -- a seventh of the side on models larger
than 224 px, so the count of positions stays 13 x 13 --, score_cam 8 channels; the rest their
defaults), ``tfviz.inspect.activation_grid`` of the convolution at half depth and
``tfviz.synthesis.class_visualization`` for 4 steps, and prints

  * one markdown table, models x methods: "ok (seconds of the first call, tracing included)",
    or the one-line error a method refused with ("refused": a TfvizError, "FAILED": anything
    else, a bug);
  * one table of first calls: load_model, the first predict, the first saliency and grad_cam,
    and incremental occlusion against ``inference="full"``: the largest difference of the two
    maps relative to the largest drop (round-off: ~1e-6), or the fallback warning's reason.

Absolute seconds, first calls: they depend on the machine (the script prints it) and include
tracing; compare them between models on one machine, not between machines.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tfviz  # noqa: E402

tfviz.quiet()  # TensorFlow's start-up lines and its retracing notes stay out of the table

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfviz.attribution import METHODS, occlusion  # noqa: E402
from tfviz.attribution.incremental import MIN_SAVING  # noqa: E402
from tfviz.default_layers import conv_layer_at  # noqa: E402
from tfviz.errors import TfvizError  # noqa: E402
from tfviz.images import sample_photo  # noqa: E402
from tfviz.inspect import activation_grid  # noqa: E402
from tfviz.models import APPLICATIONS  # noqa: E402
from tfviz.synthesis import class_visualization  # noqa: E402

DEFAULT_MODELS = ("resnet50", "mobilenet_v3_small", "efficientnetv2b0")
CHEAP = {"smoothgrad": {"samples": 4}, "gradient_shap": {"samples": 4}, "integrated_gradients": {"steps": 8},
         "score_cam": {"max_channels": 8}}
OCCLUSION_PATCH = 32
SYNTHESIS_STEPS = 4


def first_call(fn):
    """(seconds, value, None) of one call, or (seconds, None, the one-line error)."""
    t = time.perf_counter()
    try:
        value = fn()
    except Exception as exc:  # noqa: BLE001 - every failure is a cell of the table
        return time.perf_counter() - t, None, one_line(exc)
    return time.perf_counter() - t, value, None


def one_line(exc) -> str:
    kind = "refused" if isinstance(exc, TfvizError) else "FAILED"
    text = str(exc).strip().splitlines()
    return f"{kind}: {type(exc).__name__}: {text[0] if text else ''}"


def cell(seconds, error) -> str:
    return error.replace("|", "\\|") if error else f"ok ({seconds:.1f})"


def footnoted(rows):
    """Rows with each error cell shortened to "refused: ErrorName [n]", and the notes:
    "[n] the one-line error", once per distinct error."""
    notes, out = {}, []
    for row in rows:
        out.append([row[0]])
        for c in row[1:]:
            if c.startswith(("refused: ", "FAILED: ")):
                n = notes.setdefault(c, len(notes) + 1)
                kind, name = c.split(": ", 2)[:2]
                c = f"{kind}: {name} [{n}]"
            out[-1].append(c)
    return out, [f"- [{n}] {text}" for text, n in notes.items()]


def occlusion_patch(bundle) -> int:
    """32 px, or a seventh of the side of a larger model (13 x 13 positions at stride patch / 2)."""
    return max(OCCLUSION_PATCH, int(round(bundle.input_size[0] / 7)))


def occlusion_check(bundle, image) -> str:
    """Incremental occlusion against full re-inference: the largest difference relative to
    the largest drop, or the reason incremental inference fell back to full (what its
    warning says; the warning itself comes once per model, in the table's run)."""
    patch = occlusion_patch(bundle)
    _, inc, error = first_call(lambda: occlusion(bundle, image, patch=patch, inference="incremental",
                                                 return_info=True))
    if error:
        return error
    inc_map, info = inc
    if info["fallback"]:
        return f"fallback: {info['fallback']}"
    t_full, full, error = first_call(lambda: occlusion(bundle, image, patch=patch, inference="full"))
    if error:
        return error
    rel = float(np.abs(inc_map - full).max() / max(float(np.abs(full).max()), 1e-12))
    auto = "incremental" if info["theoretical_saving"] >= MIN_SAVING else "full"
    return (f"exact: max diff {rel:.1e} of the largest drop (patch {patch}; saving {info['theoretical_saving']:.2f}x, "
            f"auto runs {auto}; full: {t_full:.1f} s)")


def run_model(name, size, image):
    """(cells by column, first-call facts) for one model."""
    t = time.perf_counter()
    options = {"input_shape": (size, size, 3)} if size else {}
    bundle = tfviz.load_model(name, weights=None, **options)
    facts = {"load_model": time.perf_counter() - t}
    seconds, _, error = first_call(lambda: bundle.predict(image))
    facts["predict"] = cell(seconds, error)
    cells = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # occlusion's fallback warning: the check below reports it
        for method_name, method in METHODS.items():
            options = {"patch": occlusion_patch(bundle)} if method_name == "occlusion" else CHEAP.get(method_name, {})
            seconds, _, error = first_call(lambda: method(bundle, image, **options))
            cells[method_name] = cell(seconds, error)
    seconds, _, error = first_call(lambda: activation_grid(bundle, image[0], conv_layer_at(bundle)))
    cells["activations"] = cell(seconds, error)
    seconds, _, error = first_call(lambda: class_visualization(bundle, 0, steps=SYNTHESIS_STEPS))
    cells["class_visualization"] = cell(seconds, error)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        facts["occlusion check"] = occlusion_check(bundle, image)
    facts["size"] = bundle.input_size[0]
    return cells, facts


def table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} cores; TensorFlow {tf.__version__}, Keras {keras.__version__}, "
            f"Python {platform.python_version()}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help=f"load_model names (default: {', '.join(DEFAULT_MODELS)})")
    ap.add_argument("--all", action="store_true", help="every keras.applications classifier tfviz knows")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one model, print JSON
    ap.add_argument("--size", type=int, default=None, help="build each model for SIZE px (default: its own size)")
    args = ap.parse_args()
    models = sorted(APPLICATIONS) if args.all else (args.models or list(DEFAULT_MODELS))
    if not args.child:
        print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    columns = list(METHODS) + ["activations", "class_visualization"]
    if args.child:  # one model in this process: its cells as one JSON line
        try:
            cells, facts = run_model(args.child, args.size, sample_photo("chelsea")[None])
        except Exception as exc:  # noqa: BLE001 - a model that does not load is a row too
            print("ERROR " + one_line(exc), flush=True)
            return
        print("RESULT " + json.dumps({"cells": cells, "facts": facts}), flush=True)
        return
    rows, first = [], []
    for name in models:
        # each model in a process of its own: first calls are first calls, memory starts empty,
        # and a model the machine cannot hold (killed for memory) is a row, not the end of the run
        cmd = [sys.executable, os.path.abspath(__file__), "--child", name] + (["--size", str(args.size)] if args.size
                                                                              else [])
        r = subprocess.run(cmd, capture_output=True, text=True)
        got = [line[7:] for line in r.stdout.splitlines() if line.startswith("RESULT ")]
        errors = [line[6:] for line in r.stdout.splitlines() if line.startswith("ERROR ")]
        if errors:
            rows.append([name, errors[-1]] + [""] * (len(columns) - 1))
            continue
        if r.returncode != 0 or not got:
            why = "FAILED: " + (r.stderr.strip().splitlines() or [""])[-1]
            if r.returncode in (-9, 137):
                why = "FAILED: killed (out of memory?)"
            rows.append([name, why] + [""] * (len(columns) - 1))
            print(f"{name}: failed ({why})", file=sys.stderr, flush=True)
            continue
        result = json.loads(got[-1])
        cells, facts = result["cells"], result["facts"]
        rows.append([name] + [cells.get(c, "") for c in columns])
        first.append([f"{name} ({facts['size']} px)", f"{facts['load_model']:.1f}",
                      facts["predict"], cells["saliency"], cells["grad_cam"], facts["occlusion check"]])
        print(f"{name}: done " + json.dumps(result), file=sys.stderr, flush=True)
    print("\nMethods (seconds of the first call, tracing included):\n")
    rows, notes = footnoted(rows)
    print(table(["model"] + columns, rows))
    print("\n" + "\n".join(notes) if notes else "")
    print("\nFirst calls (seconds) and incremental occlusion against full re-inference:\n")
    print(table(["model", "load_model", "predict", "saliency", "grad_cam",
                 "occlusion: incremental vs full"], first))
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
