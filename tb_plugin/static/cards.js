// Lazy run cards: one placeholder per run (its name and a reserved height), and an
// IntersectionObserver that loads a card when it comes within about one screen of the
// viewport. Each card loads on its own and catches its own errors: a card that fails
// shows one line naming its run and the reason, and every other card still loads.
import {el, errorLine, imagesSettled} from './dom.js';

/**
 * A list of run cards. `build(run, slot)` fills `slot` (a <section> with the run's
 * name) and may return a promise; it is called once, when the slot nears the screen,
 * or at once for `focus` (the run a link names, loaded first and scrolled to).
 * `list.ready` resolves once the first screen is drawn: every card that was started
 * while the screen filled has loaded (or failed) and its pictures near the screen have
 * settled. Call `list.start()` once the list is in the document, `list.stop()` when the
 * view goes away.
 */
export function runList(runs, build, {focus = null, cls = 'tfviz-run', container = 'tfviz-runs', margin = '100% 0px'} = {}) {
  const list = el('div', {class: container});
  const slots = new Map();
  for (const run of runs) {
    const slot = el('section', {class: `${cls} tfviz-placeholder`, dataset: {run}}, [
      el('h3', {class: 'tfviz-run-name'}, run),
      el('p', {class: 'tfviz-muted'}, 'loading…'),
    ]);
    slots.set(run, slot);
    list.appendChild(slot);
  }
  let pending = 0;
  let armed = false;
  let stopped = false;
  let resolveReady;
  list.ready = new Promise((resolve) => { resolveReady = resolve; });

  function checkReady() {
    if (!armed || pending) return;
    // two frames for layout and the observer to report cards that loading moved on screen
    requestAnimationFrame(() => requestAnimationFrame(() => { if (!pending) resolveReady(); }));
  }

  function load(run) {
    const slot = slots.get(run);
    if (!slot || slot.dataset.loaded || stopped) return null;
    slot.dataset.loaded = 'loading';
    observer.unobserve(slot);
    pending++;
    const done = Promise.resolve()
      .then(() => build(run, slot))
      .catch((err) => {
        slot.replaceChildren(el('h3', {class: 'tfviz-run-name'}, run),
                             errorLine(`could not load run ${run}: ${err && err.message ? err.message : err}`));
      })
      .then(() => imagesSettled(slot))
      .finally(() => {
        slot.classList.remove('tfviz-placeholder');
        slot.dataset.loaded = 'done';
        pending--;
        checkReady();
      });
    return done;
  }

  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) if (e.isIntersecting) load(e.target.dataset.run);
    if (!armed) {
      armed = true;
      checkReady();
    }
  }, {rootMargin: margin});

  list.start = () => {
    if (focus && slots.has(focus)) {
      const slot = slots.get(focus);
      slot.scrollIntoView({block: 'start'});
      const first = load(focus);
      if (first) first.then(() => { if (!stopped) slot.scrollIntoView({block: 'start'}); });
    }
    for (const slot of slots.values()) if (!slot.dataset.loaded) observer.observe(slot);
    if (!slots.size) {
      armed = true;
      checkReady();
    }
  };
  list.stop = () => {
    stopped = true;
    observer.disconnect();
  };
  list.slotOf = (run) => slots.get(run);
  list.load = load;
  return list;
}
