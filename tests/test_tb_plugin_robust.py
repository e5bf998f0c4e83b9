"""The tfviz plugin's routes on bad and big logdirs (issue 28's backend): what one tag
holds never fails another tag, a run or the tab; nothing answers 500; negative steps are
served; image URLs are versioned; a long sequence is read once; one request per run card.
Through TensorBoard's own WSGI application, as tests/test_tb_plugin.py does."""
import io
import json
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from PIL import Image

from tb_plugin import plugin as tbp
from tfviz.summary import Writer, encode_png
from tfviz.summary import metadata as tfviz_metadata

from test_tb_plugin import P, get_json, make_client

DEEP = b"[" * 5000 + b"]" * 5000                  # RecursionError for a recursive parser
DEEP_OBJ = b'{"kind": "filters", "x": ' + b'{"a": ' * 3000 + b"1" + b"}" * 3000 + b"}"


def _raw(logdir, run, tag, values, step=0, content=b"", kind_md=None):
    """A tfviz summary written by hand: ``values`` (bytes) as a blob sequence with
    metadata content ``content`` (or a proper tfviz metadata of ``kind_md``)."""
    import tensorflow as tf
    from tensorboard.compat.proto import summary_pb2
    if kind_md is not None:
        md = tfviz_metadata(kind_md)
    else:
        md = summary_pb2.SummaryMetadata()
        md.plugin_data.plugin_name = "tfviz"
        md.plugin_data.content = content
        md.data_class = summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    with tf.summary.create_file_writer(str(logdir / run)).as_default():
        tf.summary.write(tag, tf.constant(list(values), dtype=tf.string), step=step, metadata=md)


def _png(h, w, value):
    return encode_png(np.full((h, w, 3), value, np.uint8))


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("robust")
    with Writer(str(d), run="good") as w:
        w.filters("conv1", np.full((6, 6, 3), 10, np.uint8))                 # step 0
        w.filters("conv1", np.full((4, 4, 3), 200, np.uint8), step=-3)       # a negative step
        w.filters("conv2", np.full((5, 5, 3), 50, np.uint8), step=2)
        for step in range(3):
            w.scalar("loss", 3.0 - step, step)
            w.scalar("tv", 0.5 * step, step)
    _raw(d, "bad", "filters/deep", [_png(4, 4, 1)], content=DEEP)           # metadata nested 5000 deep
    _raw(d, "bad", "filters/obj", [_png(4, 4, 1)], content=DEEP_OBJ)
    _raw(d, "bad", "filters/notjson", [_png(4, 4, 1)], content=b"\xff{not json")
    _raw(d, "bad", "filters/list", [_png(4, 4, 1)], content=b"[1, 2]")
    _raw(d, "bad", "filters/nan", [_png(4, 4, 1)], content=b'{"kind": "filters", "score": NaN, "low": -Infinity}')
    with Writer(str(d), run="bad") as w:
        w.filters("fine", np.full((3, 3, 3), 7, np.uint8))
        w.params("optimization", {"lr": 0.1})
    _raw(d, "bad", "params/deep", [DEEP], kind_md="params")                 # parameters nested too deep
    _raw(d, "bad", "info/filters/fine", [DEEP], kind_md="info")             # the step's info too deep
    with Writer(str(d), run="long") as w:
        for step in range(300):
            w.snapshot(np.full((2, 2, 3), step % 256, np.uint8), step)
    return d


@pytest.fixture(scope="module")
def client(logdir):
    return make_client(logdir)


def test_an_unreadable_tag_is_listed_with_its_error_and_spoils_nothing(client):
    runs = get_json(client, "/overview")["runs"]
    bad = runs["bad"]["tags"]
    assert bad["filters/deep"]["kind"] == "filters" and "nested deeper than 64" in bad["filters/deep"]["error"]
    assert "nested deeper than 64" in bad["filters/obj"]["error"]
    assert "not JSON" in bad["filters/notjson"]["error"]
    assert "not an object" in bad["filters/list"]["error"]
    assert "error" not in bad["filters/fine"] and bad["filters/fine"]["meta"]["kind"] == "filters"
    assert set(runs["good"]["tags"]) == {"filters/conv1", "filters/conv2"}
    assert all("error" not in t for t in runs["good"]["tags"].values())
    assert runs["good"]["tags"]["filters/conv1"]["max_wall_time"] > 0


def _strict(text):
    """JSON as a browser reads it: NaN and Infinity are not JSON."""
    def refuse(name):
        raise AssertionError(f"{name} in a JSON answer")
    return json.loads(text, parse_constant=refuse)


def test_nan_in_metadata_is_still_valid_json(client):
    r = client.get(P + "/overview")
    meta = _strict(r.get_data(as_text=True))["runs"]["bad"]["tags"]["filters/nan"]["meta"]
    assert meta["score"] == "NaN" and meta["low"] == "-Infinity"
    r = client.get(P + "/run", query_string={"run": "bad", "kind": "filters"})
    assert r.status_code == 200 and _strict(r.get_data(as_text=True))["run"] == "bad"


def test_run_route_gives_each_tag_or_its_error_in_one_answer(client):
    got = get_json(client, "/run", run="bad", kind="filters")
    by_tag = {t["tag"]: t for t in got["tags"]}
    assert sorted(by_tag) == ["filters/deep", "filters/fine", "filters/list", "filters/nan", "filters/notjson",
                              "filters/obj"]
    assert "nested deeper" in by_tag["filters/deep"]["error"]
    # the good tag's own info sidecar is nested too deep: that tag says so, the others draw
    assert "info of step 0 is nested deeper" in by_tag["filters/fine"]["error"]
    # the step routes answer 400 with the one line, never 500
    r = client.get(P + "/step", query_string={"run": "bad", "tag": "filters/fine"})
    assert r.status_code == 400 and b"nested deeper" in r.get_data()
    r = client.get(P + "/step", query_string={"run": "bad", "tag": "filters/deep"})
    assert r.status_code == 400 and b"nested deeper" in r.get_data()


def test_run_route_steps_versions_and_negative_steps(client):
    got = get_json(client, "/run", run="good", kind="filters")
    assert got["steps"] == [-3, 0, 2] and got["step"] == 2
    conv1, conv2 = got["tags"]
    assert (conv1["tag"], conv1["steps"], conv1["step"], conv1["count"]) == ("filters/conv1", [-3, 0], 0, 1)
    assert (conv2["steps"], conv2["step"]) == ([2], 2)
    assert conv1["meta"]["kind"] == "filters" and conv1["version"]
    # at step -3: conv1's picture of step -3, conv2 (no step <= -3) its first
    at = get_json(client, "/run", run="good", kind="filters", step="-3")
    assert [(t["tag"], t["step"]) for t in at["tags"]] == [("filters/conv1", -3), ("filters/conv2", 2)]
    r = client.get(P + "/image", query_string={"run": "good", "tag": "filters/conv1", "step": "-3", "index": "0"})
    assert r.status_code == 200
    px = np.asarray(Image.open(io.BytesIO(r.get_data())))
    assert px.shape == (4, 4, 3) and (px == 200).all()
    assert get_json(client, "/step", run="good", tag="filters/conv1", step="-3")["step"] == -3
    assert [s["step"] for s in get_json(client, "/series", run="good", tag="filters/conv1")["steps"]] == [-3, 0]


def test_params_of_one_view_that_cannot_be_read_are_its_error(client):
    params = get_json(client, "/params", run="bad")["params"]
    assert params["optimization"] == {"lr": 0.1}
    assert "nested deeper" in params["deep"]["error"]


def test_sizes_beyond_the_limit_are_one_line(client, monkeypatch):
    monkeypatch.setattr(tbp, "MAX_JSON_BYTES", 20)
    runs = get_json(client, "/overview")["runs"]
    assert "more than the 20 the tab reads" in runs["good"]["tags"]["filters/conv1"]["error"]


def test_scalars_of_a_run_in_one_answer(client):
    got = get_json(client, "/scalars", run="good")
    assert got["series"] == {"tfviz/loss": [[0, 3.0], [1, 2.0], [2, 1.0]], "tfviz/tv": [[0, 0.0], [1, 0.5], [2, 1.0]]}
    one = get_json(client, "/scalars", run="good", tag="tfviz/loss")
    assert one["points"] == got["series"]["tfviz/loss"]
    assert get_json(client, "/scalars", run="bad")["series"] == {}


def _image(client, version=None, etag=None, step="0"):
    q = {"run": "good", "tag": "filters/conv1", "step": step, "index": "0"}
    if version is not None:
        q["v"] = version
    return client.get(P + "/image", query_string=q, headers={"If-None-Match": etag} if etag else {})


def test_image_urls_with_their_version_are_cached_others_revalidated(client):
    version = get_json(client, "/run", run="good", kind="filters", step="0")["tags"][0]["version"]
    r = _image(client, version)
    assert r.status_code == 200 and "max-age=31536000" in r.headers["Cache-Control"]
    plain = _image(client)
    assert plain.status_code == 200 and "no-cache" in plain.headers["Cache-Control"]
    assert plain.get_data() == r.get_data() and plain.headers["ETag"] == r.headers["ETag"]
    stale = _image(client, "0.5:1")
    assert "no-cache" in stale.headers["Cache-Control"]
    again = _image(client, etag=plain.headers["ETag"])
    assert again.status_code == 304 and not again.get_data()
    other = _image(client, etag=plain.headers["ETag"], step="-3")   # another picture: not 304
    assert other.status_code == 200 and other.headers["ETag"] != plain.headers["ETag"]


def test_a_rewritten_step_gets_a_new_version_and_the_new_picture(tmp_path):
    """Through a real TensorBoard (its default loader, as `tfviz board` starts it): the same
    run, tag and step written again by a second command gives /run a new version and /image
    the new picture; an image URL with the old version is no longer cached."""
    from browser_helpers import TensorBoard, get, wait_for
    logs = tmp_path / "logs"
    with Writer(str(logs), run="r") as w:
        w.filters("conv1", np.full((6, 6, 3), 10, np.uint8))
    with Writer(str(logs), run="qx") as w:
        w.params("optimization", {"a": 1})
        w.snapshot(np.zeros((4, 4, 3), np.uint8), 0)
    (logs / "qx").rename(logs / 'q"x')   # a run name TensorBoard's fast loader cannot key its blobs by
    board = TensorBoard(str(logs), str(tmp_path))
    try:
        board.wait()
        url = board.url + P

        def card():
            got = json.loads(get(url + "/run?run=r&kind=filters"))["tags"]
            return got[0] if got else None
        first = wait_for(card, 60, "the run's card")
        q = "/image?run=r&tag=filters/conv1&step=0&index=0"
        assert Image.open(io.BytesIO(get(url + q))).size == (6, 6)
        time.sleep(1.1)   # event files are named by the second: the second command's sorts after the first's
        with Writer(str(logs), run="r") as w:
            w.filters("conv1", np.full((9, 12, 3), 99, np.uint8))
        second = wait_for(lambda: (lambda c: c if c["version"] != first["version"] else None)(card()), 60,
                          "TensorBoard to load the rewritten step")
        assert second["step"] == 0
        assert Image.open(io.BytesIO(get(url + q + "&v=" + second["version"]))).size == (12, 9)
        with urllib.request.urlopen(url + q + "&v=" + first["version"]) as r:   # a stale URL: revalidated
            assert "no-cache" in r.headers["Cache-Control"]
        # the quoted run: its card loads; what the loader cannot read is one line, not a dead view
        quoted = urllib.parse.quote('q"x')
        assert json.loads(get(url + f"/run?run={quoted}&kind=optimization"))["tags"][0]["count"] == 1
        params = json.loads(get(url + f"/params?run={quoted}"))["params"]["optimization"]
        assert params == {"a": 1} or "fast loader cannot read" in params["error"], params
    finally:
        board.stop()


def test_a_long_sequence_is_read_once_for_many_images(logdir, monkeypatch):
    client = make_client(logdir)
    plugin_provider = []
    from tensorboard.backend.event_processing import data_provider as dp
    real = dp.MultiplexerDataProvider.read_blob_sequences

    def counting(self, *a, **k):
        plugin_provider.append(k.get("run_tag_filter"))
        return real(self, *a, **k)
    monkeypatch.setattr(dp.MultiplexerDataProvider, "read_blob_sequences", counting)
    for step in range(0, 300, 15):
        r = client.get(P + "/image", query_string={"run": "long", "tag": "optimization/snapshot",
                                                   "step": str(step), "index": "0"})
        assert r.status_code == 200
        assert np.asarray(Image.open(io.BytesIO(r.get_data())))[0, 0, 0] == step % 256
    assert len(plugin_provider) == 1


# ------------------------------------------------------------------- fuzz
def _fuzz_contents(rng):
    """Metadata / blob contents a logdir may hold: random bytes, every kind of JSON value,
    nesting around the limit and far beyond, huge strings, bad unicode, tfviz-like objects
    with fields of the wrong types."""
    out = [b"", b"{}", b"null", b"[]", b'"s"', b"1e999", b"NaN", b"\xff\xfe", b"{" * 100, DEEP, DEEP_OBJ,
           b"[" * 64 + b"]" * 64, b"[" * 65 + b"]" * 65, json.dumps({"kind": "filters", "s": "x" * 200_000}).encode()]
    for kind in ("filters", "activations", "patches", "attribution", "embeddings", "optimization", "params",
                 "info", "nope", 3, None):
        out.append(json.dumps({"kind": kind, "captions": 5, "row": "x", "channels": {"a": 1}, "names": [[None]],
                               "scores": "s", "method": [1], "role": 7, "view": ["v"]}).encode())
    for _ in range(12):
        n = int(rng.integers(1, 300))
        out.append(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
        depth = int(rng.integers(1, 200))
        out.append(json.dumps({"kind": "filters", "x": json.loads("[" * depth + "]" * depth)}).encode())
    return out


@pytest.fixture(scope="module")
def fuzz_logdir(tmp_path_factory):
    rng = np.random.default_rng(28)
    d = tmp_path_factory.mktemp("fuzz")
    contents = _fuzz_contents(rng)
    png = _png(3, 3, 5)
    blobs = [png, png[:20], b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\x00" * 10] + contents[:8]
    for i, content in enumerate(contents):
        run = f"run{i % 7}" if i % 5 else 'q"uote <b>&'
        tag = ["filters/t%d" % i, "params/p%d" % i, "info/filters/t%d" % (i - 1), "optimization/snapshot",
               "x%d" % i][i % 5]
        values = [blobs[(i + k) % len(blobs)] for k in range(1 + i % 3)]
        _raw(d, run, tag, values, step=int(rng.integers(-5, 5)), content=content)
    return d


ROUTES = ["/overview", "/run", "/series", "/step", "/image", "/params", "/scalars"]


def test_fuzz_no_route_answers_500(fuzz_logdir):
    client = make_client(fuzz_logdir)
    overview = get_json(client, "/overview")
    runs = list(overview["runs"]) + ["nope", ""]
    tags = sorted({t for e in overview["runs"].values() for t in list(e["tags"]) + e["params"]}) + ["filters/zz"]
    rng = np.random.default_rng(1)
    answered = {}
    for run in runs:
        for route in ROUTES:
            for kind in ("filters", "optimization", "params"):
                for tag in tags[:: max(1, len(tags) // 12)]:
                    q = {"run": run, "tag": tag, "kind": kind, "step": str(int(rng.integers(-6, 6))),
                         "index": str(int(rng.integers(0, 3)))}
                    for drop in rng.choice(list(q), size=int(rng.integers(0, 3)), replace=False):
                        del q[drop]
                    r = client.get(P + route, query_string=q)
                    assert r.status_code != 500 and r.status_code in (200, 304, 400, 404), (route, q, r.status_code)
                    answered[r.status_code] = answered.get(r.status_code, 0) + 1
                    if r.status_code == 200 and r.headers["Content-Type"].startswith("application/json"):
                        json.loads(r.get_data(as_text=True))
    assert answered.get(200, 0) > 50 and answered.get(400, 0) > 10 and answered.get(404, 0) > 10, answered
    # every run card of every view loads in one answer, whatever its tags hold
    for run in overview["runs"]:
        for kind in ("filters", "optimization"):
            r = client.get(P + "/run", query_string={"run": run, "kind": kind})
            assert r.status_code in (200, 404), (run, kind, r.status_code, r.get_data()[:200])
