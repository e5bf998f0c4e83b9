"""The tfviz TensorBoard plugin: one "tfviz" tab with the views Filters, Activations,
Patches, Attribution, Embeddings and Optimization over what :mod:`tfviz.summary` writes
(the views are :data:`tfviz.summary_spec.VIEWS`; every view's tags are listed by ``/overview``
and served by the same routes).

A dynamic plugin: the frontend is the plain ES module ``static/index.js`` (no build
step), loaded by TensorBoard into an iframe whose base URL is this plugin's data prefix,
so every URL it uses is relative. The backend reads only through
``context.data_provider`` (TensorBoard's fast loader gives plugins no multiplexer):
blob sequences of plugin ``tfviz`` and scalars of plugin ``scalars``.

Routes (under ``data/plugin/tfviz/``), all GET, JSON unless said otherwise:

``/index.js``, ``/static/<file>``  the frontend (a fixed set of files; nothing else)
``/overview``                      every run: its tfviz tags (kind, steps, metadata) and
                                   its ``tfviz/*`` scalar tags; the sampling hint
``/series?run&tag``                the steps of one blob-sequence tag
``/step?run&tag[&step]``           one step: image count and its captions/extras
                                   (default: the latest step)
``/image?run&tag&step&index``      one image (PNG bytes)
``/params?run``                    the run's recipe parameters, by view
``/scalars?run&tag``               one scalar series: ``[[step, value], ...]``

Bad or missing query parameters answer 400, unknown runs/tags/steps 404. Images are
looked up by run/tag/step/index through the data provider, never by a path or a key
from the client, so no route can read outside the logdir.
"""
from __future__ import annotations

import json
import os
import re

from werkzeug import wrappers

from tensorboard import errors, plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin

from tfviz.summary_spec import DEFAULT_SAMPLES, DEFAULT_SCALAR_SAMPLES, PLUGIN_NAME, VIEWS  # no TensorFlow

SCALARS_PLUGIN = "scalars"
MAX_PARAM_LEN = 1024          # longest run/tag accepted in a query
_STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
_STATIC_NAME = re.compile(r"^[a-z][a-z0-9_]*\.(js|css)$")
_MIME = {"js": "text/javascript", "css": "text/css"}
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def _parse_content(content: bytes) -> dict:
    try:
        out = json.loads(content.decode("utf-8")) if content else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _string_arg(request, name: str, required: bool = True):
    values = request.args.getlist(name)
    if not values:
        if required:
            raise errors.InvalidArgumentError(f"missing query parameter {name!r}")
        return None
    if len(values) > 1:
        raise errors.InvalidArgumentError(f"query parameter {name!r} given {len(values)} times")
    value = values[0]
    if len(value) > MAX_PARAM_LEN or "\x00" in value:
        raise errors.InvalidArgumentError(f"invalid query parameter {name!r}")
    return value


def _int_arg(request, name: str, required: bool = True):
    value = _string_arg(request, name, required)
    if value is None:
        return None
    if not re.fullmatch(r"\d{1,18}", value):
        raise errors.InvalidArgumentError(f"query parameter {name!r} must be a non-negative integer")
    return int(value)


class TfvizPlugin(base_plugin.TBPlugin):
    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider
        hints = context.sampling_hints or {}
        self._samples_hint = hints.get(PLUGIN_NAME)
        self._downsample = hints.get(PLUGIN_NAME) or DEFAULT_SAMPLES
        self._scalar_downsample = hints.get(SCALARS_PLUGIN) or DEFAULT_SCALAR_SAMPLES
        self._static = {name for name in (os.listdir(_STATIC_DIR) if os.path.isdir(_STATIC_DIR) else [])
                        if _STATIC_NAME.match(name)}

    # -- TensorBoard plugin API
    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_index_js,
            "/static/*": self._serve_static,
            "/overview": self._serve_overview,
            "/series": self._serve_series,
            "/step": self._serve_step,
            "/image": self._serve_image,
            "/params": self._serve_params,
            "/scalars": self._serve_scalars,
        }

    def is_active(self):
        # Always shown, so that a logdir without tfviz data shows how to write some.
        return True

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="tfviz")

    # -- static files
    def _static_response(self, request, name):
        if name not in self._static:
            return http_util.Respond(request, "Not found", "text/plain", code=404)
        with open(os.path.join(_STATIC_DIR, name), "rb") as fh:
            body = fh.read()
        return http_util.Respond(request, body, _MIME[name.rsplit(".", 1)[1]])

    @wrappers.Request.application
    def _serve_index_js(self, request):
        return self._static_response(request, "index.js")

    @wrappers.Request.application
    def _serve_static(self, request):
        # TensorBoard strips any --path_prefix and experiment prefix before plugins see
        # the path; what follows .../static/ must be one of our file names, nothing else.
        prefix = f"/data/plugin/{PLUGIN_NAME}/static/"
        path = request.path
        name = path[len(prefix):] if path.startswith(prefix) else ""
        return self._static_response(request, name)

    # -- data access (through the data provider only)
    def _ctx(self, request):
        return plugin_util.context(request.environ), plugin_util.experiment_id(request.environ)

    def _list(self, request, runs=None, tags=None):
        ctx, eid = self._ctx(request)
        flt = provider.RunTagFilter(runs=runs, tags=tags) if (runs or tags) else None
        return self._data_provider.list_blob_sequences(ctx, experiment_id=eid, plugin_name=PLUGIN_NAME,
                                                       run_tag_filter=flt)

    def _series(self, request, read, plugin_name, downsample, run, tag, what):
        """One run and tag of a data-provider ``read`` (blob sequences or scalars),
        oldest step first; 404 naming ``what`` when absent."""
        ctx, eid = self._ctx(request)
        data = read(ctx, experiment_id=eid, plugin_name=plugin_name, downsample=downsample,
                    run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]))
        series = data.get(run, {}).get(tag)
        if series is None:
            raise errors.NotFoundError(f"no {what} for run {run!r}, tag {tag!r}")
        return sorted(series, key=lambda d: d.step)

    def _read(self, request, run, tag):
        """The data of one blob-sequence tag, oldest step first; 404 when absent."""
        return self._series(request, self._data_provider.read_blob_sequences, PLUGIN_NAME, self._downsample,
                            run, tag, "tfviz data")

    def _datum(self, request, run, tag, step):
        series = self._read(request, run, tag)
        if not series:
            raise errors.NotFoundError(f"no steps for run {run!r}, tag {tag!r}")
        if step is None:
            return series[-1]
        for datum in series:
            if datum.step == step:
                return datum
        raise errors.NotFoundError(f"no step {step} for run {run!r}, tag {tag!r}")

    def _blob(self, request, reference) -> bytes:
        ctx, _ = self._ctx(request)
        return self._data_provider.read_blob(ctx, blob_key=reference.blob_key)

    def _metadata(self, request, run, tag) -> dict:
        listing = self._list(request, runs=[run], tags=[tag])
        ts = listing.get(run, {}).get(tag)
        if ts is None:
            raise errors.NotFoundError(f"no tfviz data for run {run!r}, tag {tag!r}")
        return _parse_content(ts.plugin_content)

    # -- routes
    @wrappers.Request.application
    def _serve_overview(self, request):
        ctx, eid = self._ctx(request)
        blobs = self._list(request)
        scalars = self._data_provider.list_scalars(ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN)
        all_runs = sorted(r.run_name for r in self._data_provider.list_runs(ctx, experiment_id=eid))
        runs = {}
        for run, tags in blobs.items():
            entry = runs.setdefault(run, {"tags": {}, "scalars": [], "params": []})
            for tag, ts in tags.items():
                meta = _parse_content(ts.plugin_content)
                kind = meta.get("kind")
                if kind == "params":
                    entry["params"].append(tag)
                elif kind in VIEWS:
                    entry["tags"][tag] = {"kind": kind, "max_step": ts.max_step, "max_length": ts.max_length,
                                          "meta": meta}
        for run, tags in scalars.items():
            own = sorted(t for t in tags if t.startswith("tfviz/"))
            if own:
                runs.setdefault(run, {"tags": {}, "scalars": [], "params": []})["scalars"] = own
        for entry in runs.values():
            entry["params"].sort()
        body = {"runs": runs, "all_runs": all_runs, "views": list(VIEWS),
                "samples_per_plugin": self._samples_hint}
        return http_util.Respond(request, body, "application/json")

    @wrappers.Request.application
    def _serve_series(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag")
        series = self._read(request, run, tag)
        steps = [{"step": d.step, "wall_time": d.wall_time, "count": len(d.values)} for d in series]
        return http_util.Respond(request, {"run": run, "tag": tag, "steps": steps}, "application/json")

    @wrappers.Request.application
    def _serve_step(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag")
        step = _int_arg(request, "step", required=False)
        datum = self._datum(request, run, tag, step)
        meta = self._metadata(request, run, tag)
        try:  # per-step captions/extras written beside the tag (see tfviz.summary)
            info = self._datum(request, run, "info/" + tag, datum.step)
            if info.values:
                meta.update(_parse_content(self._blob(request, info.values[0])))
        except errors.NotFoundError:
            pass
        body = {"run": run, "tag": tag, "step": datum.step, "wall_time": datum.wall_time,
                "count": len(datum.values), "meta": meta}
        return http_util.Respond(request, body, "application/json")

    @wrappers.Request.application
    def _serve_image(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag")
        step, index = _int_arg(request, "step"), _int_arg(request, "index")
        if tag.startswith(("params/", "info/")):
            raise errors.InvalidArgumentError(f"tag {tag!r} holds no images")
        datum = self._datum(request, run, tag, step)
        if index >= len(datum.values):
            raise errors.NotFoundError(f"step {step} of {tag!r} has {len(datum.values)} images, no index {index}")
        body = self._blob(request, datum.values[index])
        mime = next((m for magic, m in _IMAGE_MAGIC if body.startswith(magic)), None)
        if mime is None:
            raise errors.NotFoundError(f"blob {index} of {tag!r} at step {step} is not an image")
        return http_util.Respond(request, body, mime, expires=3600)

    @wrappers.Request.application
    def _serve_params(self, request):
        run = _string_arg(request, "run")
        listing = self._list(request, runs=[run])
        if run not in listing:
            raise errors.NotFoundError(f"no tfviz data for run {run!r}")
        out = {}
        for tag, ts in sorted(listing[run].items()):
            meta = _parse_content(ts.plugin_content)
            if meta.get("kind") != "params":
                continue
            datum = self._datum(request, run, tag, None)
            view = meta.get("view") or tag.split("/", 1)[-1]
            try:
                value = json.loads(self._blob(request, datum.values[0]).decode("utf-8"))
            except (IndexError, UnicodeDecodeError, ValueError):
                value = {"error": "unreadable parameters"}
            out[view] = value
        return http_util.Respond(request, {"run": run, "params": out}, "application/json")

    @wrappers.Request.application
    def _serve_scalars(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag")
        series = self._series(request, self._data_provider.read_scalars, SCALARS_PLUGIN, self._scalar_downsample,
                              run, tag, "scalars")
        points = [[d.step, d.value if d.value == d.value and abs(d.value) != float("inf") else None]
                  for d in series]
        return http_util.Respond(request, {"run": run, "tag": tag, "points": points}, "application/json")


class TfvizPluginLoader(base_plugin.TBLoader):
    def load(self, context):
        return TfvizPlugin(context)
