// The notebook list: every notebook on the executor, newest first, and a form for a new one.

import { getJson, sendJson } from "./api.js";
import { h, replace, when } from "./dom.js";

/** Shows the notebooks in `main`. */
export async function showNotebooks(main) {
  const notebooks = await getJson("/v1/notebooks");
  const error = h("p", { class: "status-error", id: "create-error" });
  const id = h("input", { id: "new-id", placeholder: "id: a-z, 0-9, - and _", pattern: "[a-z0-9_-]{1,64}", required: true });
  const title = h("input", { id: "new-title", placeholder: "title" });
  const create = async (event) => {
    event.preventDefault();
    const notebook = { kiln_notebook: 1, metadata: { title: title.value || id.value }, kernels: {}, cells: [] };
    try {
      await sendJson("PUT", `/v1/notebooks/${encodeURIComponent(id.value)}`, { parent: null, notebook });
      location.hash = `#/notebooks/${encodeURIComponent(id.value)}`;
    } catch (err) {
      replace(error, err.message);
    }
  };
  replace(
    main,
    h("h1", {}, "Notebooks"),
    h("form", { class: "inline-form", id: "new-notebook", onsubmit: create }, id, title, h("button", { class: "primary", type: "submit" }, "New notebook")),
    error,
    notebooks.length === 0
      ? h("p", { class: "muted" }, "No notebooks yet.")
      : h(
          "table",
          { class: "list", id: "notebook-list" },
          h("thead", {}, h("tr", {}, ["title", "id", "versions", "last saved", "by"].map((t) => h("th", {}, t)))),
          h(
            "tbody",
            {},
            notebooks.map((n) =>
              h(
                "tr",
                {},
                h("td", {}, h("a", { href: `#/notebooks/${encodeURIComponent(n.id)}` }, n.title || n.id)),
                h("td", {}, h("code", {}, n.id)),
                h("td", {}, String(n.versions)),
                h("td", {}, when(n.head.created_ms)),
                h("td", {}, n.head.author),
              ),
            ),
          ),
        ),
  );
}
