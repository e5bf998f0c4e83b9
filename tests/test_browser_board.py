"""The tfviz tab in real TensorBoard and headless Chromium, on the defects of issue 28:
one bad run or tag never breaks a view, pictures are never stale, views draw only what is
on screen (lazy run cards, pages of big grids), and the URL names the view (deep links).

One TensorBoard (reload every second) serves one logdir written here; each test opens the
tab at a deep link that names its view and filters its runs (`p.tfviz.filter`), so the
tests share the server and the browser but not their runs."""
import json
import os
import time

import numpy as np
import pytest

from browser_helpers import DOC, Chromium, TensorBoard, chromium, fulfill_paused, get, hash_state, open_tfviz
from browser_helpers import requests_sent, tfviz_link, view_state, wait_for, wait_view

pytestmark = pytest.mark.skipif(
    chromium() is None, reason="no Chromium found (Debian: apt-get install chromium; .ci/run installs it when it can)")

MANY = 60          # small runs of the scale test
HUGE_ROWS = 2000   # channel rows of the big patches summary


def _grid(size, value):
    rng = np.random.default_rng(value)
    return rng.integers(0, 255, (size, size, 3), dtype=np.uint8)


def _write_deep_tag(run_dir, tag, png):
    """A blob-sequence tag of the tfviz plugin whose metadata is JSON nested 5,000 deep
    (what took the whole tab down: /overview answered 500)."""
    import tensorflow as tf
    from tensorboard.compat.proto import summary_pb2
    md = summary_pb2.SummaryMetadata()
    md.plugin_data.plugin_name = "tfviz"
    md.plugin_data.content = ('{"kind": "filters", "x": ' + "[" * 5000 + "]" * 5000 + "}").encode()
    md.data_class = summary_pb2.DATA_CLASS_BLOB_SEQUENCE
    writer = tf.summary.create_file_writer(run_dir)
    with writer.as_default():
        tf.summary.write(tag, tf.constant([png]), step=0, metadata=md)
    writer.close()


def _write_logdir(logdir):
    from tfviz.inspect.patches import ChannelPatches
    from tfviz.summary import Writer, encode_png
    for run in ("x_good_a", "x_good_b", "x_gone"):
        with Writer(logdir, run=run) as w:
            w.filters("conv1", _grid(24, 1))
    with Writer(logdir, run="x_mixed") as w:               # one good tag, one unreadable
        w.filters("ok", _grid(24, 2))
    _write_deep_tag(os.path.join(logdir, "x_mixed"), "filters/deep", encode_png(_grid(8, 3)))
    with Writer(logdir, run="neg") as w:                   # Writer accepts negative steps
        w.filters("conv1", _grid(16, 4), step=-3)
    with Writer(logdir, run="negsteps") as w:
        w.filters("conv1", _grid(16, 5), step=-3)
        w.filters("conv1", _grid(20, 6), step=4)
    with Writer(logdir, run="stale") as w:                 # rewritten by test_reload_shows_a_rewritten_picture
        w.filters("conv1", _grid(40, 7))
    with Writer(logdir, run="steps") as w:
        for step in range(3):
            w.filters("conv1", _grid(12 + step, 8 + step), step=step)
    for run in ("attr_a", "attr_b"):
        with Writer(logdir, run=run) as w:
            imgs = np.stack([_grid(32, 20), _grid(32, 21)])
            maps = np.random.default_rng(0).random((2, 32, 32)).astype(np.float32)
            for step in range(2):   # attr_a's saliency carries `tfviz trust --logdir`'s figures
                trust = {"trust": {"deletion": 0.04, "insertion": 0.2, "road_morf": 0.5, "road_lerf": 0.75,
                                   "road": 0.25, "randomization": 0.6}} if run == "attr_a" else {}
                w.attribution("saliency", imgs, maps, step=step, targets=["a", "b"], names=["x", "y"], **trust)
                w.attribution("grad_cam", imgs, maps[::-1], step=step, targets=["a", "b"], names=["x", "y"])
    with Writer(logdir, run="huge") as w:                  # 2,000 channels of one patch each
        rng = np.random.default_rng(0)
        results = [ChannelPatches("block", c, rng.integers(0, 255, (1, 8, 8, 3), dtype=np.uint8),
                                  np.array([float(c)], np.float32), np.array([[0, 0, 0]]), np.array([[0, 0, 8, 8]]))
                   for c in range(HUGE_ROWS)]
        w.patches("block", results)
    for i in range(MANY):
        with Writer(logdir, run=f"many_{i:03d}") as w:
            w.filters("conv1", _grid(16, 100 + i))


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """(TensorBoard, Chromium, logdir) over the logdir above; TensorBoard reloads every second."""
    tmp = tmp_path_factory.mktemp("board")
    logdir = str(tmp / "logs")
    _write_logdir(logdir)
    tb = TensorBoard(logdir, str(tmp))
    browser = None
    try:
        browser = Chromium(chromium(), str(tmp))
        tb.wait()
        want = {"x_good_a", "x_mixed", "neg", "negsteps", "stale", "steps", "attr_b", "huge", f"many_{MANY - 1:03d}"}
        wait_for(lambda: want <= set(_overview(tb)["runs"]), 60, "tensorboard to load every run")
        yield tb, browser, logdir
    finally:
        if browser is not None:
            browser.close()
        tb.stop()


def _overview(tb):
    return json.loads(get(tb.url + "/data/plugin/tfviz/overview", timeout=10))


def _js(browser, body):
    """Evaluates BODY (statements that may use `d`, the tfviz iframe's document) and returns its value."""
    return browser.eval(f"(() => {{ const d = {DOC}; {body} }})()")


def _card(browser, run, expr):
    """EXPR of the run card `c` of RUN (None when absent)."""
    return _js(browser, f"const c = [...d.querySelectorAll('section[data-run]')].find((s) => s.dataset.run === "
                        f"{json.dumps(run)}); return c ? ({expr}) : null;")


def _card_loaded(browser, run):
    return _card(browser, run, "c.dataset.loaded === 'done'")


def _no_page_errors(browser):
    errors = [e for e in browser.errors() if "tfviz" in e or "Content Security Policy" in e]
    assert not errors, errors


def test_a_bad_tag_or_run_shows_its_own_line_and_the_others_still_draw(board):
    """A tag whose metadata is JSON nested 5,000 deep (/overview answered 500 and the tab
    showed only "could not reach the tfviz plugin"), and a run whose /run request fails
    (answered 404 here through the DevTools Fetch domain), each show one line in their own
    place; the good runs, and the bad run's good tag, still draw."""
    tb, browser, _ = board
    seen = set()
    browser.call("Fetch.enable", patterns=[{"urlPattern": "*/data/plugin/tfviz/run?run=x_gone&*", "requestStage": "Request"}])
    try:
        browser.call("Page.navigate", url="about:blank")
        browser.call("Page.navigate", url=tfviz_link(tb.url, view="filters", filter="x_"))

        def settled():
            fulfill_paused(browser, 404, "no tfviz data for run 'x_gone'", seen)
            s = view_state(browser)
            return s if s and s.get("view") == "filters" and s.get("state") != "loading" else None
        state = wait_for(settled, 40, "the filters view")
        wait_for(lambda: fulfill_paused(browser, 404, "x", seen) >= 0 and _card_loaded(browser, "x_gone"), 20, "x_gone's card")
    finally:
        browser.call("Fetch.disable")
    assert state["state"] == "ready", state
    assert seen, "the page never asked /run for run 'x_gone'"
    for run in ("x_good_a", "x_good_b"):   # the good runs draw their picture
        assert _card(browser, run, "c.querySelectorAll('img').length") == 1, run
        assert not _card(browser, run, "c.querySelector('.tfviz-card-error')"), run
    # the failed run: one line naming it and the reason, in its own card
    line = _card(browser, "x_gone", "[...c.querySelectorAll('.tfviz-card-error')].map((e) => e.textContent)")
    assert len(line) == 1 and "x_gone" in line[0] and "404" in line[0], line
    assert _card(browser, "x_gone", "c.querySelectorAll('img').length") == 0
    # the unreadable tag: its line in its place; the run's other tag still draws
    errors = _card(browser, "x_mixed", "[...c.querySelectorAll('.tfviz-card-error')].map((e) => [e.dataset.tag, e.textContent])")
    assert len(errors) == 1 and errors[0][0] == "filters/deep" and "filters/deep" in errors[0][1], errors
    assert _card(browser, "x_mixed", "[...c.querySelectorAll('[data-tag] img')].map((i) => i.closest('[data-tag]').dataset.tag)") \
        == ["filters/ok"]
    wait_for(lambda: _card(browser, "x_mixed", "[...c.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth)"),
             20, "x_mixed's good picture")
    assert int(view_state(browser)["broken"]) == 0
    _no_page_errors(browser)


def test_a_negative_step_is_shown(board):
    """Writer accepts step -3: the card shows it and its picture (the Filters view showed only
    an error); a link to step -3 of a run with steps -3 and 4 opens that step."""
    tb, browser, _ = board
    state = open_tfviz(browser, tfviz_link(tb.url, view="filters", filter="neg", run="negsteps", step=-3), "filters")
    assert state["state"] == "ready", state
    wait_for(lambda: _card_loaded(browser, "neg") and _card_loaded(browser, "negsteps"), 20, "both cards")
    assert "step -3" in _card(browser, "neg", "c.textContent")
    assert _card(browser, "negsteps", "c.dataset.step") == "-3"
    assert _card(browser, "negsteps", "c.querySelector('input[type=range]').value") == "0"   # steps [-3, 4]
    for run, width in (("neg", 16), ("negsteps", 16)):
        wait_for(lambda: _card(browser, run, "[...c.querySelectorAll('img')].map((i) => i.naturalWidth)") == [width],
                 20, f"{run}'s picture of step -3")
        assert "step=-3" in _card(browser, run, "c.querySelector('img').src")
    assert not _js(browser, "return d.querySelector('.tfviz-card-error, .tfviz-error')")
    _no_page_errors(browser)


def _stale_width(browser):
    return _card(browser, "stale", "(() => { const i = c.querySelector('img'); return i && i.complete ? i.naturalWidth : 0; })()")


def test_reload_shows_a_rewritten_picture(board):
    """The same run, tag and step written again with a picture of another size: the reload
    button and a full page reload show the new picture (it stayed the cached old one), and
    every picture URL carries the step's version."""
    tb, browser, logdir = board
    from tfviz.summary import Writer
    url = tfviz_link(tb.url, view="filters", filter="stale")
    open_tfviz(browser, url, "filters")
    wait_for(lambda: _stale_width(browser) == 40, 20, "the 40 px picture")
    src = _card(browser, "stale", "c.querySelector('img').src")
    assert "v=" in src, src
    before = _overview(tb)["runs"]["stale"]["tags"]["filters/conv1"]["max_wall_time"]
    time.sleep(0.05)
    with Writer(logdir, run="stale") as w:
        w.filters("conv1", _grid(72, 9))
    wait_for(lambda: _overview(tb)["runs"]["stale"]["tags"]["filters/conv1"]["max_wall_time"] > before, 30,
             "tensorboard to read the rewrite")
    _js(browser, "d.querySelector('.tfviz-reload').click();")
    wait_for(lambda: _stale_width(browser) == 72, 20, "the reload button to show the 72 px picture")
    new_src = _card(browser, "stale", "c.querySelector('img').src")
    assert new_src != src and "v=" in new_src, (src, new_src)
    browser.eval("window.__before_reload = 1")
    browser.call("Page.reload")
    wait_for(lambda: browser.eval("window.__before_reload") is None and (view_state(browser) or {}).get("state") == "ready",
             40, "the reloaded page")
    wait_for(lambda: _stale_width(browser) == 72, 20, "a page reload to show the 72 px picture")
    _no_page_errors(browser)


def test_deep_link_round_trip(board):
    """A link names view, run, tag and step: the tab opens there. Changing the view and a
    step writes the top URL's hash (TensorBoard's own entries kept); that URL opened afresh
    shows the same; history back returns to the previous view."""
    tb, browser, _ = board
    link = tfviz_link(tb.url, view="attribution", filter="attr", run="attr_b", tag="attribution/grad_cam", step=0)
    link += "&p.other.keep=1"                                       # another plugin's URL data stays
    state = open_tfviz(browser, link, "attribution")
    assert state["state"] == "ready", state
    wait_for(lambda: _card_loaded(browser, "attr_b"), 20, "attr_b's card")
    assert _card(browser, "attr_b", "c.dataset.step") == "0"
    assert _card(browser, "attr_b", "c.querySelector('input[type=range]').value") == "0"
    assert _card(browser, "attr_b", "c.querySelector('.tfviz-selected').dataset.tag") == "attribution/grad_cam"
    assert all("step=0" in s for s in _card(browser, "attr_b", "[...c.querySelectorAll('img')].map((i) => i.src)"))
    assert _card(browser, "attr_a", "c.dataset.step") in (None, "1")   # the other run: its latest step

    # change the view: a new history entry
    _js(browser, "d.querySelector('nav button[data-view=filters]').click();")
    wait_view(browser, "filters")
    top = hash_state(browser.eval("location.href"))
    assert top["__tab__"] == "tfviz" and top["p.tfviz.view"] == "filters" and top["p.other.keep"] == "1", top
    assert top["p.tfviz.filter"] == "attr" and "p.tfviz.run" not in top, top
    # TensorBoard sees it as its own plugin URL data (what experimental.GetURLPluginData answers from)
    assert browser.eval("window.tensorboard.tf_storage.getUrlHashDict()['p.tfviz.view']") == "filters"
    _js(browser, "const f = d.querySelector('input[type=search]'); f.value = 'steps'; f.dispatchEvent(new Event('change'));")
    wait_view(browser, "filters")
    wait_for(lambda: _card_loaded(browser, "steps"), 20, "the steps card")
    # move a step slider: the hash names the run and step (replacing the entry, not adding one)
    history = browser.eval("history.length")
    _card(browser, "steps", "(() => { const s = c.querySelector('input[type=range]'); s.value = '1';"
                            " s.dispatchEvent(new Event('input')); })()")
    wait_for(lambda: hash_state(browser.eval("location.href")).get("p.tfviz.step") == "1", 10, "the step in the URL")
    assert browser.eval("history.length") == history
    copied = browser.eval("location.href")
    top = hash_state(copied)
    assert (top["p.tfviz.view"], top["p.tfviz.filter"], top["p.tfviz.run"]) == ("filters", "steps", "steps"), top
    wait_for(lambda: _card(browser, "steps", "c.querySelector('img').src").count("step=1") == 1, 10, "step 1's picture")

    # back: the filter entry, then the attribution view as the link opened it
    browser.eval("history.back()")
    wait_for(lambda: hash_state(browser.eval("location.href")).get("p.tfviz.filter") == "attr", 10, "back to the filter")
    browser.eval("history.back()")
    wait_view(browser, "attribution")
    wait_for(lambda: _card_loaded(browser, "attr_b"), 20, "attr_b's card again")
    assert _card(browser, "attr_b", "c.dataset.step") == "0"

    # the copied URL, opened afresh: the filters view, run steps at step 1
    state = open_tfviz(browser, copied, "filters")
    assert state["state"] == "ready", state
    wait_for(lambda: _card_loaded(browser, "steps"), 20, "the steps card")
    assert _card(browser, "steps", "c.dataset.step") == "1"
    assert _card(browser, "steps", "c.querySelector('input[type=range]').value") == "1"
    assert _js(browser, "return d.querySelector('input[type=search]').value") == "steps"
    assert _js(browser, "return d.querySelector('nav button[aria-selected=true]').dataset.view") == "filters"
    _no_page_errors(browser)


def test_a_huge_patches_summary_is_drawn_in_pages(board):
    """2,000 channel rows of patches: one page of rows in the DOM, never all 2,000
    pictures (which froze the page); next goes to the following page."""
    tb, browser, _ = board
    state = open_tfviz(browser, tfviz_link(tb.url, view="patches", filter="huge"), "patches", timeout=60)
    assert state["state"] == "ready" and int(state["broken"]) == 0, state
    imgs = _js(browser, "return d.querySelectorAll('.tfviz-patches img').length")
    assert 1 <= imgs <= 48, imgs
    pages = _js(browser, "return d.querySelector('.tfviz-page-info').textContent")
    assert pages == f"page 1 of {-(-HUGE_ROWS // imgs)}", (pages, imgs)
    first = _js(browser, "return d.querySelector('.tfviz-patches tbody tr').dataset.channel")
    _js(browser, "d.querySelector('.tfviz-page-next').click();")
    assert _js(browser, "return d.querySelector('.tfviz-page-info').textContent").startswith("page 2 of ")
    assert _js(browser, "return d.querySelectorAll('.tfviz-patches img').length") == imgs
    assert _js(browser, "return d.querySelector('.tfviz-patches tbody tr').dataset.channel") == str(int(first) + imgs)
    wait_for(lambda: _js(browser, "return [...d.querySelectorAll('.tfviz-patches img')].every((i) => i.complete && i.naturalWidth)"),
             20, "page 2's pictures")
    _no_page_errors(browser)


def test_the_first_screen_of_many_runs_loads_only_its_cards(board):
    """60 runs: the first screen asks /run for the cards on or near the screen only (it
    asked /series and /step for every tag of every run, and loaded every picture); every
    run still has its card, and scrolling to the end loads the last one."""
    tb, browser, _ = board
    browser.call("Network.enable")
    try:
        mark = len(browser.events)
        state = open_tfviz(browser, tfviz_link(tb.url, view="filters", filter="many_"), "filters")
        assert state["state"] == "ready", state
        sent = requests_sent(browser, "/data/plugin/tfviz/", mark)
    finally:
        browser.call("Network.disable")
    runs = [u for u in sent if "/data/plugin/tfviz/run?" in u]
    data = [u for u in sent if "/static/" not in u and "/index.js" not in u]
    assert _js(browser, "return d.querySelectorAll('section[data-run]').length") == MANY
    assert 1 <= len(runs) <= MANY // 3, (len(runs), runs)
    assert len(set(runs)) == len(runs), runs                       # one /run per card
    assert len(data) < MANY, (len(data), data)                      # /overview, /run and pictures of the first screen
    assert not [u for u in sent if "/series?" in u or "/step?" in u], sent
    loaded = _js(browser, "return d.querySelectorAll('section[data-loaded=done]').length")
    assert loaded <= MANY // 3, loaded
    assert _js(browser, "return d.querySelectorAll('img[loading=lazy]').length") == _js(browser, "return d.querySelectorAll('img').length")
    _js(browser, "d.defaultView.scrollTo(0, d.documentElement.scrollHeight);")
    last = f"many_{MANY - 1:03d}"
    wait_for(lambda: _card(browser, last, "c.dataset.loaded === 'done' && [...c.querySelectorAll('img')].every((i) => i.complete && i.naturalWidth) && c.querySelectorAll('img').length"),
             20, "the last card, scrolled to")
    _no_page_errors(browser)


def test_trust_figures_show_beside_their_method(board):
    """`tfviz trust --logdir` logs each method's maps with its figures: the Attribution view
    shows them under the method's name (ROAD next to deletion, insertion and randomization)."""
    tb, browser, _ = board
    state = open_tfviz(browser, tfviz_link(tb.url, view="attribution", filter="attr_a"), "attribution")
    assert state["state"] == "ready", state
    wait_for(lambda: _card_loaded(browser, "attr_a"), 20, "attr_a's card")
    rows = _card(browser, "attr_a", "[...c.querySelectorAll('tbody th')].map((t) => t.textContent)")
    saliency = [r for r in rows if r.startswith("saliency")]
    assert len(saliency) == 1, rows
    for text in ("deletion AUC 0.04", "insertion AUC 0.2", "ROAD MoRF 0.5", "ROAD LeRF 0.75", "ROAD gap 0.25",
                 "randomization 0.6"):
        assert text in saliency[0], (text, saliency[0])
    assert [r for r in rows if r.startswith("grad_cam")] == ["grad_cam"]   # no figures logged: none shown
    _no_page_errors(browser)
