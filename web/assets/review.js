// The review queue (review scope): submissions waiting for a decision, and one submission as a
// reviewer reads it — its audit findings, its build (module, imports, entry points), its
// dependencies and whether each is approved, the source diff against the last approved version
// with what to read first called out — with approve and reject, through the same API as
// `kiln review`.

import { getJson, sendJson } from "./api.js";
import { h, replace, shortDigest, when } from "./dom.js";

const WAITING = ["submitted", "audited", "built"];

/** Shows the queue in `main`; `state` filters it (default: waiting for a decision). */
export async function showQueue(main, state = "waiting") {
  const all = await getJson("/api/kiln/v1/submissions");
  const shown = state === "waiting" ? all.filter((s) => WAITING.includes(s.state)) : state === "all" ? all : all.filter((s) => s.state === state);
  const filter = h(
    "select",
    { id: "queue-filter", onchange: (e) => showQueue(main, e.target.value) },
    ["waiting", "all", "submitted", "audited", "built", "approved", "rejected", "failed"].map((s) => h("option", { value: s, selected: s === state }, s)),
  );
  replace(
    main,
    h("h1", {}, "Review queue"),
    h("p", {}, "Show ", filter),
    shown.length === 0 ? h("p", { class: "muted" }, "Nothing here.") : null,
    h(
      "table",
      { class: "list", id: "queue" },
      h("thead", {}, h("tr", {}, ["crate", "version", "state", "why", "published by", "published"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        shown.map((s) =>
          h(
            "tr",
            { "data-submission": `${s.crate}@${s.version}` },
            h("td", {}, h("a", { href: `#/review/${encodeURIComponent(s.crate)}/${encodeURIComponent(s.version)}` }, s.crate)),
            h("td", {}, s.version),
            h("td", { class: `state-${s.state}` }, s.state),
            h("td", {}, s.state_reason ?? ""),
            h("td", {}, s.published_by),
            h("td", {}, when(s.created_at)),
          ),
        ),
      ),
    ),
  );
}

function diffView(diff) {
  return h(
    "section",
    { class: "diff", id: "diff" },
    h("h2", {}, diff.against ? `Source: ${diff.against} → ${diff.version}` : `Source of ${diff.version} (a first version)`),
    diff.notes.length
      ? h("ul", { class: "callouts", id: "callouts" }, diff.notes.map((n) => h("li", {}, n)))
      : h("p", { class: "muted" }, "No new dependencies, imports, build script changes or unsafe."),
    diff.files.map((file) =>
      h(
        "details",
        { class: "file-diff", open: diff.files.length <= 8 },
        h("summary", {}, h("code", {}, file.path), ` ${file.change}`),
        h(
          "pre",
          { class: "unified" },
          file.unified.split("\n").map((line) =>
            h("span", { class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : "" }, `${line}\n`),
          ),
        ),
      ),
    ),
  );
}

/** Shows `name@version` for a decision. */
export async function showSubmission(main, name, version) {
  const base = `/api/kiln/v1/submissions/${encodeURIComponent(name)}/${encodeURIComponent(version)}`;
  const [detail, diff] = await Promise.all([getJson(base), getJson(`${base}/diff`).catch((err) => ({ error: err.message }))]);
  const outcome = h("p", { id: "decision-outcome" });
  const criteria = h("input", { id: "criteria", value: "safe-to-run", size: 16 });
  const reason = h("input", { id: "reject-reason", placeholder: "why (shown to the author)", size: 40 });
  const decide = async (path, body) => {
    try {
      const decided = await sendJson("POST", `${base}/${path}`, body);
      replace(outcome, h("span", { class: "status-ok" }, `${name}@${version} is ${decided.state}.`));
      await showSubmission(main, name, version);
    } catch (err) {
      replace(outcome, h("span", { class: "status-error" }, err.message));
    }
  };
  const audit = detail.reports.audit;
  const kernel = detail.reports.build?.kernel;
  replace(
    main,
    h("p", {}, h("a", { href: "#/review" }, "← review queue")),
    h("h1", {}, `${name} `, h("span", { class: "version" }, version), " ", h("span", { class: `badge state-${detail.state}`, id: "submission-state" }, detail.state)),
    detail.state_reason ? h("p", { class: "muted" }, detail.state_reason) : null,
    h("p", {}, `published by ${detail.published_by}, ${when(detail.created_at)}`, detail.origin ? ` · from ${detail.origin}` : "", " · .crate ", shortDigest(`sha256:${detail.checksum}`)),
    detail.state === "built"
      ? h(
          "div",
          { class: "decide" },
          h("label", {}, "criteria ", criteria),
          h("button", { class: "primary", id: "approve", onclick: () => decide("approve", { criteria: criteria.value || null }) }, "Approve"),
          h("label", {}, "reason ", reason),
          h(
            "button",
            {
              class: "danger",
              id: "reject",
              onclick: () => {
                if (!reason.value.trim()) {
                  replace(outcome, h("span", { class: "status-error" }, "A rejection needs a reason."));
                  return;
                }
                decide("reject", { reason: reason.value });
              },
            },
            "Reject",
          ),
        )
      : null,
    outcome,
    h(
      "section",
      {},
      h("h2", {}, "Audit"),
      audit
        ? [
            h("p", {}, `${audit.date}: ${audit.verdict} (${audit.summary.deny} deny, ${audit.summary.review} review, ${audit.summary.info} info)`),
            h("ul", { class: "findings" }, audit.findings.map((f) => h("li", { class: `severity-${f.severity}` }, h("strong", {}, f.severity), ` [${f.code}] ${f.message}`))),
          ]
        : h("p", { class: "muted" }, "not audited yet"),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Build"),
      kernel
        ? h(
            "dl",
            {},
            h("dt", {}, ".wasm"),
            h("dd", {}, shortDigest(kernel.wasm), ` ${kernel.wasm_size} bytes, in ${detail.reports.build.isolation}`),
            h("dt", {}, "imports"),
            h("dd", {}, kernel.imports.map((i) => h("code", { class: "import" }, `${i.module}.${i.name}`))),
            h("dt", {}, "entry points"),
            h("dd", {}, kernel.entries.map((e) => h("div", {}, h("code", {}, e.name), ` ${e.input} → ${e.output}`))),
          )
        : h("p", { class: "muted" }, detail.reports.build ? `a library: compiles for ${detail.reports.build.target}` : "not built yet"),
    ),
    h(
      "section",
      {},
      h("h2", {}, "Dependencies"),
      h(
        "table",
        { class: "list" },
        h("tbody", {}, detail.dependencies.map((d) => h("tr", {}, h("td", {}, d.name), h("td", {}, d.req), h("td", {}, d.kind), h("td", { class: d.approved ? "state-approved" : "state-error" }, d.approved ? `approved ${d.approved}` : "not approved")))),
      ),
    ),
    diff.error ? h("p", { class: "status-error" }, `No source diff: ${diff.error}`) : diffView(diff),
  );
}
