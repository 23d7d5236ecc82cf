// Building the page from data. Every string goes in as text (a text node or an attribute
// value), never as markup: nothing a kernel, an author or a reviewer wrote is parsed as HTML.

/**
 * An element: `h("button", {class: "primary", onclick: go}, "Run")`. Attributes named `on…`
 * with a function become event listeners; `null`, `undefined` and `false` attributes and children
 * are left out; arrays of children are flattened.
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (name === "value") {
      element.value = value;
    } else if (name === "checked") {
      element.checked = Boolean(value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, children);
  return element;
}

/** Appends children (elements, strings, numbers, nested arrays) to `parent`. */
export function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return parent;
}

/** Replaces everything in `parent` with `children`. */
export function replace(parent, ...children) {
  parent.replaceChildren();
  return append(parent, children);
}

/** A byte count for people: 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** A large count with thousands separated: 1234567 → "1,234,567". */
export function count(n) {
  return n === null || n === undefined ? "–" : Number(n).toLocaleString("en");
}

/** A time for people, from Unix milliseconds. */
export function when(ms) {
  if (!ms) return "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** The first 12 hex digits of a digest, for lists (the whole digest is in the title). */
export function shortDigest(digest) {
  if (!digest) return h("span", {}, "–");
  return h("code", { class: "digest", title: digest }, digest.replace(/^sha256:/, "").slice(0, 12));
}
