// The tfviz tab: a plain ES module (no build step) that TensorBoard loads into an
// iframe whose base URL is data/plugin/tfviz/; every URL below is relative to it.
import {api, el, imagesSettled} from './static/dom.js';
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
  const state = {view: null, filter: '', zoom: 'auto', opacity: 0.5, sync: true, overview: null};
  const nav = el('nav', {class: 'tfviz-nav', role: 'tablist'});
  const filter = el('input', {type: 'search', placeholder: 'filter runs', 'aria-label': 'filter runs'});
  const reload = el('button', {type: 'button', class: 'tfviz-reload', title: 'reload data'}, 'reload');
  const note = el('span', {class: 'tfviz-note'});
  const main = el('main', {id: 'tfviz-view', dataset: {state: 'loading'}});
  document.body.appendChild(el('div', {id: 'tfviz'}, [
    el('header', {class: 'tfviz-header'}, [el('strong', {class: 'tfviz-title'}, 'tfviz'), nav, filter, reload, note]),
    main,
  ]));

  let token = 0;
  async function show(viewId) {
    state.view = viewId;
    const mine = ++token;
    for (const b of nav.children) b.setAttribute('aria-selected', String(b.dataset.view === viewId));
    main.dataset.view = viewId;
    main.dataset.state = 'loading';
    main.replaceChildren(el('p', {class: 'tfviz-muted'}, 'loading…'));
    const view = VIEWS.find((v) => v.id === viewId);
    let content;
    try {
      content = await view.render({overview: state.overview, filter: state.filter, state});
    } catch (err) {
      if (mine !== token) return;
      main.replaceChildren(el('p', {class: 'tfviz-error'}, `could not load ${view.title}: ${err.message}`));
      main.dataset.state = 'error';
      return;
    }
    if (mine !== token) return;
    main.replaceChildren(content);
    const {loaded, broken} = await imagesSettled(main);
    if (mine !== token) return;
    main.dataset.images = String(loaded);
    main.dataset.broken = String(broken);
    main.dataset.state = 'ready';
  }

  async function load() {
    main.dataset.state = 'loading';
    try {
      state.overview = await api('overview');
    } catch (err) {
      main.replaceChildren(el('p', {class: 'tfviz-error'}, `could not reach the tfviz plugin: ${err.message}`));
      main.dataset.state = 'error';
      return;
    }
    const counts = {};
    for (const entry of Object.values(state.overview.runs)) {
      const kinds = new Set(Object.values(entry.tags).map((t) => t.kind));
      for (const k of kinds) counts[k] = (counts[k] || 0) + 1;
    }
    nav.replaceChildren(...VIEWS.map((v) => {
      const b = el('button', {type: 'button', role: 'tab', dataset: {view: v.id},
                              class: counts[v.id] ? '' : 'tfviz-no-data'},
                   [v.title, el('span', {class: 'tfviz-count'}, counts[v.id] ? ` ${counts[v.id]}` : '')]);
      b.addEventListener('click', () => show(v.id));
      return b;
    }));
    note.textContent = state.overview.samples_per_plugin == null
      ? 'TensorBoard keeps 10 images per tag unless started with --samples_per_plugin=tfviz=1000 (tfviz board does)'
      : '';
    if (!Object.keys(state.overview.runs).length) {
      const others = state.overview.all_runs || [];
      main.replaceChildren(el('div', {class: 'tfviz-empty'}, [
        el('h2', {}, 'No tfviz data in this logdir yet'),
        el('p', {}, others.length
          ? `The logdir has ${others.length} run(s), but none written by tfviz.summary. Write some like this:`
          : 'Write some like this, then press reload:'),
        el('pre', {}, EMPTY_HELP),
      ]));
      main.dataset.state = 'empty';
      return;
    }
    const first = state.view || (VIEWS.find((v) => counts[v.id]) || VIEWS[0]).id;
    await show(first);
  }

  filter.addEventListener('change', () => {
    state.filter = filter.value.trim();
    if (state.view) show(state.view);
  });
  reload.addEventListener('click', () => load());
  await load();
}
