// The six views of the tfviz tab. Each view is `(ctx) => Node`; the node may carry
// start() (called once it is in the document), ready (a promise: the first screen is
// drawn) and stop() (the view goes away). ctx holds the overview (runs, their tags and
// scalars), the run filter, the focus a link names ({run, tag, step}), the shared
// controls' state, select(state, {replace}) that writes the selection into the URL and
// linkFor(state) that gives the URL of a selection.
//
// Every view draws only what is on screen: one placeholder per run, loaded as it nears
// the viewport with ONE /run request (steps, tags, metadata and picture versions), its
// pictures loaded lazily, any grid larger than a page drawn in pages.
import {runList} from './cards.js';
import {api, atOrBefore, copyText, el, errorLine, fmt, image, lossChart, pager, perImage, slider} from './dom.js';

const SHORT = (tag) => tag.slice(tag.indexOf('/') + 1);
const PAGE_PICTURES = 48;   // pictures a page of a picture grid holds
const PAGE_ROWS = 16;       // channel rows a page of patches holds

/** [[run, entry, [[tag, info], ...]], ...] for the runs that have tags of `kind`. */
function runsWith(ctx, kind) {
  const out = [];
  for (const run of Object.keys(ctx.overview.runs).sort()) {
    if (ctx.filter && !run.toLowerCase().includes(ctx.filter.toLowerCase())) continue;
    const entry = ctx.overview.runs[run];
    const tags = Object.entries(entry.tags || {}).filter(([, t]) => t && t.kind === kind)
      .sort(([a], [b]) => a.localeCompare(b));
    if (tags.length) out.push([run, entry, tags]);
  }
  return out;
}

function figure(img, caption, cls = '') {
  return el('figure', {class: `tfviz-figure ${cls}`.trim()},
            [img, caption ? el('figcaption', {}, caption) : null]);
}

function emptyView(what, how) {
  return el('div', {class: 'tfviz-empty-view'}, [
    el('p', {}, `No ${what} in this logdir${how ? ':' : '.'}`),
    how ? el('pre', {}, how) : null,
  ]);
}

function imageKey(meta, i) {
  return perImage(meta, 'names', 'name', i) ?? perImage(meta, 'images', 'image', i) ??
    meta.captions?.[i] ?? `image ${i}`;
}

const message = (err) => (err && err.message ? err.message : String(err));

/** A link to one run's card (at its step): a real href, copied to the clipboard when clicked. */
function runLink(ctx, run, current) {
  const a = el('a', {class: 'tfviz-run-link', href: ctx.linkFor({run}), target: '_top',
                     title: 'a link to this run at this step (click: copy it)'}, 'link');
  const update = () => { a.href = ctx.linkFor({run, ...current()}); };
  a.addEventListener('mouseenter', update);
  a.addEventListener('focus', update);
  a.addEventListener('click', async (e) => {
    e.preventDefault();
    update();
    ctx.select({run, ...current()});
    a.textContent = (await copyText(a.href)) ? 'link copied' : 'link';
    setTimeout(() => { a.textContent = 'link'; }, 2000);
  });
  return a;
}

/** Marks and scrolls to the element of `tag` inside `root` (the tag a link names). */
function focusTag(root, tag) {
  if (!tag) return;
  const node = [...root.querySelectorAll('[data-tag]')].find((n) => n.dataset.tag === tag);
  if (!node) return;
  node.classList.add('tfviz-selected');
  node.scrollIntoView({block: 'nearest'});
}

/** The wrapper of a note above a view's cards (e.g. a linked run this view does not have). */
function focusNote(ctx, runs, what) {
  const run = ctx.focus && ctx.focus.run;
  if (!run || runs.some(([r]) => r === run)) return null;
  return el('p', {class: 'tfviz-muted tfviz-focus-note'},
            ctx.overview.runs[run] ? `run ${run} has no ${what}${ctx.filter ? ' that matches the filter' : ''}`
                                   : `no run ${run} in this logdir`);
}

/**
 * A view of step-based run cards: the runs of `spec.kind`, each a lazy card with a step
 * slider over the union of its tags' steps. Its body is drawn from one /run answer, by
 * `spec.tag(run, tag, ctx)` per tag (a tag that could not be read: its one-line error in
 * its place) or by `spec.table(run, tags, ctx)` over all of them (errors above it).
 */
function stepView(ctx, spec) {
  const runs = runsWith(ctx, spec.kind);
  if (!runs.length) return emptyView(spec.what, spec.how);
  const controls = spec.controls ? spec.controls(ctx) : null;
  const extra = spec.prepare ? spec.prepare(ctx) : null;
  const focus = ctx.focus && runs.some(([r]) => r === ctx.focus.run) ? ctx.focus.run : null;
  const list = runList(runs.map(([run]) => run), (run, slot) => stepCard(ctx, spec, run, slot, extra),
                       {focus});
  const root = el('div', {}, [controls, focusNote(ctx, runs, spec.what), list]);
  root.start = () => list.start();
  root.stop = () => list.stop();
  root.ready = list.ready;
  return root;
}

function drawBody(ctx, spec, run, data) {
  const tags = Array.isArray(data.tags) ? data.tags : [];
  const bad = tags.filter((t) => t.error != null || !t.meta);
  const good = tags.filter((t) => !bad.includes(t));
  const tagError = (t) => errorLine(`${t.tag}: ${t.error ?? 'no data'}`, {dataset: {tag: t.tag}});
  if (spec.tag) {
    const ordered = spec.order ? [...tags].sort((a, b) => spec.order(a) - spec.order(b)) : tags;
    return el('div', {class: 'tfviz-cards'}, ordered.map((t) => {
      if (bad.includes(t)) return tagError(t);
      try {
        return spec.tag(run, t, ctx);
      } catch (err) {
        return errorLine(`${t.tag}: could not draw: ${message(err)}`, {dataset: {tag: t.tag}});
      }
    }));
  }
  let table = null;
  if (good.length) {
    try {
      table = spec.table(run, good, ctx);
    } catch (err) {
      table = errorLine(`run ${run}: could not draw: ${message(err)}`);
    }
  }
  return el('div', {class: 'tfviz-run-tables'}, [...bad.map(tagError), table]);
}

async function stepCard(ctx, spec, run, slot, extra) {
  const focus = ctx.focus && ctx.focus.run === run ? ctx.focus : null;
  const query = {run, kind: spec.kind};
  if (focus && focus.step != null) query.step = String(focus.step);
  const data = await api('run', query);
  const steps = Array.isArray(data.steps) ? data.steps : [];
  let shown = data.step;
  const body = el('div', {class: 'tfviz-run-body'});
  const head = el('div', {class: 'tfviz-run-head'}, [el('h3', {class: 'tfviz-run-name'}, run)]);
  if (steps.length > 1) {
    let token = 0;
    const start = Math.max(0, steps.indexOf(atOrBefore(steps, shown ?? steps[steps.length - 1])));
    head.appendChild(slider('step', steps, start, async (i) => {
      const step = steps[i];
      const mine = ++token;
      shown = step;
      slot.dataset.step = String(step);
      ctx.select({run, step}, {replace: true});
      let answer;
      try {
        answer = await api('run', {run, kind: spec.kind, step: String(step)});
      } catch (err) {
        if (mine === token) body.replaceChildren(errorLine(`could not load run ${run} at step ${step}: ${message(err)}`));
        return;
      }
      if (mine !== token) return;
      body.replaceChildren(drawBody(ctx, spec, run, answer));
    }, (s) => String(s)));
  } else if (steps.length === 1) {
    head.appendChild(el('span', {class: 'tfviz-muted tfviz-step'}, `step ${steps[0]}`));
  }
  if (shown != null) slot.dataset.step = String(shown);
  head.appendChild(runLink(ctx, run, () => (shown != null && steps.length > 1 ? {step: shown} : {})));
  if (spec.extra) head.appendChild(await spec.extra(run, extra));
  body.replaceChildren(drawBody(ctx, spec, run, data));
  slot.replaceChildren(head, body);
  if (focus) focusTag(slot, focus.tag);
}

// ------------------------------------------------------------------------ Filters
const FILTERS = {
  kind: 'filters',
  what: 'filter grids',
  how: 'writer.filters("conv1", tfviz.inspect.filter_grid(bundle, "conv1"))\n' +
       'or model.fit(..., callbacks=[tfviz.callbacks.FilterGrids(logdir)])',
  controls: zoomControl,
  tag(run, info) {
    const meta = info.meta;
    const figs = pager(info.count, PAGE_PICTURES, (a, b) => el('div', {class: 'tfviz-figs'},
      range(a, b).map((i) => figure(zoomable(image(run, info.tag, info.step, i, '', info.version)),
                                    meta.captions?.[i] !== meta.layer ? meta.captions?.[i] : ''))), 'pictures');
    return el('div', {class: 'tfviz-card', dataset: {tag: info.tag}}, [el('h4', {}, meta.layer ?? SHORT(info.tag)), figs]);
  },
};

function range(a, b) {
  return Array.from({length: Math.max(0, b - a)}, (_, i) => a + i);
}

// Zoom: 'auto' shows small pictures (filter grids) enlarged by a whole factor to about
// 256 px and large ones (thumbnail maps) at their own size up to 900 px; a number is a
// factor of the picture's own size. Pixels stay sharp (image-rendering: pixelated).
let ZOOM = 'auto';

function applyZoom(img) {
  const nat = img.naturalWidth;
  if (!nat) return;
  let w;
  if (img.classList.contains('tfviz-enlarged')) w = Math.max(nat, window.innerWidth - 80);
  else if (ZOOM === 'auto') w = nat < 256 ? nat * Math.max(1, Math.round(256 / nat)) : Math.min(nat, 900);
  else w = nat * ZOOM;
  img.style.width = `${Math.round(w)}px`;
}

function zoomable(img) {
  img.classList.add('tfviz-zoomable');
  img.title = 'click to enlarge';
  img.addEventListener('load', () => applyZoom(img));
  img.addEventListener('click', () => {
    img.classList.toggle('tfviz-enlarged');
    applyZoom(img);
  });
  return img;
}

function zoomControl(ctx) {
  const zooms = ['auto', 0.25, 0.5, 1, 2, 3, 4, 6, 8];
  const start = Math.max(0, zooms.indexOf(ctx.state.zoom ?? 'auto'));
  const apply = (i) => {
    ctx.state.zoom = ZOOM = zooms[i];
    for (const img of document.querySelectorAll('img.tfviz-zoomable')) applyZoom(img);
  };
  ZOOM = zooms[start];
  return el('div', {class: 'tfviz-controls'},
            [slider('zoom', zooms, start, apply, (v) => (v === 'auto' ? 'auto' : `${v}×`)),
             el('span', {class: 'tfviz-muted'}, 'click an image to enlarge it')]);
}

// ------------------------------------------------------------------------ Activations
const ACTIVATIONS = {
  kind: 'activations',
  what: 'activation maps',
  how: 'writer.activations("conv2", [activation_grid(bundle, img, "conv2")], names=["cat"])',
  controls: zoomControl,
  table(run, infos) {
    const layers = infos.map((info) => info.meta.layer ?? SHORT(info.tag));
    const rows = new Map();  // image name -> [cell maker per layer]
    infos.forEach((info, col) => {
      for (let i = 0; i < info.count; i++) {
        let key = String(imageKey(info.meta, i));
        const suffix = `: ${layers[col]}`;  // captions like "cat.jpg: conv2" name the image
        if (key.endsWith(suffix) && key.length > suffix.length) key = key.slice(0, -suffix.length);
        if (!rows.has(key)) rows.set(key, new Array(infos.length).fill(null));
        const cap = info.meta.captions?.[i];
        rows.get(key)[col] = () => figure(zoomable(image(run, info.tag, info.step, i, '', info.version)),
                                          cap && cap !== key && cap !== key + suffix ? cap : '');
      }
    });
    const all = [...rows];
    const head = el('thead', {}, el('tr', {}, [el('th', {}, 'image \\ layer'), ...layers.map((l, c) =>
      el('th', {dataset: {tag: infos[c].tag}}, l))]));
    return pager(all.length, PAGE_PICTURES / Math.max(1, layers.length), (a, b) => el('table', {class: 'tfviz-grid'}, [
      head.cloneNode(true),
      el('tbody', {}, all.slice(a, b).map(([key, cells]) =>
        el('tr', {}, [el('th', {scope: 'row'}, key), ...cells.map((c) => el('td', {}, c ? c() : null))]))),
    ]), 'images');
  },
};

// ------------------------------------------------------------------------ Patches
const PATCHES = {
  kind: 'patches',
  what: 'max-activating patches',
  how: 'writer.patches("conv2", tfviz.inspect.max_activating_patches(bundle, images, "conv2", k=9))\n' +
       'or: tfviz patches --layer conv2 -c 0-7 --logdir logs',
  controls: patchSizeControl,
  tag: patchCard,
};

/** One layer: a table channel x rank of its patches, each with its score and source image; in pages of channel rows. */
function patchCard(run, info) {
  const meta = info.meta;
  const row = Math.max(1, Math.floor(Number(meta.row)) || info.count || 1);
  const channels = Array.isArray(meta.channels) ? meta.channels : [];
  const nrows = Math.ceil(info.count / row);
  const about = [
    Array.isArray(meta.field) ? `receptive field ${meta.field.join('×')} px` : null,
    Array.isArray(meta.stride) ? `stride ${meta.stride.join('×')}` : null,
    meta.data != null ? `top ${row} over ${fmt(meta.data)}` : null,
  ].filter(Boolean).join(' · ');
  const channelRow = (r) => {
    const channel = channels[r] ?? r;
    const cells = [];
    for (let j = 0; j < row && r * row + j < info.count; j++) {
      const score = meta.scores?.[r]?.[j];
      const name = meta.names?.[r]?.[j];
      const pos = meta.positions?.[r]?.[j];
      const box = meta.boxes?.[r]?.[j];
      const tip = [
        `channel ${fmt(channel)}, #${j + 1}`,
        score !== undefined ? `score ${fmt(score)}` : null,
        name != null ? `image ${fmt(name)}` : null,
        Array.isArray(pos) ? `position y ${fmt(pos[0])}, x ${fmt(pos[1])} (layer grid)` : null,
        Array.isArray(box) ? `box top ${fmt(box[0])}, left ${fmt(box[1])}, bottom ${fmt(box[2])}, ` +
                             `right ${fmt(box[3])} (input pixels)` : null,
      ].filter(Boolean).join('\n');
      const img = image(run, info.tag, info.step, r * row + j, 'tfviz-patch', info.version);
      const caption = [el('span', {class: 'tfviz-patch-score'}, score !== undefined ? fmt(score) : ''),
                       el('span', {class: 'tfviz-patch-name'}, name != null ? fmt(name) : '')];
      const fig = figure(img, caption, 'tfviz-patch-fig');
      fig.title = tip;
      cells.push(el('td', {}, fig));
    }
    return el('tr', {dataset: {channel: String(channel)}}, [el('th', {scope: 'row'}, `ch ${fmt(channel)}`), ...cells]);
  };
  const head = el('thead', {}, el('tr', {}, [el('th', {}, 'channel \\ rank'),
                                            ...range(0, row).map((j) => el('th', {}, `#${j + 1}`))]));
  const perPage = Math.max(1, Math.min(PAGE_ROWS, Math.floor(PAGE_ROWS * 9 / row)));
  return el('div', {class: 'tfviz-card', dataset: {tag: info.tag}}, [
    el('h4', {}, meta.layer ?? SHORT(info.tag)),
    about ? el('p', {class: 'tfviz-muted tfviz-about'}, about) : null,
    pager(nrows, perPage, (a, b) => el('table', {class: 'tfviz-grid tfviz-patches'}, [
      head.cloneNode(true), el('tbody', {}, range(a, b).map(channelRow))]), 'channels'),
  ]);
}

function patchSizeControl(ctx) {
  const sizes = [24, 32, 48, 64, 96, 128, 192];
  const start = Math.max(0, sizes.indexOf(ctx.state.patchSize ?? 64));
  const apply = (i) => {
    ctx.state.patchSize = sizes[i];
    document.documentElement.style.setProperty('--tfviz-patch', `${sizes[i]}px`);
  };
  apply(start);
  return el('div', {class: 'tfviz-controls'},
            [slider('patch size', sizes, start, apply, (v) => `${v} px`),
             el('span', {class: 'tfviz-muted'}, 'hover a patch for its image, position and box')]);
}

// ------------------------------------------------------------------------ Attribution
const ATTRIBUTION = {
  kind: 'attribution',
  what: 'attribution maps',
  how: 'writer.attribution("saliency", images, maps, targets=["tabby cat"], scores=[12.3])',
  controls(ctx) {
    const opacity = slider('overlay opacity', Array.from({length: 21}, (_, i) => i / 20),
                           Math.round(ctx.state.opacity * 20), (i) => {
                             ctx.state.opacity = i / 20;
                             document.documentElement.style.setProperty('--tfviz-opacity', String(i / 20));
                           }, (v) => `${Math.round(v * 100)}%`);
    document.documentElement.style.setProperty('--tfviz-opacity', String(ctx.state.opacity));
    return el('div', {class: 'tfviz-controls'}, [opacity]);
  },
  table: attributionTable,
};

function attributionTable(run, infos) {
  const inputs = new Map();  // image name -> {info, i}
  const maps = [];
  for (const info of infos) {
    if (info.meta.role === 'input') {
      for (let i = 0; i < info.count; i++) inputs.set(String(imageKey(info.meta, i)), {info, i});
    } else {
      maps.push(info);
    }
  }
  if (!maps.length) return el('p', {class: 'tfviz-muted'}, 'only input images at this step');
  const columns = [...inputs.keys()];
  const seen = new Set(columns);
  for (const info of maps) {
    for (let i = 0; i < info.count; i++) {
      const key = String(imageKey(info.meta, i));
      if (!seen.has(key)) { seen.add(key); columns.push(key); }
    }
  }
  // one row per method; a method may come as one summary per image (tag <image>/<method>)
  const byMethod = new Map();
  for (const info of maps) {
    const method = String(info.meta.method ?? SHORT(info.tag));
    if (!byMethod.has(method)) byMethod.set(method, {tag: info.tag, cells: new Map(), trust: info.meta.trust});
    for (let i = 0; i < info.count; i++) {
      const key = String(imageKey(info.meta, i));
      if (!byMethod.get(method).cells.has(key)) byMethod.get(method).cells.set(key, {info, i});
    }
  }
  const cell = (cellsByImage, key) => {
    const hit = cellsByImage.get(key);
    if (!hit) return el('td', {});
    const {info, i} = hit;
    const input = inputs.get(key);
    const heat = image(run, info.tag, info.step, i, input ? 'tfviz-heat' : 'tfviz-heat-alone', info.version);
    const stack = el('div', {class: 'tfviz-overlay'}, [
      input ? image(run, input.info.tag, input.info.step, input.i, 'tfviz-base', input.info.version) : null, heat]);
    const target = perImage(info.meta, 'targets', 'target', i);
    const score = perImage(info.meta, 'scores', 'score', i);
    const caption = [target !== undefined ? `target ${fmt(target)}` : null,
                     score !== undefined ? `score ${fmt(score)}` : null].filter(Boolean).join(' · ');
    return el('td', {}, figure(stack, caption));
  };
  const overlays = maps.some((info) => range(0, info.count).some((i) => inputs.has(String(imageKey(info.meta, i)))));
  const note = overlays ? null : el('p', {class: 'tfviz-muted'},
    'these maps were logged as finished pictures; Writer.attribution logs images and maps apart so they can be overlaid');
  const table = pager(columns.length, PAGE_PICTURES / Math.max(1, byMethod.size), (a, b) => el('table', {class: 'tfviz-grid'}, [
    el('thead', {}, el('tr', {}, [el('th', {}, 'method \\ image'), ...columns.slice(a, b).map((c) => el('th', {}, c))])),
    el('tbody', {}, [...byMethod].map(([method, {tag, cells, trust}]) =>
      el('tr', {dataset: {tag}}, [el('th', {scope: 'row'}, [method, trustFigures(trust)]),
                                  ...columns.slice(a, b).map((key) => cell(cells, key))]))),
  ]), 'images');
  return el('div', {}, [note, table]);
}

// The figures `tfviz trust --logdir` logs with a method's maps, under its name: what each
// means and which way is better, as the command's table says.
const TRUST = [['deletion', 'deletion AUC', 'lower is better'], ['insertion', 'insertion AUC', 'higher is better'],
               ['road_morf', 'ROAD MoRF', 'lower is better'], ['road_lerf', 'ROAD LeRF', 'higher is better'],
               ['road', 'ROAD gap', 'higher is better'], ['randomization', 'randomization', 'lower is better']];

function trustFigures(trust) {
  if (!trust || typeof trust !== 'object' || Array.isArray(trust)) return null;
  const rows = TRUST.filter(([k]) => typeof trust[k] === 'number')
    .map(([k, label, better]) => el('div', {title: better}, `${label} ${fmt(trust[k])}`));
  return rows.length ? el('div', {class: 'tfviz-trust tfviz-muted', dataset: {trust: '1'}}, rows) : null;
}

// ------------------------------------------------------------------------ Embeddings
const EMBEDDINGS = {
  kind: 'embeddings',
  what: 'embeddings',
  how: 'writer.embedding_map("digits", thumbnail_map(embed(bundle, images), images))\n' +
       'writer.neighbors("digits", queries, neighbours, distances=d)',
  controls: zoomControl,
  // one request per view for the Projector's runs, shared by the cards
  prepare: () => fetch('../projector/runs').then((r) => (r.ok ? r.json() : [])).catch(() => []),
  async extra(run, projectorRuns) {
    const runs = await projectorRuns;
    const has = Array.isArray(runs) && runs.includes(run);
    return el('span', {class: 'tfviz-projector'}, has
      ? [projectorLink(), ` (pick run "${run}" there)`]
      : [projectorLink(), ' (no Projector files for this run yet: tfviz.inspect.export_projector writes them)']);
  },
  order: (t) => (t.meta && t.meta.role === 'neighbors' ? 1 : 0),
  tag(run, info) {
    const meta = info.meta;
    const title = el('h4', {}, SHORT(info.tag));
    if (meta.role === 'neighbors') {
      return el('div', {class: 'tfviz-card tfviz-wide', dataset: {tag: info.tag}}, [title, strips(run, info)]);
    }
    const figs = pager(info.count, PAGE_PICTURES, (a, b) => el('div', {class: 'tfviz-figs'}, range(a, b).map((i) =>
      figure(zoomable(image(run, info.tag, info.step, i, 'tfviz-map', info.version)), meta.captions?.[i] ?? ''))), 'pictures');
    return el('div', {class: 'tfviz-card', dataset: {tag: info.tag}}, [title, figs]);
  },
};

function projectorLink() {
  const a = el('a', {href: '../../../#projector', target: '_top'}, 'open in the Projector');
  a.addEventListener('click', (e) => {
    try {
      window.top.location.hash = 'projector';
      e.preventDefault();
    } catch (err) { /* cross-origin top: follow the link */ }
  });
  return a;
}

function strips(run, info) {
  const meta = info.meta;
  const row = Math.max(1, Math.floor(Number(meta.row)) || info.count || 1);
  const strip = (r) => {
    const cells = [];
    for (let j = 0; j < row && r * row + j < info.count; j++) {
      const idx = r * row + j;
      const labels = meta.labels?.[r];
      const label = Array.isArray(labels) ? labels[j] : (j === 0 ? labels : undefined);
      const dist = j > 0 ? meta.distances?.[r]?.[j - 1] : undefined;
      const text = [j === 0 ? 'query' : `#${j}`, label != null ? String(label) : null,
                    dist != null ? `d=${fmt(dist)}` : null].filter(Boolean).join(' ');
      cells.push(figure(image(run, info.tag, info.step, idx, 'tfviz-thumb', info.version), text,
                        j === 0 ? 'tfviz-query' : ''));
    }
    return el('div', {class: 'tfviz-strip'}, cells);
  };
  return pager(Math.ceil(info.count / row), Math.max(PAGE_PICTURES, PAGE_ROWS * 9) / row,
               (a, b) => el('div', {class: 'tfviz-strips'}, range(a, b).map(strip)), 'queries');
}

// ------------------------------------------------------------------------ Optimization
const OPT_DEFAULT = 8;  // runs compared when nothing else is chosen

/**
 * The Optimization view: side-by-side cards of the runs chosen in a filterable list
 * (the first 8 by default, and the run a link names). Only chosen cards are built, each
 * with one /run, one /scalars (all its loss curves) and one /params request.
 */
export function optimizationView(ctx) {
  const runs = runsWith(ctx, 'optimization');
  if (!runs.length) {
    return emptyView('optimization runs',
                     'writer.params("optimization", {"recipe": "class_visualization", "target": "tabby cat"})\n' +
                     'writer.scalar("loss", loss, step); writer.snapshot(image, step)');
  }
  const names = runs.map(([run]) => run);
  const focus = ctx.focus && names.includes(ctx.focus.run) ? ctx.focus.run : null;
  let chosen = ctx.state.compare instanceof Set ? new Set([...ctx.state.compare].filter((r) => names.includes(r)))
    : null;
  if (!chosen || !chosen.size) chosen = new Set(names.slice(0, OPT_DEFAULT));
  if (focus) chosen.add(focus);
  ctx.state.compare = chosen;

  const cards = new Set();
  const sync = el('input', {type: 'checkbox', checked: ctx.state.sync});
  sync.addEventListener('change', () => { ctx.state.sync = sync.checked; });
  const broadcast = (source, fraction) => {
    if (!ctx.state.sync) return;
    for (const c of cards) if (c !== source && c.isConnected && !c.closest('[hidden]')) c.goToFraction(fraction);
  };

  const list = runList(names, (run, slot) => optimizationCard(ctx, run, slot, broadcast, cards),
                       {focus, cls: 'tfviz-opt-card', container: 'tfviz-compare'});
  const count = el('span', {class: 'tfviz-chooser-count'});
  const boxes = new Map();
  const apply = () => {
    for (const run of names) {
      const slot = list.slotOf(run);
      slot.hidden = !chosen.has(run);
      boxes.get(run).checked = chosen.has(run);
    }
    count.textContent = `comparing ${chosen.size} of ${names.length} run${names.length === 1 ? '' : 's'}`;
  };
  const items = names.map((run) => {
    const box = el('input', {type: 'checkbox', checked: chosen.has(run)});
    boxes.set(run, box);
    box.addEventListener('change', () => {
      if (box.checked) chosen.add(run);
      else chosen.delete(run);
      apply();
    });
    return el('label', {class: 'tfviz-chooser-item', dataset: {run}}, [box, run]);
  });
  const find = el('input', {type: 'search', placeholder: 'find a run', 'aria-label': 'find a run to compare'});
  find.addEventListener('input', () => {
    const q = find.value.trim().toLowerCase();
    for (const item of items) item.hidden = !!q && !item.dataset.run.toLowerCase().includes(q);
  });
  const button = (text, fn) => {
    const b = el('button', {type: 'button', class: 'tfviz-small'}, text);
    b.addEventListener('click', () => { fn(); apply(); });
    return b;
  };
  const chooser = el('div', {class: 'tfviz-chooser'}, [
    el('div', {class: 'tfviz-chooser-head'}, [count, find,
      button(`first ${OPT_DEFAULT}`, () => { chosen.clear(); names.slice(0, OPT_DEFAULT).forEach((r) => chosen.add(r)); }),
      button('none', () => chosen.clear())]),
    el('div', {class: 'tfviz-chooser-list', role: 'group', 'aria-label': 'runs to compare'}, items),
  ]);
  apply();
  const root = el('div', {}, [
    el('div', {class: 'tfviz-controls'}, [el('label', {}, [sync, 'move all step sliders together'])]),
    chooser,
    focusNote(ctx, runs, 'optimization snapshots'),
    list,
  ]);
  root.start = () => list.start();
  root.stop = () => list.stop();
  root.ready = list.ready;
  return root;
}

async function optimizationCard(ctx, run, card, broadcast, cards) {
  const entry = ctx.overview.runs[run] || {};
  const focus = ctx.focus && ctx.focus.run === run ? ctx.focus : null;
  const query = {run, kind: 'optimization'};
  if (focus && focus.step != null) query.step = String(focus.step);
  const [data, scalars, params] = await Promise.all([
    api('run', query),
    (entry.scalars || []).length ? api('scalars', {run}).catch((err) => ({error: message(err)})) : {series: {}},
    (entry.params || []).length ? api('params', {run}).catch((err) => ({error: message(err)})) : {params: {}},
  ]);
  const tags = (Array.isArray(data.tags) ? data.tags : []);
  const good = tags.filter((t) => t.error == null && t.meta);
  const byTag = new Map(good.map((t) => [t.tag, t]));
  const series = Object.entries(scalars.series || {}).sort(([a], [b]) => a.localeCompare(b))
    .map(([t, points]) => ({name: t.replace(/^tfviz\//, '').replace(/^optimization\//, ''),
                            points: Array.isArray(points) ? points : []}));
  const chart = lossChart(series);
  const pics = el('div', {class: 'tfviz-snapshots'});
  const caption = el('div', {class: 'tfviz-caption'});
  const sliderBox = el('div', {});
  let tag = focus && byTag.has(focus.tag) ? focus.tag
    : byTag.has('optimization/snapshot') ? 'optimization/snapshot' : good.length ? good[0].tag : null;
  let shown = null;
  card.replaceChildren(...[
    el('div', {class: 'tfviz-run-head'}, [el('h3', {class: 'tfviz-run-name'}, run),
                                          runLink(ctx, run, () => selection())]),
    ...tags.filter((t) => !byTag.has(t.tag)).map((t) => errorLine(`${t.tag}: ${t.error ?? 'no data'}`, {dataset: {tag: t.tag}})),
    byTag.size > 1 ? tagSelect([...byTag.keys()], tag, (t) => {
      tag = t;
      ctx.select(selection());
      load(byTag.get(t).step);
    }) : null,
    el('div', {class: 'tfviz-opt-main'}, [el('div', {}, [pics, caption]), chart]),
    scalars.error ? errorLine(`loss curves of ${run}: ${scalars.error}`) : null,
    sliderBox,
    params.error ? errorLine(`parameters of ${run}: ${params.error}`) : paramsTable(params.params || {}),
  ].filter(Boolean));
  const selection = () => {
    const out = {};
    if (tag && tag !== 'optimization/snapshot') out.tag = tag;
    if (shown != null) out.step = shown;
    return out;
  };
  if (!tag) return;
  let token = 0;
  const draw = (info) => {
    shown = info.step;
    card.dataset.step = String(info.step);
    chart.setMarker(info.step);
    pics.replaceChildren(pager(info.count, PAGE_PICTURES, (a, b) => el('div', {class: 'tfviz-snapshots'}, range(a, b).map((k) => {
      const img = image(run, info.tag, info.step, k, 'tfviz-snapshot', info.version);
      img.alt = `${run} step ${info.step}`;
      img.title = 'click to enlarge';
      img.addEventListener('click', () => img.classList.toggle('tfviz-big'));
      return img;
    })), 'pictures'));
    caption.textContent = info.meta.captions?.[0] || `step ${info.step}`;
  };
  async function showStep(step) {
    const mine = ++token;
    chart.setMarker(step);
    let info = byTag.get(tag);
    if (!info || info.step !== step) {
      let answer;
      try {
        answer = await api('run', {run, kind: 'optimization', step: String(step)});
      } catch (err) {
        if (mine === token) pics.replaceChildren(errorLine(`could not load run ${run} at step ${step}: ${message(err)}`));
        return;
      }
      if (mine !== token) return;
      info = (answer.tags || []).find((t) => t.tag === tag);
      if (!info || info.error != null) {
        pics.replaceChildren(errorLine(`${tag}: ${info ? info.error : 'no data'} at step ${step}`));
        return;
      }
      byTag.set(tag, info);
    }
    draw(info);
  }
  function load(step) {
    const steps = byTag.get(tag).steps || [byTag.get(tag).step];
    const start = Math.max(0, steps.indexOf(atOrBefore(steps, step)));
    const s = slider(`step (${steps.length} snapshots)`, steps, start, (i) => {
      showStep(steps[i]);
      if (!card.syncing) {
        ctx.select({run, ...selection(), step: steps[i]}, {replace: true});
        broadcast(card, steps.length > 1 ? i / (steps.length - 1) : 1);
      }
    }, (v) => String(v));
    sliderBox.replaceChildren(s);
    card.goToFraction = (f) => {
      card.syncing = true;
      s.setIndex(Math.round(f * (steps.length - 1)));
      card.syncing = false;
    };
    cards.add(card);
    return showStep(steps[start]);
  }
  await load(byTag.get(tag).step);
}

function tagSelect(tags, current, onChange) {
  const select = el('select', {'aria-label': 'snapshot tag'},
                    tags.map((t) => el('option', {value: t, selected: t === current}, SHORT(t))));
  select.addEventListener('change', () => onChange(select.value));
  return select;
}

function paramsTable(params) {
  const rows = [];
  const views = Object.keys(params).sort((a, b) => (a === 'optimization' ? -1 : b === 'optimization' ? 1 : a.localeCompare(b)));
  for (const view of views) {
    const value = params[view];
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      if (keys.length === 1 && keys[0] === 'error') {
        rows.push([view, `could not read: ${fmt(value.error)}`, true]);
        continue;
      }
      for (const [k, v] of Object.entries(value)) rows.push([views.length > 1 ? `${view}.${k}` : k, v]);
    } else {
      rows.push([view, value]);
    }
  }
  if (!rows.length) return el('p', {class: 'tfviz-muted'}, 'no recipe parameters logged');
  return el('table', {class: 'tfviz-params'}, el('tbody', {}, rows.map(([k, v, bad]) =>
    el('tr', {}, [el('th', {scope: 'row'}, k), el('td', {class: bad ? 'tfviz-card-error' : null}, fmt(v))]))));
}

export const VIEWS = [
  {id: 'filters', title: 'Filters', render: (ctx) => stepView(ctx, FILTERS)},
  {id: 'activations', title: 'Activations', render: (ctx) => stepView(ctx, ACTIVATIONS)},
  {id: 'patches', title: 'Patches', render: (ctx) => stepView(ctx, PATCHES)},
  {id: 'attribution', title: 'Attribution', render: (ctx) => stepView(ctx, ATTRIBUTION)},
  {id: 'embeddings', title: 'Embeddings', render: (ctx) => stepView(ctx, EMBEDDINGS)},
  {id: 'optimization', title: 'Optimization', render: optimizationView},
];
