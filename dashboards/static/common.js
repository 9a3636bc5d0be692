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
  const TITLES = {"/": "Product", "/marketing": "Marketing", "/research": "Research", "/admin": "Admin"};
  const token = () => localStorage.getItem("mayak-token") || "";
  class ApiError extends Error { constructor(status, msg) { super(msg); this.status = status; } }

  async function api(endpoint, params = [], {method = "GET", body, as = "json"} = {}) {
    const q = new URLSearchParams(params);
    const r = await fetch(`/api/${endpoint}${method === "GET" ? `?${q}` : ""}`, {method,
      headers: {Authorization: `Bearer ${token()}`, ...(body ? {"Content-Type": "application/json"} : {})},
      body: body ? JSON.stringify(body) : undefined});
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error; } catch (e) { /* not JSON */ }
      throw new ApiError(r.status, msg);
    }
    return as === "json" ? r.json() : r.blob();
  }
  function explain(err) {
    if (err.status === 401 || err.status === 503)
      return `Paste an API token (create one: mayak token add --name NAME --role ROLE). ${err.message}`;
    if (err.status === 403) return `This token's role may not do this: ${err.message}`;
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
    if (!token()) { message("Paste an API token (create one: mayak token add --name NAME --role ROLE).", "error"); return false; }
    let me;
    try { me = await api("me"); } catch (err) { message(explain(err), "error"); return false; }
    box.replaceChildren(...me.pages.map((p) => el("a", {href: p, textContent: TITLES[p],
      className: p === page ? "on" : ""})), el("span", {textContent: ` ${me.name} (${me.role})`}));
    if (!me.pages.includes(page)) {
      message(`The role ${me.role} may not use this page; it may use: ${me.pages.map((p) => TITLES[p]).join(", ")}.`, "error");
      return false;
    }
    return true;
  }
  function tokenForm(onSave) {
    $("#token").value = token();
    $("#save").addEventListener("click", () => { localStorage.setItem("mayak-token", $("#token").value.trim()); onSave(); });
  }
  function table(box, columns, rows) {
    if (!rows.length) { box.replaceChildren(el("p", {className: "empty", textContent: "No rows for this question."})); return; }
    box.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, ...columns.map((c) => el("th", {textContent: c})))),
      el("tbody", {}, ...rows.map((r) => el("tr", {}, ...columns.map((c) =>
        el("td", {textContent: r[c] == null ? "—" : typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c])})))))));
  }
  async function download(endpoint, params, name) {
    const blob = await api(endpoint, params, {as: "blob"});
    const a = el("a", {href: URL.createObjectURL(blob), download: name});
    document.body.append(a); a.click(); a.remove();
  }
  const done = () => { document.body.dataset.ready = String(+(document.body.dataset.ready || 0) + 1); };
  window.Mayak = {$, el, api, explain, message, nav, tokenForm, table, download, done, token};
})();
