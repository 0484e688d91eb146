#!/usr/bin/env node
// Turns the server's OpenAPI document into src/generated/api-types.ts: one TypeScript
// type per component schema that the public API uses, and one entry per public
// operation (method, path, parameters, body, answers). Plain Node, no dependencies.
//
//   node scripts/generate-types.mjs --write               start `tlao dev` (TLAO_BIN), write the file
//   node scripts/generate-types.mjs --check               start `tlao dev`, fail if the file differs
//   ... [--url http://host:port | --file openapi.json]   read the document from there instead
//
// Internal routes (`/worker/*`, `/blobs/*`) and the schemas only they use are left out,
// so the SDK's types follow exactly what a user of the API can call.

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { startDevServer } from "./dev-server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const OUTPUT = resolve(here, "../src/generated/api-types.ts");

/** Paths that are not part of the public API. */
const INTERNAL = [/^\/worker\//, /^\/blobs\//];
/** Schemas the SDK needs that no operation names (the SSE stream's data is a string). */
const EXTRA_SCHEMAS = ["Problem", "StreamEnd"];
const METHODS = ["get", "post", "put", "patch", "delete"];

/** A document comment from an OpenAPI description, indented. */
function doc(text, indent = "") {
  if (!text) return "";
  const lines = String(text).replaceAll("*/", "*\\/").split("\n");
  if (lines.length === 1) return `${indent}/** ${lines[0]} */\n`;
  return `${indent}/**\n${lines.map((line) => `${indent} *${line ? ` ${line}` : ""}`).join("\n")}\n${indent} */\n`;
}

function refName(ref) {
  const prefix = "#/components/schemas/";
  if (!ref.startsWith(prefix)) throw new Error(`unsupported $ref ${ref}`);
  return ref.slice(prefix.length);
}

function quoteKey(key) {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : JSON.stringify(key);
}

/** The TypeScript type of a schema, at `indent`. */
function typeOf(schema, indent) {
  if (!schema || Object.keys(schema).length === 0) return "unknown";
  if (schema.$ref) return refName(schema.$ref);
  if (schema.oneOf) return union(schema.oneOf.map((s) => typeOf(s, indent)));
  if (schema.anyOf) return union(schema.anyOf.map((s) => typeOf(s, indent)));
  if (schema.allOf) return schema.allOf.map((s) => wrap(typeOf(s, indent))).join(" & ");
  if (schema.enum) return union(schema.enum.map((v) => JSON.stringify(v)));
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  return union(types.map((type) => singleType(type, schema, indent)));
}

function singleType(type, schema, indent) {
  switch (type) {
    case "string":
      return schema.format === "binary" ? "Uint8Array" : "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array":
      return `Array<${typeOf(schema.items, indent)}>`;
    case "object":
      return objectType(schema, indent);
    case undefined:
      return "unknown";
    default:
      throw new Error(`unsupported schema type ${type}`);
  }
}

function objectType(schema, indent) {
  const properties = schema.properties ?? {};
  const names = Object.keys(properties).sort();
  if (names.length === 0) return "Record<string, unknown>";
  const required = new Set(schema.required ?? []);
  const inner = `${indent}  `;
  const fields = names.map((name) => {
    const property = properties[name];
    const description = property.description ?? property.oneOf?.find((s) => s.description)?.description;
    const optional = required.has(name) ? "" : "?";
    const type = typeOf(property, inner);
    return `${doc(description, inner)}${inner}${quoteKey(name)}${optional}: ${optional ? `${type} | undefined` : type};\n`;
  });
  return `{\n${fields.join("")}${indent}}`;
}

function union(parts) {
  const unique = [...new Set(parts)];
  return unique.length === 1 ? unique[0] : unique.map(wrap).join(" | ");
}

function wrap(type) {
  return /^[\w<>, "."-]+$/.test(type) || type.startsWith("{") ? type : `(${type})`;
}

/** Every schema name a schema refers to. */
function refsOf(value, into) {
  if (Array.isArray(value)) {
    for (const item of value) refsOf(item, into);
  } else if (value && typeof value === "object") {
    if (typeof value.$ref === "string") into.add(refName(value.$ref));
    for (const item of Object.values(value)) refsOf(item, into);
  }
  return into;
}

/** The public operations, in path order. */
function publicOperations(spec) {
  const operations = [];
  for (const path of Object.keys(spec.paths).sort()) {
    if (INTERNAL.some((pattern) => pattern.test(path))) continue;
    const item = spec.paths[path];
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      if (!operation.operationId) throw new Error(`${method.toUpperCase()} ${path} has no operationId`);
      operations.push({ path, method, operation });
    }
  }
  return operations;
}

function parametersType(parameters, where, indent) {
  const selected = parameters.filter((p) => p.in === where);
  if (selected.length === 0) return "Record<string, never>";
  const inner = `${indent}  `;
  const fields = selected.map((p) => {
    const optional = p.required ? "" : "?";
    const type = typeOf(p.schema, inner);
    return `${doc(p.description, inner)}${inner}${quoteKey(p.name)}${optional}: ${optional ? `${type} | undefined` : type};\n`;
  });
  return `{\n${fields.join("")}${indent}}`;
}

function bodyType(content, indent) {
  if (!content) return "never";
  const [mediaType, media] = Object.entries(content)[0];
  if (mediaType === "text/event-stream") return "string";
  return typeOf(media.schema, indent);
}

/** Renders the generated module from an OpenAPI document. */
export function render(spec) {
  const operations = publicOperations(spec);
  const schemas = spec.components?.schemas ?? {};

  const wanted = new Set(EXTRA_SCHEMAS);
  for (const { operation } of operations) refsOf(operation, wanted);
  let grew = true;
  while (grew) {
    grew = false;
    for (const name of [...wanted]) {
      if (!schemas[name]) throw new Error(`schema ${name} is referenced but not defined`);
      for (const ref of refsOf(schemas[name], new Set())) {
        if (!wanted.has(ref)) {
          wanted.add(ref);
          grew = true;
        }
      }
    }
  }

  let out = "";
  out += "// GENERATED by scripts/generate-types.mjs from the server's GET /openapi.json.\n";
  out += "// Do not edit: run `npm run generate-types` against the current server instead.\n";
  out += "// `npm run check-types` fails when this file no longer matches the server.\n\n";
  out += `/** The version of the API document these types were generated from. */\n`;
  out += `export const API_VERSION = ${JSON.stringify(spec.info?.version ?? "")};\n\n`;

  for (const name of [...wanted].sort()) {
    const schema = schemas[name];
    const type = typeOf(schema, "");
    out += doc(schema.description);
    const plainObject = schema.type === "object" && !schema.oneOf && !schema.allOf && !schema.anyOf;
    if (plainObject && type.startsWith("{\n")) out += `export interface ${name} ${type}\n\n`;
    else out += `export type ${name} = ${type};\n\n`;
  }

  out += "/** Every public operation of the API, by `operationId`. */\n";
  out += "export interface Operations {\n";
  for (const { path, method, operation } of operations) {
    const indent = "    ";
    const parameters = operation.parameters ?? [];
    out += doc(operation.summary ?? operation.description?.split("\n")[0], "  ");
    out += `  ${operation.operationId}: {\n`;
    out += `${indent}method: ${JSON.stringify(method.toUpperCase())};\n`;
    out += `${indent}path: ${JSON.stringify(path)};\n`;
    out += `${indent}pathParams: ${parametersType(parameters, "path", indent)};\n`;
    out += `${indent}query: ${parametersType(parameters, "query", indent)};\n`;
    out += `${indent}headers: ${parametersType(parameters, "header", indent)};\n`;
    out += `${indent}requestBody: ${bodyType(operation.requestBody?.content, indent)};\n`;
    out += `${indent}responses: {\n`;
    for (const status of Object.keys(operation.responses).sort()) {
      const response = operation.responses[status];
      out += doc(response.description, `${indent}  `);
      out += `${indent}  ${status}: ${bodyType(response.content, `${indent}  `)};\n`;
    }
    out += `${indent}};\n`;
    out += "  };\n";
  }
  out += "}\n\n";

  out += "/** The name of a public operation. */\n";
  out += "export type OperationId = keyof Operations;\n\n";
  out += "/** Where each public operation is served: its method and path template. */\n";
  out += "export const OPERATIONS = {\n";
  for (const { path, method, operation } of operations) {
    out += `  ${operation.operationId}: { method: ${JSON.stringify(method.toUpperCase())}, path: ${JSON.stringify(path)} },\n`;
  }
  out += "} as const satisfies { [K in OperationId]: { method: Operations[K][\"method\"]; path: Operations[K][\"path\"] } };\n";
  return out;
}

async function loadSpec(args) {
  const fileIndex = args.indexOf("--file");
  if (fileIndex >= 0) return JSON.parse(readFileSync(args[fileIndex + 1], "utf8"));
  const urlIndex = args.indexOf("--url");
  if (urlIndex >= 0) return fetchSpec(args[urlIndex + 1]);
  const server = await startDevServer();
  try {
    return await fetchSpec(server.url);
  } finally {
    await server.stop();
  }
}

async function fetchSpec(baseUrl) {
  const response = await fetch(new URL("/openapi.json", baseUrl));
  if (!response.ok) throw new Error(`GET ${baseUrl}/openapi.json answered ${response.status}`);
  return response.json();
}

/** The first line where two texts differ, for the failure message. */
function firstDifference(expected, actual) {
  const a = expected.split("\n");
  const b = actual.split("\n");
  for (let i = 0; i < Math.max(a.length, b.length); i += 1) {
    if (a[i] !== b[i]) return `line ${i + 1}:\n  committed: ${b[i] ?? "<end of file>"}\n  server:    ${a[i] ?? "<end of file>"}`;
  }
  return "";
}

async function main() {
  const args = process.argv.slice(2);
  const mode = args.includes("--check") ? "check" : args.includes("--write") ? "write" : null;
  if (!mode) {
    console.error("usage: generate-types.mjs --write|--check [--url URL | --file openapi.json]");
    process.exit(2);
  }
  const generated = render(await loadSpec(args));
  if (mode === "write") {
    writeFileSync(OUTPUT, generated);
    console.log(`wrote ${OUTPUT}`);
    return;
  }
  let committed = "";
  try {
    committed = readFileSync(OUTPUT, "utf8");
  } catch {
    // missing: reported as a difference below
  }
  if (committed !== generated) {
    console.error(
      `src/generated/api-types.ts does not match the server's /openapi.json (${firstDifference(generated, committed)}).\n` +
        "The API changed: run `npm run generate-types` in sdk/typescript, fix the client where tsc complains, and commit.",
    );
    process.exit(1);
  }
  console.log("src/generated/api-types.ts matches the server's /openapi.json");
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
