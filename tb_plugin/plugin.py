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
``/overview``                      every run: its tfviz tags (kind, steps, metadata, last
                                   write time; an unreadable tag with its one-line error)
                                   and its ``tfviz/*`` scalar tags; the sampling hint
``/run?run&kind[&step]``           everything one run's card of a view needs: each tag's
                                   steps, and at the chosen step its image count, metadata
                                   and picture version (a tag that fails: its error)
``/series?run&tag``                the steps of one blob-sequence tag
``/step?run&tag[&step]``           one step: image count and its captions/extras
                                   (default: the latest step)
``/image?run&tag&step&index[&v]``  one image (PNG bytes); ``v``: the step's version
``/params?run``                    the run's recipe parameters, by view
``/scalars?run[&tag]``             one scalar series ``[[step, value], ...]``, or every
                                   ``tfviz/*`` series of the run

Bad or missing query parameters answer 400, unknown runs/tags/steps 404, and nothing
answers 500: whatever one tag holds (metadata, parameters, per-step info; JSON nested
or sized beyond :data:`MAX_JSON_DEPTH` / :data:`MAX_JSON_BYTES`, or no JSON at all) is
that tag's one-line error. Steps are any integers ``Writer`` accepts, negative ones too.
Images are looked up by run/tag/step/index through the data provider, never by a path or
a key from the client, so no route can read outside the logdir.

An image URL with ``v`` equal to its step's version (given by ``/run``; it changes when
the step is written again) is cached for a year; without it, the image is revalidated
by its ETag on every use. So a page never shows a picture the logdir no longer holds.
Reads of a blob sequence are cached per run and tag while its listing (last step, last
write time, length) is unchanged, so the images of a long sequence do not each re-read it.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import json
import logging
import os
import re
import threading

import numpy as np
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


MAX_JSON_DEPTH = 64            # deepest nesting of any JSON the plugin reads
MAX_JSON_BYTES = 4 << 20       # largest JSON the plugin reads (metadata, params, info)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_OPEN, _CLOSE = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)
_log = logging.getLogger(__name__)


class Unreadable(Exception):
    """What one tag holds cannot be read; the message is the one line the tab shows."""


def _depth(raw: bytes) -> int:
    """The deepest nesting of brackets in a JSON text, strings left out (no recursion)."""
    codes = np.frombuffer(_STRING.sub(b'""', raw), np.uint8)
    steps = np.isin(codes, _OPEN).astype(np.int32) - np.isin(codes, _CLOSE).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def parse_json(content, what: str = "metadata"):
    """The JSON value of ``content`` (bytes), within :data:`MAX_JSON_BYTES` and
    :data:`MAX_JSON_DEPTH`; :class:`Unreadable` naming ``what`` otherwise. Empty: ``{}``."""
    if not content:
        return {}
    raw = bytes(content)
    if len(raw) > MAX_JSON_BYTES:
        raise Unreadable(f"{what} is {len(raw):,} bytes, more than the {MAX_JSON_BYTES:,} the tab reads")
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _depth(raw) > MAX_JSON_DEPTH:
        raise Unreadable(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Unreadable(f"{what} is not JSON ({type(exc).__name__})") from None


def _parse_content(content, what: str = "metadata") -> dict:
    """A JSON object (a dict) or :class:`Unreadable`."""
    out = parse_json(content, what)
    if not isinstance(out, dict):
        raise Unreadable(f"{what} is a JSON {type(out).__name__}, not an object")
    return out


def _kind_of(tag: str):
    """The view a tag belongs to by its name (``filters/conv1``), for a tag whose metadata
    cannot say; None if its first part names no view."""
    head = tag.split("/", 1)[0]
    return head if head in VIEWS else None


def _version(datum) -> str:
    """Changes whenever a step's pictures are written again (a new event: a new wall time)."""
    return f"{datum.wall_time!r}:{len(datum.values)}"


def _guarded(handler):
    """A route that never answers 500: TensorBoard's public errors pass (400, 404); any
    other failure is logged and answered 400 with one line."""
    @functools.wraps(handler)
    def wrapped(self, request):
        try:
            return handler(self, request)
        except errors.PublicError:
            raise
        except Unreadable as exc:
            raise errors.InvalidArgumentError(str(exc)) from None
        except Exception as exc:  # noqa: BLE001 - one bad run must not look like a dead plugin
            _log.warning("tfviz plugin: %s failed", request.path, exc_info=True)
            raise errors.InvalidArgumentError(f"could not read the data: {type(exc).__name__}: {exc}"[:300]) from None
    return wrapped


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


def _int_arg(request, name: str, required: bool = True, negative: bool = False):
    value = _string_arg(request, name, required)
    if value is None:
        return None
    if not re.fullmatch(r"-?\d{1,18}" if negative else r"\d{1,18}", value):
        raise errors.InvalidArgumentError(f"query parameter {name!r} must be a"
                                          f"{'n' if negative else ' non-negative'} integer")
    return int(value)


class _ReadCache:
    """Blob-sequence reads by (experiment, run, tag), each kept while the tag's listing
    (last step, last write time, length) is the same: a long sequence is read once, not
    once per image. Least recently used entries go first; thread-safe."""

    def __init__(self, size: int = 256):
        self.size = size
        self._data = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, stamp):
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] != stamp:
                return None
            self._data.move_to_end(key)
            return hit[1]

    def put(self, key, stamp, value):
        with self._lock:
            self._data[key] = (stamp, value)
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)


def _stamp(ts):
    return (ts.max_step, ts.max_wall_time, ts.max_length)


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
        self._cache = _ReadCache()

    # -- TensorBoard plugin API
    def get_plugin_apps(self):
        return {
            "/index.js": self._serve_index_js,
            "/static/*": self._serve_static,
            "/overview": self._serve_overview,
            "/run": self._serve_run,
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

    def _reads(self, request, run, listing, tags):
        """``{tag: series oldest step first}`` for the ``tags`` of ``run`` that ``listing``
        (the run's ``{tag: time series}``) has; one data-provider read for those not cached."""
        ctx, eid = self._ctx(request)
        out, missing = {}, []
        for tag in tags:
            ts = listing.get(tag)
            if ts is None:
                continue
            hit = self._cache.get((eid, run, tag), _stamp(ts))
            if hit is None:
                missing.append(tag)
            else:
                out[tag] = hit
        if missing:
            data = self._data_provider.read_blob_sequences(
                ctx, experiment_id=eid, plugin_name=PLUGIN_NAME, downsample=self._downsample,
                run_tag_filter=provider.RunTagFilter(runs=[run], tags=missing)).get(run, {})
            for tag in missing:
                if tag in data:
                    series = sorted(data[tag], key=lambda d: d.step)
                    self._cache.put((eid, run, tag), _stamp(listing[tag]), series)
                    out[tag] = series
        return out

    def _read(self, request, run, tag):
        """The data of one blob-sequence tag, oldest step first; 404 when absent."""
        listing = self._list(request, runs=[run], tags=[tag]).get(run, {})
        series = self._reads(request, run, listing, [tag]).get(tag)
        if series is None:
            raise errors.NotFoundError(f"no tfviz data for run {run!r}, tag {tag!r}")
        return series

    @staticmethod
    def _at(series, step, run, tag):
        if not series:
            raise errors.NotFoundError(f"no steps for run {run!r}, tag {tag!r}")
        if step is None:
            return series[-1]
        for datum in series:
            if datum.step == step:
                return datum
        raise errors.NotFoundError(f"no step {step} for run {run!r}, tag {tag!r}")

    def _datum(self, request, run, tag, step):
        return self._at(self._read(request, run, tag), step, run, tag)

    def _blob(self, request, reference) -> bytes:
        ctx, _ = self._ctx(request)
        try:
            return self._data_provider.read_blob(ctx, blob_key=reference.blob_key)
        except errors.InvalidArgumentError as exc:
            if "blob key" not in str(exc):
                raise
            # TensorBoard's fast loader (2.21) cannot read back its own key for a run or tag
            # whose name JSON must escape (a quote, a backslash)
            raise Unreadable("TensorBoard's fast loader cannot read the data of a run or tag whose name has a "
                             "quote or backslash: rename the run's folder, or start TensorBoard with "
                             "--load_fast=false") from None

    def _metadata(self, request, run, tag) -> dict:
        listing = self._list(request, runs=[run], tags=[tag])
        ts = listing.get(run, {}).get(tag)
        if ts is None:
            raise errors.NotFoundError(f"no tfviz data for run {run!r}, tag {tag!r}")
        return _parse_content(ts.plugin_content)

    def _info(self, request, series, step) -> dict:
        """The per-step captions/extras (the ``info/<tag>`` sidecar's blob at ``step``)."""
        for datum in series or ():
            if datum.step == step and datum.values:
                return _parse_content(self._blob(request, datum.values[0]), f"the info of step {step}")
        return {}

    # -- routes
    @wrappers.Request.application
    @_guarded
    def _serve_overview(self, request):
        ctx, eid = self._ctx(request)
        blobs = self._list(request)
        scalars = self._data_provider.list_scalars(ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN)
        all_runs = sorted(r.run_name for r in self._data_provider.list_runs(ctx, experiment_id=eid))
        runs = {}
        for run, tags in blobs.items():
            entry = runs.setdefault(run, {"tags": {}, "scalars": [], "params": []})
            for tag, ts in tags.items():
                try:
                    meta, error = _parse_content(ts.plugin_content), None
                except Unreadable as exc:
                    meta, error = {}, str(exc)
                kind = meta.get("kind") if error is None else _kind_of(tag)
                if kind == "params":
                    entry["params"].append(tag)
                elif kind in VIEWS or error is not None:
                    item = {"kind": kind, "max_step": ts.max_step, "max_length": ts.max_length,
                            "max_wall_time": ts.max_wall_time, "meta": meta}
                    if error is not None:
                        item["error"] = error
                    entry["tags"][tag] = item
        for run, tags in scalars.items():
            own = sorted(t for t in tags if t.startswith("tfviz/"))
            if own:
                runs.setdefault(run, {"tags": {}, "scalars": [], "params": []})["scalars"] = own
        for entry in runs.values():
            entry["params"].sort()
        body = {"runs": runs, "all_runs": all_runs, "views": list(VIEWS),
                "samples_per_plugin": self._samples_hint}
        return _json(request, body)

    @wrappers.Request.application
    @_guarded
    def _serve_run(self, request):
        run, kind = _string_arg(request, "run"), _string_arg(request, "kind")
        step = _int_arg(request, "step", required=False, negative=True)
        if kind not in VIEWS:
            raise errors.InvalidArgumentError(f"kind must be one of {', '.join(VIEWS)}, not {kind!r}")
        listing = self._list(request, runs=[run]).get(run, {})
        mine, failed = [], {}
        for tag, ts in listing.items():
            try:
                meta = _parse_content(ts.plugin_content)
            except Unreadable as exc:
                if _kind_of(tag) == kind:
                    failed[tag] = str(exc)
                continue
            if meta.get("kind") == kind:
                mine.append((tag, meta))
        if not mine and not failed:
            raise errors.NotFoundError(f"run {run!r} has no {kind} data")
        tags = [t for t, _ in mine]
        try:
            series = self._reads(request, run, listing, tags + ["info/" + t for t in tags])
        except errors.PublicError:
            raise
        except Exception as exc:  # noqa: BLE001 - the run's read failed: each tag says so
            series, failed = {}, {**failed, **{t: _one_line(exc) for t in tags}}
        all_steps = sorted({d.step for t in tags for d in series.get(t, ())})
        shown = all_steps[-1] if step is None and all_steps else step
        out = []
        for tag, meta in mine:
            if tag in failed:
                continue
            try:
                out.append(self._tag_at(request, run, tag, meta, series, shown))
            except errors.PublicError as exc:
                out.append({"tag": tag, "error": str(exc)})
            except Unreadable as exc:
                out.append({"tag": tag, "error": str(exc)})
            except Exception as exc:  # noqa: BLE001 - one tag's failure stays that tag's
                _log.warning("tfviz plugin: run %r tag %r failed", run, tag, exc_info=True)
                out.append({"tag": tag, "error": _one_line(exc)})
        out += [{"tag": t, "error": e} for t, e in failed.items()]
        out.sort(key=lambda d: d["tag"])
        body = {"run": run, "kind": kind, "steps": all_steps, "step": shown, "tags": out}
        return _json(request, body)

    def _tag_at(self, request, run, tag, meta, series, shown):
        """One tag of ``/run``: its steps and, at its latest step <= ``shown`` (else its
        first), the image count, metadata merged with the step's info, and version."""
        data = series.get(tag)
        if not data:
            raise errors.NotFoundError(f"no steps for run {run!r}, tag {tag!r}")
        datum = data[0]
        for d in data:
            if shown is not None and d.step <= shown:
                datum = d
        meta = dict(meta)
        meta.update(self._info(request, series.get("info/" + tag), datum.step))
        return {"tag": tag, "steps": [d.step for d in data], "step": datum.step, "wall_time": datum.wall_time,
                "count": len(datum.values), "meta": meta, "version": _version(datum)}

    @wrappers.Request.application
    @_guarded
    def _serve_series(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag")
        series = self._read(request, run, tag)
        steps = [{"step": d.step, "wall_time": d.wall_time, "count": len(d.values)} for d in series]
        return _json(request, {"run": run, "tag": tag, "steps": steps})

    @wrappers.Request.application
    @_guarded
    def _serve_step(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag")
        step = _int_arg(request, "step", required=False, negative=True)
        datum = self._datum(request, run, tag, step)
        meta = self._metadata(request, run, tag)
        try:  # per-step captions/extras written beside the tag (see tfviz.summary)
            meta.update(self._info(request, self._read(request, run, "info/" + tag), datum.step))
        except errors.NotFoundError:
            pass
        body = {"run": run, "tag": tag, "step": datum.step, "wall_time": datum.wall_time,
                "count": len(datum.values), "meta": meta, "version": _version(datum)}
        return _json(request, body)

    @wrappers.Request.application
    @_guarded
    def _serve_image(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag")
        step, index = _int_arg(request, "step", negative=True), _int_arg(request, "index")
        version = _string_arg(request, "v", required=False)
        if tag.startswith(("params/", "info/")):
            raise errors.InvalidArgumentError(f"tag {tag!r} holds no images")
        datum = self._datum(request, run, tag, step)
        if index >= len(datum.values):
            raise errors.NotFoundError(f"step {step} of {tag!r} has {len(datum.values)} images, no index {index}")
        body = self._blob(request, datum.values[index])
        mime = next((m for magic, m in _IMAGE_MAGIC if body.startswith(magic)), None)
        if mime is None:
            raise errors.NotFoundError(f"blob {index} of {tag!r} at step {step} is not an image")
        etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        if version is not None and version == _version(datum):  # this URL names these bytes for good
            return http_util.Respond(request, body, mime, expires=31536000, headers=[("ETag", etag)])
        if etag in request.headers.get("If-None-Match", ""):
            return wrappers.Response(status=304, headers=[("ETag", etag), ("Cache-Control", "no-cache")])
        return http_util.Respond(request, body, mime, headers=[("ETag", etag)])

    @wrappers.Request.application
    @_guarded
    def _serve_params(self, request):
        run = _string_arg(request, "run")
        listing = self._list(request, runs=[run])
        if run not in listing:
            raise errors.NotFoundError(f"no tfviz data for run {run!r}")
        out = {}
        for tag, ts in sorted(listing[run].items()):
            try:
                meta = _parse_content(ts.plugin_content)
            except Unreadable as exc:
                if tag.startswith("params/"):
                    out[tag.split("/", 1)[-1]] = {"error": str(exc)}
                continue
            if meta.get("kind") != "params":
                continue
            view = meta.get("view") or tag.split("/", 1)[-1]
            try:
                datum = self._datum(request, run, tag, None)
                if not datum.values:
                    raise Unreadable("no parameters at the last step")
                out[view] = parse_json(self._blob(request, datum.values[0]), "the parameters")
            except (Unreadable, errors.NotFoundError) as exc:
                out[view] = {"error": str(exc)}
        return _json(request, {"run": run, "params": out})

    @wrappers.Request.application
    @_guarded
    def _serve_scalars(self, request):
        run, tag = _string_arg(request, "run"), _string_arg(request, "tag", required=False)
        ctx, eid = self._ctx(request)
        if tag is None:
            listing = self._data_provider.list_scalars(ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN,
                                                       run_tag_filter=provider.RunTagFilter(runs=[run]))
            tags = sorted(t for t in listing.get(run, {}) if t.startswith("tfviz/"))
            data = {}
            if tags:
                data = self._data_provider.read_scalars(
                    ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN, downsample=self._scalar_downsample,
                    run_tag_filter=provider.RunTagFilter(runs=[run], tags=tags)).get(run, {})
            series = {t: _points(data.get(t, ())) for t in tags}
            return _json(request, {"run": run, "series": series})
        data = self._data_provider.read_scalars(
            ctx, experiment_id=eid, plugin_name=SCALARS_PLUGIN, downsample=self._scalar_downsample,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]))
        series = data.get(run, {}).get(tag)
        if series is None:
            raise errors.NotFoundError(f"no scalars for run {run!r}, tag {tag!r}")
        return _json(request, {"run": run, "tag": tag, "points": _points(series)})


def _json(request, body):
    """A JSON answer. Encoded here in one pass when it holds no NaN or infinity (TensorBoard's
    own encoder first walks the whole tree to turn those into strings: on a 500-run
    overview, most of the route's time); else through TensorBoard's, as before."""
    try:
        text = json.dumps(body, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return http_util.Respond(request, body, "application/json")
    return http_util.Respond(request, text, "application/json")


def _points(series):
    """``[[step, value or None], ...]`` oldest first; NaN and infinities are None (JSON)."""
    return [[d.step, d.value if d.value == d.value and abs(d.value) != float("inf") else None]
            for d in sorted(series, key=lambda d: d.step)]


def _one_line(exc) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


class TfvizPluginLoader(base_plugin.TBLoader):
    def load(self, context):
        return TfvizPlugin(context)
