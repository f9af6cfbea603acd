// Just enough Markdown for model cards (headings, paragraphs, lists, tables, code blocks, `code`, **bold**),
// built as DOM nodes with textContent, so text from card.md can never inject markup.

function inline(parent, text) {
  const pattern = /(`[^`]+`|\*\*[^*]+\*\*)/g;
  let last = 0;
  for (const match of text.matchAll(pattern)) {
    parent.append(text.slice(last, match.index));
    const token = match[0];
    const node = document.createElement(token.startsWith("`") ? "code" : "strong");
    node.textContent = token.startsWith("`") ? token.slice(1, -1) : token.slice(2, -2);
    parent.append(node);
    last = match.index + token.length;
  }
  parent.append(text.slice(last));
  return parent;
}

const BLOCK_START = /^(#{1,6} |\||```|> |\s*[-*] )/;

function cells(line) {
  return line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
}

function table(lines) {
  const node = document.createElement("table");
  const head = node.createTHead().insertRow();
  for (const cell of cells(lines[0])) inline(head.appendChild(document.createElement("th")), cell);
  const body = node.createTBody();
  for (const line of lines.slice(2)) {
    const row = body.insertRow();
    for (const cell of cells(line)) inline(row.insertCell(), cell);
  }
  return node;
}

/** A DocumentFragment for `source`; headings are shifted down by `shift` levels to fit the page. */
export function renderMarkdown(source, shift = 2) {
  const fragment = document.createDocumentFragment();
  const lines = source.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (line.startsWith("```")) {
      const code = [];
      for (i += 1; i < lines.length && !lines[i].startsWith("```"); i += 1) code.push(lines[i]);
      i += 1;
      const pre = document.createElement("pre");
      pre.textContent = code.join("\n");
      fragment.append(pre);
    } else if (/^#{1,6} /.test(line)) {
      const level = Math.min(6, line.indexOf(" ") + shift);
      fragment.append(inline(document.createElement(`h${level}`), line.replace(/^#+ /, "")));
      i += 1;
    } else if (line.startsWith("|")) {
      const rows = [];
      for (; i < lines.length && lines[i].startsWith("|"); i += 1) rows.push(lines[i]);
      fragment.append(table(rows));
    } else if (/^\s*[-*] /.test(line)) {
      const list = document.createElement("ul");
      for (; i < lines.length && /^\s*[-*] /.test(lines[i]); i += 1) {
        inline(list.appendChild(document.createElement("li")), lines[i].replace(/^\s*[-*] /, ""));
      }
      fragment.append(list);
    } else if (line.startsWith("> ")) {
      const quote = document.createElement("blockquote");
      for (; i < lines.length && lines[i].startsWith("> "); i += 1) inline(quote, `${lines[i].slice(2)} `);
      fragment.append(quote);
    } else if (line.trim() === "") {
      i += 1;
    } else {
      const text = [line];
      for (i += 1; i < lines.length && lines[i].trim() !== "" && !BLOCK_START.test(lines[i]); i += 1) {
        text.push(lines[i]);
      }
      fragment.append(inline(document.createElement("p"), text.join(" ")));
    }
  }
  return fragment;
}
