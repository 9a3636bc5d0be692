/*
 * Mayak beacon (served as /t.js). Responsibilities: page views (load + SPA navigation),
 * engaged time and scroll depth, per-section dwell ([data-section]), custom events
 * (mayak('event', name, props) and data-mayak-* tagged clicks), outbound clicks, and consent:
 * no cookie or storage until mayak('consent', 'analytics'); DNT/GPC never get a cookie.
 * Page snippet:  <script>window.mayak=window.mayak||function(){(mayak.q=mayak.q||[]).push(arguments)}</script>
 *                <script defer src="https://COLLECTOR/t.js" data-site="SITE"></script>
 */
((w, d, n) => {
  const s = d.querySelector('script[data-site]');
  const cfg = s.dataset;
  const loc = w.location;
  const api = cfg.api || new URL('/e', s.src).href;
  // DNT/GPC: never a cookie. The collector reads the DNT / Sec-GPC headers to flag the event.
  const priv = n.doNotTrack == '1' || n.globalPrivacyControl;
  const CK = '_mk';
  const IDLE = 3e4; // no input for 30 s = the reader left; stop the clock
  const q = (w.mayak && w.mayak.q) || [];
  const now = () => performance.now();
  // 128 random bits as 32 hex digits (a UUID without dashes; the collector normalises it).
  // crypto.randomUUID would be shorter to call but exists only in secure contexts.
  const uuid = () => [...crypto.getRandomValues(new Uint8Array(16))]
    .map((b) => (b | 256).toString(16).slice(1)).join('');
  const setCookie = (v, age) => {
    d.cookie = CK + '=' + v + ';path=/;max-age=' + age + ';samesite=lax';
  };

  // A site may choose not to count DNT/GPC visits at all: then do nothing, not even a request.
  if (priv && cfg.dnt == 'drop') return; // the queue stub stays: calls are kept, never sent
  let vid = (d.cookie.match(/\b_mk=(\w+)/) || [])[1];
  if (priv && vid) {
    setCookie('', -1);
    vid = 0;
  }

  // --- transport: sendBeacon when the page is going away, fetch keepalive (with retry) else
  const post = (body, tries) => fetch(api, { method: 'POST', body, keepalive: true })
    .then((r) => { if (r.status > 428) throw 0; }) // 429 and 5xx: the collector asks for a retry
    .catch(() => tries < 3 && setTimeout(() => post(body, tries + 1), 500 * 4 ** tries));
  const send = (ev, leaving) => {
    ev = { id: uuid(), site: cfg.site, ts: Date.now(), url: cur, ...ev };
    if (vid) { ev.consent = 'analytics'; ev.vid = vid; } // absent means consent 'none'
    const body = JSON.stringify([ev]);
    (leaving && n.sendBeacon(api, body)) || post(body, 0); // false = beacon queue full
  };

  // --- engaged-time clock: runs while visible, focused and not idle
  const here = () => loc.href.split('#')[0]; // a fragment is never sent
  let cur = here();
  let eng = 0;
  let run = 0;
  let last = now();
  let idleT;
  let scroll = 0;
  let secs = {};
  const vis = new Set();
  const acc = () => {
    const t = now();
    if (run) {
      eng += t - last;
      vis.forEach((k) => { secs[k] = (secs[k] || 0) + t - last; });
    }
    last = t;
  };
  const clock = (on) => { acc(); run = on; };
  const poke = () => {
    scrolled();
    clearTimeout(idleT);
    idleT = setTimeout(() => clock(0), IDLE);
    clock(!d.hidden && d.hasFocus());
  };
  const scrolled = () => {
    const e = d.documentElement;
    scroll = Math.max(scroll, Math.min(100, Math.round((w.scrollY + w.innerHeight) / e.scrollHeight * 100)) || 0);
  };
  const flush = (leaving) => {
    acc();
    const ms = Math.round(eng);
    if (ms) {
      for (const k in secs) secs[k] = Math.round(secs[k]);
      send({ type: 'engagement', engaged_ms: ms, scroll_pct: scroll, sections: secs }, leaving);
    }
    eng = 0;
    secs = {};
  };

  // --- sections: dwell counted while the section is in the middle band of the viewport
  const io = new IntersectionObserver((es) => {
    acc();
    es.forEach((e) => vis[e.isIntersecting ? 'add' : 'delete'](e.target.dataset.section));
  }, { rootMargin: '-20% 0px' });
  const observe = () => d.querySelectorAll('[data-section]').forEach((el) => io.observe(el));

  // --- page views, and SPA navigation through the History API
  const page = (ref) => {
    send({ type: 'pageview', ref });
    observe();
    setTimeout(observe, 1e3); // SPA content often renders after the URL changed
  };
  const nav = () => {
    const u = here();
    if (u == cur) return;
    flush();
    const ref = cur;
    cur = u;
    scroll = 0;
    io.disconnect();
    vis.clear();
    page(ref);
    poke();
  };
  // replaceState is left alone: apps use it to amend the current entry, not to navigate
  const push = history.pushState;
  history.pushState = function () { const r = push.apply(this, arguments); nav(); return r; };

  // --- the public API; calls queued before the script loaded run first (consent included)
  w.mayak = (cmd, a, b) => {
    if (cmd == 'event') send({ type: 'custom', name: a, props: b });
    if (cmd == 'consent') {
      if (a == 'analytics' && !priv) {
        vid = vid || uuid();
        setCookie(vid, 31536e3);
      } else {
        vid = 0; // withdrawal: forget the id and remove the cookie
        setCookie('', -1);
      }
    }
  };
  q.forEach((args) => w.mayak.apply(0, args));

  const on = (t, f, c) => w.addEventListener(t, f, c);
  on('popstate', nav);
  on('focus', poke);
  on('blur', () => clock(0));
  const hide = () => { clock(0); flush(1); };
  on('pagehide', hide);
  ['scroll', 'pointermove', 'pointerdown', 'keydown'].forEach((t) => on(t, poke));
  d.addEventListener('visibilitychange', () => (d.hidden ? hide() : poke()));
  on('click', (e) => {
    const t = e.target.closest('[data-mayak-event]');
    if (t) {
      const p = {};
      for (const k in t.dataset) {
        if (k != 'mayakEvent' && k.startsWith('mayak')) p[k[5].toLowerCase() + k.slice(6)] = t.dataset[k].slice(0, 200);
      }
      send({ type: 'custom', name: t.dataset.mayakEvent, props: p }, 1);
    }
    const a = e.target.closest('a[href]');
    if (a && a.host != loc.host && /^http/.test(a.protocol)) {
      // props hold at most 200 characters: a longer destination is cut, not the event lost
      send({ type: 'outbound', props: { to: (a.origin + a.pathname).slice(0, 200) } }, 1);
    }
  }, true);

  page(d.referrer);
  poke();
})(window, document, navigator);
