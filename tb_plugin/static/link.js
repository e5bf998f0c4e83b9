// Deep links: the tab's state (view, run filter, selected run / tag / step) lives in
// TensorBoard's top-level URL hash as `p.tfviz.<key>` entries -- TensorBoard's own
// convention for plugin URL data (its tf_storage hash: the active tab first, then
// `key=value` pairs, each part URI-encoded; the host answers the plugin IPC message
// experimental.GetURLPluginData from exactly the keys starting with `p.<plugin>.`), e.g.
//   host:6006/#tfviz&p.tfviz.view=attribution&p.tfviz.run=efficientnet_lite0
// TensorBoard's own keys are kept as they are. The tab's iframe is same-origin, so it
// reads and writes the top window's hash; where it cannot (a cross-origin host, the
// plugin page opened alone), it falls back to its own.

const PREFIX = 'p.tfviz.';
export const LINK_KEYS = ['view', 'filter', 'run', 'tag', 'step'];
const TAB = '__tab__';  // tf_storage's name for the bare first entry (the active dashboard)

let seen = '';  // the state last read or written, as JSON

/** The window whose hash holds the state: TensorBoard's top window when reachable. */
function host() {
  try {
    const top = window.top;
    if (top && top !== window) {
      void top.location.hash;  // throws when cross-origin
      return top;
    }
  } catch (err) { /* cross-origin: our own hash */ }
  return window;
}

/** A tf_storage hash ("tfviz&a=1&p.tfviz.run=x") as ordered [key, value] pairs. */
export function parseHash(hash) {
  const out = [];
  for (const part of String(hash || '').replace(/^#/, '').split('&')) {
    if (!part) continue;
    const kv = part.split('=');
    try {
      if (kv.length === 1) out.push([TAB, decodeURIComponent(kv[0])]);
      else if (kv.length === 2) out.push([decodeURIComponent(kv[0]), decodeURIComponent(kv[1])]);
    } catch (err) { /* a malformed escape: skipped, as tf_storage would fail on it */ }
  }
  return out;
}

/** Ordered pairs back to a hash, as tf_storage writes it (the tab first, unencoded). */
export function formatHash(pairs) {
  const tab = pairs.find(([k]) => k === TAB);
  const rest = pairs.filter(([k]) => k !== TAB)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  return [tab ? tab[1] : 'tfviz', ...rest].join('&');
}

/** The tab's state in the URL: {view, filter, run, tag, step} (absent keys undefined; step a number). */
export function readLink() {
  const out = {};
  for (const [k, v] of parseHash(host().location.hash)) {
    if (!k.startsWith(PREFIX)) continue;
    const key = k.slice(PREFIX.length);
    if (LINK_KEYS.includes(key) && v !== '') out[key] = v;
  }
  if (out.step !== undefined) {
    const n = Number(out.step);
    if (Number.isSafeInteger(n)) out.step = n;
    else delete out.step;
  }
  return out;
}

function hashWith(state) {
  const w = host();
  const pairs = parseHash(w.location.hash).filter(([k]) => !(k.startsWith(PREFIX) && LINK_KEYS.includes(k.slice(PREFIX.length))));
  if (!pairs.some(([k]) => k === TAB)) pairs.unshift([TAB, 'tfviz']);
  for (const key of LINK_KEYS) {
    const v = state[key];
    if (v !== undefined && v !== null && v !== '') pairs.push([PREFIX + key, String(v)]);
  }
  return formatHash(pairs);
}

/** The full URL that opens `state` (TensorBoard's page, not the plugin's iframe). */
export function linkUrl(state) {
  const w = host();
  return w.location.href.split('#')[0] + '#' + hashWith(state);
}

/**
 * Writes `state` ({view, filter, run, tag, step}; missing or empty keys are removed) into
 * the URL: a new history entry, or with `replace` the current one (a step slider's moves,
 * so that they do not flood the history). TensorBoard's own keys stay.
 */
export function writeLink(state, {replace = false} = {}) {
  const w = host();
  const old = w.location.href;
  const url = linkUrl(state);
  if (url === old) return false;
  try {
    if (replace) w.history.replaceState(w.history.state, '', url);
    else w.history.pushState(w.history.state, '', url);
  } catch (err) {
    return false;
  }
  seen = JSON.stringify(readLink());  // our own change: no onLinkChange call for it
  try {  // tf_storage re-reads the hash on hashchange (its URL data for the plugin IPC)
    w.dispatchEvent(new w.HashChangeEvent('hashchange', {oldURL: old, newURL: url}));
  } catch (err) { /* an old browser: TensorBoard's copy stays as it was */ }
  return true;
}

/** Calls `fn(readLink())` when the URL changes under the tab (back/forward, an edited hash). */
export function onLinkChange(fn) {
  const w = host();
  seen = JSON.stringify(readLink());
  const handler = () => {
    if (!document.defaultView) return;  // our iframe is gone
    const now = readLink();
    const key = JSON.stringify(now);
    if (key === seen) return;
    seen = key;
    fn(now);
  };
  w.addEventListener('popstate', handler);
  w.addEventListener('hashchange', handler);
  const stop = () => {
    w.removeEventListener('popstate', handler);
    w.removeEventListener('hashchange', handler);
  };
  window.addEventListener('pagehide', stop, {once: true});
  return stop;
}
