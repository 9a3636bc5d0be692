// The research page: answers and budget from /api/research/query and /api/research/budget.
const {$, api, explain, message, nav, tokenForm, table, download, done, localize} = Mayak;
localize();
$("#site").value = localStorage.getItem("mayak-site") || "demo";
const params = () => [["site", $("#site").value], ["dimensions", $("#dimensions").value], ["metrics", $("#metrics").value],
  ["epsilon", $("#epsilon").value], ...(["from", "to"].filter((k) => $(`#${k}`).value).map((k) => [k, $(`#${k}`).value]))];
async function budget() {
  const b = await api("research/budget");
  table($("#budget"), Object.keys(b), [b]);
}
async function load() {
  message("");
  if (await nav("/research")) { try { await budget(); } catch (err) { message(explain(err), "error"); } }
  done();
}
$("#ask").addEventListener("submit", async (e) => {
  e.preventDefault();
  try {
    const a = await api("research/query", params());
    table($("#answer"), a.columns, a.rows);
    $("#privacy").textContent = `cost: ${JSON.stringify(a.cost)} · noise: ${JSON.stringify(a.privacy)}`;
    await budget();
  } catch (err) { message(explain(err), "error"); }
  done();
});
$("#csv").addEventListener("click", () => download("research/query", [...params(), ["format", "csv"]], "research.csv")
  .then(budget).catch((err) => message(explain(err), "error")));
tokenForm(load); load();
