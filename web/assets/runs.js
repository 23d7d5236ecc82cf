// A notebook's history (every saved version, readable and restorable) and its runs (each run's
// record, and a replay on the executor that shows the match cell by cell).

import { getJson, request } from "./api.js";
import { bytes, count, h, replace, shortDigest, when } from "./dom.js";

/** Shows the versions of the editor's notebook in its side panel. */
export async function showHistory(editor) {
  const versions = await getJson(`/v1/notebooks/${encodeURIComponent(editor.id)}/versions`);
  const reader = h("div", { class: "version-reader" });
  const newest = versions[versions.length - 1];
  replace(
    editor.side,
    h("h2", {}, "History"),
    newest.digest !== editor.head
      ? h(
          "p",
          { class: "status-error" },
          "Someone saved a newer version since you opened this notebook. ",
          h(
            "button",
            {
              id: "save-on-top",
              onclick: async () => {
                await editor.reloadHead();
                await editor.save();
                await showHistory(editor);
              },
            },
            "Save my edits on top of it",
          ),
        )
      : null,
    h(
      "table",
      { class: "list", id: "versions" },
      h("thead", {}, h("tr", {}, ["version", "parent", "saved", "by", "size", ""].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        [...versions].reverse().map((version) =>
          h(
            "tr",
            { class: "version" },
            h("td", {}, shortDigest(version.digest)),
            h("td", {}, shortDigest(version.parent)),
            h("td", {}, when(version.created_ms)),
            h("td", {}, version.author),
            h("td", {}, bytes(version.size)),
            h(
              "td",
              {},
              h(
                "button",
                {
                  class: "read-version",
                  onclick: async () => {
                    const doc = await getJson(`/v1/notebooks/${encodeURIComponent(editor.id)}/versions/${version.digest}`);
                    replace(
                      reader,
                      h("h3", {}, `Version ${version.digest.slice(7, 19)}`),
                      h("button", { class: "restore", onclick: () => editor.restore(doc.notebook) }, "Restore into the editor"),
                      h("pre", { class: "version-json" }, JSON.stringify(doc.notebook, null, 2)),
                    );
                  },
                },
                "Read",
              ),
            ),
          ),
        ),
      ),
    ),
    reader,
  );
}

function cellsTable(cells, outputs = {}) {
  return h(
    "table",
    { class: "list" },
    h("thead", {}, h("tr", {}, ["cell", "status", "fuel", "wall", "memory", "output"].map((t) => h("th", {}, t)))),
    h(
      "tbody",
      {},
      cells.map((cell) =>
        h(
          "tr",
          {},
          h("td", {}, cell.id),
          h("td", { class: `state-${cell.status}` }, cell.status, cell.error ? ` [${cell.error.code}] ${cell.error.message}` : ""),
          h("td", {}, count(cell.metrics.fuel)),
          h("td", {}, `${(cell.metrics.wall_us / 1000).toFixed(2)} ms`),
          h("td", {}, bytes(cell.metrics.peak_memory_bytes)),
          h("td", {}, shortDigest(cell.output), outputs[cell.id] ? ` ${bytes(cell.metrics.output_bytes)}` : ""),
        ),
      ),
    ),
  );
}

/** Shows the runs of the editor's notebook in its side panel. */
export async function showRuns(editor) {
  const runs = await getJson(`/v1/notebooks/${encodeURIComponent(editor.id)}/runs`);
  const detail = h("div", { class: "run-detail", id: "run-detail" });
  replace(
    editor.side,
    h("h2", {}, "Runs"),
    runs.length === 0 ? h("p", { class: "muted" }, "No runs yet.") : null,
    h(
      "table",
      { class: "list", id: "runs" },
      h("thead", {}, h("tr", {}, ["run", "finished", "by", "notebook", "result", ""].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        runs.map((run) =>
          h(
            "tr",
            { class: "run", "data-run": run.run },
            h("td", {}, h("code", {}, run.run)),
            h("td", {}, when(run.created_ms)),
            h("td", {}, run.by),
            h("td", {}, shortDigest(run.notebook)),
            h("td", { class: run.ok ? "state-ok" : "state-error" }, run.ok ? "ok" : "errors"),
            h(
              "td",
              {},
              h("button", { class: "show-run", onclick: () => showRun(detail, run.run) }, "Record"),
              h("button", { class: "replay-run", onclick: () => replay(detail, run.run) }, "Replay"),
            ),
          ),
        ),
      ),
    ),
    detail,
  );
}

async function showRun(detail, id) {
  const run = await getJson(`/v1/runs/${id}`);
  replace(
    detail,
    h("h3", {}, `Run ${id}`),
    h("p", {}, `finished ${when(run.created_ms)}`, run.record.seed !== null ? ` · deterministic, seed ${run.record.seed}` : ""),
    cellsTable(run.record.cells, run.outputs),
  );
}

async function replay(detail, id) {
  replace(detail, h("p", {}, `Replaying ${id}…`));
  try {
    const response = await request("POST", `/v1/runs/${id}/replay`);
    const report = await response.json();
    replace(
      detail,
      h("h3", {}, `Replay of ${id}: `, h("span", { class: report.matches ? "state-ok" : "state-error", id: "replay-verdict" }, report.matches ? "every output matches" : "outputs differ")),
      h(
        "table",
        { class: "list", id: "replay-cells" },
        h("thead", {}, h("tr", {}, ["cell", "recorded", "replayed", ""].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          report.cells.map((cell) =>
            h(
              "tr",
              {},
              h("td", {}, cell.id),
              h("td", {}, shortDigest(cell.recorded)),
              h("td", {}, shortDigest(cell.replayed)),
              h("td", { class: cell.matches ? "state-ok" : "state-error" }, cell.matches ? "matches" : "differs"),
            ),
          ),
        ),
      ),
    );
  } catch (err) {
    replace(detail, h("p", { class: "status-error" }, err.message));
  }
}
