// The marketing page: every figure from /api/stats/summary and /api/marketing/campaigns.
const {$, el, t, api, explain, message, nav, tokenForm, table, done, localize} = Mayak;
localize();
const q = new URLSearchParams(location.search);
$("#site").value = q.get("site") || localStorage.getItem("mayak-site") || "demo";
$("#from").value = q.get("from") || ""; $("#to").value = q.get("to") || "";
const params = () => [["site", $("#site").value], ...(["from", "to"].filter((k) => $(`#${k}`).value).map((k) => [k, $(`#${k}`).value]))];
async function load() {
  message("");
  if (!(await nav("/marketing"))) return done();
  history.replaceState(null, "", `?${new URLSearchParams(params())}`);
  try {
    const s = await api("stats/summary", params());
    $("#kpis").replaceChildren(...["email_opens", "openers", "visitors", "service_requests"].map((k) =>
      el("div", {className: "kpi", dataset: {kpi: k}}, el("span", {textContent: t(k)}),
        el("span", {className: "value", textContent: I18N.number(s[k] ?? 0)}))));
    const c = await api("marketing/campaigns", params());
    // the report's own columns (whatever this version's report answers)
    table($("#campaigns"), c.campaigns.length ? Object.keys(c.campaigns[0]) : ["campaign_id"], c.campaigns);
  } catch (err) { message(explain(err), "error"); }
  done();
}
$("#view").addEventListener("submit", (e) => { e.preventDefault(); load(); });
$("#send").addEventListener("submit", async (e) => {
  e.preventDefault();
  const body = {site: $("#site").value, sent: +$("#sent").value, ...($("#sent_on").value ? {sent_on: $("#sent_on").value} : {})};
  try { await api(`marketing/campaigns/${encodeURIComponent($("#campaign").value)}/sends`, [], {method: "POST", body}); load(); }
  catch (err) { message(explain(err), "error"); }
});
tokenForm(load); load();
