// The tfviz tab: a plain ES module (no build step) that TensorBoard loads into an
// iframe whose base URL is data/plugin/tfviz/; every URL below is relative to it.
//
// #tfviz-view's dataset is the tab's state for tests and benchmarks: data-view (the
// view shown), data-state ('loading', then 'ready' once the first screen is drawn --
// the cards on or near the screen loaded and their pictures settled --, 'empty' for a
// logdir without tfviz data, 'error' when /overview fails), data-images and
// data-broken (pictures on the page loaded and broken so far).
import {api, copyText, el, imageCounts, imagesSettled} from './static/dom.js';
import {linkUrl, onLinkChange, readLink, writeLink} from './static/link.js';
import {VIEWS} from './static/views.js';

const EMPTY_HELP = `# write tfviz data from Python
import tfviz
from tfviz.summary import Writer

with Writer("logs", run="demo") as w:
    w.filters("conv1", filter_grid_image)                     # Filters
    w.activations("conv2", [activation_grid], names=["cat"])  # Activations
    w.patches("conv2", channel_patches)                       # Patches (max_activating_patches)
    w.attribution("saliency", images, maps, targets=["tabby cat"], scores=[12.3])
    w.embedding_map("digits", thumbnail_map_image)            # Embeddings
    w.params("optimization", {"recipe": "class_visualization"})
    for step in range(100):                                   # Optimization
        w.scalar("loss", loss, step)
        if step % 10 == 0:
            w.snapshot(image, step)

# ... or during model.fit
model.fit(x, y, callbacks=[tfviz.callbacks.FilterGrids("logs"),
                           tfviz.callbacks.Attributions("logs", val_images)])

# ... or from the command line, then look at it
tfviz attribute saliency photo.jpg --logdir logs
tfviz patches --layer conv2 -c 0-7 --logdir logs
tfviz board logs`;

export async function render() {
  document.head.appendChild(el('link', {rel: 'stylesheet', href: './static/style.css'}));
  const state = {view: null, filter: '', zoom: 'auto', opacity: 0.5, sync: true, overview: null, link: readLink()};
  state.filter = state.link.filter ?? '';
  const nav = el('nav', {class: 'tfviz-nav', role: 'tablist'});
  const filter = el('input', {type: 'search', placeholder: 'filter runs', 'aria-label': 'filter runs', value: state.filter});
  const reload = el('button', {type: 'button', class: 'tfviz-reload', title: 'reload data'}, 'reload');
  const copy = el('button', {type: 'button', class: 'tfviz-copy-link', title: 'copy a link to this view'}, 'copy link');
  const note = el('span', {class: 'tfviz-note'});
  const main = el('main', {id: 'tfviz-view', dataset: {state: 'loading', images: '0', broken: '0'}});
  document.body.appendChild(el('div', {id: 'tfviz'}, [
    el('header', {class: 'tfviz-header'}, [el('strong', {class: 'tfviz-title'}, 'tfviz'), nav, filter, reload, copy, note]),
    main,
  ]));

  const recount = () => {
    const {loaded, broken} = imageCounts(main);
    main.dataset.images = String(loaded);
    main.dataset.broken = String(broken);
  };
  // load and error do not bubble, but capturing listeners see them: the counts follow the pictures
  for (const type of ['load', 'error']) {
    main.addEventListener(type, (e) => { if (e.target && e.target.tagName === 'IMG') recount(); }, true);
  }

  /** The URL's state for a selection ({run, tag, step}) in the current view and filter. */
  const linkState = (sel = {}) => ({view: state.view, filter: state.filter, run: sel.run, tag: sel.tag, step: sel.step});
  const select = (sel, {replace = false} = {}) => {
    state.link = linkState(sel);
    writeLink(state.link, {replace});
  };

  let token = 0;
  let current = null;
  async function show(viewId, {focus = null} = {}) {
    const view = VIEWS.find((v) => v.id === viewId) || VIEWS[0];
    state.view = view.id;
    const mine = ++token;
    if (current && current.stop) current.stop();
    current = null;
    for (const b of nav.children) b.setAttribute('aria-selected', String(b.dataset.view === view.id));
    main.dataset.view = view.id;
    main.dataset.state = 'loading';
    const ctx = {overview: state.overview, filter: state.filter, state, focus: focus && focus.run ? focus : null,
                 select, linkFor: (sel) => linkUrl(linkState(sel))};
    let root;
    try {
      root = view.render(ctx);
    } catch (err) {
      main.replaceChildren(el('p', {class: 'tfviz-error'}, `could not draw ${view.title}: ${err.message}`));
      recount();
      main.dataset.state = 'error';
      return;
    }
    current = root;
    main.replaceChildren(root);
    window.scrollTo(0, 0);
    recount();
    if (root.start) root.start();
    await (root.ready || imagesSettled(main));
    if (mine !== token) return;
    recount();
    main.dataset.state = 'ready';
  }

  async function load() {
    main.dataset.state = 'loading';
    try {
      state.overview = await api('overview');
    } catch (err) {
      if (current && current.stop) current.stop();
      current = null;
      main.replaceChildren(el('p', {class: 'tfviz-error'}, `could not reach the tfviz plugin: ${err.message}`));
      recount();
      main.dataset.state = 'error';
      return;
    }
    const counts = {};
    for (const entry of Object.values(state.overview.runs || {})) {
      const kinds = new Set(Object.values(entry.tags || {}).map((t) => t && t.kind));
      for (const k of kinds) counts[k] = (counts[k] || 0) + 1;
    }
    nav.replaceChildren(...VIEWS.map((v) => {
      const b = el('button', {type: 'button', role: 'tab', dataset: {view: v.id},
                              class: counts[v.id] ? '' : 'tfviz-no-data'},
                   [v.title, el('span', {class: 'tfviz-count'}, counts[v.id] ? ` ${counts[v.id]}` : '')]);
      b.addEventListener('click', () => {
        state.view = v.id;
        select({});
        show(v.id);
      });
      return b;
    }));
    note.textContent = state.overview.samples_per_plugin == null
      ? 'TensorBoard keeps 10 images per tag unless started with --samples_per_plugin=tfviz=1000 (tfviz board does)'
      : '';
    if (!Object.keys(state.overview.runs || {}).length) {
      if (current && current.stop) current.stop();
      current = null;
      const others = state.overview.all_runs || [];
      main.replaceChildren(el('div', {class: 'tfviz-empty'}, [
        el('h2', {}, 'No tfviz data in this logdir yet'),
        el('p', {}, others.length
          ? `The logdir has ${others.length} run(s), but none written by tfviz.summary. Write some like this:`
          : 'Write some like this, then press reload:'),
        el('pre', {}, EMPTY_HELP),
      ]));
      recount();
      main.dataset.state = 'empty';
      return;
    }
    state.firstView = (VIEWS.find((v) => counts[v.id]) || VIEWS[0]).id;
    const linked = VIEWS.find((v) => v.id === state.link.view);
    await show(linked ? linked.id : state.view || state.firstView, {focus: state.link});
  }

  const applyFilter = () => {
    if (filter.value.trim() === state.filter) return;
    state.filter = filter.value.trim();
    select({});
    if (state.overview) show(state.view);
  };
  filter.addEventListener('change', applyFilter);
  filter.addEventListener('search', applyFilter);  // Enter, or the field's clear button
  reload.addEventListener('click', () => load());
  copy.addEventListener('click', async () => {
    const ok = await copyText(linkUrl({...state.link, view: state.view, filter: state.filter}));
    copy.textContent = ok ? 'link copied' : 'copy link';
    setTimeout(() => { copy.textContent = 'copy link'; }, 2000);
  });
  // back / forward (or an edited URL): show what the URL names now
  onLinkChange((link) => {
    state.link = link;
    state.filter = link.filter ?? '';
    filter.value = state.filter;
    if (state.overview && Object.keys(state.overview.runs || {}).length) {
      show(VIEWS.some((v) => v.id === link.view) ? link.view : state.firstView, {focus: link});
    }
  });
  await load();
}
