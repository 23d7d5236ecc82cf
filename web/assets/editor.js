// The notebook editor: markdown, kernel and code cells, kernels picked from the approved catalogue
// (picking one pins its digests in the notebook's lock), inputs edited by media type, grants and
// limits shown with the policy's defaults and maxima; code cells written in Rust against the
// approved crates (code-cell.js), their build stages and compile errors shown at their lines;
// Run cell and Run all over the executor's NDJSON stream, or verified and run in this page
// (browser-run.js), with each cell's state, output and telemetry shown live; a browser run
// checked against the server's; saving a new version.

import { chunkBytes, getBytes, getJson, request, sendJson, streamRun } from "./api.js";
import { loadTrust, pinTrust, runInBrowser } from "./browser-run.js";
import { diagnosticsList, dependencyLines, lockDependencies, sourceEditor } from "./code-cell.js";
import { bytes, count, h, replace, shortDigest } from "./dom.js";
import { renderMarkdown } from "./markdown.js";
import { renderOutput } from "./render.js";
import { showHistory, showRuns } from "./runs.js";

/** Preflight reason codes in plain words; the executor's message follows. */
const REASONS = {
  "digest-mismatch": "The kernel's bytes are not the ones the notebook pins.",
  "revocation-list-stale": "The executor's revocation list is too old to trust.",
  "revocation-list-unavailable": "The executor has no verified revocation list.",
  revoked: "The kernel was revoked by an administrator.",
  "missing-statement": "A signed statement the policy requires is missing or not trusted.",
  "manifest-unsigned": "The kernel's manifest is not covered by a trusted signature.",
  "entry-missing": "The kernel has no such entry point.",
  "import-not-granted": "The kernel imports a function the cell does not grant.",
  "grant-not-allowed": "The cell grants a function the policy does not allow.",
  "limit-exceeded": "The cell asks for more than the policy allows.",
  "not-approved": "The kernel is not approved in the registry.",
  unavailable: "The kernel could not be fetched from the registry.",
  "code-cells-denied": "The policy does not let code cells run.",
  "build-failed": "The code cell did not build.",
  "source-mismatch": "The build's signed provenance is about other source.",
  "audit-failed": "The audit of the code cell's crates does not pass.",
};

/** Whether a cell runs (a kernel cell, or a code cell). */
const runs = (cell) => cell.type === "kernel" || cell.type === "code";

const LIMITS = [
  ["fuel", "fuel", count],
  ["memory_bytes", "memory", bytes],
  ["wall_ms", "wall ms", count],
  ["output_bytes", "output", bytes],
];

/** The name a kernel gets in the lock: the crate without `kernel-`, made unique. */
function lockName(doc, crate, version) {
  const base = crate.replace(/^kernel-/, "").replace(/[^a-z0-9_-]/g, "-");
  for (const [name, lock] of Object.entries(doc.kernels)) {
    if (lock.crate === crate && lock.version === version) return name;
  }
  if (!doc.kernels[base]) return base;
  return `${base}-${version.replace(/[^0-9a-z]/g, "-")}`;
}

/** The notebook as saved and run: kernels no cell uses are dropped from the lock. */
function tidy(doc) {
  const used = new Set(doc.cells.filter((c) => c.type === "kernel").map((c) => c.kernel));
  const kernels = Object.fromEntries(Object.entries(doc.kernels).filter(([name]) => used.has(name)));
  return { ...doc, kernels };
}

/** The kernel cells `target` needs (its `from` chain) and itself, in order. */
function withInputs(doc, target) {
  const byId = new Map(doc.cells.filter(runs).map((c) => [c.id, c]));
  const needed = new Set();
  const visit = (id) => {
    if (needed.has(id) || !byId.has(id)) return;
    needed.add(id);
    const from = byId.get(id).input?.from;
    if (from) visit(from);
  };
  visit(target);
  return tidy({ ...doc, cells: doc.cells.filter((c) => runs(c) && needed.has(c.id)) });
}

function newCellId(doc) {
  const ids = new Set(doc.cells.map((c) => c.id));
  for (let n = 1; ; n += 1) if (!ids.has(`cell-${n}`)) return `cell-${n}`;
}

/** Opens notebook `id` in `main`. */
export async function showEditor(main, id) {
  const [loaded, catalogue, policy] = await Promise.all([
    getJson(`/v1/notebooks/${encodeURIComponent(id)}`),
    getJson("/v1/catalogue"),
    getJson("/v1/policy"),
  ]);
  const editor = new Editor(main, id, loaded, catalogue, policy);
  editor.render();
  return editor;
}

class Editor {
  constructor(main, id, loaded, catalogue, policy) {
    this.main = main;
    this.id = id;
    this.head = loaded.version.digest;
    this.doc = loaded.notebook;
    this.catalogue = catalogue.filter((entry) => !entry.revoked);
    this.policy = policy;
    /** Per cell id: its live run view. */
    this.views = new Map();
    this.running = false;
  }

  entryOf(lock) {
    return this.catalogue.find((c) => c.crate === lock?.crate && c.version === lock?.version);
  }

  /** The entry point metadata (name, input and output media types) of a kernel cell. */
  entryPoint(cell) {
    if (cell.type === "code") return { name: cell.entry ?? "main", input: cell.input_type, output: cell.output_type };
    const kernel = this.entryOf(this.doc.kernels[cell.kernel]);
    return kernel?.kernel.entries.find((e) => e.name === cell.entry);
  }

  setStatus(message, kind = "info") {
    replace(this.statusLine, h("span", { class: `status-${kind}` }, message));
  }

  render() {
    const title = h("input", {
      class: "title",
      id: "notebook-title",
      value: this.doc.metadata?.title ?? "",
      placeholder: "Untitled notebook",
      oninput: (e) => {
        this.doc.metadata = { ...(this.doc.metadata ?? {}), title: e.target.value };
      },
    });
    this.statusLine = h("div", { class: "status-line", id: "status-line" });
    this.cellsRoot = h("div", { class: "cells", id: "cells" });
    this.side = h("div", { class: "side", id: "side" });
    replace(
      this.main,
      h(
        "div",
        { class: "editor" },
        h(
          "div",
          { class: "toolbar" },
          title,
          h("button", { id: "run-all", class: "primary", onclick: () => this.run(null) }, "Run all"),
          h(
            "select",
            { id: "run-where", title: "Where cells run: on the executor, or verified and run in this page" },
            h("option", { value: "server" }, "on the server"),
            h("option", { value: "browser" }, "in this browser"),
          ),
          h(
            "label",
            { title: "Fixed clocks and seeded randomness, so that a replay gives the same outputs" },
            h("input", { type: "checkbox", id: "deterministic", checked: true }),
            " deterministic",
          ),
          h("button", { id: "save", onclick: () => this.save() }, "Save"),
          h("button", { id: "show-history", onclick: () => showHistory(this) }, "History"),
          h("button", { id: "show-runs", onclick: () => showRuns(this) }, "Runs"),
          h("button", { id: "show-trust", onclick: () => this.showTrust() }, "Trust"),
        ),
        this.statusLine,
        this.cellsRoot,
        h(
          "div",
          { class: "add-cells" },
          h("button", { id: "add-markdown", onclick: () => this.addCell("markdown") }, "+ Markdown"),
          h("button", { id: "add-kernel", onclick: () => this.addCell("kernel") }, "+ Kernel cell"),
          h("button", { id: "add-code", onclick: () => this.addCell("code") }, "+ Code cell"),
        ),
        this.side,
      ),
    );
    this.renderCells();
    this.setStatus(`version ${this.head.slice(7, 19)} · ${this.doc.cells.length} cells`);
  }

  renderCells() {
    this.views.clear();
    replace(
      this.cellsRoot,
      this.doc.cells.map((cell, index) =>
        cell.type === "markdown"
          ? this.markdownCell(cell, index)
          : cell.type === "code"
            ? this.codeCell(cell, index)
            : this.kernelCell(cell, index),
      ),
    );
  }

  cellTools(index, extra = []) {
    const move = (delta) => {
      const to = index + delta;
      if (to < 0 || to >= this.doc.cells.length) return;
      const [cell] = this.doc.cells.splice(index, 1);
      this.doc.cells.splice(to, 0, cell);
      this.renderCells();
    };
    return h(
      "div",
      { class: "cell-tools" },
      extra,
      h("button", { class: "move-up", title: "Move up", onclick: () => move(-1) }, "↑"),
      h("button", { class: "move-down", title: "Move down", onclick: () => move(1) }, "↓"),
      h(
        "button",
        {
          class: "delete",
          title: "Delete the cell",
          onclick: () => {
            this.doc.cells.splice(index, 1);
            this.renderCells();
          },
        },
        "✕",
      ),
    );
  }

  addCell(type) {
    if (type === "markdown") {
      this.doc.cells.push({ type: "markdown", source: "" });
    } else if (type === "code") {
      // Code cells are format version 2.
      this.doc.kiln_notebook = 2;
      this.doc.cells.push({
        type: "code",
        id: newCellId(this.doc),
        source: 'let text = input.text()?;\nout.write_str(&text.to_uppercase())',
        input_type: "text/plain",
        output_type: "text/plain",
        input: { text: "" },
      });
    } else {
      const first = this.catalogue.find((c) => c.kernel.entries.length > 0);
      const cell = { type: "kernel", id: newCellId(this.doc), kernel: "", entry: "", input: { text: "" } };
      if (first) this.pick(cell, first);
      this.doc.cells.push(cell);
    }
    this.renderCells();
    this.cellsRoot.lastElementChild?.scrollIntoView({ block: "nearest" });
  }

  markdownCell(cell, index) {
    const view = h("div", { class: "markdown-view" }, renderMarkdown(cell.source));
    const source = h("textarea", {
      class: "markdown-source",
      rows: Math.max(3, cell.source.split("\n").length),
      value: cell.source,
      hidden: true,
      oninput: (e) => {
        cell.source = e.target.value;
      },
    });
    const toggle = h("button", {
      class: "edit",
      onclick: () => {
        source.hidden = !source.hidden;
        view.hidden = !source.hidden;
        toggle.textContent = source.hidden ? "Edit" : "Done";
        if (source.hidden) replace(view, renderMarkdown(cell.source));
      },
    }, "Edit");
    if (!cell.source) {
      source.hidden = false;
      view.hidden = true;
      toggle.textContent = "Done";
    }
    return h("section", { class: "cell markdown-cell", "data-index": index }, this.cellTools(index, [toggle]), view, source);
  }

  /** Points `cell` at catalogue `entry`, pinning its digests in the lock. */
  pick(cell, entry) {
    const name = lockName(this.doc, entry.crate, entry.version);
    this.doc.kernels[name] = {
      crate: entry.crate,
      version: entry.version,
      wasm: entry.kernel.wasm,
      ...(entry.kernel.cwasm ? { cwasm: entry.kernel.cwasm } : {}),
    };
    cell.kernel = name;
    if (!entry.kernel.entries.some((e) => e.name === cell.entry)) {
      cell.entry = entry.kernel.entries[0]?.name ?? "";
    }
  }

  kernelPicker(cell, index) {
    const lock = this.doc.kernels[cell.kernel];
    const current = lock ? `${lock.crate}@${lock.version}` : "";
    const options = this.catalogue.map((entry) => {
      const value = `${entry.crate}@${entry.version}`;
      return h("option", { value, selected: value === current }, value);
    });
    if (lock && !this.entryOf(lock)) {
      options.unshift(h("option", { value: current, selected: true }, `${current} (pinned; not in the approved catalogue)`));
    }
    if (!lock) options.unshift(h("option", { value: "", selected: true }, "choose a kernel"));
    return h(
      "select",
      {
        class: "kernel-picker",
        onchange: (e) => {
          const entry = this.catalogue.find((c) => `${c.crate}@${c.version}` === e.target.value);
          if (!entry) return;
          this.pick(cell, entry);
          this.renderCells();
        },
      },
      options,
    );
  }

  entryPicker(cell) {
    const kernel = this.entryOf(this.doc.kernels[cell.kernel]);
    const entries = kernel?.kernel.entries ?? (cell.entry ? [{ name: cell.entry, input: "?", output: "?" }] : []);
    return h(
      "select",
      {
        class: "entry-picker",
        onchange: (e) => {
          cell.entry = e.target.value;
          this.renderCells();
        },
      },
      entries.map((entry) =>
        h("option", { value: entry.name, selected: entry.name === cell.entry }, `${entry.name} (${entry.input} → ${entry.output})`),
      ),
    );
  }

  inputEditor(cell, index) {
    const entry = this.entryPoint(cell);
    const mediaType = entry?.input ?? "text/plain";
    const mode = cell.input.from !== undefined ? "from" : cell.input.blob !== undefined ? "dataset" : "inline";
    const earlier = this.doc.cells.slice(0, index).filter(runs).map((c) => c.id);
    const error = h("div", { class: "input-error" });
    let body;
    if (mode === "from") {
      body = h(
        "select",
        {
          class: "input-from",
          onchange: (e) => {
            cell.input = { from: e.target.value };
          },
        },
        earlier.map((id) => h("option", { value: id, selected: id === cell.input.from }, id)),
      );
    } else if (mode === "dataset") {
      const shown = h("span", { class: "dataset-digest" }, cell.input.blob ? shortDigest(cell.input.blob) : "no file yet");
      body = h(
        "div",
        { class: "dataset" },
        h("input", {
          type: "file",
          class: "dataset-file",
          onchange: async (e) => {
            const file = e.target.files[0];
            if (!file) return;
            if (file.size > this.policy.max_dataset_bytes) {
              replace(error, `${file.name} is ${bytes(file.size)}; the policy allows datasets up to ${bytes(this.policy.max_dataset_bytes)}`);
              return;
            }
            replace(shown, `uploading ${file.name}…`);
            try {
              const response = await request("POST", "/v1/datasets", {
                body: file,
                headers: { "Content-Type": "application/octet-stream" },
              });
              const created = await response.json();
              cell.input = { blob: created.digest };
              replace(shown, shortDigest(created.digest), ` ${file.name}, ${bytes(created.size)}`);
              replace(error);
            } catch (err) {
              replace(shown, "no file");
              replace(error, err.message);
            }
          },
        }),
        shown,
      );
    } else {
      const isJson = mediaType === "application/json" || mediaType.endsWith("+json");
      const value = cell.input.json !== undefined ? JSON.stringify(cell.input.json, null, 2) : cell.input.text ?? "";
      body = h("textarea", {
        class: "input-text",
        rows: Math.min(12, Math.max(3, value.split("\n").length)),
        spellcheck: "false",
        value,
        placeholder: `${mediaType} input`,
        oninput: (e) => {
          if (isJson) {
            try {
              cell.input = { json: JSON.parse(e.target.value) };
              replace(error);
            } catch (err) {
              replace(error, `not JSON yet: ${err.message}`);
            }
          } else {
            cell.input = { text: e.target.value };
          }
        },
      });
    }
    const modes = [
      ["inline", `typed (${mediaType})`],
      ["from", "output of an earlier cell"],
      ["dataset", "an uploaded file"],
    ];
    return h(
      "div",
      { class: "input-editor" },
      h(
        "label",
        {},
        "Input ",
        h(
          "select",
          {
            class: "input-mode",
            onchange: (e) => {
              const to = e.target.value;
              // A dataset cell has no file until one is uploaded; run or save before then and the
              // server names the cell and the field.
              cell.input = to === "from" ? { from: earlier[earlier.length - 1] ?? "" } : to === "dataset" ? { blob: null } : { text: "" };
              this.renderCells();
            },
          },
          modes.map(([value, label]) =>
            h("option", { value, selected: value === mode, disabled: value === "from" && earlier.length === 0 }, label),
          ),
        ),
      ),
      body,
      error,
    );
  }

  /** What a cell with no grants grants: the module's imports within what the policy allows. */
  defaultGrants(cell) {
    if (cell.type === "code") return null;
    const kernel = this.entryOf(this.doc.kernels[cell.kernel]);
    if (!kernel) return null;
    const allowed = this.policy.allowed_imports;
    return kernel.kernel.imports
      .filter((i) => i.module !== "kiln")
      .filter((i) => allowed[i.module] && (allowed[i.module].includes("*") || allowed[i.module].includes(i.name)))
      .map((i) => `${i.module}.${i.name}`);
  }

  grantsEditor(cell) {
    const defaults = this.defaultGrants(cell);
    const named = Array.isArray(cell.grants);
    const list = h("textarea", {
      class: "grants-list",
      rows: 3,
      hidden: !named,
      value: (cell.grants ?? []).join("\n"),
      placeholder: "one per line: MODULE.FUNCTION or MODULE.*",
      oninput: (e) => {
        cell.grants = e.target.value.split("\n").map((s) => s.trim()).filter(Boolean);
      },
    });
    return h(
      "details",
      { class: "grants" },
      h(
        "summary",
        {},
        "Grants: ",
        named
          ? `${cell.grants.length} named`
          : defaults === null
            ? "what the module imports, within the policy"
            : `what the module imports, within the policy (${defaults.length})`,
      ),
      !named && defaults ? h("ul", { class: "default-grants" }, defaults.map((g) => h("li", {}, h("code", {}, g)))) : null,
      h(
        "label",
        {},
        h("input", {
          type: "checkbox",
          class: "name-grants",
          checked: named,
          onchange: (e) => {
            if (e.target.checked) cell.grants = defaults ?? [];
            else delete cell.grants;
            this.renderCells();
          },
        }),
        " name the grants myself",
      ),
      list,
      h(
        "p",
        { class: "muted" },
        "The policy allows: ",
        Object.entries(this.policy.allowed_imports).map(([module, names]) => `${module}.{${names.join(", ")}}`).join("; "),
      ),
    );
  }

  limitsEditor(cell) {
    const defaults = this.policy.default_limits;
    const maxima = this.policy.max_limits;
    return h(
      "details",
      { class: "limits" },
      h(
        "summary",
        {},
        "Limits: ",
        LIMITS.map(([key, label, show]) => `${label} ${show(cell.limits?.[key] ?? defaults[key])}`).join(" · "),
      ),
      h(
        "div",
        { class: "limit-fields" },
        LIMITS.map(([key, label, show]) =>
          h(
            "label",
            {},
            `${label} `,
            h("input", {
              type: "number",
              min: 1,
              max: maxima[key],
              class: `limit-${key}`,
              value: cell.limits?.[key] ?? "",
              placeholder: `default ${defaults[key]}`,
              oninput: (e) => {
                const value = e.target.value === "" ? null : Number(e.target.value);
                const limits = { ...(cell.limits ?? {}) };
                if (value === null) delete limits[key];
                else limits[key] = value;
                if (Object.keys(limits).length) cell.limits = limits;
                else delete cell.limits;
              },
            }),
            h("span", { class: "muted" }, ` max ${show(maxima[key])}`),
          ),
        ),
      ),
    );
  }

  kernelCell(cell, index) {
    const view = this.cellView(cell);
    const idInput = this.cellIdInput(cell);
    const run = h("button", { class: "run-cell", onclick: () => this.run(cell.id) }, "Run cell");
    return h(
      "section",
      { class: "cell kernel-cell", "data-cell": cell.id, "data-index": index },
      this.cellTools(index, [run]),
      h("div", { class: "cell-head" }, idInput, this.kernelPicker(cell, index), this.entryPicker(cell), view.status),
      this.inputEditor(cell, index),
      h("div", { class: "cell-settings" }, this.grantsEditor(cell), this.limitsEditor(cell)),
      view.reasons,
      view.output,
      view.telemetry,
    );
  }

  /** The parts of a runnable cell that a run updates, kept under the cell's id. */
  cellView(cell, extra = {}) {
    const view = {
      status: h("span", { class: "cell-status" }, ""),
      reasons: h("ul", { class: "cell-reasons" }),
      output: h("div", { class: "cell-output" }),
      telemetry: h("div", { class: "cell-telemetry" }),
      chunks: [],
      ...extra,
    };
    this.views.set(cell.id, view);
    return view;
  }

  /** The field that renames a cell; cells reading its output follow the new name. */
  cellIdInput(cell) {
    return h("input", {
      class: "cell-id",
      value: cell.id,
      size: 14,
      title: "The cell's id (a-z, 0-9, - and _)",
      onchange: (e) => {
        const old = cell.id;
        cell.id = e.target.value.trim();
        for (const other of this.doc.cells) if (other.input?.from === old) other.input = { from: cell.id };
        this.renderCells();
      },
    });
  }

  codeCell(cell, index) {
    const view = this.cellView(cell, { editor: h("div", { class: "code-slot" }, sourceEditor(cell)) });
    const media = (field, label) =>
      h(
        "label",
        {},
        `${label} `,
        h("input", {
          class: `code-${field.replace("_", "-")}`,
          value: cell[field],
          size: 18,
          onchange: (e) => {
            cell[field] = e.target.value.trim();
          },
        }),
      );
    const lockState = h("span", { class: "dependency-state muted" }, Object.keys(cell.dependencies ?? {}).length ? "locked" : "");
    const deps = h("textarea", {
      class: "code-dependencies",
      rows: 2,
      spellcheck: "false",
      placeholder: 'serde_json = "1"   (approved crates only)',
      value: dependencyLines(cell),
      onchange: async (e) => {
        replace(lockState, "locking…");
        const problems = await lockDependencies(cell, e.target.value);
        const locked = Object.entries(cell.dependencies).map(([name, d]) => `${name} ${d.version}`);
        replace(lockState, problems.length ? problems.join("; ") : `locked: ${locked.join(", ") || "none"}`);
        lockState.className = `dependency-state ${problems.length ? "status-error" : "muted"}`;
      },
    });
    const run = h("button", { class: "run-cell", onclick: () => this.run(cell.id) }, "Run cell");
    const idInput = this.cellIdInput(cell);
    return h(
      "section",
      { class: "cell code-cell", "data-cell": cell.id, "data-index": index },
      this.cellTools(index, [run]),
      h("div", { class: "cell-head" }, idInput, h("span", { class: "muted" }, "Rust, built against approved crates"), media("input_type", "in"), media("output_type", "out"), view.status),
      view.editor,
      h("details", { class: "dependencies", open: Object.keys(cell.dependencies ?? {}).length > 0 }, h("summary", {}, "Dependencies "), deps, lockState),
      this.inputEditor(cell, index),
      h("div", { class: "cell-settings" }, this.grantsEditor(cell), this.limitsEditor(cell)),
      view.reasons,
      view.output,
      view.telemetry,
    );
  }

  setCellStatus(id, status, title = null) {
    const view = this.views.get(id);
    if (!view) return;
    view.status.className = `cell-status state-${status.replace(/\s+/g, "-")}`;
    view.status.textContent = status;
    view.status.title = title ?? "";
    // The states a cell went through in its latest run (each once in a row), for people and
    // tests reading the page; a run starts them afresh.
    const section = view.status.closest("section");
    if (section) {
      const states = (section.dataset.states ?? "").split(" ").filter(Boolean);
      if (states[states.length - 1] !== status) states.push(status);
      section.dataset.states = states.join(" ");
    }
  }

  showTelemetry(id, metrics) {
    const view = this.views.get(id);
    if (!view) return;
    const price = this.policy.fuel_price;
    const metered = metrics.fuel !== null && metrics.fuel !== undefined;
    const cost = price && metered ? ` · cost ${((metrics.fuel / 1e9) * price.per_billion).toPrecision(3)} ${price.currency}` : "";
    const fuel = metered ? `fuel ${count(metrics.fuel)}` : "fuel not metered (run in this browser)";
    replace(
      view.telemetry,
      `${fuel} · wall ${(metrics.wall_us / 1000).toFixed(2)} ms · peak memory ${bytes(metrics.peak_memory_bytes)} · output ${bytes(metrics.output_bytes)}${cost}`,
    );
  }

  async showOutput(id, record) {
    const view = this.views.get(id);
    if (!view) return;
    const cell = this.doc.cells.find((c) => c.id === id);
    const mediaType = cell ? this.entryPoint(cell)?.output : null;
    let data;
    if (view.chunks.length) {
      const total = view.chunks.reduce((n, c) => n + c.length, 0);
      data = new Uint8Array(total);
      let at = 0;
      for (const chunk of view.chunks) {
        data.set(chunk, at);
        at += chunk.length;
      }
    } else if (record.output) {
      // Large outputs are not streamed: fetched by digest.
      data = await getBytes(`/v1/outputs/${record.output}`);
    } else {
      return;
    }
    replace(view.output, h("div", { class: "output-meta" }, mediaType ?? "output", " · ", shortDigest(record.output)), renderOutput(mediaType, data));
  }

  onEvent(event) {
    switch (event.event) {
      case "build":
        this.setCellStatus(event.cell, event.cached && event.stage === "signed" ? "cached" : event.stage, event.cached ? "built before, by any executor" : "");
        break;
      case "preflight":
        for (const cell of event.preflight.cells) this.setCellStatus(cell.id, "queued", `grants: ${cell.grants.join(", ") || "none"}`);
        break;
      case "blocked":
        for (const cell of event.preflight.cells) {
          const view = this.views.get(cell.id);
          if (cell.allow) {
            this.setCellStatus(cell.id, "not run", "another cell is blocked, so nothing ran");
            continue;
          }
          this.setCellStatus(cell.id, "blocked");
          if (view) {
            replace(
              view.reasons,
              cell.reasons.map((r) =>
                h("li", { class: "reason", "data-code": r.code }, h("strong", {}, REASONS[r.code] ?? r.code), " ", r.message, " ", h("code", {}, r.code)),
              ),
              cell.diagnostics?.length ? diagnosticsList(cell.diagnostics) : null,
            );
            const source = this.doc.cells.find((c) => c.id === cell.id && c.type === "code");
            if (source && view.editor && cell.diagnostics?.length) replace(view.editor, sourceEditor(source, cell.diagnostics));
          }
        }
        this.setStatus("Blocked by preflight: nothing ran.", "error");
        break;
      case "cell-started": {
        this.setCellStatus(event.cell, "running");
        const view = this.views.get(event.cell);
        if (view) view.chunks = [];
        break;
      }
      case "output": {
        const view = this.views.get(event.cell);
        if (view) {
          view.chunks.push(chunkBytes(event));
          replace(view.output, h("pre", { class: "output-text streaming" }, `${count(view.chunks.reduce((n, c) => n + c.length, 0))} bytes so far…`));
        }
        break;
      }
      case "cell-finished": {
        const record = event.cell;
        this.setCellStatus(record.id, record.status);
        this.showTelemetry(record.id, record.metrics);
        const view = this.views.get(record.id);
        if (record.error && view) {
          replace(view.reasons, h("li", { class: "reason", "data-code": record.error.code }, h("strong", {}, record.error.code), " ", record.error.message));
        }
        if (record.status === "ok") {
          this.showOutput(record.id, record).catch((err) => view && replace(view.output, `could not show the output: ${err.message}`));
        }
        break;
      }
      case "run-finished": {
        const ok = event.record.cells.every((c) => c.status === "ok");
        this.setStatus(`Run ${event.id} finished${ok ? "" : " with errors"}.`, ok ? "ok" : "error");
        this.lastRun = event.id;
        break;
      }
      case "error": {
        this.setStatus(event.message, "error");
        const at = /^cell `([^`]+)`/.exec(event.message);
        const view = at && this.views.get(at[1]);
        if (view) {
          this.setCellStatus(at[1], "error");
          replace(view.reasons, h("li", { class: "reason" }, event.message));
        }
        break;
      }
      default:
        break;
    }
  }

  /** Runs every cell (`only` null) or one cell with the cells its input comes from. */
  async run(only) {
    if (this.running) return;
    const doc = only === null ? tidy(this.doc) : withInputs(this.doc, only);
    for (const cell of doc.cells) {
      if (!runs(cell)) continue;
      const section = this.views.get(cell.id)?.status.closest("section");
      if (section) section.dataset.states = "";
      this.setCellStatus(cell.id, "queued");
      const view = this.views.get(cell.id);
      if (view) {
        replace(view.reasons);
        replace(view.output);
        replace(view.telemetry);
        view.chunks = [];
      }
    }
    this.running = true;
    this.setStatus("Running…");
    // A comparison shown beside belongs to the run before this one.
    if (this.side.querySelector("#agreement")) replace(this.side);
    const started = performance.now();
    const inBrowser = document.getElementById("run-where")?.value === "browser";
    try {
      const deterministic = document.getElementById("deterministic")?.checked;
      const seed = deterministic ? crypto.getRandomValues(new Uint32Array(1))[0] : null;
      if (inBrowser) {
        const { record } = await runInBrowser(doc, { seed, policy: this.policy, onEvent: (event) => this.onEvent(event) });
        if (record) this.offerServerCheck(doc, record);
      } else {
        await streamRun(doc, { notebookId: this.id, seed, onEvent: (event) => this.onEvent(event) });
      }
      this.lastRunMs = performance.now() - started;
      document.body.dataset.lastRunMs = String(Math.round(this.lastRunMs));
    } catch (err) {
      this.setStatus(err.message ?? String(err), "error");
    } finally {
      this.running = false;
    }
  }

  /** After a browser run: a button that runs the same notebook on the server with the same seed. */
  offerServerCheck(doc, record) {
    const button = h(
      "button",
      {
        id: "check-on-server",
        onclick: async () => {
          button.disabled = true;
          try {
            await this.checkOnServer(doc, record);
          } catch (err) {
            this.setStatus(err.message, "error");
          } finally {
            button.disabled = false;
          }
        },
      },
      "Check on the server",
    );
    replace(
      this.statusLine,
      h("span", { class: record.cells.every((c) => c.status === "ok") ? "status-ok" : "status-error" }, "Ran in this browser. "),
      record.seed !== null ? button : h("span", { class: "muted" }, "Turn on deterministic to compare with the server."),
    );
  }

  /** Runs `doc` on the server with the browser run's seed and shows the outputs cell by cell. */
  async checkOnServer(doc, record) {
    const query = new URLSearchParams({ seed: String(record.seed), notebook: this.id });
    const response = await request("POST", `/v1/runs?${query}`, { json: doc });
    const server = await response.json();
    const byId = new Map(server.record.cells.map((c) => [c.id, c]));
    const rows = record.cells.map((cell) => {
      const other = byId.get(cell.id);
      const matches = cell.output !== null && cell.output === other?.output;
      return { id: cell.id, browser: cell.output, server: other?.output ?? null, matches };
    });
    const all = rows.every((r) => r.matches);
    replace(
      this.side,
      h("h2", {}, "This browser against the server"),
      h("p", { id: "agreement-verdict", class: all ? "status-ok" : "status-error" }, all ? "every output matches" : "some outputs differ"),
      h("p", { class: "muted" }, `Seed ${record.seed}; the server's run is ${server.id}.`),
      h(
        "table",
        { class: "list", id: "agreement" },
        h("thead", {}, h("tr", {}, ["cell", "in this browser", "on the server", ""].map((t) => h("th", {}, t)))),
        h(
          "tbody",
          {},
          rows.map((r) =>
            h(
              "tr",
              { "data-cell": r.id },
              h("td", {}, r.id),
              h("td", { title: r.browser ?? "" }, shortDigest(r.browser)),
              h("td", { title: r.server ?? "" }, shortDigest(r.server)),
              h("td", { class: r.matches ? "state-ok" : "state-error" }, r.matches ? "same" : "differs"),
            ),
          ),
        ),
      ),
    );
    this.side.scrollIntoView({ block: "start" });
  }

  /** The trust file browser runs verify with, its digest, and whether this page trusts it. */
  async showTrust() {
    const trust = await loadTrust();
    const changed = trust.pinned && trust.pinned !== trust.digest;
    replace(
      this.side,
      h("h2", {}, "Trust"),
      h(
        "p",
        {},
        "Browser runs verify every kernel against this trust file before it runs: ",
        h("code", { id: "trust-digest" }, trust.digest),
      ),
      changed
        ? h(
            "p",
            { class: "status-error", id: "trust-changed" },
            `It changed: this page trusted ${trust.pinned}. `,
            h(
              "button",
              {
                id: "trust-new",
                onclick: () => {
                  pinTrust(trust.digest);
                  this.showTrust();
                },
              },
              "Trust the new file",
            ),
          )
        : h("p", { class: "muted" }, trust.pinned ? "This page trusts it." : "This page will trust it at its first browser run."),
      h("pre", { class: "trust-file", id: "trust-file" }, trust.text),
    );
    this.side.scrollIntoView({ block: "start" });
  }

  async save() {
    const notebook = tidy(this.doc);
    try {
      const version = await sendJson("PUT", `/v1/notebooks/${encodeURIComponent(this.id)}`, { parent: this.head, notebook });
      this.head = version.digest;
      this.doc = notebook;
      this.setStatus(`Saved version ${version.digest.slice(7, 19)}.`, "ok");
    } catch (err) {
      if (err.status === 409) {
        this.setStatus(`${err.message}. Your edits are still here: open History to compare, then save again on top of the newest version.`, "error");
      } else {
        this.setStatus(err.message, "error");
      }
    }
  }

  /** Loads `notebook` (an old version) into the editor, to be saved on top of the newest. */
  restore(notebook) {
    this.doc = notebook;
    this.renderCells();
    this.setStatus("Restored an old version into the editor; Save makes it the newest.", "info");
  }

  async reloadHead() {
    const loaded = await getJson(`/v1/notebooks/${encodeURIComponent(this.id)}`);
    this.head = loaded.version.digest;
    return loaded;
  }
}
