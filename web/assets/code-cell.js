// Code cells in the editor: Rust source in a textarea over a highlighted copy of itself (the
// text is laid out twice, the copy only colours it), dependencies written as Cargo writes them
// (`serde_json = "1"`) and locked here to the newest approved version the registry's sparse
// index lists, and rustc's messages shown at their line.

import { getBytes } from "./api.js";
import { h, replace } from "./dom.js";

const KEYWORDS = new Set(
  ("as async await break const continue crate dyn else enum extern false fn for if impl in let loop match mod move mut " +
    "pub ref return self Self static struct super trait true type unsafe use where while").split(" "),
);

/** One token pattern per class, tried in order at each position. */
const TOKENS = [
  ["comment", /\/\/[^\n]*|\/\*[\s\S]*?\*\//y],
  ["string", /b?r#*"[\s\S]*?"#*|b?"(?:\\.|[^"\\])*"|b?'(?:\\.|[^'\\])'/y],
  ["lifetime", /'[a-z_][a-z0-9_]*/y],
  ["number", /\b\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?(?:[iuf](?:8|16|32|64|128|size))?\b/y],
  ["macro", /\b[a-z_][a-z0-9_]*!/y],
  ["word", /\b[A-Za-z_][A-Za-z0-9_]*\b/y],
];

/** `source` as highlighted nodes, one `<span class="line">` per line (numbered from 1). */
export function highlightRust(source) {
  const lines = [[]];
  const push = (text, kind) => {
    const parts = text.split("\n");
    parts.forEach((part, n) => {
      if (n > 0) lines.push([]);
      if (part) lines[lines.length - 1].push(kind ? h("span", { class: `tok-${kind}` }, part) : part);
    });
  };
  let at = 0;
  let plain = "";
  while (at < source.length) {
    let matched = null;
    for (const [kind, pattern] of TOKENS) {
      pattern.lastIndex = at;
      const m = pattern.exec(source);
      if (m && m[0].length) {
        matched = [kind, m[0]];
        break;
      }
    }
    if (!matched) {
      plain += source[at];
      at += 1;
      continue;
    }
    const [kind, text] = matched;
    if (plain) {
      push(plain, null);
      plain = "";
    }
    if (kind === "word") {
      push(text, KEYWORDS.has(text) ? "keyword" : /^[A-Z]/.test(text) ? "type" : null);
    } else {
      push(text, kind);
    }
    at += text.length;
  }
  if (plain) push(plain, null);
  return lines.map((parts, n) => h("span", { class: "line", "data-line": n + 1 }, parts, "\n"));
}

/**
 * The source editor of `cell`: a textarea over its highlighted copy; `diagnostics` (rustc's
 * messages placed in the cell) mark their lines.
 */
export function sourceEditor(cell, diagnostics = []) {
  const shown = h("pre", { class: "code-highlight", "aria-hidden": "true" });
  const paint = () => {
    replace(shown, highlightRust(cell.source));
    for (const d of diagnostics) {
      const line = d.line && shown.querySelector(`.line[data-line="${d.line}"]`);
      if (line) {
        line.classList.add("error-line");
        line.title = d.message;
      }
    }
  };
  const input = h("textarea", {
    class: "code-source",
    spellcheck: "false",
    autocapitalize: "off",
    rows: Math.max(4, cell.source.split("\n").length + 1),
    value: cell.source,
    oninput: (e) => {
      cell.source = e.target.value;
      diagnostics = [];
      paint();
    },
    onscroll: (e) => {
      shown.scrollTop = e.target.scrollTop;
      shown.scrollLeft = e.target.scrollLeft;
    },
    onkeydown: (e) => {
      // Tab indents, as in any code editor.
      if (e.key !== "Tab") return;
      e.preventDefault();
      e.target.setRangeText("    ", e.target.selectionStart, e.target.selectionEnd, "end");
      e.target.dispatchEvent(new Event("input"));
    },
  });
  paint();
  return h("div", { class: "code-editor" }, shown, input);
}

/** rustc's messages of a cell's failed build, each at its line. */
export function diagnosticsList(diagnostics) {
  return h(
    "ul",
    { class: "diagnostics" },
    diagnostics.map((d) =>
      h(
        "li",
        { class: "diagnostic", "data-line": d.line ?? "" },
        h("strong", {}, d.line ? `line ${d.line}, column ${d.column}: ` : ""),
        d.message,
        h("pre", { class: "diagnostic-rendered" }, d.rendered),
      ),
    ),
  );
}

/** The path of `name`'s file in a sparse index. */
function indexPath(name) {
  const n = name.toLowerCase();
  if (n.length <= 2) return `${n.length}/${n}`;
  if (n.length === 3) return `3/${n[0]}/${n}`;
  return `${n.slice(0, 2)}/${n.slice(2, 4)}/${n}`;
}

function parseVersion(text) {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(text);
  return m ? m.slice(1, 4).map(Number) : null;
}

/** Whether `version` meets `requirement` (Cargo's default caret, `=`, `*`). */
export function meets(requirement, version) {
  const v = parseVersion(version);
  if (!v) return false;
  const req = requirement.trim();
  if (req === "*" || req === "") return true;
  if (req.startsWith("=")) return req.slice(1).trim() === version;
  const parts = req.replace(/^\^/, "").split(".").map(Number);
  if (parts.some(Number.isNaN)) return false;
  const [major, minor = 0, patch = 0] = parts;
  const cmp = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
  if (cmp(v, [major, minor, patch]) < 0) return false;
  if (major > 0) return v[0] === major;
  if (parts.length === 1) return v[0] === 0;
  if (minor > 0) return v[0] === 0 && v[1] === minor;
  return parts.length === 2 ? v[0] === 0 && v[1] === 0 : cmp(v, [0, 0, patch]) === 0;
}

/** The crate a version still in review depends on in the index, so that nothing resolves it. */
const AWAITING_APPROVAL = "awaiting-kiln-approval";

/** Whether an index line is a version Cargo may choose: approved and not yanked. */
const available = (entry) =>
  !entry.yanked && !(entry.deps ?? []).some((dep) => dep.name === AWAITING_APPROVAL);

/** The newest approved, unyanked version of `name` meeting `requirement`, from the index. */
export async function newestApproved(name, requirement) {
  const text = new TextDecoder().decode(await getBytes(`/index/${indexPath(name)}`));
  const versions = text
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line))
    .filter((entry) => available(entry) && meets(requirement, entry.vers))
    .map((entry) => entry.vers);
  versions.sort((a, b) => {
    const [x, y] = [parseVersion(a), parseVersion(b)];
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  });
  return versions.pop() ?? null;
}

/** `cell.dependencies` as Cargo's lines: `name = "requirement"`. */
export function dependencyLines(cell) {
  return Object.entries(cell.dependencies ?? {})
    .map(([name, dep]) => `${name} = "${dep.requirement ?? dep.version}"`)
    .join("\n");
}

/** Locks the dependencies written as `lines` into `cell`; answers what could not be locked. */
export async function lockDependencies(cell, lines) {
  const dependencies = {};
  const problems = [];
  for (const raw of lines.split("\n")) {
    const line = raw.trim();
    if (!line) continue;
    const m = /^([A-Za-z0-9_-]+)\s*=\s*"([^"]*)"$/.exec(line);
    if (!m) {
      problems.push(`\`${line}\` is not NAME = "REQUIREMENT"`);
      continue;
    }
    const [, name, requirement] = m;
    try {
      const version = await newestApproved(name, requirement);
      if (version) dependencies[name] = { version, requirement };
      else problems.push(`no approved version of ${name} meets "${requirement}"`);
    } catch (err) {
      problems.push(`${name}: not in this registry (${err.message})`);
    }
  }
  cell.dependencies = dependencies;
  return problems;
}
