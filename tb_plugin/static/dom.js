// Small DOM, fetch and chart helpers for the tfviz dashboard. Every string that comes
// from the logdir (runs, tags, captions, parameters) reaches the page through
// textContent or setAttribute only -- never parsed as HTML -- so it is always escaped.

const SVG_NS = 'http://www.w3.org/2000/svg';

/** el('div', {class: 'x', onclick: f}, [children or strings]) */
export function el(tag, attrs = {}, children = []) {
  const node = document.createElement(tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

export function svg(tag, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, tag);
  setAttrs(node, attrs);
  append(node, children);
  return node;
}

function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(node.style, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(node, children) {
  for (const c of [].concat(children)) {
    if (c == null || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** GET a JSON route of this plugin (URLs relative to the plugin's base). */
export async function api(route, params = {}) {
  const q = new URLSearchParams(params).toString();
  let response;
  try {
    response = await fetch(`./${route}${q ? '?' + q : ''}`);
  } catch (err) {
    throw new Error(`${route}: ${err.message}`);
  }
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new Error(oneLine(`${route}: HTTP ${response.status} ${text}`));
  }
  return response.json();
}

/** A message on one line of at most `max` characters. */
export function oneLine(text, max = 240) {
  const s = String(text ?? '').replace(/\s+/g, ' ').trim();
  return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

/** The one-line error that stands in for a run card or a tag that could not be drawn. */
export function errorLine(text, attrs = {}) {
  const line = oneLine(text);
  return el('p', {class: 'tfviz-card-error', title: line, role: 'status', ...attrs}, line);
}

/** The URL of one picture; `version` (from /run) makes it change whenever the picture does. */
export function imageUrl(run, tag, step, index, version) {
  const q = {run, tag, step: String(step), index: String(index)};
  if (version != null && version !== '') q.v = String(version);
  return './image?' + new URLSearchParams(q);
}

/** An <img> for one blob, with alt text and a class for pixel-exact zooming; loaded as it nears the screen. */
export function image(run, tag, step, index, cls = '', version = null) {
  return el('img', {src: imageUrl(run, tag, step, index, version), alt: `${tag} step ${step} #${index}`,
                    class: `tfviz-img ${cls}`.trim(), loading: 'lazy', decoding: 'async'});
}

/** {loaded, broken}: the <img> under root that have loaded, and those that failed. */
export function imageCounts(root) {
  let loaded = 0, broken = 0;
  for (const img of root.querySelectorAll('img')) {
    if (!img.complete) continue;
    if (img.naturalWidth > 0) loaded++;
    else broken++;
  }
  return {loaded, broken};
}

/** Whether `node` is on the screen or within `screens` screen heights of it. */
export function nearScreen(node, screens = 1) {
  const r = node.getBoundingClientRect();
  const h = window.innerHeight || document.documentElement.clientHeight;
  return r.bottom >= -screens * h && r.top <= h + screens * h;
}

/**
 * Resolves when every <img> under root that is on or near the screen has loaded or
 * failed (lazy pictures far below are not waited for): {loaded, broken} of root.
 */
export async function imagesSettled(root, {near = true, timeout = 20000} = {}) {
  const waiting = [...root.querySelectorAll('img')].filter((img) => !img.complete && (!near || nearScreen(img)));
  await Promise.race([
    Promise.all(waiting.map((img) => new Promise((resolve) => {
      img.addEventListener('load', resolve, {once: true});
      img.addEventListener('error', resolve, {once: true});
    }))),
    new Promise((resolve) => setTimeout(resolve, timeout)),  // a picture that never answers
  ]);
  return imageCounts(root);
}

/**
 * A grid drawn in pages: `draw(start, end)` builds items [start, end) of `total`; with
 * more than `perPage` items, prev/next buttons and "page i of n" page through them, so
 * the DOM never holds more than one page. `unit` names the items ("rows", "pictures").
 */
export function pager(total, perPage, draw, unit = 'items') {
  perPage = Math.max(1, Math.floor(perPage));
  if (total <= perPage) return draw(0, total);
  const pages = Math.ceil(total / perPage);
  const body = el('div', {class: 'tfviz-page-body'});
  const info = el('span', {class: 'tfviz-page-info'});
  const prev = el('button', {type: 'button', class: 'tfviz-page-prev', 'aria-label': 'previous page'}, '‹ prev');
  const next = el('button', {type: 'button', class: 'tfviz-page-next', 'aria-label': 'next page'}, 'next ›');
  const root = el('div', {class: 'tfviz-pager'}, [
    el('div', {class: 'tfviz-page-nav'}, [prev, info, next,
      el('span', {class: 'tfviz-muted'}, `${total} ${unit}, ${perPage} a page`)]),
    body,
  ]);
  let page = 0;
  const go = (p) => {
    page = Math.min(pages - 1, Math.max(0, p));
    info.textContent = `page ${page + 1} of ${pages}`;
    prev.disabled = page === 0;
    next.disabled = page === pages - 1;
    root.dataset.page = String(page + 1);
    body.replaceChildren(draw(page * perPage, Math.min(total, (page + 1) * perPage)));
  };
  prev.addEventListener('click', () => go(page - 1));
  next.addEventListener('click', () => go(page + 1));
  root.dataset.pages = String(pages);
  root.goTo = go;
  go(0);
  return root;
}

export function fmt(v) {
  if (v == null) return '–';
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    const a = Math.abs(v);
    return a !== 0 && (a < 1e-3 || a >= 1e5) ? v.toExponential(3) : v.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
  }
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/** Per-image value from a list field (targets) or a single field (target). */
export function perImage(meta, plural, singular, i) {
  const list = meta[plural];
  if (Array.isArray(list)) return list[i];
  if (meta[singular] !== undefined) return meta[singular];
  return undefined;
}

/** A labelled range slider over the entries of `values` (shows the value). */
export function slider(label, values, initialIndex, onInput, format = (v) => String(v)) {
  const out = el('span', {class: 'tfviz-slider-value'}, format(values[initialIndex]));
  const input = el('input', {type: 'range', min: 0, max: Math.max(0, values.length - 1), step: 1,
                             value: initialIndex, 'aria-label': label});
  input.addEventListener('input', () => {
    out.textContent = format(values[Number(input.value)]);
    onInput(Number(input.value));
  });
  const wrap = el('label', {class: 'tfviz-slider'}, [el('span', {}, label), input, out]);
  wrap.setIndex = (i) => {
    input.value = String(i);
    out.textContent = format(values[i]);
    onInput(i);
  };
  return wrap;
}

const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/**
 * A loss chart drawn in SVG: series = [{name, points: [[step, value], ...]}], with a
 * legend below that shows each curve's value at the cursor. Returns a <div> with a
 * setMarker(step) method that moves the step cursor.
 */
export function lossChart(series, {width = 360, height = 170} = {}) {
  const pad = {l: 56, r: 10, t: 8, b: 24};
  const root = svg('svg', {class: 'tfviz-chart', width, height, viewBox: `0 0 ${width} ${height}`,
                           role: 'img', 'aria-label': 'loss curves'});
  const legend = el('div', {class: 'tfviz-legend'});
  const box = el('div', {class: 'tfviz-chart-box'}, [root, legend]);
  const finite = series.flatMap((s) => s.points.filter((p) => p[1] != null && Number.isFinite(p[1])));
  if (!finite.length) {
    root.appendChild(svg('text', {x: width / 2, y: height / 2, 'text-anchor': 'middle', class: 'tfviz-axis'},
                         'no loss values logged'));
    box.setMarker = () => {};
    return box;
  }
  const xs = finite.map((p) => p[0]);
  const ys = finite.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  const y0 = Math.min(...ys), y1 = Math.max(...ys);
  const log = y0 > 0 && y1 / y0 > 50;
  const fy = log ? Math.log10 : (v) => v;
  let a = fy(y0), b = fy(y1);
  if (a === b) { a -= 1; b += 1; }
  const X = (s) => pad.l + (x1 === x0 ? 0.5 : (s - x0) / (x1 - x0)) * (width - pad.l - pad.r);
  const Y = (v) => pad.t + (1 - (fy(v) - a) / (b - a)) * (height - pad.t - pad.b);
  root.appendChild(svg('rect', {x: pad.l, y: pad.t, width: width - pad.l - pad.r,
                                height: height - pad.t - pad.b, class: 'tfviz-plot'}));
  const axis = (x, y, anchor, text) => svg('text', {x, y, 'text-anchor': anchor, class: 'tfviz-axis'}, text);
  root.appendChild(axis(pad.l - 4, pad.t + 8, 'end', fmt(y1)));
  root.appendChild(axis(pad.l - 4, height - pad.b, 'end', fmt(y0)));
  root.appendChild(axis(pad.l, height - 8, 'start', `step ${x0}`));
  root.appendChild(axis(width - pad.r, height - 8, 'end', String(x1)));
  if (log) root.appendChild(axis(pad.l + 4, pad.t + 12, 'start', 'log scale'));
  const markers = [];
  series.forEach((s, k) => {
    const pts = s.points.filter((p) => p[1] != null && Number.isFinite(p[1]));
    const stride = Math.max(1, Math.ceil(pts.length / 1500));  // keep the path light
    const d = pts.filter((p, i) => i % stride === 0 || i === pts.length - 1)
      .map((p, i) => `${i ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
    const color = PALETTE[k % PALETTE.length];
    root.appendChild(svg('path', {d, fill: 'none', stroke: color, 'stroke-width': 1.5},
                         [svg('title', {}, s.name)]));
    const dot = svg('circle', {r: 3.5, fill: color, visibility: 'hidden'});
    root.appendChild(dot);
    const value = el('span', {class: 'tfviz-legend-value'});
    legend.appendChild(el('span', {class: 'tfviz-legend-item'},
                          [el('span', {class: 'tfviz-swatch', style: {background: color}}), s.name, ' ', value]));
    markers.push({dot, pts, value});
  });
  const cursor = svg('line', {y1: pad.t, y2: height - pad.b, class: 'tfviz-cursor', visibility: 'hidden'});
  root.appendChild(cursor);
  box.setMarker = (step) => {
    const x = X(Math.min(Math.max(step, x0), x1));
    cursor.setAttribute('x1', x);
    cursor.setAttribute('x2', x);
    cursor.setAttribute('visibility', 'visible');
    for (const {dot, pts, value} of markers) {
      const p = nearest(pts, step);
      if (!p) continue;
      dot.setAttribute('cx', X(p[0]));
      dot.setAttribute('cy', Y(p[1]));
      dot.setAttribute('visibility', 'visible');
      value.textContent = fmt(p[1]);
    }
  };
  return box;
}

function nearest(points, step) {
  let best = null;
  for (const p of points) if (!best || Math.abs(p[0] - step) < Math.abs(best[0] - step)) best = p;
  return best;
}

/** The largest step of `steps` (sorted numbers) that is <= step, else the first. */
export function atOrBefore(steps, step) {
  let out = steps[0];
  for (const s of steps) if (s <= step) out = s;
  return out;
}

/** Copies text to the clipboard: true when it worked (the iframe may not be allowed to). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (err) { /* no clipboard permission in this frame: the old way */ }
  const area = el('textarea', {readonly: true, class: 'tfviz-offscreen'});
  area.value = text;
  document.body.appendChild(area);
  area.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch (err) { /* not allowed either */ }
  area.remove();
  return ok;
}
