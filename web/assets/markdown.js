// Markdown cells, rendered into DOM nodes (never through HTML): headings, paragraphs, lists,
// block quotes, fenced code, rules, and inline code, emphasis, strong emphasis and links. Raw
// HTML in a cell shows as the text it is.

import { h } from "./dom.js";

/** Inline spans: `code`, **strong**, *emphasis*, [text](url). */
function inline(text) {
  const nodes = [];
  const pattern = /(`[^`]+`)|(\*\*[^*]+\*\*)|(\*[^*\s][^*]*\*|_[^_\s][^_]*_)|(\[[^\]]+\]\([^)\s]+\))/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    if (match.index > last) nodes.push(text.slice(last, match.index));
    const [token] = match;
    if (match[1]) {
      nodes.push(h("code", {}, token.slice(1, -1)));
    } else if (match[2]) {
      nodes.push(h("strong", {}, inline(token.slice(2, -2))));
    } else if (match[3]) {
      nodes.push(h("em", {}, inline(token.slice(1, -1))));
    } else {
      const [, label, href] = /^\[([^\]]+)\]\(([^)\s]+)\)$/.exec(token);
      // Only web links and links within the page: no javascript: or data: URLs.
      nodes.push(
        /^(https?:|#|\/)/.test(href)
          ? h("a", { href, rel: "noopener noreferrer", target: "_blank" }, inline(label))
          : label,
      );
    }
    last = match.index + token.length;
  }
  if (last < text.length) nodes.push(text.slice(last));
  return nodes;
}

/** Renders Markdown `source` into a `div.markdown`. */
export function renderMarkdown(source) {
  const root = h("div", { class: "markdown" });
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (!line.trim()) {
      i += 1;
      continue;
    }
    const fence = /^```(.*)$/.exec(line);
    if (fence) {
      const code = [];
      i += 1;
      while (i < lines.length && !lines[i].startsWith("```")) code.push(lines[i++]);
      i += 1;
      root.append(h("pre", {}, h("code", { "data-lang": fence[1].trim() || null }, code.join("\n"))));
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      root.append(h(`h${heading[1].length}`, {}, inline(heading[2])));
      i += 1;
      continue;
    }
    if (/^(\*\s*){3,}$|^(-\s*){3,}$/.test(line.trim())) {
      root.append(h("hr"));
      i += 1;
      continue;
    }
    if (line.startsWith(">")) {
      const quoted = [];
      while (i < lines.length && lines[i].startsWith(">")) quoted.push(lines[i++].replace(/^>\s?/, ""));
      const quote = renderMarkdown(quoted.join("\n"));
      root.append(h("blockquote", {}, [...quote.childNodes]));
      continue;
    }
    const item = /^(\s*)([-*+]|\d+[.)])\s+(.*)$/;
    if (item.test(line)) {
      const ordered = /\d/.test(item.exec(line)[2]);
      const list = h(ordered ? "ol" : "ul");
      while (i < lines.length && item.test(lines[i])) {
        list.append(h("li", {}, inline(item.exec(lines[i])[3])));
        i += 1;
      }
      root.append(list);
      continue;
    }
    const paragraph = [];
    while (
      i < lines.length &&
      lines[i].trim() &&
      !/^(#{1,6}\s|```|>)/.test(lines[i]) &&
      !item.test(lines[i])
    ) {
      paragraph.push(lines[i++].trim());
    }
    root.append(h("p", {}, inline(paragraph.join(" "))));
  }
  return root;
}
