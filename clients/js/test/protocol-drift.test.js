// src/protocol.ts is written by hand until it is generated from the Rust types
// (ts-rs); this test reads both and fails when they drift: a struct or field added,
// removed or renamed, a field's optionality or nullability, an enum's variants, the
// client message types, the retryable codes, the topic length.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import ts from "typescript";
import { SwitchboardError, MAX_TOPIC_LEN } from "../dist/index.js";

const RUST = new URL("../../../app/src/protocol/", import.meta.url);
const rust = (f) => readFileSync(new URL(f, RUST), "utf8").replace(/\/\/[^\n]*/g, "");
/** Rust items with no TypeScript twin, and why. */
const NOT_MIRRORED = {
  EventFrame: "the server's serializer for EventMessage (same wire shape)",
  ClientEnvelope: "ClientMessage & { id } in TypeScript",
  ServerMessageError: "a Rust error type",
  MessageId: "untagged: string | number",
};

const snake = (s) => s.replace(/(?<=[a-z0-9])([A-Z])/g, "_$1").toLowerCase();

/** Splits at commas outside any bracket. */
function topLevel(body) {
  const parts = [];
  let depth = 0;
  let cur = "";
  for (const ch of body) {
    if ("<({[".includes(ch)) depth++;
    if (">)}]".includes(ch)) depth--;
    if (ch == "," && depth == 0) (parts.push(cur), (cur = ""));
    else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter(Boolean);
}

/** `[its leading attributes, the rest]` of a field or variant. */
function attrs(seg) {
  const found = [];
  let rest = seg.trim();
  for (let m; (m = /^#\[(.*?)\]\s*/s.exec(rest)); rest = rest.slice(m[0].length)) found.push(m[1]);
  return [found.join(" "), rest];
}

function fieldsOf(body) {
  return topLevel(body).map((seg) => {
    const [a, rest] = attrs(seg);
    const m = /^(?:pub\s+)?(\w+)\s*:\s*([\s\S]+)$/.exec(rest);
    assert.ok(m, `cannot read the field ${JSON.stringify(seg)}`);
    return { name: m[1], optional: /skip_serializing_if/.test(a), nullable: /^Option</.test(m[2]), flatten: /flatten/.test(a) };
  });
}

/** Every `pub struct` and `pub enum` of a Rust file, with fields or variants. */
function rustItems(text) {
  const items = {};
  const re = /((?:#\[[^\]]*\]\s*)*)pub (struct|enum) (\w+)[^{;]*\{/g;
  for (let m; (m = re.exec(text)); ) {
    let depth = 1;
    let i = re.lastIndex;
    for (; depth; i++) depth += text[i] == "{" ? 1 : text[i] == "}" ? -1 : 0;
    const body = text.slice(re.lastIndex, i - 1);
    const [kind, name, serde] = [m[2], m[3], m[1]];
    if (kind == "struct") items[name] = { kind, fields: fieldsOf(body) };
    else {
      const variants = topLevel(body).map((seg) => {
        const [, rest] = attrs(seg);
        const v = /^(\w+)\s*(?:\{([\s\S]*)\}|\(([\s\S]*)\))?$/.exec(rest);
        return { name: v[1], fields: v[2] != null ? fieldsOf(v[2]) : undefined, tuple: v[3]?.trim() };
      });
      items[name] = { kind, variants, snake: /rename_all = "snake_case"/.test(serde), untagged: /untagged/.test(serde) };
    }
  }
  return items;
}

// ---- the TypeScript side, through the compiler's parser ----
const src = ts.createSourceFile("protocol.ts", readFileSync(new URL("../src/protocol.ts", import.meta.url), "utf8"), ts.ScriptTarget.Latest);
const tsDecls = {};
src.forEachChild((n) => {
  if (ts.isInterfaceDeclaration(n) || ts.isTypeAliasDeclaration(n)) tsDecls[n.name.text] = n;
});

const propsOf = (members) =>
  members.filter(ts.isPropertySignature).map((p) => ({
    name: p.name.text,
    optional: !!p.questionToken,
    nullable: ts.isUnionTypeNode(p.type) && p.type.types.some((t) => ts.isLiteralTypeNode(t) && t.literal.kind == ts.SyntaxKind.NullKeyword),
  }));

/** The string literals of a union alias, following references to other aliases. */
function literals(typeNode) {
  if (ts.isUnionTypeNode(typeNode)) return typeNode.types.flatMap(literals);
  if (ts.isLiteralTypeNode(typeNode) && ts.isStringLiteral(typeNode.literal)) return [typeNode.literal.text];
  if (ts.isTypeReferenceNode(typeNode)) return literals(tsDecls[typeNode.typeName.text].type);
  throw new Error(`not a union of strings: ${typeNode.getText(src)}`);
}

function compareFields(where, rustFields, tsProps) {
  const r = rustFields.filter((f) => !f.flatten);
  assert.deepEqual(tsProps.map((p) => p.name).sort(), r.map((f) => f.name).sort(), `${where}: fields`);
  for (const f of r) {
    const p = tsProps.find((p) => p.name == f.name);
    assert.equal(p.optional, f.optional, `${where}.${f.name}: optional in TypeScript iff skip_serializing_if in Rust`);
    assert.equal(p.nullable, f.nullable && !f.optional, `${where}.${f.name}: \`| null\` iff an Option always sent`);
  }
}

const files = ["client.rs", "server.rs", "events.rs", "http.rs"];
const items = Object.assign({}, ...files.map((f) => rustItems(rust(f))));
items.MachineMetrics = rustItems(rust("agent.rs")).MachineMetrics;

test("every Rust protocol type has a TypeScript twin with the same fields", () => {
  let checked = 0;
  for (const [name, item] of Object.entries(items)) {
    if (NOT_MIRRORED[name] || item.kind != "struct") continue;
    const decl = tsDecls[name];
    assert.ok(decl && ts.isInterfaceDeclaration(decl), `src/protocol.ts has no interface ${name}`);
    compareFields(name, item.fields, propsOf(decl.members));
    checked++;
  }
  assert.ok(checked >= 30, `only ${checked} structs read: is the parser still reading the Rust?`);
});

test("every Rust enum has the same variants in TypeScript", () => {
  for (const [name, item] of Object.entries(items)) {
    if (NOT_MIRRORED[name] || item.kind != "enum" || name == "ClientMessage" || name == "ServerMessage") continue;
    assert.ok(item.snake, `${name}: expected rename_all = "snake_case"`);
    assert.ok(tsDecls[name], `src/protocol.ts has no type ${name}`);
    assert.deepEqual(literals(tsDecls[name].type).sort(), item.variants.map((v) => snake(v.name)).sort(), name);
  }
});

test("client messages: each type with its fields", () => {
  const members = tsDecls.ClientMessage.type.types;
  const byType = Object.fromEntries(
    members.map((m) => {
      const props = propsOf(m.members);
      const tag = m.members.find((p) => p.name.text == "type").type.literal.text;
      return [tag, props.filter((p) => p.name != "type")];
    }),
  );
  const variants = items.ClientMessage.variants;
  assert.deepEqual(Object.keys(byType).sort(), variants.map((v) => snake(v.name)).sort());
  for (const v of variants) compareFields(`ClientMessage::${v.name}`, v.fields ?? [], byType[snake(v.name)]);
  const listed = /CLIENT_MESSAGE_TYPES: \[&str; \d+\] = \[([^\]]*)\]/.exec(rust("client.rs"))[1].match(/"(\w+)"/g).map((s) => s.slice(1, -1));
  assert.deepEqual(listed.sort(), Object.keys(byType).sort(), "CLIENT_MESSAGE_TYPES");
});

test("server messages: each type tags its payload", () => {
  const tagged = tsDecls.ServerMessage.type.types.map((t) => [t.typeArguments[0].literal.text, t.typeArguments[1].typeName.text]);
  const variants = items.ServerMessage.variants.map((v) => [snake(v.name), v.tuple]);
  assert.deepEqual(tagged.sort(), variants.sort());
});

test("retryable codes and the topic length agree with the Rust", () => {
  const server = rust("server.rs");
  const body = /fn retryable\(self\) -> bool \{([\s\S]*?)\}/.exec(server)[1];
  const retryable = [...body.matchAll(/ErrorCode::(\w+)/g)].map((m) => snake(m[1]));
  for (const code of literals(tsDecls.ErrorCode.type)) {
    assert.equal(new SwitchboardError(code, "x").retryable, retryable.includes(code), code);
  }
  assert.equal(MAX_TOPIC_LEN, +/MAX_TOPIC_LEN: usize = (\d+)/.exec(rust("topic.rs"))[1]);
});
