// The product page. Every figure on it comes from the API (/docs): the page only lays them
// out. Its state lives in the URL (bookmark or share a view); the token stays in this browser
// (localStorage), never in the URL. Values are inserted as text, never as HTML.
(() => {
  const {t} = I18N;
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, props = {}, ...kids) => {
    const {dataset, style, ...rest} = props;
    const e = Object.assign(document.createElement(tag), rest);
    if (dataset) Object.assign(e.dataset, dataset);
    if (style) e.style.cssText = style;
    for (const k of kids) e.append(k);
    return e;
  };
  const PERIODS = ["today", "yesterday", "7d", "30d", "month", "lastmonth", "12mo", "custom"];
  const KPIS = [["visitors", (v) => I18N.number(v)], ["visits", (v) => I18N.number(v)],
    ["pageviews", (v) => I18N.number(v)], ["views_per_visit", (v) => I18N.number(v, 2)],
    ["bounce_rate", (v) => I18N.percent(v)], ["visit_duration", (v) => I18N.duration(v)]];
  const tabs = (dims, metrics) => dims.map((d) => ({key: d, dim: d, metrics}));
  const PANELS = [
    {id: "pages", tabs: [{key: "top", dim: "path", metrics: "visitors,pageviews,time_on_page,scroll_depth"},
      {key: "entry", pages: "entry_pages"}, {key: "exit", pages: "exit_pages"}]},
    {id: "sections", tabs: [{key: "sections", dim: "section", metrics: "visitors,section_seconds"}]},
    {id: "sources", tabs: tabs(["channel", "source", "referrer_domain", "utm_source", "utm_medium",
      "utm_campaign"], "visitors,visits")},
    {id: "places", tabs: tabs(["country", "isp"], "visitors,pageviews")},
    {id: "devices", tabs: tabs(["device_type", "browser", "browser_version", "os", "os_version"],
      "visitors,pageviews")},
    {id: "events", tabs: [{key: "goals", goals: true}, {key: "event_name", dim: "event_name", metrics: "events,visitors"}], prop: true},
    {id: "outbound", tabs: [{key: "outbound", dim: "outbound_url", metrics: "events,visitors"}]},
    {id: "services", tabs: [{key: "services", dim: "service_type", metrics: "service_requests"}]},
  ];
  const FORMAT = {time_on_page: (v) => I18N.duration(v), scroll_depth: (v) => v == null ? "—" : `${I18N.number(v)}%`,
    section_seconds: (v) => I18N.duration(v), bounce_rate: (v) => I18N.percent(v),
    conversion_rate: (v) => I18N.percent(v)};
  let S = {};  // the view: site, period, from, to, compare, filters, lang, tab, prop, steps
  let generation = 0;
  const mayak = window.mayak = {chart: null, get state() { return S; }};


  // ---- state <-> URL ----
  function readURL() {
    const q = new URLSearchParams(location.search);
    S = {site: q.get("site") || localStorage.getItem("mayak-site") || "demo",
      period: PERIODS.includes(q.get("period")) ? q.get("period") : "30d",
      from: q.get("from") || "", to: q.get("to") || "", compare: q.get("compare") === "previous",
      filters: q.getAll("filter"), lang: (q.get("lang") || localStorage.getItem("mayak-lang")) === "az" ? "az" : "en",
      tab: Object.fromEntries(q.getAll("tab").map((v) => v.split(":"))), prop: q.get("prop") || "",
      steps: q.getAll("step")};
    I18N.set(S.lang);
    if (S.period !== "custom" || !S.from || !S.to) Object.assign(S, resolve(S.period));
  }
  function writeURL() {
    const q = new URLSearchParams({site: S.site, period: S.period, lang: S.lang});
    if (S.period === "custom") { q.set("from", S.from); q.set("to", S.to); }
    if (S.compare) q.set("compare", "previous");
    for (const f of S.filters) q.append("filter", f);
    for (const [p, k] of Object.entries(S.tab)) q.append("tab", `${p}:${k}`);
    if (S.prop) q.set("prop", S.prop);
    for (const s of S.steps) q.append("step", s);
    history.pushState(null, "", `?${q}`);
  }
  // ---- dates: the period shortcuts, in the report time zone (the API's) ----
  const iso = (d) => d.toISOString().slice(0, 10);
  const shift = (day, n) => iso(new Date(Date.parse(day + "T00:00:00Z") + n * 864e5));
  function resolve(period) {
    const today = new Intl.DateTimeFormat("en-CA", {timeZone: I18N.TZ}).format(new Date());
    const first = today.slice(0, 8) + "01";
    const ranges = {today: [today, today], yesterday: [shift(today, -1), shift(today, -1)],
      "7d": [shift(today, -6), today], "30d": [shift(today, -29), today], month: [first, today],
      lastmonth: [shift(first, -1).slice(0, 8) + "01", shift(first, -1)], "12mo": [shift(today, -364), today]};
    const [from, to] = ranges[period] || ranges["30d"];
    return {from, to};
  }
  // ---- the API ----
  const token = () => localStorage.getItem("mayak-token") || "";
  function query(extra = [], filtered = true) {
    return new URLSearchParams([["site", S.site], ["from", S.from], ["to", S.to],
      ...(filtered ? S.filters.map((f) => ["filter", f]) : []), ...extra]);
  }
  async function api(endpoint, q, as = "json") {
    const r = await fetch(`/api/${endpoint}?${q}`, {headers: {Authorization: `Bearer ${token()}`}});
    if (!r.ok) throw await Mayak.failure(r);
    return as === "json" ? r.json() : r.blob();
  }
  async function download(endpoint, q, name) {
    const blob = await api(endpoint, q, "blob");
    const a = el("a", {href: URL.createObjectURL(blob), download: name});
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  }
  // ---- rendering ----
  function message(text, kind = "") {
    const box = $("#message");
    box.hidden = !text; box.className = `message ${kind}`; box.textContent = text || "";
  }
  function explain(err) {
    if (err.auth) return t("need_token") + ` (${err.message})`;
    if (err.status === 403) return t("forbidden");
    if (err.status === 404) return `${t("unknown_site")} ${err.message}`;
    return err.message;
  }
  function changeText(name, change) {
    if (change == null) return "";
    const up = change > 0, sign = up ? "+" : change < 0 ? "−" : "±";
    const text = name === "bounce_rate" ? `${sign}${I18N.number(Math.abs(change) * 100, 1)} ${t("pp")}`
      : `${sign}${I18N.percent(Math.abs(change))}`;
    const good = name === "bounce_rate" ? !up : up;
    return [text, change === 0 ? "" : good ? "up" : "down"];
  }
  async function loadSummary() {
    const data = await api("stats/summary", query(S.compare ? [["compare", "previous"]] : []));
    const box = $("#kpis");
    box.replaceChildren(...KPIS.map(([name, fmt]) => {
      const [text, cls] = S.compare ? changeText(name, data.change[name]) || ["", ""] : ["", ""];
      return el("div", {className: "kpi", dataset: {kpi: name}}, el("span", {textContent: t(name)}),
        el("span", {className: "value", textContent: fmt(data[name])}),
        el("span", {className: `change ${cls}`, textContent: text,
          title: S.compare ? `${t("previous")}: ${fmt(data.previous[name])}` : ""}));
    }));
    // bounce rate and visit duration of a busy period (either period compared) are estimates
    sampleNote(box, {sampled: data.sampled || (S.compare && data.previous.sampled)});
    if (!data.pageviews && !data.visitors && !data.events) message(t("empty"));
  }
  const midnight = (day) => Date.parse(`${day}T00:00:00${I18N.offset(day)}`) / 1000;
  function buckets(from, to, hourly) {
    const out = [];
    if (hourly) {
      const start = midnight(from), end = midnight(shift(to, 1));
      for (let s = start; s < end; s += 3600) out.push(s);
    } else {
      for (let d = from; d <= to; d = shift(d, 1)) out.push(midnight(d));
    }
    return out;
  }
  async function loadChart() {
    const hourly = shift(S.from, 1) >= S.to;  // up to two days: hourly
    const dim = hourly ? "hour" : "day";
    const data = await api("stats/series", query([["dimensions", dim], ["metrics", "visitors,pageviews"],
      ["limit", "1000"], ...(S.compare ? [["compare", "previous"]] : [])]));
    // hour labels carry their offset (2026-03-01T14:00:00+04:00); days are the zone's midnights
    const at = (rows) => new Map(rows.map((r) => [hourly ? Date.parse(r.hour) / 1000 : midnight(r.day), r.visitors]));
    const xs = buckets(S.from, S.to, hourly), now = at(data.rows);
    const series = [xs, xs.map((x) => now.get(x) ?? 0)];
    const opts = {width: Math.max(300, $("#chart").clientWidth - 10), height: 240,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), I18N.TZ),
      axes: [{values: (u, splits) => splits.map((x) => I18N.tick(x, hourly)), space: 70}, {}],
      series: [{value: (u, x) => x == null ? "—" : I18N.tick(x, hourly)},
        {label: t("visitors"), stroke: "#1f6fd1", width: 2, fill: "#1f6fd122"}]};
    if (data.previous) {
      const before = at(data.previous.rows), px = buckets(data.previous.from, data.previous.to, hourly);
      series.push(xs.map((_, i) => before.get(px[i]) ?? 0));
      opts.series.push({label: `${t("visitors")} (${t("previous")})`, stroke: "#9aa5b5", dash: [6, 4], width: 1.5});
    }
    if (mayak.chart) mayak.chart.destroy();
    mayak.chart = new uPlot(opts, series, $("#chart"));
  }
  async function loadRealtime() {
    const data = await api("stats/realtime", new URLSearchParams({site: S.site}));
    $("#live").textContent = I18N.number(data.visitors);
    rows($("#reading"), data.pages, "path", ["visitors"]);
  }
  function rows(box, list, dim, metrics) {
    // a value with nothing to count here (e.g. the page of service requests: no web visitor)
    list = list.filter((r) => r[metrics[0]] !== 0);
    if (!list.length) { box.replaceChildren(el("div", {className: "empty", textContent: t("none")})); return; }
    const top = Math.max(...list.map((r) => r[metrics[0]] || 0), 1);
    const head = el("div", {className: "head"}, el("span"),
      el("span", {className: "num", textContent: metrics.map((m) => t(m === "events" ? "count" : m)).join(" · ")}));
    box.replaceChildren(head, ...list.map((r) => {
      const value = r[dim], share = 100 * (r[metrics[0]] || 0) / top;
      const nums = metrics.map((m) => (FORMAT[m] || I18N.number)(r[m])).join(" · ");
      const row = el("div", {className: "row", title: value, dataset: {dim, value}},
        el("span", {className: "label", textContent: value === "" ? t("none") : value}),
        el("span", {className: "num", textContent: nums}));
      row.style.backgroundImage = `linear-gradient(90deg, #dbe8f8 ${share}%, transparent ${share}%)`;
      row.tabIndex = 0;  // rows filter by keyboard too
      row.addEventListener("click", () => setFilter(dim, value));
      row.addEventListener("keydown", (e) => { if (e.key === "Enter") setFilter(dim, value); });
      return row;
    }));
  }
  // a per-visit answer of a busy period is estimated from a sample of visits: say so
  function sampleNote(box, data) {
    if (!data.sampled) return;
    box.append(el("div", {className: "sampled", textContent: t("sampled").replace("{share}", I18N.percent(data.sampled))}));
  }
  async function loadPanel(panel) {
    const key = S.tab[panel.id] || panel.tabs[0].key, tab = panel.tabs.find((x) => x.key === key) || panel.tabs[0];
    const box = $(`#${panel.id} .rows`);
    box.replaceChildren();
    try {
      if (tab.goals) {
        const data = await api("stats/goals", query());
        rows(box, data.goals, "goal", ["conversions", "conversion_rate"]);
        sampleNote(box, data);
      } else if (tab.pages) {
        const data = await api("stats/entry-exit", query([["limit", "10"]]));
        rows(box, data[tab.pages], "path", tab.pages === "entry_pages" ? ["visits", "bounce_rate"] : ["visits"]);
        sampleNote(box, data);
      } else {
        const data = await api("stats/breakdown", query([["dimensions", tab.dim], ["metrics", tab.metrics], ["limit", "10"]]));
        rows(box, data.rows, tab.dim, tab.metrics.split(","));
      }
      if (panel.prop) {  // the prop keys of these events; a key shows its values
        const keys = await api("stats/breakdown", query([["dimensions", "prop_key"], ["metrics", "events"], ["limit", "10"]]));
        const list = el("div", {className: "rows"}); box.append(el("h3", {textContent: t("prop")}), list);
        rows(list, keys.rows, "prop_key", ["events"]);
      }
      if (panel.prop && S.prop) {
        const dim = `prop:${S.prop}`;
        const data = await api("stats/breakdown", query([["dimensions", dim], ["metrics", "events,visitors"], ["limit", "10"]]));
        const more = el("div", {className: "rows"}); box.append(el("h3", {textContent: dim}), more);
        rows(more, data.rows, dim, ["events", "visitors"]);
      }
    } catch (err) {
      const text = err.status === 400 && /unknown dimension/.test(err.message) ? t("unavailable") : explain(err);
      box.replaceChildren(el("div", {className: "empty", textContent: text}));
      if (err.status !== 400) throw err;
    }
  }
  async function loadHeat() {
    const data = await api("stats/series", query([["dimensions", "weekday,hour_of_day"], ["metrics", "visitors"], ["limit", "200"]]));
    const at = new Map(data.rows.map((r) => [`${r.weekday}-${r.hour_of_day}`, r.visitors]));
    const top = Math.max(1, ...data.rows.map((r) => r.visitors));
    const cells = [el("div"), ...Array.from({length: 24}, (_, h) => el("div", {textContent: h % 3 ? "" : h}))];
    t("weekdays").forEach((name, i) => {
      cells.push(el("div", {textContent: name}));
      for (let h = 0; h < 24; h++) {
        const v = at.get(`${i + 1}-${h}`) || 0;
        cells.push(el("div", {title: `${name} ${h}:00 — ${I18N.number(v)}`, dataset: {value: v},
          style: `background: rgba(31, 111, 209, ${(v / top).toFixed(3)})`}));
      }
    });
    $("#heat .heat").replaceChildren(...cells);
  }
  async function loadFunnel() {
    const box = $("#funnel .steps");
    $("#funnel textarea").value = S.steps.join("\n");
    if (S.steps.length < 2) { box.replaceChildren(el("div", {className: "empty", textContent: t("funnel_steps")})); return; }
    const data = await api("stats/funnel", query(S.steps.map((s) => ["step", s])));
    box.replaceChildren(...data.steps.map((s) => el("div", {className: "step", dataset: {step: s.step}},
      el("span", {textContent: `${s.step}. ${s.goal}`}), el("span", {className: "num", textContent: I18N.number(s.visits)}),
      el("span", {className: "num", textContent: `${I18N.percent(s.from_first)} ${t("from_first")}`}))));
    sampleNote(box, data);
  }
  function setFilter(dim, value) {
    if (dim === "prop_key") { S.prop = value; writeURL(); load(); return; }  // show its values
    if (dim === "goal") {  // a goal row filters by its event name, or by its page if exact
      const [kind, target] = [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)];
      if (kind === "event") return setFilter("event_name", target);
      if (!target.includes("*")) return setFilter("path", target);
      return;
    }
    S.filters = [...S.filters.filter((f) => !f.startsWith(`${dim}:`)), `${dim}:${value}`];
    writeURL(); load();
  }
  function renderControls() {
    document.title = t("title");
    for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
    $("#site").value = S.site; $("#lang").value = S.lang; $("#from").value = S.from; $("#to").value = S.to;
    $("#compare").checked = S.compare; $("#prop").value = S.prop;
    $("#periods").replaceChildren(...PERIODS.filter((p) => p !== "custom").map((p) => {
      const b = el("button", {textContent: t(p), className: p === S.period ? "on" : "", dataset: {period: p}});
      b.addEventListener("click", () => { S.period = p; Object.assign(S, resolve(p)); writeURL(); load(); });
      return b;
    }));
    $("#filters").replaceChildren(...S.filters.map((f) => {
      const chip = el("span", {className: "chip", textContent: `${f.replace(":", ": ")} ×`, dataset: {filter: f}});
      chip.addEventListener("click", () => { S.filters = S.filters.filter((x) => x !== f); writeURL(); load(); });
      return chip;
    }));
    for (const panel of PANELS) {
      const key = S.tab[panel.id] || panel.tabs[0].key;
      $(`#${panel.id} .tabs`).replaceChildren(...(panel.tabs.length < 2 ? [] : panel.tabs.map((tab) => {
        const b = el("button", {textContent: t(tab.key), className: tab.key === key ? "on" : "", dataset: {tab: tab.key}});
        b.addEventListener("click", () => { S.tab[panel.id] = tab.key; writeURL(); renderControls(); loadPanel(panel).catch(() => {}); });
        return b;
      })));
    }
  }
  function csvOf(panel) {
    const key = S.tab[panel.id] || panel.tabs[0].key, tab = panel.tabs.find((x) => x.key === key) || panel.tabs[0];
    const q = tab.pages || tab.goals ? query([["format", "csv"], ["limit", "100"]])
      : query([["dimensions", tab.dim], ["metrics", tab.metrics], ["limit", "1000"], ["format", "csv"]]);
    const endpoint = tab.goals ? "stats/goals" : tab.pages ? "stats/entry-exit" : "stats/breakdown";
    return download(endpoint, q, `${S.site}-${panel.id}-${key}.csv`);
  }
  async function load() {
    const mine = ++generation;
    document.body.dataset.ready = "";
    message(""); renderControls();
    if (!token()) { message(t("need_token"), "error"); document.body.dataset.ready = String(mine); return; }
    const zone = I18N.TZ;
    if (!(await Mayak.nav("/"))) { document.body.dataset.ready = String(mine); return; }  // role
    if (I18N.TZ !== zone && S.period !== "custom") { Object.assign(S, resolve(S.period)); renderControls(); }
    const jobs = [loadSummary(), loadChart(), loadRealtime(), loadHeat(), loadFunnel(), ...PANELS.map(loadPanel)];
    const done = await Promise.allSettled(jobs);
    const failed = done.find((d) => d.status === "rejected");
    if (mine !== generation) return;
    if (failed) message(explain(failed.reason), "error");
    document.body.dataset.ready = String(mine);
  }
  function wire() {
    $("#token").value = token();
    $("#save").addEventListener("click", () => { localStorage.setItem("mayak-token", $("#token").value.trim()); load(); });
    $("#site").addEventListener("change", () => { S.site = $("#site").value.trim(); localStorage.setItem("mayak-site", S.site); S.filters = []; writeURL(); load(); });
    $("#lang").addEventListener("change", () => { S.lang = $("#lang").value; I18N.set(S.lang); localStorage.setItem("mayak-lang", S.lang); writeURL(); load(); });
    $("#compare").addEventListener("change", () => { S.compare = $("#compare").checked; writeURL(); load(); });
    for (const id of ["#from", "#to"]) $(id).addEventListener("change", () => {
      S.period = "custom"; S.from = $("#from").value; S.to = $("#to").value; writeURL(); load();
    });
    $("#prop").addEventListener("change", () => { S.prop = $("#prop").value.trim(); writeURL(); load(); });
    $("#funnel button").addEventListener("click", () => {
      S.steps = $("#funnel textarea").value.split("\n").map((s) => s.trim()).filter(Boolean); writeURL(); load();
    });
    $("#archive").addEventListener("click", () => download("stats/export", query(), `${S.site}-${S.from}-${S.to}.zip`).catch((e) => message(explain(e), "error")));
    for (const panel of PANELS) $(`#${panel.id} .csv`).addEventListener("click", () => csvOf(panel).catch((e) => message(explain(e), "error")));
    $("#chart-csv").addEventListener("click", () => download("stats/series", query([["dimensions", shift(S.from, 1) >= S.to ? "hour" : "day"],
      ["metrics", "visitors,visits,pageviews"], ["limit", "1000"], ["format", "csv"], ...(S.compare ? [["compare", "previous"]] : [])]), `${S.site}-series.csv`));
    window.addEventListener("popstate", () => { readURL(); load(); });
    setInterval(() => { if (token()) loadRealtime().catch(() => {}); }, 30000);
  }
  readURL(); wire(); load();
  mayak.reload = load;
})();
