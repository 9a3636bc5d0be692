// Unit tests of the built beacon (dist/t.js): run with `npm test` (node --test + happy-dom).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { load } from './harness.js';

const HEX32 = /^[0-9a-f]{32}$/;

test('page view on load: scrubbed of the fragment, referrer, site, a fresh id, no cookie', () => {
  const b = load();
  const [pv] = b.ofType('pageview');
  assert.equal(pv.url, 'https://portal.example/xidmetler?id=7&utm_source=mail');
  assert.equal(pv.ref, 'https://search.example/');
  assert.equal(pv.site, 'elegal');
  assert.match(pv.id, HEX32);
  assert.equal(pv.vid, undefined);
  assert.equal(pv.consent, undefined);
  assert.equal(b.document.cookie, '');
  assert.equal(b.sent[0].via, 'fetch');
  assert.equal(b.sent[0].keepalive, true);
  assert.equal(b.sent[0].api, 'https://c.example/e');
});

test('data-api overrides where events go', () => {
  const b = load({ attrs: 'data-api="https://x.example/collect"' });
  assert.equal(b.sent[0].api, 'https://x.example/collect');
});

test('engaged time counts while visible+focused and goes out by sendBeacon on hide', async () => {
  const b = load();
  for (let i = 0; i < 4; i++) { await b.advance(2500); b.fire(b.window, 'pointermove'); }
  b.state.hidden = true;
  b.fire(b.document, 'visibilitychange');
  const [eng] = b.ofType('engagement');
  assert.equal(eng.engaged_ms, 10000);
  assert.equal(b.sent.at(-1).via, 'beacon');
  // hidden time is not engaged time
  await b.advance(60000);
  b.state.hidden = false;
  b.fire(b.document, 'visibilitychange');
  await b.advance(1000);
  b.fire(b.window, 'pagehide');
  assert.deepEqual(b.ofType('engagement').map((e) => e.engaged_ms), [10000, 1000]);
});

test('idle: 30 s without input stops the clock; input restarts it', async () => {
  const b = load();
  await b.advance(100000);
  b.fire(b.window, 'keydown');
  await b.advance(5000);
  b.fire(b.window, 'pagehide');
  assert.equal(b.ofType('engagement')[0].engaged_ms, 35000);
});

test('blur stops the clock, focus restarts it', async () => {
  const b = load();
  await b.advance(2000);
  b.state.focus = false;
  b.fire(b.window, 'blur');
  await b.advance(20000);
  b.state.focus = true;
  b.fire(b.window, 'focus');
  await b.advance(3000);
  b.fire(b.window, 'pagehide');
  assert.equal(b.ofType('engagement')[0].engaged_ms, 5000);
});

test('no engagement event when nothing was engaged', async () => {
  const b = load();
  b.state.focus = false;
  b.fire(b.window, 'blur');
  b.fire(b.window, 'pagehide');
  assert.equal(b.ofType('engagement').length, 0);
});

test('sections: per-section visible dwell, observed in the middle band', async () => {
  const b = load();
  assert.equal(b.observers[0].opts.rootMargin, '-20% 0px');
  b.intersect('intro', true);
  await b.advance(4000);
  b.fire(b.window, 'scroll');
  b.intersect('intro', false);
  b.intersect('faq', true);
  await b.advance(3000);
  b.fire(b.window, 'pagehide');
  const [eng] = b.ofType('engagement');
  assert.deepEqual(eng.sections, { intro: 4000, faq: 3000 });
  assert.equal(eng.engaged_ms, 7000);
});

test('scroll_pct is the deepest point reached', async () => {
  const b = load();
  b.state.y = 2000;
  b.fire(b.window, 'scroll');
  b.state.y = 0;
  b.fire(b.window, 'scroll');
  await b.advance(1000);
  b.fire(b.window, 'pagehide');
  assert.equal(b.ofType('engagement')[0].scroll_pct, 75);
});

test('SPA navigation: engagement of the old page, then a page view with it as referrer', async () => {
  const b = load();
  await b.advance(1500);
  b.window.history.pushState({}, '', '/xidmetler/2#frag');
  const evs = b.events().map((e) => [e.type, e.url, e.ref]);
  assert.deepEqual(evs.slice(1), [
    ['engagement', 'https://portal.example/xidmetler?id=7&utm_source=mail', undefined],
    ['pageview', 'https://portal.example/xidmetler/2', 'https://portal.example/xidmetler?id=7&utm_source=mail'],
  ]);
  b.window.history.pushState({}, '', '/xidmetler/2#other'); // a fragment change is not a page
  assert.equal(b.ofType('pageview').length, 2);
  b.window.history.back = undefined;
  b.window.history.replaceState({}, '', '/back'); // not hooked; popstate then sees it
  b.fire(b.window, 'popstate');
  assert.equal(b.ofType('pageview').at(-1).url, 'https://portal.example/back');
});

test('custom events, also when queued before the script loaded', () => {
  const b = load({ before: [['event', 'early', { n: 1 }]] });
  b.window.mayak('event', 'signup', { plan: 'pro' });
  assert.deepEqual(b.ofType('custom').map((e) => [e.name, e.props]),
    [['early', { n: 1 }], ['signup', { plan: 'pro' }]]);
  const ids = b.events().map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length);
});

test('data-mayak-* tags a click without JS; outbound clicks carry no query string', () => {
  const b = load();
  b.window.addEventListener('click', (e) => e.preventDefault());
  b.document.getElementById('inner').click();
  const [c] = b.ofType('custom');
  assert.equal(c.name, 'download');
  assert.deepEqual(c.props, { docType: 'pdf' });
  b.document.getElementById('in').click();
  assert.equal(b.ofType('outbound').length, 0);
  b.document.getElementById('out').click();
  const [o] = b.ofType('outbound');
  assert.deepEqual(o.props, { to: 'https://other.example/path' });
  assert.equal(b.sent.at(-1).via, 'beacon');
});

test('long outbound destinations and tag values are cut to what the collector accepts', () => {
  const long = 'x'.repeat(300);
  const b = load({ body: `<a id="out" href="https://other.example/${long}">x</a>`
    + `<button id="tag" data-mayak-event="d" data-mayak-note="${long}">t</button>` });
  b.window.addEventListener('click', (e) => e.preventDefault());
  b.document.getElementById('out').click();
  b.document.getElementById('tag').click();
  const [o] = b.ofType('outbound');
  assert.equal(o.props.to, `https://other.example/${long}`.slice(0, 200));
  assert.equal(b.ofType('custom')[0].props.note.length, 200);
});

test('consent: cookie only after mayak(consent, analytics); withdrawal removes it', () => {
  const b = load();
  assert.equal(b.document.cookie, '');
  b.window.mayak('consent', 'analytics');
  const vid = b.document.cookie.match(/_mk=(\w+)/)[1];
  assert.match(vid, HEX32);
  b.window.mayak('event', 'x');
  const last = b.events().at(-1);
  assert.equal(last.vid, vid);
  assert.equal(last.consent, 'analytics');
  b.window.mayak('consent', 'none');
  assert.equal(b.document.cookie, '');
  b.window.mayak('event', 'y');
  assert.equal(b.events().at(-1).vid, undefined);
});

test('a returning consented visitor keeps the id; consent queued before load applies to the first page view', () => {
  const b = load({ cookie: '_mk=0123456789abcdef0123456789abcdef' });
  assert.equal(b.ofType('pageview')[0].vid, '0123456789abcdef0123456789abcdef');
  const c = load({ before: [['consent', 'analytics']] });
  assert.match(c.ofType('pageview')[0].vid, HEX32);
});

for (const signal of [{ dnt: '1' }, { gpc: true }]) {
  test(`${JSON.stringify(signal)}: never a cookie, an old one is removed, counted anonymously`, () => {
    const b = load({ ...signal, cookie: '_mk=0123456789abcdef0123456789abcdef' });
    assert.equal(b.document.cookie, '');
    b.window.mayak('consent', 'analytics');
    assert.equal(b.document.cookie, '');
    assert.ok(b.events().length > 0);
    assert.ok(b.events().every((e) => e.vid === undefined));
  });
  test(`${JSON.stringify(signal)} with data-dnt="drop": nothing is sent at all`, async () => {
    const b = load({ ...signal, attrs: 'data-dnt="drop"' });
    b.window.mayak('event', 'x');
    await b.advance(5000);
    b.fire(b.window, 'pagehide');
    assert.equal(b.sent.length, 0);
  });
}

test('503 and 429 are retried with the same id; 400 is not', async () => {
  const b = load({ fetchStatus: 503 });
  await b.advance(100000);
  const ids = b.sent.map((s) => s.events[0].id);
  assert.equal(ids.length, 4); // first try + 3 retries
  assert.equal(new Set(ids).size, 1);
  const c = load({ fetchStatus: 400 });
  await c.advance(100000);
  assert.equal(c.sent.length, 1);
});

test('sendBeacon refused (queue full): falls back to fetch keepalive', async () => {
  const b = load({ beaconOk: false });
  await b.advance(1000);
  b.fire(b.window, 'pagehide');
  assert.equal(b.sent.at(-1).via, 'fetch');
  assert.equal(b.sent.at(-1).keepalive, true);
  assert.equal(b.sent.at(-1).events[0].type, 'engagement');
});
