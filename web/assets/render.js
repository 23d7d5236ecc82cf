// Kernel outputs, rendered by media type: JSON as a collapsible tree (arrays of records as
// tables), CSV and TSV as tables, PNG, SVG, JPEG and GIF as pictures, anything else as text. Output is
// never markup: text goes into text nodes, and a picture is shown from a blob: URL in an <img>,
// where an SVG's scripts do not run.

import { h } from "./dom.js";

/** The most rows a table shows; the rest are counted. */
const MAX_ROWS = 500;
const IMAGE_TYPES = ["image/png", "image/svg+xml", "image/jpeg", "image/gif"];

const decoder = new TextDecoder("utf-8", { fatal: true });

function text(bytes) {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

function isRecord(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Whether `value` is a non-empty array of objects (a table's rows). */
function isRecords(value) {
  return Array.isArray(value) && value.length > 0 && value.every(isRecord);
}

function cell(value) {
  if (value === null || value === undefined) return h("td", { class: "null" }, "");
  if (typeof value === "object") return h("td", {}, JSON.stringify(value));
  // Fractions to 6 significant digits, so a mean does not widen its column; the exact value is
  // in the title.
  if (typeof value === "number" && !Number.isInteger(value)) {
    return h("td", { class: "number", title: String(value) }, String(Number(value.toPrecision(6))));
  }
  return h("td", { class: typeof value }, String(value));
}

/** A table of `rows` (arrays) under `header`. */
export function table(header, rows) {
  const shown = rows.slice(0, MAX_ROWS);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "output-table" },
      h("thead", {}, h("tr", {}, header.map((name) => h("th", {}, String(name))))),
      h("tbody", {}, shown.map((row) => h("tr", {}, row.map(cell)))),
    ),
    rows.length > MAX_ROWS ? h("p", { class: "muted" }, `${rows.length - MAX_ROWS} more rows`) : null,
  );
}

function recordsTable(records) {
  const header = [];
  for (const record of records) for (const key of Object.keys(record)) if (!header.includes(key)) header.push(key);
  return table(header, records.map((record) => header.map((key) => record[key])));
}

/** A JSON value as a tree of <details>; arrays of records become tables. */
export function jsonTree(value, label = null) {
  const key = label === null ? null : h("span", { class: "json-key" }, `${label}: `);
  if (isRecords(value)) {
    return h("details", { open: true, class: "json" }, h("summary", {}, key, `[${value.length} records]`), recordsTable(value));
  }
  if (Array.isArray(value) || isRecord(value)) {
    const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    const summary = Array.isArray(value) ? `[${value.length} items]` : `{${entries.length} keys}`;
    return h(
      "details",
      { open: true, class: "json" },
      h("summary", {}, key, summary),
      h("div", { class: "json-children" }, entries.map(([k, v]) => jsonTree(v, k))),
    );
  }
  const kind = value === null ? "null" : typeof value;
  return h("div", { class: "json-leaf" }, key, h("span", { class: `json-${kind}` }, JSON.stringify(value)));
}

/** Parses CSV (RFC 4180: quoted fields, "" for a quote, CRLF or LF) into rows. */
export function parseCsv(source) {
  const rows = [];
  let row = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < source.length; i += 1) {
    const c = source[i];
    if (quoted) {
      if (c === '"' && source[i + 1] === '"') {
        field += '"';
        i += 1;
      } else if (c === '"') {
        quoted = false;
      } else {
        field += c;
      }
    } else if (c === '"') {
      quoted = true;
    } else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && source[i + 1] === "\n") i += 1;
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
    } else {
      field += c;
    }
  }
  if (field || row.length) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Renders an output of `mediaType` (its base type decides; parameters are ignored). */
export function renderOutput(mediaType, bytes) {
  const type = (mediaType || "application/octet-stream").split(";")[0].trim().toLowerCase();
  if (IMAGE_TYPES.includes(type)) {
    const url = URL.createObjectURL(new Blob([bytes], { type }));
    return h("img", { class: "output-image", src: url, alt: `${type} output, ${bytes.length} bytes` });
  }
  const source = text(bytes);
  if (source === null) {
    const hex = Array.from(bytes.slice(0, 64), (b) => b.toString(16).padStart(2, "0")).join(" ");
    return h("div", { class: "output-binary" }, h("p", {}, `${bytes.length} bytes of ${type}`), h("pre", {}, hex));
  }
  if (type === "application/json" || type.endsWith("+json")) {
    try {
      return h("div", { class: "output-json" }, jsonTree(JSON.parse(source)));
    } catch {
      // Not JSON after all: shown as text below.
    }
  }
  if (type === "text/csv") {
    const rows = parseCsv(source);
    if (rows.length > 0) return table(rows[0], rows.slice(1));
  }
  if (type === "text/tab-separated-values") {
    const rows = source.split(/\r?\n/).filter((line) => line.length > 0).map((line) => line.split("\t"));
    if (rows.length > 0) return table(rows[0], rows.slice(1));
  }
  return h("pre", { class: "output-text" }, source);
}
