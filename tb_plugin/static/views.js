// The six views of the tfviz tab. Each view is `async (ctx) => Node`; ctx holds the
// overview (runs, their tags and scalars) and the shared controls.
import {api, atOrBefore, el, fmt, image, imageUrl, lossChart, perImage, slider} from './dom.js';

const SHORT = (tag) => tag.slice(tag.indexOf('/') + 1);

/** [[run, entry, [[tag, info], ...]], ...] for the runs that have tags of `kind`. */
function runsWith(ctx, kind) {
  const out = [];
  for (const run of Object.keys(ctx.overview.runs).sort()) {
    if (ctx.filter && !run.toLowerCase().includes(ctx.filter.toLowerCase())) continue;
    const entry = ctx.overview.runs[run];
    const tags = Object.entries(entry.tags).filter(([, t]) => t.kind === kind)
      .sort(([a], [b]) => a.localeCompare(b));
    if (tags.length) out.push([run, entry, tags]);
  }
  return out;
}

/**
 * One run of a step-based view: a step slider over the union of the tags' steps and
 * a body drawn by `draw(infos)`, where infos are the /step answers of each tag at the
 * chosen step (or the latest step before it).
 */
async function runBlock(run, tags, draw, extra = null) {
  const series = await Promise.all(tags.map(([tag]) => api('series', {run, tag})));
  const stepsOf = new Map(tags.map(([tag], i) => [tag, series[i].steps.map((s) => s.step)]));
  const allSteps = [...new Set([...stepsOf.values()].flat())].sort((a, b) => a - b);
  const body = el('div', {class: 'tfviz-run-body'});
  const head = el('div', {class: 'tfviz-run-head'}, [el('h3', {class: 'tfviz-run-name'}, run)]);
  const section = el('section', {class: 'tfviz-run', dataset: {run}}, [head, body]);
  let token = 0;
  async function show(i) {
    const step = allSteps[i];
    const mine = ++token;
    const infos = await Promise.all(tags.map(([tag]) =>
      api('step', {run, tag, step: String(atOrBefore(stepsOf.get(tag), step))})));
    if (mine !== token) return;
    body.replaceChildren(draw(infos));
  }
  if (allSteps.length > 1) {
    head.appendChild(slider('step', allSteps, allSteps.length - 1, show, (s) => String(s)));
  } else if (allSteps.length === 1) {
    head.appendChild(el('span', {class: 'tfviz-muted'}, `step ${allSteps[0]}`));
  }
  if (extra) head.appendChild(extra);
  if (allSteps.length) await show(allSteps.length - 1);
  return section;
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

// ------------------------------------------------------------------------ Filters
export async function filtersView(ctx) {
  const runs = runsWith(ctx, 'filters');
  if (!runs.length) {
    return emptyView('filter grids', 'writer.filters("conv1", tfviz.inspect.filter_grid(bundle, "conv1"))\n' +
                     'or model.fit(..., callbacks=[tfviz.callbacks.FilterGrids(logdir)])');
  }
  const blocks = await Promise.all(runs.map(([run, , tags]) => runBlock(run, tags, (infos) =>
    el('div', {class: 'tfviz-cards'}, infos.map((info) => {
      const meta = info.meta;
      const imgs = Array.from({length: info.count}, (_, i) =>
        figure(zoomable(image(run, info.tag, info.step, i)), meta.captions?.[i] !== meta.layer ? meta.captions?.[i] : ''));
      return el('div', {class: 'tfviz-card'}, [
        el('h4', {}, meta.layer ?? SHORT(info.tag)),
        ...imgs,
      ]);
    })))));
  return el('div', {}, [zoomControl(ctx), ...blocks]);
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
export async function activationsView(ctx) {
  const runs = runsWith(ctx, 'activations');
  if (!runs.length) {
    return emptyView('activation maps', 'writer.activations("conv2", [activation_grid(bundle, img, "conv2")], names=["cat"])');
  }
  const blocks = await Promise.all(runs.map(([run, , tags]) => runBlock(run, tags, (infos) => {
    const layers = infos.map((info) => info.meta.layer ?? SHORT(info.tag));
    const rows = new Map();  // image name -> [cell per layer]
    infos.forEach((info, col) => {
      for (let i = 0; i < info.count; i++) {
        let key = String(imageKey(info.meta, i));
        const suffix = `: ${layers[col]}`;  // captions like "cat.jpg: conv2" name the image
        if (key.endsWith(suffix) && key.length > suffix.length) key = key.slice(0, -suffix.length);
        if (!rows.has(key)) rows.set(key, new Array(infos.length).fill(null));
        const cap = info.meta.captions?.[i];
        rows.get(key)[col] = figure(zoomable(image(run, info.tag, info.step, i)),
                                    cap && cap !== key && cap !== key + suffix ? cap : '');
      }
    });
    return el('table', {class: 'tfviz-grid'}, [
      el('thead', {}, el('tr', {}, [el('th', {}, 'image \\ layer'), ...layers.map((l) => el('th', {}, l))])),
      el('tbody', {}, [...rows].map(([key, cells]) =>
        el('tr', {}, [el('th', {scope: 'row'}, key), ...cells.map((c) => el('td', {}, c))]))),
    ]);
  })));
  return el('div', {}, [zoomControl(ctx), ...blocks]);
}

// ------------------------------------------------------------------------ Patches
export async function patchesView(ctx) {
  const runs = runsWith(ctx, 'patches');
  if (!runs.length) {
    return emptyView('max-activating patches',
                     'writer.patches("conv2", tfviz.inspect.max_activating_patches(bundle, images, "conv2", k=9))\n' +
                     'or: tfviz patches --layer conv2 -c 0-7 --logdir logs');
  }
  const blocks = await Promise.all(runs.map(([run, , tags]) => runBlock(run, tags, (infos) =>
    el('div', {class: 'tfviz-cards'}, infos.map((info) => patchCard(run, info))))));
  return el('div', {}, [patchSizeControl(ctx), ...blocks]);
}

/** One layer: a table channel x rank of its patches, each with its score and source image. */
function patchCard(run, info) {
  const meta = info.meta;
  const row = Math.max(1, Number(meta.row) || info.count);
  const channels = Array.isArray(meta.channels) ? meta.channels : [];
  const about = [
    Array.isArray(meta.field) ? `receptive field ${meta.field.join('×')} px` : null,
    Array.isArray(meta.stride) ? `stride ${meta.stride.join('×')}` : null,
    meta.data != null ? `top ${row} over ${fmt(meta.data)}` : null,
  ].filter(Boolean).join(' · ');
  const rows = [];
  for (let r = 0; r * row < info.count; r++) {
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
      const img = image(run, info.tag, info.step, r * row + j, 'tfviz-patch');
      const caption = [el('span', {class: 'tfviz-patch-score'}, score !== undefined ? fmt(score) : ''),
                       el('span', {class: 'tfviz-patch-name'}, name != null ? fmt(name) : '')];
      const fig = figure(img, caption, 'tfviz-patch-fig');
      fig.title = tip;
      cells.push(el('td', {}, fig));
    }
    rows.push(el('tr', {dataset: {channel: String(channel)}},
                 [el('th', {scope: 'row'}, `ch ${fmt(channel)}`), ...cells]));
  }
  return el('div', {class: 'tfviz-card'}, [
    el('h4', {}, meta.layer ?? SHORT(info.tag)),
    about ? el('p', {class: 'tfviz-muted tfviz-about'}, about) : null,
    el('table', {class: 'tfviz-grid tfviz-patches'}, [
      el('thead', {}, el('tr', {}, [el('th', {}, 'channel \\ rank'),
                                    ...Array.from({length: row}, (_, j) => el('th', {}, `#${j + 1}`))])),
      el('tbody', {}, rows),
    ]),
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
export async function attributionView(ctx) {
  const runs = runsWith(ctx, 'attribution');
  if (!runs.length) {
    return emptyView('attribution maps',
                     'writer.attribution("saliency", images, maps, targets=["tabby cat"], scores=[12.3])');
  }
  const opacity = slider('overlay opacity', Array.from({length: 21}, (_, i) => i / 20),
                         Math.round(ctx.state.opacity * 20), (i) => {
                           ctx.state.opacity = i / 20;
                           document.documentElement.style.setProperty('--tfviz-opacity', String(i / 20));
                         }, (v) => `${Math.round(v * 100)}%`);
  document.documentElement.style.setProperty('--tfviz-opacity', String(ctx.state.opacity));
  const blocks = await Promise.all(runs.map(([run, , tags]) => runBlock(run, tags, (infos) => {
    const inputs = new Map();  // image name -> {tag, step, index}
    const maps = [];
    for (const info of infos) {
      if (info.meta.role === 'input') {
        for (let i = 0; i < info.count; i++) inputs.set(String(imageKey(info.meta, i)), {info, i});
      } else {
        maps.push(info);
      }
    }
    const columns = [...inputs.keys()];
    for (const info of maps) {
      for (let i = 0; i < info.count; i++) {
        const key = String(imageKey(info.meta, i));
        if (!columns.includes(key)) columns.push(key);
      }
    }
    // one row per method; a method may come as one summary per image (tag <image>/<method>)
    const byMethod = new Map();
    for (const info of maps) {
      const method = String(info.meta.method ?? SHORT(info.tag));
      if (!byMethod.has(method)) byMethod.set(method, new Map());
      for (let i = 0; i < info.count; i++) {
        const key = String(imageKey(info.meta, i));
        if (!byMethod.get(method).has(key)) byMethod.get(method).set(key, {info, i});
      }
    }
    const rows = [...byMethod].map(([method, cellsByImage]) => {
      const cells = columns.map((key) => {
        const hit = cellsByImage.get(key);
        if (!hit) return el('td', {});
        const {info, i} = hit;
        const input = inputs.get(key);
        const heat = image(run, info.tag, info.step, i, input ? 'tfviz-heat' : 'tfviz-heat-alone');
        const stack = el('div', {class: 'tfviz-overlay'},
                         [input ? image(run, input.info.tag, input.info.step, input.i, 'tfviz-base') : null, heat]);
        const target = perImage(info.meta, 'targets', 'target', i);
        const score = perImage(info.meta, 'scores', 'score', i);
        const caption = [target !== undefined ? `target ${fmt(target)}` : null,
                         score !== undefined ? `score ${fmt(score)}` : null].filter(Boolean).join(' · ');
        return el('td', {}, figure(stack, caption));
      });
      return el('tr', {}, [el('th', {scope: 'row'}, method), ...cells]);
    });
    if (!maps.length) {
      return el('p', {class: 'tfviz-muted'}, 'only input images at this step');
    }
    return el('table', {class: 'tfviz-grid'}, [
      el('thead', {}, el('tr', {}, [el('th', {}, 'method \\ image'), ...columns.map((c) => el('th', {}, c))])),
      el('tbody', {}, rows),
    ]);
  })));
  const overlays = blocks.some((b) => b.querySelector('.tfviz-heat'));
  const note = overlays ? null : el('span', {class: 'tfviz-muted'},
    'these maps were logged as finished pictures; Writer.attribution logs images and maps apart so they can be overlaid');
  return el('div', {}, [el('div', {class: 'tfviz-controls'}, [opacity, note]), ...blocks]);
}

// ------------------------------------------------------------------------ Embeddings
export async function embeddingsView(ctx) {
  const runs = runsWith(ctx, 'embeddings');
  if (!runs.length) {
    return emptyView('embeddings', 'writer.embedding_map("digits", thumbnail_map(embed(bundle, images), images))\n' +
                     'writer.neighbors("digits", queries, neighbours, distances=d)');
  }
  const projectorRuns = await fetch('../projector/runs').then((r) => (r.ok ? r.json() : []))
    .catch(() => []);
  const blocks = await Promise.all(runs.map(([run, , tags]) => {
    const hasProjector = Array.isArray(projectorRuns) && projectorRuns.includes(run);
    const link = el('span', {class: 'tfviz-projector'}, hasProjector
      ? [projectorLink(), ` (pick run "${run}" there)`]
      : [projectorLink(), ' (no Projector files for this run yet: tfviz.inspect.export_projector writes them)']);
    const order = (t) => (t[1].meta.role === 'neighbors' ? 1 : 0);
    const sorted = [...tags].sort((a, b) => order(a) - order(b));
    return runBlock(run, sorted, (infos) => el('div', {class: 'tfviz-cards'}, infos.map((info) => {
      const meta = info.meta;
      const title = el('h4', {}, SHORT(info.tag));
      if (meta.role === 'neighbors') return el('div', {class: 'tfviz-card tfviz-wide'}, [title, strips(run, info)]);
      const figs = Array.from({length: info.count}, (_, i) =>
        figure(zoomable(image(run, info.tag, info.step, i, 'tfviz-map')), meta.captions?.[i] ?? ''));
      return el('div', {class: 'tfviz-card'}, [title, ...figs]);
    })), link);
  }));
  return el('div', {}, [zoomControl(ctx), ...blocks]);
}

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
  const row = Math.max(1, Number(meta.row) || info.count);
  const out = el('div', {class: 'tfviz-strips'});
  for (let r = 0; r * row < info.count; r++) {
    const cells = [];
    for (let j = 0; j < row && r * row + j < info.count; j++) {
      const idx = r * row + j;
      const labels = meta.labels?.[r];
      const label = Array.isArray(labels) ? labels[j] : (j === 0 ? labels : undefined);
      const dist = j > 0 ? meta.distances?.[r]?.[j - 1] : undefined;
      const text = [j === 0 ? 'query' : `#${j}`, label != null ? String(label) : null,
                    dist != null ? `d=${fmt(dist)}` : null].filter(Boolean).join(' ');
      cells.push(figure(image(run, info.tag, info.step, idx, 'tfviz-thumb'), text, j === 0 ? 'tfviz-query' : ''));
    }
    out.appendChild(el('div', {class: 'tfviz-strip'}, cells));
  }
  return out;
}

// ------------------------------------------------------------------------ Optimization
export async function optimizationView(ctx) {
  const runs = runsWith(ctx, 'optimization');
  if (!runs.length) {
    return emptyView('optimization runs',
                     'writer.params("optimization", {"recipe": "class_visualization", "target": "tabby cat"})\n' +
                     'writer.scalar("loss", loss, step); writer.snapshot(image, step)');
  }
  const cards = [];
  const sync = el('input', {type: 'checkbox', checked: ctx.state.sync});
  sync.addEventListener('change', () => { ctx.state.sync = sync.checked; });
  const broadcast = (source, fraction) => {
    if (!ctx.state.sync) return;
    for (const c of cards) if (c !== source && c.isConnected) c.goToFraction(fraction);
  };
  const grid = el('div', {class: 'tfviz-compare'});
  const built = await Promise.all(runs.map(([run, entry, tags]) => optimizationCard(run, entry, tags, broadcast)));
  const chooser = el('div', {class: 'tfviz-chooser'}, [el('span', {}, 'compare:')]);
  built.forEach((card, i) => {
    cards.push(card);
    grid.appendChild(card);
    const box = el('input', {type: 'checkbox', checked: i < 8});
    card.hidden = i >= 8;
    box.addEventListener('change', () => { card.hidden = !box.checked; });
    chooser.appendChild(el('label', {}, [box, runs[i][0]]));
  });
  return el('div', {}, [
    el('div', {class: 'tfviz-controls'}, [el('label', {}, [sync, 'move all step sliders together']), chooser]),
    grid,
  ]);
}

async function optimizationCard(run, entry, tags, broadcast) {
  const tagNames = tags.map(([t]) => t);
  let tag = tagNames.includes('optimization/snapshot') ? 'optimization/snapshot' : tagNames[0];
  const [scalarSeries, params] = await Promise.all([
    Promise.all(entry.scalars.map((t) => api('scalars', {run, tag: t})
      .then((s) => ({name: t.replace(/^tfviz\//, '').replace(/^optimization\//, ''), points: s.points})))),
    entry.params.length ? api('params', {run}).then((p) => p.params) : Promise.resolve({}),
  ]);
  const chart = lossChart(scalarSeries);
  const pics = el('div', {class: 'tfviz-snapshots'});
  const caption = el('div', {class: 'tfviz-caption'});
  const sliderBox = el('div', {});
  const card = el('section', {class: 'tfviz-opt-card', dataset: {run}}, [
    el('h3', {class: 'tfviz-run-name'}, run),
    tagNames.length > 1 ? tagSelect(tagNames, tag, (t) => { tag = t; load(); }) : null,
    el('div', {class: 'tfviz-opt-main'}, [el('div', {}, [pics, caption]), chart]),
    sliderBox,
    paramsTable(params),
  ]);
  let steps = [];
  let token = 0;
  async function showStep(i) {
    const step = steps[i];
    const mine = ++token;
    chart.setMarker(step);
    const info = await api('step', {run, tag, step: String(step)});
    if (mine !== token) return;
    pics.replaceChildren(...Array.from({length: info.count}, (_, k) => {
      const img = el('img', {src: imageUrl(run, tag, step, k), alt: `${run} step ${step}`,
                             class: 'tfviz-img tfviz-snapshot', title: 'click to enlarge'});
      img.addEventListener('click', () => img.classList.toggle('tfviz-big'));
      return img;
    }));
    caption.textContent = info.meta.captions?.[0] || `step ${step}`;
  }
  async function load() {
    steps = (await api('series', {run, tag})).steps.map((s) => s.step);
    const s = slider(`step (${steps.length} snapshots)`, steps, steps.length - 1, (i) => {
      showStep(i);
      if (!card.syncing) broadcast(card, steps.length > 1 ? i / (steps.length - 1) : 1);
    }, (v) => String(v));
    sliderBox.replaceChildren(s);
    card.goToFraction = (f) => {
      card.syncing = true;
      s.setIndex(Math.round(f * (steps.length - 1)));
      card.syncing = false;
    };
    if (steps.length) await showStep(steps.length - 1);
  }
  await load();
  return card;
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
      for (const [k, v] of Object.entries(value)) rows.push([views.length > 1 ? `${view}.${k}` : k, v]);
    } else {
      rows.push([view, value]);
    }
  }
  if (!rows.length) return el('p', {class: 'tfviz-muted'}, 'no recipe parameters logged');
  return el('table', {class: 'tfviz-params'}, el('tbody', {}, rows.map(([k, v]) =>
    el('tr', {}, [el('th', {scope: 'row'}, k), el('td', {}, fmt(v))]))));
}

export const VIEWS = [
  {id: 'filters', title: 'Filters', render: filtersView},
  {id: 'activations', title: 'Activations', render: activationsView},
  {id: 'patches', title: 'Patches', render: patchesView},
  {id: 'attribution', title: 'Attribution', render: attributionView},
  {id: 'embeddings', title: 'Embeddings', render: embeddingsView},
  {id: 'optimization', title: 'Optimization', render: optimizationView},
];
