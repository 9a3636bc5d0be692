// Test harness: runs the *built* beacon (dist/t.js) inside a happy-dom window with a fake
// clock, fake timers, a fake IntersectionObserver and recording transports.
import { readFileSync } from 'node:fs';
import { Window } from 'happy-dom';

const CODE = readFileSync(new URL('../dist/t.js', import.meta.url), 'utf8');

export function load({
  url = 'https://portal.example/xidmetler?id=7&utm_source=mail#top',
  referrer = 'https://search.example/',
  attrs = '',
  cookie = '',
  dnt,
  gpc,
  before = [],
  fetchStatus = 200,
  beaconOk = true,
  body = '<section data-section="intro">a</section><section data-section="faq">b</section>'
    + '<a id="out" href="https://other.example/path?q=secret">x</a>'
    + '<a id="in" href="/local">y</a>'
    + '<button id="tag" data-mayak-event="download" data-mayak-doc-type="pdf"><span id="inner">z</span></button>',
} = {}) {
  const window = new Window({ url, settings: { disableJavaScriptFileLoading: true } });
  const { document } = window;
  document.write(`<html><body>${body}<script data-site="elegal" src="https://c.example/t.js" ${attrs}></script></body></html>`);
  if (cookie) document.cookie = `${cookie};path=/`;
  Object.defineProperty(document, 'referrer', { get: () => referrer, configurable: true });

  const state = { t: 1000, hidden: false, focus: true, fetchStatus, beaconOk, y: 0 };
  // a 4000 px page in a 1000 px viewport, scrolled to state.y
  Object.defineProperty(document.documentElement, 'scrollHeight', { get: () => 4000, configurable: true });
  Object.defineProperty(window, 'innerHeight', { get: () => 1000, configurable: true });
  Object.defineProperty(window, 'scrollY', { get: () => state.y, configurable: true });
  Object.defineProperty(document, 'hidden', { get: () => state.hidden, configurable: true });
  document.hasFocus = () => state.focus;
  const nav = window.navigator;
  Object.defineProperty(nav, 'doNotTrack', { get: () => dnt, configurable: true });
  Object.defineProperty(nav, 'globalPrivacyControl', { get: () => gpc, configurable: true });

  const sent = []; // {via, events}
  nav.sendBeacon = (api, body) => {
    if (!state.beaconOk) return false;
    sent.push({ via: 'beacon', api, events: JSON.parse(body) });
    return true;
  };
  const fetch = async (api, opts) => {
    sent.push({ via: 'fetch', api, keepalive: opts.keepalive, events: JSON.parse(opts.body) });
    return { status: state.fetchStatus };
  };

  let timers = [];
  let seq = 0;
  const setTimeout = (fn, ms) => { timers.push({ id: ++seq, at: state.t + ms, fn }); return seq; };
  const clearTimeout = (id) => { timers = timers.filter((x) => x.id !== id); };
  const advance = async (ms) => {
    const end = state.t + ms;
    for (;;) {
      await new Promise((r) => process.nextTick(r)); // let fetch promise chains settle
      const due = timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      timers = timers.filter((x) => x !== due);
      state.t = due.at;
      due.fn();
    }
    state.t = end;
    await new Promise((r) => process.nextTick(r));
  };

  const observers = [];
  class IntersectionObserver {
    constructor(cb, opts) { this.cb = cb; this.opts = opts; this.targets = new Set(); observers.push(this); }
    observe(el) { this.targets.add(el); }
    disconnect() { this.targets.clear(); }
  }
  const intersect = (name, on) => {
    for (const o of observers) {
      for (const el of o.targets) {
        if (el.dataset.section === name) o.cb([{ target: el, isIntersecting: on }]);
      }
    }
  };

  window.mayak = function () { (window.mayak.q = window.mayak.q || []).push(arguments); };
  for (const args of before) window.mayak(...args);
  const performance = { now: () => state.t };
  const run = new Function('window', 'document', 'navigator', 'performance', 'crypto', 'fetch',
    'setTimeout', 'clearTimeout', 'IntersectionObserver', 'history', CODE);
  run(window, document, nav, performance, globalThis.crypto, fetch, setTimeout, clearTimeout,
    IntersectionObserver, window.history);

  const fire = (target, type) => target.dispatchEvent(new window.Event(type, { bubbles: true }));
  const events = () => sent.flatMap((s) => s.events);
  const ofType = (type) => events().filter((e) => e.type === type);
  return { window, document, state, sent, events, ofType, advance, intersect, observers, fire };
}
