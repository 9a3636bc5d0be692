// The admin page: /api/admin/audit, /api/admin/research/budget(s), /api/admin/export, /api/admin/erase.
const {$, t, api, explain, message, nav, tokenForm, table, done, localize} = Mayak;
localize();
async function load() {
  message("");
  if (await nav("/admin")) {
    try {
      const a = await api("admin/audit", [["limit", "50"]]);
      table($("#audit"), ["ts", "actor", "role", "endpoint", "cells", "status"], a.queries);
      const b = await api("admin/research/budgets");
      const rows = b.budgets || b.researchers || [];
      table($("#budgets"), rows.length ? Object.keys(rows[0]) : ["researcher"], rows);
    } catch (err) { message(explain(err), "error"); }
  }
  done();
}
$("#budget").addEventListener("submit", async (e) => {
  e.preventDefault();
  try { await api("admin/research/budget", [], {method: "POST", body: {researcher: $("#researcher").value, epsilon: +$("#epsilon").value}}); load(); }
  catch (err) { message(explain(err), "error"); }
});
$("#customer").addEventListener("submit", async (e) => {
  e.preventDefault();
  try { const r = await api("admin/export", [], {method: "POST", body: {customer: $("#cid").value}}); table($("#result"), ["event_type", "ts", "site_id", "path"], r.events); }
  catch (err) { message(explain(err), "error"); }
});
$("#erase").addEventListener("click", async () => {
  if (!confirm(t("erase_confirm"))) return;
  try { const r = await api("admin/erase", [], {method: "POST", body: {customer: $("#cid").value, opt_out: true}}); table($("#result"), Object.keys(r), [r]); }
  catch (err) { message(explain(err), "error"); }
});
tokenForm(load); load();
