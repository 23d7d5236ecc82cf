// The kernel catalogue: every approved kernel version with its entry points and media types,
// what it imports and exports, its digests, its audit and advisories, who reviewed it and when,
// and whether it is revoked.

import { getJson } from "./api.js";
import { h, replace, shortDigest, when } from "./dom.js";

/** Shows the catalogue in `main`. */
export async function showCatalogue(main) {
  const entries = await getJson("/api/kiln/v1/catalogue");
  replace(
    main,
    h("h1", {}, "Kernel catalogue"),
    h("p", { class: "muted" }, "Approved kernel versions. A notebook cell can call any of them that is not revoked."),
    entries.length === 0 ? h("p", { class: "muted" }, "No approved kernels yet.") : null,
    h(
      "div",
      { class: "catalogue", id: "catalogue" },
      entries.map((entry) =>
        h(
          "article",
          { class: `kernel-card${entry.revoked ? " revoked" : ""}`, "data-kernel": `${entry.crate}@${entry.version}` },
          h("h2", {}, `${entry.crate} `, h("span", { class: "version" }, entry.version), entry.revoked ? h("span", { class: "badge state-error" }, "revoked") : null),
          entry.revoked ? h("p", { class: "status-error" }, `Revoked: ${entry.revoked}`) : null,
          h(
            "table",
            { class: "entries" },
            h("thead", {}, h("tr", {}, ["entry point", "input", "output"].map((t) => h("th", {}, t)))),
            h("tbody", {}, entry.kernel.entries.map((e) => h("tr", {}, h("td", {}, h("code", {}, e.name)), h("td", {}, e.input), h("td", {}, e.output)))),
          ),
          h(
            "dl",
            {},
            h("dt", {}, "imports"),
            h("dd", {}, entry.kernel.imports.map((i) => h("code", { class: "import" }, `${i.module}.${i.name}`)), entry.kernel.imports.length ? null : "none"),
            h("dt", {}, "exports"),
            h("dd", {}, entry.kernel.exports.map((e) => h("code", { class: "export" }, e))),
            h("dt", {}, ".wasm"),
            h("dd", {}, shortDigest(entry.kernel.wasm), ` ${entry.kernel.wasm_size} bytes`),
            h("dt", {}, ".cwasm"),
            h("dd", {}, shortDigest(entry.kernel.cwasm), ` wasmtime ${entry.kernel.wasmtime_version}`),
            h("dt", {}, "published"),
            h("dd", {}, `by ${entry.published_by}, ${when(entry.published_at)}`),
            h("dt", {}, "audited"),
            h(
              "dd",
              {},
              entry.audit ? `${entry.audit.date}: ${entry.audit.verdict}, advisory database ${entry.audit.advisory_db.slice(0, 12)}` : "no audit",
              entry.audit?.advisories.length ? h("ul", { class: "advisories" }, entry.audit.advisories.map((a) => h("li", {}, a))) : null,
              entry.audit?.later_advisories ? h("p", { class: "status-error" }, `${entry.audit.later_advisories} re-audits found advisories after approval`) : null,
            ),
            h("dt", {}, "reviewed"),
            h("dd", {}, entry.reviews.map((r) => h("div", {}, `${r.decision} by ${r.reviewer}, ${when(r.created_at)}`, r.criteria ? ` (${r.criteria})` : ""))),
            h("dt", {}, "signed statements"),
            h(
              "dd",
              {},
              entry.statements.map((s) =>
                h("div", { class: "statement" }, `${s.kind} `, shortDigest(s.digest), `, ${when(s.created_at)}, key `, h("code", {}, (s.signed_by ?? "?").slice(0, 12))),
              ),
            ),
          ),
        ),
      ),
    ),
  );
}
