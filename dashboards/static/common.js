// Shared by Mayak's pages: the token (kept in this browser only, never in a URL), API calls,
// the navigation to the pages the token's role may use (GET /api/me), messages and plain
// tables. Values are inserted as text, never as HTML. Exposes window.Mayak.
(() => {
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, props = {}, ...kids) => {
    const {dataset, ...rest} = props;
    const e = Object.assign(document.createElement(tag), rest);
    if (dataset) Object.assign(e.dataset, dataset);
    for (const k of kids) e.append(k);
    return e;
  };
  const t = (key) => window.I18N ? I18N.t(key) : key;
  const title = (page) => t(`nav_${page === "/" ? "product" : page.slice(1)}`);
  const token = () => localStorage.getItem("mayak-token") || "";
  class ApiError extends Error {
    constructor(status, msg, auth) { super(msg); this.status = status; this.auth = auth; }
  }
  // a call refused for want of a valid token (401, or 503 with no tokens configured) carries
  // WWW-Authenticate; any other 503 (busy, a limit) shows the server's own words
  async function failure(r) {
    let msg = r.statusText;
    try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
    return new ApiError(r.status, msg, r.status === 401 || r.headers.has("WWW-Authenticate"));
  }

  async function api(endpoint, params = [], {method = "GET", body, as = "json"} = {}) {
    const q = new URLSearchParams(params);
    const r = await fetch(`/api/${endpoint}${method === "GET" ? `?${q}` : ""}`, {method,
      headers: {Authorization: `Bearer ${token()}`, ...(body ? {"Content-Type": "application/json"} : {})},
      body: body ? JSON.stringify(body) : undefined});
    if (!r.ok) throw await failure(r);
    return as === "json" ? r.json() : r.blob();
  }
  function explain(err) {
    if (err.auth) return `${t("need_token_any")} ${err.message}`;
    if (err.status === 403) return `${t("role_forbidden")} ${err.message}`;
    return err.message;
  }
  function message(text, kind = "") {
    const box = $("#message");
    if (!box) return;
    box.hidden = !text; box.className = `message ${kind}`; box.textContent = text || "";
  }
  // the navigation: only the pages this token's role may use; false when this page is not one
  async function nav(page) {
    const box = $("#nav");
    if (!token()) { message(t("need_token_any"), "error"); return false; }
    let me;
    try { me = await api("me"); } catch (err) { message(explain(err), "error"); return false; }
    if (window.I18N && I18N.zone(me.timezone)) {  // the report time zone: relabel
      for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
    }
    box.replaceChildren(...me.pages.map((p) => el("a", {href: p, textContent: title(p),
      className: p === page ? "on" : ""})), el("span", {textContent: ` ${me.name} (${me.role})`}));
    if (!me.pages.includes(page)) {
      message(t("page_forbidden").replace("{role}", me.role).replace("{pages}", me.pages.map(title).join(", ")), "error");
      return false;
    }
    return true;
  }
  function tokenForm(onSave) {
    $("#token").value = token();
    $("#save").addEventListener("click", () => { localStorage.setItem("mayak-token", $("#token").value.trim()); onSave(); });
  }
  function table(box, columns, rows) {
    if (!rows.length) { box.replaceChildren(el("p", {className: "empty", textContent: t("no_rows")})); return; }
    box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", {textContent: c})))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...columns.map((c) =>
        el("td", {textContent: r[c] == null ? "—" : typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c])})))))));
  }
  async function download(endpoint, params, name) {
    const blob = await api(endpoint, params, {as: "blob"});
    const a = el("a", {href: URL.createObjectURL(blob), download: name});
    document.body.append(a); a.click(); a.remove();
  }
  // the language: ?lang= or the last one chosen on any page; the words of [data-t] elements
  function localize() {
    const lang = new URLSearchParams(location.search).get("lang") || localStorage.getItem("mayak-lang") || "en";
    I18N.set(lang);
    for (const e of document.querySelectorAll("[data-t]")) e.textContent = t(e.dataset.t);
    const select = $("#lang");
    select.value = I18N.lang;
    select.addEventListener("change", () => {
      localStorage.setItem("mayak-lang", select.value);
      const q = new URLSearchParams(location.search); q.set("lang", select.value); location.search = q;
    });
  }
  const done = () => { document.body.dataset.ready = String(+(document.body.dataset.ready || 0) + 1); };
  window.Mayak = {$, el, t, api, failure, explain, message, nav, tokenForm, table, download, done, token,
    localize};
})();
