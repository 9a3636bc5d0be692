// Renders /openapi.json (OpenAPI 3.1): every endpoint, who may call it, its parameters.
const el = (tag, text, cls) => { const e = document.createElement(tag); if (text != null) e.textContent = text; if (cls) e.className = cls; return e; };
fetch("/openapi.json").then(r => r.json()).then(spec => {
  const main = document.getElementById("docs");
  main.replaceChildren(el("p", spec.info.description));
  const byTag = {};
  for (const [path, ops] of Object.entries(spec.paths))
    for (const [method, op] of Object.entries(ops)) {
      if (method === "servers") continue;
      (byTag[op.tags[0]] ||= []).push([path, method, op, ops.servers]);
    }
  for (const [tag, list] of Object.entries(byTag)) {
    const sec = el("section"); sec.append(el("h2", tag));
    for (const [path, method, op, servers] of list) {
      const div = el("div", null, "op");
      div.append(el("code", `${method.toUpperCase()} ${path}`, "sig"));
      div.append(el("span", op["x-roles"].length ? `roles: ${op["x-roles"].join(", ")}` : "public", "roles"));
      if (servers) div.append(el("span", ` (${servers[0].description})`));
      div.append(el("p", op.summary));
      const params = (op.parameters || []).map(p => `${p.name}${p.required ? "*" : ""}: ${p.description || ""}`);
      if (op.requestBody) params.push("JSON body: " + Object.keys(op.requestBody.content["application/json"].schema.properties).join(", "));
      if (params.length) { const ul = el("ul"); for (const p of params) ul.append(el("li", p)); div.append(ul); }
      sec.append(div);
    }
    main.append(sec);
  }
});
