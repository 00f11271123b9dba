#!/usr/bin/env node
// Offline checks of dealbridge's Salesforce package, run by scripts/check-salesforce-package.sh
// after `sf project convert source` succeeded:
//
//   1. every .cls and .trigger parses (@apexdevtools/apex-parser), and has its -meta.xml;
//   2. every *-meta.xml is well-formed and matches the Metadata API's types as
//      @salesforce/types declares them (generated from the Metadata WSDL): each element is known
//      to its parent's type and comes in the WSDL's order (a deploy refuses an element out of
//      sequence), required elements are present, enumerations hold one of their values,
//      booleans and numbers parse.
//
// Usage: node scripts/check-package.mjs <package directory>...
// Errors are printed as <file>:<line>:<column>: <message>; the exit code is 1 if there was any.

import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative, basename } from "node:path";
import { createRequire } from "node:module";
import { ApexParserFactory, ApexErrorListener } from "@apexdevtools/apex-parser";

const require = createRequire(import.meta.url);
const METADATA_NS = "http://soap.sforce.com/2006/04/metadata";

const errors = [];
const report = (file, line, column, message) =>
  errors.push(`${relative(process.cwd(), file)}:${line}:${column}: ${message}`);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else out.push(path);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// 1. Apex

class Collect extends ApexErrorListener {
  constructor(file) {
    super();
    this.file = file;
  }
  apexSyntaxError(line, column, msg) {
    report(this.file, line, column + 1, `Apex syntax error: ${msg}`);
  }
}

function checkApex(file) {
  const source = readFileSync(file, "utf8");
  const { parser } = ApexParserFactory.createLexerAndParser(source, new Collect(file));
  if (file.endsWith(".trigger")) parser.triggerUnit();
  else parser.compilationUnit();
  if (!existsSync(`${file}-meta.xml`)) report(file, 1, 1, `no ${basename(file)}-meta.xml beside it`);
}

// ---------------------------------------------------------------------------------------------
// 2. Metadata XML

/** The Metadata API's types: name -> {base, props: [{name, type, array, optional}]}, enums. */
function loadMetadataTypes() {
  const path = require.resolve("@salesforce/types/metadata").replace(/\.js$/, ".d.ts");
  const lines = readFileSync(path, "utf8").split("\n");
  const types = new Map();
  const enums = new Map();
  let current = null;
  for (const line of lines) {
    let m;
    if (current) {
      if (/^};/.test(line)) {
        current = null;
      } else if ((m = /^\s+(\w+)(\?)?: (.+);$/.exec(line))) {
        let type = m[3].trim();
        const array = type.endsWith("[]");
        if (array) type = type.slice(0, -2);
        current.props.push({ name: m[1], type, array, optional: Boolean(m[2]) });
      }
    } else if ((m = /^export type (\w+) = (?:(\w+) & )?\{$/.exec(line))) {
      current = { base: m[2] ?? null, props: [] };
      types.set(m[1], current);
    } else if ((m = /^export type (\w+) = ('.*');$/.exec(line))) {
      enums.set(m[1], new Set([...m[2].matchAll(/'([^']*)'/g)].map((x) => x[1])));
    } else if ((m = /^export type (\w+) = (\w+);$/.exec(line))) {
      // An alias (WorkflowAction = string): a type with Metadata's fields only.
      types.set(m[1], { base: "Metadata", props: [] });
    }
  }
  if (!types.has("CustomField") || !types.has("Flow") || !enums.has("FieldType")) {
    throw new Error(`could not read the Metadata API types from ${path}`);
  }
  return { types, enums };
}

/** Every prop of a type, its bases' first (the WSDL's extension order). */
function propsOf(types, name) {
  const t = types.get(name);
  if (!t) return null;
  const base = t.base ? propsOf(types, t.base) ?? [] : [];
  return [...base, ...t.props];
}

/** A small XML reader that keeps line and column numbers: elements, attributes, text. */
function parseXml(file, text) {
  let i = 0;
  let line = 1;
  let col = 1;
  const advance = (n) => {
    for (let k = 0; k < n; k++) {
      if (text[i] === "\n") {
        line++;
        col = 1;
      } else col++;
      i++;
    }
  };
  const fail = (message) => {
    throw Object.assign(new Error(message), { line, col });
  };
  const decode = (s) =>
    s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (_, e) =>
      e === "amp" ? "&" : e === "lt" ? "<" : e === "gt" ? ">" : e === "quot" ? '"' : e === "apos" ? "'"
        : String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)));
  const root = { name: "#document", children: [], text: "" };
  const stack = [root];
  while (i < text.length) {
    const top = stack[stack.length - 1];
    if (text.startsWith("<?", i)) {
      const end = text.indexOf("?>", i);
      if (end < 0) fail("unterminated processing instruction");
      advance(end + 2 - i);
    } else if (text.startsWith("<!--", i)) {
      const end = text.indexOf("-->", i);
      if (end < 0) fail("unterminated comment");
      advance(end + 3 - i);
    } else if (text.startsWith("<![CDATA[", i)) {
      const end = text.indexOf("]]>", i);
      if (end < 0) fail("unterminated CDATA section");
      top.text += text.slice(i + 9, end);
      advance(end + 3 - i);
    } else if (text.startsWith("<!", i)) {
      fail("DOCTYPE and other declarations are not metadata");
    } else if (text.startsWith("</", i)) {
      const m = /^<\/([\w:.-]+)\s*>/.exec(text.slice(i));
      if (!m) fail("malformed end tag");
      if (stack.length === 1 || top.name !== m[1]) {
        fail(`</${m[1]}> does not close <${top.name}>`);
      }
      stack.pop();
      advance(m[0].length);
    } else if (text[i] === "<") {
      const m = /^<([\w:.-]+)((?:\s+[\w:.-]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(\/?)>/.exec(text.slice(i));
      if (!m) fail("malformed start tag");
      const attrs = {};
      for (const a of m[2].matchAll(/([\w:.-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        attrs[a[1]] = decode(a[2] ?? a[3]);
      }
      const el = { name: m[1], attrs, children: [], text: "", line, col };
      if (stack.length === 1 && root.children.length > 0) fail("more than one root element");
      top.children.push(el);
      if (!m[3]) stack.push(el);
      advance(m[0].length);
    } else {
      const next = text.indexOf("<", i);
      const end = next < 0 ? text.length : next;
      const chunk = text.slice(i, end);
      if (stack.length === 1 && chunk.trim()) fail("text outside the root element");
      top.text += decode(chunk);
      advance(end - i);
    }
  }
  if (stack.length > 1) fail(`<${stack[stack.length - 1].name}> is never closed`);
  if (root.children.length !== 1) fail("no root element");
  return root.children[0];
}

const PRIMITIVES = new Set(["string", "number", "boolean", "Date", "any"]);

function checkElement(meta, file, el, typeName, path) {
  const { types, enums } = meta;
  const where = `${path} (${typeName})`;
  if (PRIMITIVES.has(typeName) || enums.has(typeName)) {
    if (el.children.length) {
      report(file, el.children[0].line, el.children[0].col, `${where} holds a value, not <${el.children[0].name}>`);
      return;
    }
    const value = el.text.trim();
    if (typeName === "boolean" && value !== "true" && value !== "false") {
      report(file, el.line, el.col, `${where} must be true or false, not "${value}"`);
    } else if (typeName === "number" && !/^-?\d+(\.\d+)?$/.test(value)) {
      report(file, el.line, el.col, `${where} must be a number, not "${value}"`);
    } else if (enums.has(typeName) && !enums.get(typeName).has(value)) {
      report(file, el.line, el.col, `${where} must be one of ${[...enums.get(typeName)].join(", ")}; not "${value}"`);
    }
    return;
  }
  const props = propsOf(types, typeName);
  if (!props) {
    report(file, el.line, el.col, `${where}: no such Metadata API type`);
    return;
  }
  if (el.text.trim()) report(file, el.line, el.col, `${where} holds elements, not text "${el.text.trim().slice(0, 40)}"`);
  let last = -1;
  let lastName = null;
  const seen = new Set();
  for (const child of el.children) {
    const index = props.findIndex((p) => p.name === child.name);
    if (index < 0) {
      report(file, child.line, child.col, `<${child.name}> is not an element of ${typeName} (${path})`);
      continue;
    }
    const prop = props[index];
    if (index < last) {
      report(file, child.line, child.col, `<${child.name}> must come before <${lastName}> in ${typeName}: the Metadata API reads elements in WSDL order`);
    } else if (index === last && !prop.array) {
      report(file, child.line, child.col, `<${child.name}> appears twice in ${typeName}`);
    }
    if (index >= last) {
      last = index;
      lastName = child.name;
    }
    seen.add(child.name);
    checkElement(meta, file, child, prop.type, `${path}/${child.name}`);
  }
  for (const p of props) {
    if (!p.optional && !p.array && !seen.has(p.name)) {
      report(file, el.line, el.col, `${where} lacks its required <${p.name}>`);
    }
  }
}

function checkMetadataFile(meta, file) {
  let root;
  try {
    root = parseXml(file, readFileSync(file, "utf8"));
  } catch (e) {
    report(file, e.line ?? 1, e.col ?? 1, `malformed XML: ${e.message}`);
    return;
  }
  if (root.attrs.xmlns !== METADATA_NS) {
    report(file, root.line, root.col, `<${root.name}> must be in the namespace ${METADATA_NS}`);
  }
  checkElement(meta, file, root, root.name, root.name);
}

// ---------------------------------------------------------------------------------------------

const dirs = process.argv.slice(2);
if (!dirs.length) {
  console.error("usage: node scripts/check-package.mjs <package directory>...");
  process.exit(2);
}
const meta = loadMetadataTypes();
let apex = 0;
let xml = 0;
for (const dir of dirs) {
  for (const file of walk(dir)) {
    if (file.endsWith(".cls") || file.endsWith(".trigger")) {
      checkApex(file);
      apex++;
    } else if (file.endsWith("-meta.xml")) {
      checkMetadataFile(meta, file);
      xml++;
    }
  }
}
for (const e of errors) console.error(e);
console.log(`check-package: ${apex} Apex file(s) parsed, ${xml} metadata file(s) checked against the Metadata API types, ${errors.length} error(s)`);
process.exit(errors.length ? 1 : 0);
