// Validate an AsyncAPI document with AsyncAPI's own parser: the 3.0 JSON Schema,
// references, and the parser's rules. Errors and warnings both fail.
// Usage: node validate.mjs ../../docs/asyncapi.yaml
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const path = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(path, "utf8"), { source: path });
const names = ["error", "warning", "info", "hint"];
let failed = !document;
for (const d of diagnostics) {
  const where = d.path.length ? d.path.join("/") : "(document)";
  console.log(`${names[d.severity]} ${d.code} at ${where}: ${d.message}`);
  if (d.severity <= 1) failed = true;
}
if (failed) {
  console.error(`${path}: not a valid AsyncAPI document`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}, ${document.channels().length} channels, ${document.operations().length} operations`);
